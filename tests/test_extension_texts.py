"""What the extension's own pages say to a parent or a child, in English and French, in real headless Chromium:
no error before the person has acted, one clear primary action, the real pairing state, one line where one is
meant, and counts in their proper plural forms. Each state is photographed (SHIELD_SCREENSHOTS=folder keeps the
pictures; docs/screenshots/ holds a few)."""

import json
import os
import socket
from pathlib import Path

import pytest

from browser import EXTENSION_DIR, chromium_available, extension_browser

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium")

WORDS = {
    "en": {"running": "Photo Shield is running on this computer.", "paired": "Connected: your uploads are now protected.",
           "not_paired": "This browser is not connected to Photo Shield yet.",
           "options_paired": "This browser is connected to Photo Shield 0.", "popup_not_paired": "Not connected yet",
           "nothing_uploaded": "Nothing was uploaded"},
    "fr": {"running": "Photo Shield fonctionne sur cet ordinateur.", "paired": "Connecté : vos envois sont désormais protégés.",
           "not_paired": "Ce navigateur n'est pas encore connecté à Photo Shield.",
           "options_paired": "Ce navigateur est connecté à Photo Shield 0.", "popup_not_paired": "Pas encore connecté",
           "nothing_uploaded": "Rien n'a été envoyé"},
}
STATS = {  # (photos, faces): what the popup says
    "en": {(1, 1): "1 photo protected, 1 face replaced", (2, 0): "2 photos protected, 0 faces replaced",
           (0, 3): "0 photos protected, 3 faces replaced"},
    # French counts 0 and 1 in the singular.
    "fr": {(1, 1): "1 photo protégée, 1 visage remplacé", (2, 0): "2 photos protégées, 0 visage remplacé",
           (0, 3): "0 photo protégée, 3 visages remplacés"},
}
REVIEW = {
    "en": "photo.jpg: 1 face replaced, 2 regions added, 0 faces left as they are.",
    "fr": "photo.jpg : 1 visage remplacé, 2 zones ajoutées, 0 visage laissé tel quel.",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def screenshot(page, name: str) -> None:
    folder = os.environ.get("SHIELD_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def visible_errors(page) -> list[str]:
    """Texts shown as errors. The options page's warning that private windows are not covered is a true
    state of this browser, and stays."""
    return page.evaluate("""() => [...document.querySelectorAll('.error, .alarm')]
        .filter((e) => e.id !== 'incognito-state' && e.offsetParent !== null && e.textContent.trim())
        .map((e) => e.textContent)""")


def open_page(browser, path: str, ready: str):
    page = browser.context.new_page()
    page.set_viewport_size({"width": 760, "height": 560})
    page.goto(browser.extension_url(path))
    page.wait_for_selector(ready, timeout=20000)
    return page


@pytest.fixture(scope="module", params=["en", "fr"])
def language(request):
    with extension_browser(language=request.param) as browser:
        yield request.param, browser


def test_welcome_before_anything_is_done_shows_no_error(language, shield_server):
    lang, browser = language
    words = WORDS[lang]
    # Photo Shield not started yet: how to start it, said plainly, not as a failure.
    browser.reset(port=free_port())
    page = open_page(browser, "welcome/welcome.html", "#not-running:not([hidden])")
    assert visible_errors(page) == [] and page.is_hidden("#server-state")
    assert words["nothing_uploaded"] not in page.inner_text("body")
    screenshot(page, f"welcome-not-running-{lang}")
    page.close()
    # Started, never connected: one primary action.
    browser.reset(port=shield_server.port)
    page = open_page(browser, "welcome/welcome.html", "#connect-step:not([hidden])")
    assert page.inner_text("#server-state.info").startswith(words["running"])
    assert visible_errors(page) == []
    assert words["nothing_uploaded"] not in page.inner_text("body")
    primary = page.locator("button.primary:visible")
    assert primary.count() == 1 and primary.get_attribute("id") == "connect"
    colours = primary.evaluate("(b) => [getComputedStyle(b).backgroundColor, getComputedStyle(b).color]")
    assert colours == ["rgb(29, 78, 216)", "rgb(255, 255, 255)"], colours
    screenshot(page, f"welcome-connect-{lang}")
    page.close()


def test_welcome_once_connected_says_so_once(language, shield_server):
    lang, browser = language
    browser.reset(port=shield_server.port, token=shield_server.token)
    page = open_page(browser, "welcome/welcome.html", "#server-state.ok")
    text = page.inner_text("body")
    assert page.inner_text("#server-state") == WORDS[lang]["paired"]
    assert text.count(WORDS[lang]["paired"]) == 1, text
    assert page.text_content("#result") == "", text  # not a second line saying the same
    assert page.is_hidden("#connect-step") and page.is_hidden("#not-running") and visible_errors(page) == []
    screenshot(page, f"welcome-connected-{lang}")
    page.close()


def test_options_show_the_real_pairing_state(language, shield_server):
    lang, browser = language
    words = WORDS[lang]
    browser.reset(port=shield_server.port)
    page = open_page(browser, "options/options.html", "#pairing-state.info")
    assert page.inner_text("#pairing-state") == words["not_paired"]
    assert page.is_visible("#connect.primary") and visible_errors(page) == []
    assert "shield pair" not in page.inner_text("body")  # by hand is folded away
    screenshot(page, f"options-not-connected-{lang}")
    with page.expect_navigation():
        page.click("#connect")
    assert page.url == browser.extension_url("welcome/welcome.html")
    page.close()

    browser.reset(port=shield_server.port, token=shield_server.token)
    page = open_page(browser, "options/options.html", "#pairing-state.ok")
    assert page.inner_text("#pairing-state").startswith(words["options_paired"])
    assert page.is_hidden("#connect") and "shield pair" not in page.inner_text("body")
    screenshot(page, f"options-connected-{lang}")
    page.close()


def test_popup_counts_in_proper_plurals(language, shield_server):
    lang, browser = language
    for (photos, faces), expected in STATS[lang].items():
        browser.reset(port=shield_server.port, token=shield_server.token)
        browser.worker.evaluate("(stats) => chrome.storage.local.set({ stats })", {"photos": photos, "faces": faces})
        page = open_page(browser, "popup/popup.html", "#connection.ok")
        assert page.inner_text("#stats") == expected
        if (photos, faces) == (1, 1):
            page.set_viewport_size({"width": 330, "height": 200})
            screenshot(page, f"popup-{lang}")
        page.close()
    browser.reset(port=shield_server.port)
    page = open_page(browser, "popup/popup.html", "#connection.info")
    assert page.inner_text("#connection").startswith(WORDS[lang]["popup_not_paired"]) and visible_errors(page) == []
    page.close()


def test_review_summary_counts_in_proper_plurals(language):
    """The review dialog's summary line, built as notice.js builds it, from the same messages."""
    lang, browser = language
    page = open_page(browser, "popup/popup.html", "#stats")
    summary = page.evaluate("""() => { const { count } = PhotoShieldPlural;
        return chrome.i18n.getMessage('reviewSummary', ['photo.jpg', count('reviewFacesReplaced', 1),
            count('reviewRegionsAdded', 2), count('reviewFacesKept', 0)]); }""")
    assert summary == REVIEW[lang]
    page.close()


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_messages_for_people_carry_no_shell_syntax_or_hedged_plurals(lang):
    messages = json.loads((EXTENSION_DIR / "_locales" / lang / "messages.json").read_text(encoding="utf-8"))
    for key, entry in messages.items():
        if key.startswith(("reason_", "todo_", "notice", "welcome", "popup", "review", "stats", "pairing")):
            text = entry["message"]
            assert "`" not in text and "(s)" not in text and "(es)" not in text, (key, text)
