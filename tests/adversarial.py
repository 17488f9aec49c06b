"""The adversarial test site: one page per way a real site obtains and uploads a user's file
(tests/adversarial_site/), a receiver on loopback that keeps every body it gets (HTTP, with chunked
transfer and multipart, and WebSocket), and a judge that looks only at what the site received.

How a driver (Chromium through Playwright here; Firefox through puppeteer-core the same way) runs a page:
open `/<page>.html` (for `document-open` and `blank-frame-write` wait for `window.advRewritten`), do
the page's action below (PAGES) with the test photo, then wait for the page's own completion signal: `window.advState` leaves 'ready'/'busy' for 'sent' or
'failed', or the extension's notice (`#photo-shield-notice .panel`) appears; a driver dismisses the
notice and waits until `advState` is no longer 'busy' ('ready' then means the page never got a file).
Only then does the judge look at what the receiver got.

Actions:
- input: the photo is set on the file input `#file` (a file chooser upload);
- input-submit: as input, then a click on `#send` (a plain form submit);
- chooser: a click on `#pick` opens a file chooser, which gets the photo;
- drop: the photo is dropped from outside the browser on `#zone`;
- paste: the photo is put on the clipboard, `#zone` clicked and Ctrl+V pressed;
- click-paste: the photo is put on the clipboard, then `#go` is clicked (the page calls clipboard.read());
- drop-folder: that folder is dropped from outside the browser on `#zone`;
- folder: a folder holding the photo and a text file is set on `#file` (webkitdirectory);
- click: a click on `#go`;
- frame-input-submit: input-submit inside the frame `#editor`.

`open-file-picker.html` (showOpenFilePicker() then getFile()) is in the site for people and drivers that
can answer that picker; headless Chromium driven through Playwright cannot, so the same getFile() is run
on the real handles of a dropped folder (`folder-drop-handles`).
"""

import base64
import binascii
import http.server
import io
import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

SITE_DIR = Path(__file__).resolve().parent / "adversarial_site"

PAGES = {
    "form-submit": "input-submit",
    "fetch-formdata": "input",
    "xhr-raw": "input",
    "canvas-resize": "input",
    "drag-drop": "drop",
    "paste": "paste",
    "paste-files": "paste",
    "paste-beforeinput": "paste",
    "detached-worker": "chooser",
    "websocket": "chooser",
    "base64-json": "chooser",
    "chunks-parallel": "input",
    "chunks-sequential": "chooser",
    "document-open": "input-submit",
    "blank-frame-write": "frame-input-submit",
    "clipboard-read": "click-paste",
    "folder-drop-handles": "drop-folder",
    "folder-drop-entries": "drop-folder",
    "drop-entries": "drop",
    "drop-handles": "drop",
    "webkitdirectory": "folder",
    "pieces-of-original": "click",
    "chunks-multipart": "input",
    "chunks-rewrapped": "input",
}
# The page holds an original it did not get through a guarded source: its pieces must never go out,
# so even a paired extension blocks them (with a notice) rather than protect them.
BLOCKED_EVEN_WHEN_PAIRED = {"pieces-of-original"}


# ---- the receiver -------------------------------------------------------------------------------

@dataclass
class Received:
    via: str  # the request path, or "websocket"
    headers: dict
    body: bytes


def read_chunked(stream) -> bytes:
    """A body sent with Transfer-Encoding: chunked."""
    body = bytearray()
    while True:
        size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline().strip():  # trailers
                pass
            return bytes(body)
        body += stream.read(size)
        stream.readline()


class Receiver:
    """Serves the adversarial site on 127.0.0.1 and keeps every body sent to it, by HTTP or WebSocket."""

    def __init__(self, photo: bytes):
        """photo: served at /photo.png, for the page that holds an original by itself."""
        from websockets.sync.server import serve

        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        def on_socket(connection):
            for message in connection:
                receiver._keep(Received("websocket", {}, message if isinstance(message, bytes) else message.encode()))
                if isinstance(message, bytes):
                    connection.send("ok")

        self._sockets = serve(on_socket, "127.0.0.1", 0)
        self.ws_port = self._sockets.socket.getsockname()[1]
        threading.Thread(target=self._sockets.serve_forever, daemon=True).start()

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(SITE_DIR), **kwargs)

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/photo.png":
                    return self._answer(photo, "image/png")
                if self.path == "/config.js":
                    return self._answer(f"window.WS_URL = 'ws://127.0.0.1:{receiver.ws_port}/';".encode(),
                                        "text/javascript")
                return super().do_GET()

            def do_POST(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = read_chunked(self.rfile)
                else:
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver._keep(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self._answer(b"<!doctype html><p id=received>received</p>", "text/html")

            do_PUT = do_POST

            def _answer(self, data, content_type):
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _keep(self, item: Received):
        with self._lock:
            self.received.append(item)

    def take(self) -> list[Received]:
        with self._lock:
            taken, self.received = self.received, []
        return taken

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._sockets.shutdown()


# ---- the judge ----------------------------------------------------------------------------------

@dataclass
class Verdict:
    outcome: str  # leaked, protected, blocked or broken
    why: str = ""
    images: list = field(default_factory=list)


def _multipart_parts(content_type: str, body: bytes) -> list[bytes]:
    import email.parser
    import email.policy

    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    return [item.get_payload(decode=True) or b"" for item in message.iter_parts()] if message.is_multipart() else []


def _decoded_texts(body: bytes) -> list[bytes]:
    """Bytes hidden in text: data: URLs and base64 strings, anywhere in a JSON or text body."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return []
    found = []
    if "%2B" in text or "%2F" in text:  # a form body: the base64 percent-encoded
        text += "\n" + urllib.parse.unquote(text)
    for match in re.finditer(r"(?:data:[^,\"]*,)?([A-Za-z0-9+/]{200,}={0,2})", text):
        try:
            found.append(base64.b64decode(match.group(1), validate=True))
        except (binascii.Error, ValueError):
            pass
    return found


def _pieces(received: list[Received]) -> list[bytes]:
    """Every payload the site got, with chunked uploads put back together."""
    payloads, chunks = [], {}
    for item in received:
        content_type = item.headers.get("content-type", "")
        if "x-upload-id" in item.headers:
            # A multipart chunk carries its piece in its last part.
            piece = _multipart_parts(content_type, item.body)[-1:] if content_type.startswith("multipart/") else []
            chunks.setdefault(item.headers["x-upload-id"], []).append(
                (int(item.headers["x-offset"]), piece[0] if piece else item.body))
        payloads.append(item.body)
        if content_type.startswith("multipart/"):
            payloads += _multipart_parts(content_type, item.body)
    for parts in chunks.values():
        payloads.append(b"".join(body for _, body in sorted(parts)))
    return payloads + [decoded for payload in list(payloads) for decoded in _decoded_texts(payload)]


class Judge:
    """Knows the original photo: its bytes, and its face (`face_box` in its pixel coordinates)."""

    def __init__(self, original: bytes, face_box: tuple[int, int, int, int], fill: tuple[int, int, int]):
        self.original = original
        self.face_box = face_box
        self.fill = np.array(fill)
        image = Image.open(io.BytesIO(original)).convert("RGB")
        self.size = image.size
        self.face = self._face(image)
        # Runs of the original's bytes from inside its pixel data (a protected copy shares only headers).
        step = len(original) // 20
        self.windows = [original[i:i + 48] for i in range(step * 2, len(original) - 64, step)]

    def _face(self, image: Image.Image) -> np.ndarray:
        x0, y0, x1, y1 = self.face_box
        return np.asarray(image.convert("RGB").resize(self.size), dtype=np.int16)[y0:y1, x0:x1]

    def _image_kind(self, data: bytes) -> str | None:
        """'original' (the face is there), 'protected' (the face is filled) or None (not this photo)."""
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except Exception:
            return None
        face = self._face(image)
        if (np.abs(face - self.fill) < 48).all(axis=2).mean() > 0.9:
            return "protected"
        if np.abs(face - self.face).mean() < 20:
            return "original"
        return None

    def judge(self, received: list[Received], notice_shown: bool) -> Verdict:
        payloads = _pieces(received)
        for payload in payloads:
            if any(window in payload for window in self.windows):
                return Verdict("leaked", "bytes of the original photo arrived")
        kinds = [kind for kind in map(self._image_kind, payloads) if kind]
        if "original" in kinds:
            return Verdict("leaked", "the original face arrived (re-encoded)")
        if "protected" in kinds:
            return Verdict("protected", images=kinds)
        if notice_shown:
            return Verdict("blocked")
        return Verdict("broken", f"site got {len(received)} bodies, none with the photo, and no notice")
