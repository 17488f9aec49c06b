"""One-click pairing in real headless Chromium: the welcome page opens on install, Connect opens the server's
/connect page, Allow there pairs the extension with the real server's token (docs/SECURITY.md)."""

import pytest

from browser import chromium_available, extension_browser

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium")


@pytest.fixture(scope="module")
def chromium():
    with extension_browser() as browser:
        yield browser


def test_welcome_page_opens_on_install(chromium):
    welcome = chromium.extension_url("welcome/welcome.html")
    pages = chromium.context.pages
    if not any(p.url == welcome for p in pages):
        chromium.context.wait_for_event("page", predicate=lambda p: p.url == welcome, timeout=10000)


def press_connect(chromium, server):
    """An unpaired extension's welcome page: Connect opens the server's /connect page. Returns both pages."""
    chromium.reset(port=server.port)
    welcome = chromium.context.new_page()
    welcome.goto(chromium.extension_url("welcome/welcome.html"))
    welcome.wait_for_selector("#connect", state="visible", timeout=15000)
    with chromium.context.expect_page(timeout=15000) as opened:
        welcome.click("#connect")
    assert opened.value.url == f"{server.base_url}/connect"
    return welcome, opened.value


def test_connect_and_allow_pairs_the_extension(chromium, shield_server):
    welcome, connect = press_connect(chromium, shield_server)
    code = welcome.wait_for_selector("#code:not(:empty)", timeout=15000).text_content()
    # The local page shows the same code as the extension; the person allows that one.
    connect.wait_for_selector(f".pairing-code:text('{code}')", timeout=15000)
    connect.click("button[data-decision=allow]")
    welcome.wait_for_selector("#server-state.ok", timeout=20000)  # the connection test now passes
    assert chromium.storage()["settings"]["token"] == shield_server.token
    assert welcome.inner_text("#server-state") == "Connected: your uploads are now protected."
    assert welcome.text_content("#result") == "" and welcome.is_hidden("#code-step")  # said once, not twice
    connect.close()
    welcome.close()


def test_refused_request_leaves_the_extension_unpaired(chromium, shield_server):
    welcome, connect = press_connect(chromium, shield_server)
    connect.click("text=Refuse", timeout=15000)
    welcome.wait_for_selector("#result.error", timeout=20000)
    assert not chromium.storage()["settings"].get("token")
    connect.close()
    welcome.close()


def test_locked_profile_needs_the_pin_to_pair(chromium, shield_server):
    chromium.reset(port=shield_server.port)
    page = chromium.context.new_page()
    page.goto(chromium.extension_url("options/options.html"))
    answer = page.evaluate("""async () => {
        await chrome.runtime.sendMessage({type: 'setPin', newPin: '4821'});
        return chrome.runtime.sendMessage({type: 'startPairing', pin: ''});
    }""")
    assert answer["ok"] is False and answer["reason"] == "pin_required", answer
    page.close()
