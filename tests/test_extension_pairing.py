"""One-click pairing in real headless Chromium: the welcome page opens on install, Connect opens the server's
/connect page, Allow there pairs the extension with the real server's token (docs/SECURITY.md)."""

import hashlib
import hmac
import http.server
import json
import urllib.parse

import pytest

from browser import LoopbackServer, chromium_available, extension_browser

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


class PairingStandIn:
    """A program on the port that runs one-click pairing and hands out `token`, then answers the identity
    challenge with `proof_key`: a real server proves the very token it handed out."""

    def __init__(self, token: str, proof_key: str):
        self.paths = []
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, body: dict, content_type: str = "application/json"):
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                stand_in.paths.append(self.path)
                self.answer({"id": "0" * 32, "secret": "s" * 43, "code": "123 456", "expires_in": 120})

            def do_GET(self):
                stand_in.paths.append(self.path)
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/v1/identify":
                    challenge = urllib.parse.parse_qs(url.query)["challenge"][0]
                    self.answer({"proof": hmac.new(proof_key.encode(), f"photo-shield-proof:{challenge}".encode(),
                                                   hashlib.sha256).hexdigest()})
                elif url.path == "/v1/health":
                    self.answer({"status": "ready", "version": "0", "detectors": []})
                elif url.path.startswith("/v1/pairing/"):
                    self.answer({"status": "allowed", "token": token})
                else:
                    self.answer({}, "text/html")

        self.server = LoopbackServer(Handler)
        self.port = self.server.port


@pytest.mark.parametrize("honest", [True, False])
def test_a_paired_token_is_kept_only_once_the_server_proves_it(chromium, honest):
    """The extension checks the server's proof of the token it was just handed (/v1/identify) before it keeps
    it: a program that hands out a token it cannot prove (not the server that holds it) pairs nothing."""
    token = "handed-out-" + "x" * 40
    stand_in = PairingStandIn(token, proof_key=token if honest else "another-" + "y" * 40)
    try:
        chromium.reset(port=stand_in.port)
        page = chromium.context.new_page()
        page.goto(chromium.extension_url("options/options.html"))
        started = page.evaluate("() => chrome.runtime.sendMessage({type: 'startPairing', pin: ''})")
        assert started["ok"] and started["code"] == "123 456", started
        answer = page.evaluate("() => chrome.runtime.sendMessage({type: 'pollPairing', pin: ''})")
        collected = [i for i, path in enumerate(stand_in.paths) if path.startswith("/v1/pairing/")]
        assert collected and any(p.startswith("/v1/identify") for p in stand_in.paths[collected[0]:])
        stored = chromium.storage()["settings"].get("token")
        if honest:
            assert answer == {"ok": True, "status": "allowed"} and stored == token
        else:
            assert answer["ok"] is False and answer["reason"] == "not_photo_shield", answer
            assert stored != token
        for tab in chromium.context.pages[1:]:
            if tab.url.startswith(f"http://127.0.0.1:{stand_in.port}"):
                tab.close()
        page.close()
    finally:
        stand_in.server.stop()
