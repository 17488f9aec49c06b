"""Shared pieces for the extension tests: the loopback test site that records every upload it receives,
a real `shield serve` process, and headless Chromium with the unpacked extension loaded.
"""

import base64
import contextlib
import email.parser
import email.policy
import http.server
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTENSION_DIR = ROOT / "extension"
SITE_DIR = Path(__file__).resolve().parent / "e2e_site"
CHROMIUM = "/usr/bin/chromium"
EXTENSION_ID = "kcbncmfikphjokbejdopkgddbliakibd"  # fixed by the manifest "key"

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps",
]


# ---- the test site ----------------------------------------------------------------------------

@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class Upload:
    via: str
    content_type: str
    body: bytes
    parts: list[Part] = field(default_factory=list)

    def files(self) -> list[Part]:
        return [part for part in self.parts if part.filename is not None]


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    parts = []
    for item in message.iter_parts():
        parts.append(Part(
            name=item.get_param("name", header="content-disposition") or "",
            filename=item.get_filename(),
            content_type=item.get_content_type(),
            data=item.get_payload(decode=True) or b"",
        ))
    return parts


class LoopbackServer:
    """A stand-in server for one test: `handler` served on 127.0.0.1 (any free port) from a thread."""

    def __init__(self, handler):
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


class RelayServer(LoopbackServer):
    """In front of the real server: every request handed to it unchanged (so what the site gets is its
    output), unless `answer_first(method, path)` answers instead: (status, headers, body) or None."""

    def __init__(self, shield):
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def relay(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                own = front.answer_first(method, self.path)
                if own is None:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "origin")}
                    reply = shield.request(method, self.path, body=body, headers=headers, token=False)
                    names = ("Content-Type", "X-Shield-Report", "Access-Control-Allow-Origin",
                             "Access-Control-Expose-Headers")
                    own = reply.status, {n: reply.headers[n] for n in names if reply.headers.get(n)}, reply.body
                status, headers, answer = own
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_GET(self):
                self.relay("GET")

            def do_POST(self):
                self.relay("POST")

        super().__init__(Handler)

    def answer_first(self, method: str, path: str):
        return None


class UploadSite:
    """Serves tests/e2e_site on 127.0.0.1 and records every POST to /upload."""

    def __init__(self, certificate: tuple[str, str] | None = None):
        """certificate: (cert file, key file) to serve over https."""
        self.uploads: list[Upload] = []
        self._lock = threading.Lock()
        site = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(SITE_DIR), **kwargs)

            def log_message(self, *args):
                pass

            def end_headers(self):
                if "csp=strict" in self.path:  # a site with a strict Content-Security-Policy
                    self.send_header("Content-Security-Policy",
                                     "default-src 'self'; style-src 'self'; img-src 'self'; script-src 'self'")
                super().end_headers()

            def do_POST(self):
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if url.path == "/upload":
                    content_type = self.headers.get("Content-Type", "")
                    via = urllib.parse.parse_qs(url.query).get("via", [""])[0]
                    upload = Upload(via, content_type, body)
                    if content_type.startswith("multipart/form-data"):
                        upload.parts = parse_multipart(content_type, body)
                    with site._lock:
                        site.uploads.append(upload)
                answer = b"<!doctype html><p id=received>received</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        scheme = "http"
        if certificate:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificate)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.origin = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def clear(self):
        with self._lock:
            self.uploads.clear()

    def wait_for_uploads(self, count: int, timeout: float = 15.0) -> list[Upload]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.uploads) >= count:
                    return list(self.uploads)
            time.sleep(0.05)
        with self._lock:
            return list(self.uploads)

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


# ---- the real shield server -------------------------------------------------------------------

def start_shield(folder: Path):
    """A real `shield serve` process on a free port with its own config folder (the server suite's helper)."""
    from server_process import start_server  # tests/server_process.py

    return start_server(folder / "config")


# ---- Chromium with the extension --------------------------------------------------------------

class ExtensionBrowser:
    """A persistent headless Chromium profile with the unpacked extension loaded."""

    def __init__(self, playwright, extra_args=(), language=None, ignore_https_errors=False,
                 extension_dir: Path = EXTENSION_DIR):
        self._profile = tempfile.mkdtemp(prefix="photo-shield-profile-")
        self.context = playwright.chromium.launch_persistent_context(
            self._profile, executable_path=CHROMIUM, headless=True, ignore_https_errors=ignore_https_errors,
            # The extension's language follows Chromium's interface language: flag and environment both.
            env={**os.environ, "LANGUAGE": language} if language else None,
            args=[f"--disable-extensions-except={extension_dir}", f"--load-extension={extension_dir}",
                  *CHROMIUM_ARGS, *([f"--lang={language}"] if language else []), *extra_args])
        workers = self.context.service_workers
        self.worker = workers[0] if workers else self.context.wait_for_event("serviceworker", timeout=15000)
        assert EXTENSION_ID in self.worker.url, self.worker.url

    def extension_url(self, path: str) -> str:
        return f"chrome-extension://{EXTENSION_ID}/{path}"

    def reset(self, **settings):
        """Fresh extension state: these settings, no PIN, zero counts."""
        self.worker.evaluate(
            """async (settings) => {
                await chrome.storage.local.clear();
                await chrome.storage.session.clear();
                await chrome.storage.local.set({ settings });
            }""", settings)

    def storage(self) -> dict:
        return self.worker.evaluate("() => chrome.storage.local.get(null)")

    def close(self):
        self.context.close()
        shutil.rmtree(self._profile, ignore_errors=True)


@contextlib.contextmanager
def extension_browser(**options):
    """An ExtensionBrowser (options as its own) with its Playwright driver, both closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = ExtensionBrowser(driver, **options)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def browsers_by_mode(settings_for, extra_args=(), prepare=None):
    """One browser per mode, started on first use: yields `get(mode)`, which answers that browser's context.
    Mode "control" is a plain Chromium without the extension; any other mode an ExtensionBrowser reset to
    `settings_for(mode)`, then handed to `prepare(browser, mode)` if given. extra_args: for every browser."""
    from playwright.sync_api import sync_playwright

    started = {}
    with sync_playwright() as driver:
        def get(mode):
            if mode not in started:
                if mode == "control":
                    plain = driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=[*CHROMIUM_ARGS, *extra_args])
                    started[mode] = (plain, plain.new_context())
                else:
                    browser = ExtensionBrowser(driver, extra_args=extra_args)
                    browser.reset(**settings_for(mode))
                    if prepare:
                        prepare(browser, mode)
                    started[mode] = (browser, browser.context)
            return started[mode][1]

        try:
            yield get
        finally:
            for browser, _ in started.values():
                browser.close()


# ---- real user actions ------------------------------------------------------------------------

def drop_file(page, selector, path, point=None):
    """A real drag and drop of a file from outside the browser, through the DevTools protocol."""
    if point is None:
        box = page.locator(selector).bounding_box()
        point = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    x, y = point
    cdp = page.context.new_cdp_session(page)
    data = {"items": [], "files": [path], "dragOperationsMask": 1}
    for kind in ("dragEnter", "dragOver", "drop"):
        cdp.send("Input.dispatchDragEvent", {"type": kind, "x": x, "y": y, "data": data})
    cdp.detach()


def put_on_clipboard(page, png: bytes):
    """The clipboard holds this PNG, as after copying an image."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=page.evaluate("location.origin"))
    page.evaluate(
        """async (b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            await navigator.clipboard.write([new ClipboardItem({ 'image/png': new Blob([bytes], { type: 'image/png' }) })]);
        }""", base64.b64encode(png).decode())


def paste_image(page, selector, png: bytes):
    """A real Ctrl+V of an image the clipboard holds."""
    page.locator(selector).click()
    put_on_clipboard(page, png)
    page.keyboard.press("Control+V")


def self_signed_certificate(folder: Path) -> tuple[str, str]:
    """A throwaway certificate for 127.0.0.1, made with the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


def chromium_available() -> bool:
    return os.path.exists(CHROMIUM)


def drag_region(page, shown: dict, width: int, box, pad: float = 2):
    """A real mouse drag over `box` (pixels of a photo `width` wide), `pad` pixels beyond it on each side,
    on the editor's photo shown at `shown` (a bounding box): how a person adds a region in review."""
    scale = shown["width"] / width
    x0, y0, x1, y1 = box
    page.mouse.move(shown["x"] + (x0 - pad) * scale, shown["y"] + (y0 - pad) * scale)
    page.mouse.down()
    page.mouse.move(shown["x"] + (x0 + x1) / 2 * scale, shown["y"] + (y0 + y1) / 2 * scale, steps=4)
    page.mouse.move(shown["x"] + (x1 + pad) * scale, shown["y"] + (y1 + pad) * scale, steps=4)
    page.mouse.up()
