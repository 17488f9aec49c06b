"""What the extension shows about itself, in real headless Chromium: the toolbar badge, lost access to
websites, the popup and options pages' first render, the state of private windows, and the PIN's limit on
guesses (stored, so a restarted service worker does not forget it).
"""

import re
import time

import pytest

from browser import chromium_available
from test_extension import ASTRONAUT, closed_port, expect_blocked, only_upload, paired
# Module-scoped here too: this module gets its own fresh profile, whose first options page is slow to render.
from test_extension_files import browser, site  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium")


def extension_page(browser, path):
    page = browser.context.new_page()
    page.goto(browser.extension_url(path))
    return page


def badge(browser) -> str:
    return browser.worker.evaluate("() => chrome.action.getBadgeText({})")


def wait_for_badge(browser, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and badge(browser) != text:
        time.sleep(0.1)
    assert badge(browser) == text


# Must run first in this module: the profile's first options page.
def test_first_render_of_options_keeps_what_was_typed(browser, shield_server):
    options = browser.context.new_page()
    options.goto(browser.extension_url("options/options.html"), wait_until="domcontentloaded")
    options.click("#by-hand summary")  # pairing by hand: folded away under the one-click Connect
    options.fill("#token", "typed-before-render")
    options.wait_for_selector("#lock-state:not(:empty)")
    assert options.input_value("#token") == "typed-before-render"
    # Any later render (here after saving another setting) keeps unsaved typing too.
    options.fill("#port", str(shield_server.port))
    options.check("#review")
    options.wait_for_selector("#save-result.ok")
    assert options.input_value("#token") == "typed-before-render"
    assert options.input_value("#port") == str(shield_server.port)
    options.click("#save-pairing")
    options.wait_for_function("document.getElementById('save-result').textContent !== ''")
    assert browser.storage()["settings"]["token"] == "typed-before-render"
    options.close()


def test_popup_never_shows_a_state_it_does_not_know(browser):
    browser.reset(enabled=True)
    html = browser.worker.evaluate("async () => (await fetch('/popup/popup.html')).text()")
    hidden_block = re.search(r'<div id="state" hidden>(.*?)</div>', html, re.S)
    assert hidden_block and 'id="enabled"' in hidden_block.group(1)  # the switch is hidden until settings load
    popup = extension_page(browser, "popup/popup.html")
    popup.wait_for_selector("#enabled", state="visible")
    assert popup.is_checked("#enabled")
    popup.close()


def test_badge_shows_on_off_and_not_connected(browser, site, shield_server):
    browser.reset(**paired(shield_server))
    page = browser.context.new_page()
    page.goto(site.origin + "/")
    site.clear()
    page.set_input_files("#js-input", ASTRONAUT)
    only_upload(site)
    wait_for_badge(browser, "ON")

    browser.worker.evaluate("async (port) => chrome.storage.local.set({ settings: { port, token: 'x' } })", closed_port())
    site.clear()
    page.set_input_files("#js-input", ASTRONAUT)
    expect_blocked(page, site, "server_unreachable")
    wait_for_badge(browser, "!")
    assert "not connected" in browser.worker.evaluate("() => chrome.action.getTitle({})")

    browser.worker.evaluate("async () => chrome.storage.local.set({ settings: { enabled: false } })")
    wait_for_badge(browser, "OFF")
    browser.reset()  # never paired: known without asking any server
    wait_for_badge(browser, "!")
    page.close()


def test_lost_site_access_is_shown_loudly(browser):
    """Chromium refuses to remove an extension's required permissions by script ("Site access" is changed
    in chrome://extensions), so here the browser's answer is what changes: permissions.contains says no."""
    browser.reset()
    browser.worker.evaluate("""async () => {
        self.realContains = chrome.permissions.contains;
        chrome.permissions.contains = async () => false;
        await PhotoShieldStatus.checkSiteAccess();
    }""")
    try:
        wait_for_badge(browser, "!!")
        assert "no access to websites" in browser.worker.evaluate("() => chrome.action.getTitle({})")
        # The options page comes up by itself and says what happened.
        warning = next((p for p in browser.context.pages if p.url.endswith("/options/options.html")), None)
        for _ in range(50):
            warning = next((p for p in browser.context.pages if p.url.endswith("/options/options.html")), None)
            if warning:
                break
            browser.context.pages[0].wait_for_timeout(100)
        assert warning, [p.url for p in browser.context.pages]
        warning.wait_for_selector("#access-lost:not([hidden])")
        # In the foreground, with a system notification that says how to give access back.
        assert warning.evaluate("document.visibilityState") == "visible"
        notifications = browser.worker.evaluate("() => chrome.notifications.getAll()")
        assert list(notifications) == ["photo-shield-access-lost"], notifications
        assert "On all sites" in warning.inner_text("#access-lost")
        popup = extension_page(browser, "popup/popup.html")
        popup.wait_for_selector("#access-lost:not([hidden])")
        assert "NOT protected" in popup.inner_text("#access-lost")
        assert "about:addons" in popup.inner_text("#access-lost")
        popup.close()
        warning.close()
    finally:
        browser.worker.evaluate("""async () => {
            chrome.permissions.contains = self.realContains;
            await PhotoShieldStatus.checkSiteAccess();
        }""")
    assert badge(browser) != "!!"
    assert browser.worker.evaluate("() => chrome.notifications.getAll()") == {}


def test_options_say_whether_private_windows_are_covered(browser):
    options = extension_page(browser, "options/options.html")
    options.wait_for_selector("body[data-incognito]")
    # Extensions are off in incognito unless the person allows them; headless Chromium keeps the default.
    assert options.get_attribute("body", "data-incognito") == "false"
    assert "does NOT run in private" in options.inner_text("#incognito-state")
    options.close()


def ask(page, message: dict) -> dict:
    return page.evaluate("(m) => chrome.runtime.sendMessage(m)", message)


def test_pin_guesses_are_limited_and_survive_a_worker_restart(browser):
    browser.reset()
    options = extension_page(browser, "options/options.html")
    assert ask(options, {"type": "setPin", "newPin": "2468"})["ok"]
    answers = [ask(options, {"type": "saveSettings", "patch": {"enabled": False}, "pin": guess})
               for guess in ("1111", "2222", "3333")]
    assert [a["error"] for a in answers] == ["pin_wrong", "pin_wrong", "pin_wait"]
    assert answers[2]["waitSeconds"] == 30
    # While the wait lasts even the right PIN is refused.
    assert ask(options, {"type": "saveSettings", "patch": {"enabled": False}, "pin": "2468"})["error"] == "pin_wait"

    cdp = browser.context.new_cdp_session(options)
    cdp.send("ServiceWorker.enable")
    cdp.send("ServiceWorker.stopAllWorkers")
    cdp.detach()
    assert ask(options, {"type": "removePin", "pin": "2468"})["error"] == "pin_wait"
    options.reload()
    options.wait_for_selector("#pin-wait:not(:empty)")

    # The wait is over (moved into the past here): the right PIN works and clears the count.
    options.evaluate("""async () => {
        const { pinAttempts } = await chrome.storage.local.get('pinAttempts');
        await chrome.storage.local.set({ pinAttempts: { ...pinAttempts, until: Date.now() - 1 } });
    }""")
    assert ask(options, {"type": "saveSettings", "patch": {"review": True}, "pin": "2468"})["ok"]
    assert "pinAttempts" not in options.evaluate("chrome.storage.local.get(null)")
    # The next wrong guess starts from the beginning again: one wrong, no wait.
    assert ask(options, {"type": "saveSettings", "patch": {"review": False}, "pin": "0000"})["error"] == "pin_wrong"
    options.close()


def test_resetting_the_counts_needs_the_pin(browser):
    browser.reset()
    options = extension_page(browser, "options/options.html")
    options.evaluate("chrome.storage.local.set({ stats: { photos: 3, faces: 5 } })")
    assert ask(options, {"type": "setPin", "newPin": "2468"})["ok"]
    assert ask(options, {"type": "resetStats"})["error"] == "pin_required"
    assert ask(options, {"type": "resetStats", "pin": "9999"})["error"] == "pin_wrong"
    assert options.evaluate("chrome.storage.local.get('stats')")["stats"] == {"photos": 3, "faces": 5}
    assert ask(options, {"type": "resetStats", "pin": "2468"})["ok"]
    assert options.evaluate("chrome.storage.local.get('stats')")["stats"] == {"photos": 0, "faces": 0}
    options.close()
