"""What the extension shows about itself, in real headless Chromium: the toolbar badge, lost access to
websites, the popup and options pages' first render, the state of private windows, and the PIN's limit on
guesses (stored, so a restarted service worker does not forget it).
"""

import re
import time

import pytest

from browser import EXTENSION_ID, chromium_available, extension_browser
from test_extension import ASTRONAUT, assert_protected, closed_port, expect_blocked, only_upload, paired
from test_extension_files import site  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium")

TEST_HOST = "photos.test"  # a site that is not on 127.0.0.1 (see test_withdrawn_site_access_shouts)


@pytest.fixture(scope="module")
def browser():
    """This module's own fresh profile (its first options page is slow to render: the first policy read)."""
    with extension_browser(extra_args=[f"--host-resolver-rules=MAP {TEST_HOST} 127.0.0.1"]) as started:
        yield started


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


def set_site_access(page, access: str):
    """What a person does in chrome://extensions > Details > Site access ("ON_CLICK": withheld,
    "ON_ALL_SITES": given back), through the API that page itself calls."""
    page.goto("chrome://extensions")
    error = page.evaluate("""([id, access]) => new Promise((resolve) => chrome.developerPrivate
        .updateExtensionConfiguration({ extensionId: id, hostAccess: access },
            () => resolve(chrome.runtime.lastError ? chrome.runtime.lastError.message : '')))""", [EXTENSION_ID, access])
    assert not error


def wait_for_worker(browser, expression, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = browser.worker.evaluate(expression)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"never true: {expression}")


NOTIFICATIONS = "async () => Object.keys(await chrome.notifications.getAll())"
# Tabs of the explanation page, seen from the worker (Playwright does not always learn of a tab that an
# extension opened): in front or not, and its title, which says red or green.
WARNING_TABS = """async () => (await chrome.tabs.query({ url: chrome.runtime.getURL('access/access.html') }))
    .map((tab) => ({ id: tab.id, active: tab.active, title: tab.title }))"""
LOST_TITLE = "Photo Shield can no longer see websites"


def test_withdrawn_site_access_shouts(browser, shield_server, site):
    """Site access withheld for real, as in chrome://extensions. The test site is `photos.test` (mapped to
    loopback): the server's host permission, http://127.0.0.1/*, covers every port there."""
    browser.reset(**paired(shield_server))
    settings = browser.context.new_page()
    try:
        set_site_access(settings, "ON_CLICK")
        # A system notification, and the explanation page in front (the active tab).
        assert wait_for_worker(browser, NOTIFICATIONS) == ["photo-shield-access-lost"]
        (shown,) = wait_for_worker(browser, f"""async () => {{ const tabs = await ({WARNING_TABS})();
            return tabs.length && tabs[0].title === '{LOST_TITLE}' && tabs; }}""")
        assert shown["active"] is True
        assert badge(browser) == "!!"
        # Once per loss: the person closed the page; later checks (the periodic one, a restarted worker)
        # do not bring it back.
        browser.worker.evaluate("(id) => chrome.tabs.remove(id)", shown["id"])
        assert browser.worker.evaluate("() => PhotoShieldStatus.checkSiteAccess()") is True
        assert browser.worker.evaluate(WARNING_TABS) == []

        # What the page and the popup say: how to give access back in Chromium.
        warning = extension_page(browser, "access/access.html")
        warning.wait_for_selector("body[data-access-lost=true]")
        text = warning.inner_text("#lost")
        assert "Site access" in text and "On all sites" in text and "chrome://extensions" in text
        popup = extension_page(browser, "popup/popup.html")
        popup.wait_for_selector("#access-lost:not([hidden])")
        assert "NOT protected" in popup.inner_text("#access-lost") and "Site access" in popup.inner_text("#access-lost")

        set_site_access(settings, "ON_ALL_SITES")
        warning.wait_for_selector("body[data-access-lost=false]")
        assert "see websites again" in warning.inner_text("#back")
        popup.wait_for_selector("#access-lost[hidden]", state="attached")
        assert browser.worker.evaluate(NOTIFICATIONS) == []
        wait_for_worker(browser, "async () => (await chrome.action.getBadgeText({})) !== '!!'")

        # Access is really back: an upload on the site is protected.
        site.clear()
        page = browser.context.new_page()
        page.goto(f"http://{TEST_HOST}:{site.port}/")
        page.set_input_files("#js-input", ASTRONAUT)
        (photo,) = only_upload(site).files()
        assert_protected(photo.data)

        # The next loss is announced again; the page left open (behind the site's tab) turns red and
        # comes to the front.
        set_site_access(settings, "ON_CLICK")
        assert wait_for_worker(browser, NOTIFICATIONS) == ["photo-shield-access-lost"]
        warning.wait_for_selector("body[data-access-lost=true]")
        wait_for_worker(browser, f"async () => (await ({WARNING_TABS})()).every((tab) => tab.active)")
        assert len(browser.worker.evaluate(WARNING_TABS)) == 1
    finally:
        set_site_access(settings, "ON_ALL_SITES")
        for page in browser.context.pages[1:]:
            page.close()


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
