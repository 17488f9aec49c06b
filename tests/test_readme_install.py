"""README.md's "Install the browser extension" and "Connect the browser", done as written: the packages that
scripts/package-extension.sh makes, the self package unzipped with the README's own command and loaded unpacked
in Chromium, the Firefox package loaded as a temporary add-on (what about:debugging's Load Temporary Add-on
does) and installed for good in Firefox ESR once signatures are not required, each then connected in one click. The only step that differs: the extension is pointed at the test's
server, which listens on a free port instead of 47321."""

import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from browser import EXTENSION_ID, chromium_available, extension_browser
from firefox.driver import firefox_available, run_scenarios

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
INSTALL = README[README.index("## Install the browser extension"):README.index("## Parental lock")]
CONNECT = " ".join(README[README.index("## Connect the browser"):README.index("## Parental lock")].split())
FIREFOX_UUID = "2f8f9a52-5e2c-4a55-9d62-6c1f0c9e7a11"  # fixed by tests/firefox/driver.mjs


def package(tmp_path: Path, *args: str) -> Path:
    """Runs the README's packaging command; returns a copy of the package, after checking that the README
    names the very file it printed."""
    done = subprocess.run(["bash", "scripts/package-extension.sh", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip()
    copy = tmp_path / Path(printed).name
    shutil.move(ROOT / printed, copy)
    command = " ".join(["scripts/package-extension.sh", *args])
    assert re.search(rf"^{re.escape(command)}\s+# prints {re.escape(printed)}$", INSTALL, re.M), (command, printed)
    return copy


def readme_quotes(*quotes: str) -> None:
    for quote in quotes:
        assert quote in INSTALL, quote


def allow_when_asked(server, stop: threading.Event, allowed: list) -> None:
    """What the person does on http://127.0.0.1:<port>/connect: Allow the request shown there (through the
    page's own calls, with the key the page embeds)."""
    html = server.request("GET", "/connect", token=False).body.decode()
    key = re.search(r'name="shield-page-key" content="([^"]+)"', html).group(1)
    while not stop.is_set():
        listed = server.request("GET", "/v1/pairing", token=False, headers={"X-Shield-Page-Key": key}).json()
        for request in listed["requests"]:
            answer = server.request("POST", f"/v1/pairing/{request['id']}/allow", token=False,
                                    headers={"X-Shield-Page-Key": key})
            allowed.append((request["code"], answer.status))
            return
        time.sleep(0.2)


@pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium")
def test_chromium_steps_as_the_readme_says(tmp_path, shield_server):
    archive = package(tmp_path)
    # Step 1, the README's own command (its ~ is this test's home folder).
    unzip = re.search(r"`(unzip dist/\S+ -d ~/photo-shield-extension)`", INSTALL).group(1)
    home = tmp_path / "home"
    home.mkdir()
    (home / "dist").mkdir()
    shutil.copy(archive, home / "dist" / archive.name)
    done = subprocess.run(["bash", "-c", unzip], cwd=home, env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    folder = home / "photo-shield-extension"
    assert (folder / "manifest.json").is_file()
    # Steps 2-5: Load unpacked on that folder (the command-line twin of the button); the README's ID.
    readme_quotes("**Load unpacked**", f"`{EXTENSION_ID}`", "**Welcome to Photo Shield**")
    with extension_browser(extension_dir=folder) as browser:  # checks the worker runs under EXTENSION_ID
        welcome_url = browser.extension_url("welcome/welcome.html")
        if not any(p.url == welcome_url for p in browser.context.pages):
            browser.context.wait_for_event("page", predicate=lambda p: p.url == welcome_url, timeout=15000)
        browser.reset(port=shield_server.port)
        welcome = browser.context.new_page()
        welcome.goto(welcome_url)
        assert welcome.inner_text("h1") == "Welcome to Photo Shield"
        # "Connect the browser", steps 1-3.
        readme_quotes_connect("Photo Shield is running on this computer", "Connect this browser",
                              "Connected: your uploads are now protected.")
        welcome.wait_for_selector("#server-state.info:has-text('Photo Shield is running on this computer')")
        with browser.context.expect_page(timeout=15000) as opened:
            welcome.click("button.primary:has-text('Connect this browser')")
        connect = opened.value
        assert connect.url == f"{shield_server.base_url}/connect"
        code = welcome.wait_for_selector("#code:not(:empty)", timeout=15000).text_content()
        assert re.fullmatch(r"\d{3} \d{3}", code)
        connect.wait_for_selector(f".pairing-code:text('{code}')", timeout=15000)
        connect.click("button[data-decision=allow]")
        welcome.wait_for_selector("#server-state.ok", timeout=20000)
        assert welcome.inner_text("#server-state") == "Connected: your uploads are now protected."
        assert browser.storage()["settings"]["token"] == shield_server.token
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and browser.worker.evaluate("() => chrome.action.getBadgeText({})") != "ON":
            time.sleep(0.1)
        assert browser.worker.evaluate("() => chrome.action.getBadgeText({})") == "ON"  # "a green ON"


def readme_quotes_connect(*quotes: str) -> None:
    for quote in quotes:
        assert quote in CONNECT, quote


def connect_in_firefox(server, archive: Path, **install) -> None:
    """Installs the package (driver.mjs: temporary, or permanent), and connects it as README.md says."""
    stop, allowed = threading.Event(), []
    helper = threading.Thread(target=allow_when_asked, args=(server, stop, allowed), daemon=True)
    helper.start()
    welcome = f"moz-extension://{FIREFOX_UUID}/welcome/welcome.html"
    try:
        [steps] = run_scenarios([{"settings": {"port": server.port}, "steps": [
            {"extension": "chrome.tabs.query({}).then((tabs) => tabs.map((tab) => tab.url))"},
            {"goto": welcome},
            {"waitFor": "document.querySelector('#server-state.info')"},
            {"evaluate": "document.getElementById('server-state').textContent"},
            {"evaluate": "document.querySelectorAll('button.primary').length"},
            {"click": "#connect"},
            {"waitFor": "document.getElementById('code').textContent"},
            {"evaluate": "document.getElementById('code').textContent"},
            {"waitFor": "document.querySelector('#server-state.ok')", "timeoutMs": 30000},
            {"evaluate": "document.getElementById('server-state').textContent"},
            {"extension": "chrome.storage.local.get('settings').then((s) => s.settings.token)"},
        ]}], extension=archive, **install)
    finally:
        stop.set()
        helper.join(5)
    assert not [s for s in steps if isinstance(s, dict) and "error" in s], steps
    pages, _, _, running, primaries, _, _, code, _, connected, token = steps
    assert welcome in pages, pages  # it opened by itself on install
    assert running.startswith("Photo Shield is running on this computer") and primaries == 1
    assert allowed == [(code, 200)]
    assert connected == "Connected: your uploads are now protected."
    assert token == server.token


FIREFOX_ONLY = pytest.mark.skipif(not firefox_available() and not os.environ.get("SHIELD_REQUIRE_BROWSER"),
                                  reason="needs /usr/bin/firefox-esr, node and puppeteer-core")


@FIREFOX_ONLY
def test_firefox_temporary_add_on_as_the_readme_says(tmp_path, shield_server):
    archive = package(tmp_path, "--store", "firefox")
    readme_quotes("about:debugging#/runtime/this-firefox", "**Load Temporary Add-on…**", f"`{archive.name}`")
    connect_in_firefox(shield_server, archive)  # the package file itself, as chosen in about:debugging


@FIREFOX_ONLY
def test_firefox_esr_installs_the_package_for_good_once_signatures_are_not_required(tmp_path, shield_server):
    """Firefox ESR (the one these tests run) with xpinstall.signatures.required set to false installs the
    unsigned package for good (about:addons' Install Add-on From File); without that setting it refuses it."""
    archive = package(tmp_path, "--store", "firefox")
    readme_quotes("xpinstall.signatures.required", "**Install Add-on From File…**")
    with pytest.raises(RuntimeError, match="ERROR_SIGNEDSTATE_REQUIRED"):
        run_scenarios([], extension=archive, permanent=True)
    connect_in_firefox(shield_server, archive, permanent=True, prefs={"xpinstall.signatures.required": False})
