"""End-to-end tests of the browser extension: real headless Chromium, the real unpacked extension, a real
`shield serve` process, and a loopback test site that records exactly what it receives.
"""

import base64
import hashlib
import hmac
import http.server
import json
import io
import os
import shutil
import re
import socket
import threading
import urllib.parse

import numpy as np
import pytest
import skimage
from PIL import Image

from browser import (EXTENSION_ID, ExtensionBrowser, LoopbackServer, RelayServer, UploadSite, chromium_available,
                     drop_file, paste_image, self_signed_certificate, start_shield)

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium")

ASTRONAUT = os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")
# Eyes to mouth of the astronaut's face (x0, y0, x1, y1), checked by eye on the 512x512 image
# (the whole face spans about x 175-275, y 75-175): every pixel here must be replaced.
FACE_CORE = (195, 95, 255, 155)
FILL = (255, 0, 255)  # magenta: nothing in the photo has it
SECRET = b"Photo-Shield-Secret-Camera"


# ---- images -----------------------------------------------------------------------------------

def astronaut_png() -> bytes:
    with open(ASTRONAUT, "rb") as handle:
        return handle.read()


def astronaut_jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = SECRET.decode()  # Make
    exif[0x010E] = "taken at home"  # ImageDescription
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})
    out = io.BytesIO()
    Image.open(ASTRONAUT).convert("RGB").save(out, "JPEG", quality=92, exif=exif)
    data = out.getvalue()
    assert b"Exif" in data and SECRET in data
    return data


def astronaut_heic() -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.open(ASTRONAUT).convert("RGB").save(out, "HEIF", quality=90)
    return out.getvalue()


def assert_protected(data: bytes, expected_type: str = "PNG"):
    """The face is gone (filled), the size is kept, and no metadata at all is left."""
    image = Image.open(io.BytesIO(data))
    assert image.format == expected_type
    assert image.size == (512, 512)
    x0, y0, x1, y1 = FACE_CORE
    core = np.asarray(image.convert("RGB"), dtype=np.int16)[y0:y1, x0:x1]
    filled = (np.abs(core - np.array(FILL)) < 40).all(axis=2).mean()
    assert filled > 0.97, f"only {filled:.0%} of the face core was replaced"
    assert b"Exif" not in data and SECRET not in data
    assert not image.getexif()
    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf"):
        assert chunk not in data


# ---- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def shield(shield_server):
    """The session's real `shield serve` process (tests/conftest.py)."""
    return shield_server


@pytest.fixture(scope="session")
def site():
    server = UploadSite()
    yield server
    server.stop()


# Module scope: Playwright's sync API allows one driver per thread at a time, so ours ends with this module.
@pytest.fixture(scope="module")
def playwright_driver():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browsers(playwright_driver, site):
    """One browser per kind, started on first use: the site as loopback, as a public site, or a French UI."""
    started = {}

    def get(space: str) -> ExtensionBrowser:
        if space not in started:
            if space == "french":
                started[space] = ExtensionBrowser(playwright_driver, language="fr")
            else:
                extra = [] if space == "loopback" else [f"--ip-address-space-overrides=127.0.0.1:{site.port}=public"]
                # The https test site has a throwaway certificate.
                started[space] = ExtensionBrowser(playwright_driver, extra, ignore_https_errors=True)
        return started[space]

    yield get
    for browser in started.values():
        browser.close()


@pytest.fixture(scope="module")
def https_site(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("needs openssl to make a test certificate")
    server = UploadSite(self_signed_certificate(tmp_path_factory.mktemp("tls")))
    yield server
    server.stop()


@pytest.fixture
def browser(browsers):
    return browsers("loopback")


def paired(shield, **extra):
    return {"port": shield.port, "token": shield.token, "color": "ff00ff", "fill": "solid", **extra}


def open_site(browser, site, settings):
    browser.reset(**settings)
    site.clear()
    page = browser.context.new_page()
    page.goto(site.origin + "/")
    return page


@pytest.fixture
def page(browser, site, shield):
    page = open_site(browser, site, paired(shield))
    yield page
    page.close()


@pytest.fixture(params=["loopback", "public"])
def any_space_page(request, browsers, site, shield):
    page = open_site(browsers(request.param), site, paired(shield))
    yield page
    page.close()


def only_upload(site, settle: float = 0.4):
    uploads = site.wait_for_uploads(1)
    assert uploads, "nothing reached the site"
    # Let any duplicate arrive before counting.
    threading.Event().wait(settle)
    uploads = site.uploads
    assert len(uploads) == 1, [u.via for u in uploads]
    return uploads[0]


def assert_nothing_uploaded(site, wait: float = 1.5):
    threading.Event().wait(wait)
    assert site.uploads == []


def notice(page):
    return page.locator("#photo-shield-notice .panel").last


def write_file(tmp_path, name, data) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def page_upload(page, kind, data, mime, name):
    # Not awaited: a blocked upload stays pending until the person answers the notice.
    page.evaluate("([kind, b64, mime, name]) => { window.pageUpload(kind, b64, mime, name); }",
                  [kind, base64.b64encode(data).decode(), mime, name])


# ---- every upload path delivers exactly one protected photo --------------------------------------

def test_file_input_uploads_protected_photo(any_space_page, site):
    any_space_page.set_input_files("#js-input", ASTRONAUT)
    upload = only_upload(site)
    assert upload.via == "input"
    (photo,) = upload.files()
    assert photo.filename == "astronaut.png" and photo.content_type == "image/png"
    assert_protected(photo.data)


def test_file_read_by_the_page_is_already_protected(page, site):
    # Page code that reads the picked file itself (FileReader -> data: URL in JSON) only ever sees the
    # protected photo.
    page.set_input_files("#json-input", ASTRONAUT)
    upload = only_upload(site)
    message = json.loads(upload.body)
    assert message["name"] == "astronaut.png"
    assert message["image"].startswith("data:image/png;base64,")
    assert_protected(base64.b64decode(message["image"].split(",", 1)[1]))


def test_form_submit_sends_protected_photo(page, site):
    page.set_input_files("#form-input", ASTRONAUT)
    page.wait_for_function("document.getElementById('form-input').files.length === 1 && "
                           "document.getElementById('form-input').files[0].lastModified > Date.now() - 60000")
    page.click("#form-submit")
    upload = only_upload(site)
    assert upload.via == "form"
    (photo,) = upload.files()
    assert_protected(photo.data)
    assert {p.name: p.data for p in upload.parts}["caption"] == b"hello"


@pytest.mark.parametrize("how", ["requestSubmit", "submit"])
def test_form_filled_by_script_never_sends_the_original(page, site, how):
    page.evaluate("([b64, how]) => window.scriptFillForm(b64, 'scripted.png', 'image/png', how)",
                  [base64.b64encode(astronaut_png()).decode(), how])
    upload = only_upload(site)
    assert upload.via == "form"
    photos = [part.data for part in upload.files() if part.data]
    if how == "requestSubmit":  # the submit event waits for the protected photo
        (photo,) = photos
        assert_protected(photo)
    else:  # form.submit() cannot wait: the photo is taken out and the person told why
        assert photos == []
        notice(page).wait_for(timeout=5000)
        assert notice(page).get_attribute("data-reason") == "not_protected_yet"


def test_drop_on_file_input_then_submit(page, site):
    drop_file(page, "#form-input", ASTRONAUT)
    page.wait_for_function("document.getElementById('form-input').files.length === 1 && "
                           "document.getElementById('form-input').files[0].lastModified > Date.now() - 60000")
    page.click("#form-submit")
    (photo,) = only_upload(site).files()
    assert_protected(photo.data)


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_shadow_dom_uploads_are_protected(page, site, mode):
    page.evaluate_handle(f"shadowParts.{mode}.input").as_element().set_input_files(ASTRONAUT)
    upload = only_upload(site)
    assert upload.via == f"{mode}-input"
    assert_protected(upload.files()[0].data)
    site.clear()
    point = page.evaluate(f"(() => {{ shadowParts.{mode}.drop.scrollIntoView();"
                          f" const r = shadowParts.{mode}.drop.getBoundingClientRect();"
                          " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
    drop_file(page, None, ASTRONAUT, point)
    upload = only_upload(site)
    assert upload.via == f"{mode}-drop"
    assert_protected(upload.files()[0].data)


def test_drop_uploads_protected_photo(any_space_page, site, tmp_path):
    drop_file(any_space_page, "#dropzone", write_file(tmp_path, "dropped.png", astronaut_png()))
    upload = only_upload(site)
    assert upload.via == "drop"
    (photo,) = upload.files()
    assert photo.filename == "dropped.png"
    assert_protected(photo.data)


def test_paste_uploads_protected_photo(any_space_page, site):
    paste_image(any_space_page, "#pastezone", astronaut_png())
    upload = only_upload(site)
    assert upload.via == "paste"
    (photo,) = upload.files()
    assert_protected(photo.data)


@pytest.mark.parametrize("kind", ["fetch-formdata", "fetch-blob", "fetch-arraybuffer", "fetch-request",
                                  "xhr-formdata", "xhr-blob"])
def test_uploads_the_page_builds_are_protected(page, site, kind):
    page_upload(page, kind, astronaut_png(), "image/png", "made-by-page.png")
    upload = only_upload(site)
    assert upload.via == kind
    data = upload.files()[0].data if upload.parts else upload.body
    assert_protected(data)


@pytest.mark.parametrize("kind", ["fetch-blob", "fetch-formdata", "xhr-formdata", "loading-frame-fetch"])
def test_uploads_through_a_blank_frame_are_protected(page, site, kind):
    # The page builds the body in its own realm and sends it with a fresh same-origin frame's fetch/XHR
    # (for loading-frame-fetch: a srcdoc frame's window before its document, and our hooks, are there).
    page.evaluate("""([kind, b64]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const frame = document.createElement('iframe');
        if (kind === 'loading-frame-fetch') frame.srcdoc = '<p>loading</p>';
        document.body.append(frame);
        const other = frame.contentWindow;
        const blob = new Blob([bytes], { type: 'image/png' });
        const form = new FormData();
        form.append('photo', blob, 'blank.png');
        const url = '/upload?via=' + kind;
        if (kind === 'fetch-blob' || kind === 'loading-frame-fetch') other.fetch(url, { method: 'POST', body: blob });
        if (kind === 'fetch-formdata') other.fetch(url, { method: 'POST', body: form });
        if (kind === 'xhr-formdata') {
            const request = new other.XMLHttpRequest();
            request.open('POST', url);
            request.send(form);
        }
    }""", [kind, base64.b64encode(astronaut_png()).decode()])
    upload = only_upload(site)
    assert upload.via == kind
    assert_protected(upload.files()[0].data if upload.parts else upload.body)


def test_beacon_sends_protected_photo(page, site):
    # A beacon carries at most 64 KiB: a face crop, small enough to fit once protected.
    out = io.BytesIO()
    Image.open(ASTRONAUT).convert("RGB").crop((140, 40, 340, 240)).save(out, "JPEG", quality=80)
    page_upload(page, "beacon", out.getvalue(), "image/jpeg", "small.jpg")
    upload = only_upload(site)
    image = Image.open(io.BytesIO(upload.body))
    assert upload.content_type == "image/jpeg" and image.size == (200, 200)
    x0, y0, x1, y1 = FACE_CORE
    core = np.asarray(image.convert("RGB"), dtype=np.int16)[y0 - 40:y1 - 40, x0 - 140:x1 - 140]
    assert (np.abs(core - np.array(FILL)) < 40).all(axis=2).mean() > 0.97


@pytest.mark.parametrize("kind", ["fetch-formdata", "xhr-blob"])
def test_page_built_upload_from_public_site_is_protected(browsers, site, shield, kind):
    page = open_site(browsers("public"), site, paired(shield))
    page_upload(page, kind, astronaut_png(), "image/png", "made-by-page.png")
    upload = only_upload(site)
    assert_protected(upload.files()[0].data if upload.parts else upload.body)
    page.close()


def test_https_site(browser, https_site, shield):
    page = open_site(browser, https_site, paired(shield))
    assert page.url.startswith("https://")
    page.set_input_files("#js-input", ASTRONAUT)
    assert_protected(only_upload(https_site).files()[0].data)
    https_site.clear()
    page_upload(page, "xhr-formdata", astronaut_png(), "image/png", "made-by-page.png")
    assert_protected(only_upload(https_site).files()[0].data)
    page.close()


def test_exif_and_gps_never_leave(page, site, tmp_path):
    page.set_input_files("#js-input", write_file(tmp_path, "holiday.jpg", astronaut_jpeg_with_gps()))
    (photo,) = only_upload(site).files()
    assert photo.filename == "holiday.jpg" and photo.content_type == "image/jpeg"
    assert_protected(photo.data, "JPEG")


def test_heic_arrives_as_jpeg_with_matching_name(page, site, tmp_path):
    page.set_input_files("#js-input", write_file(tmp_path, "photo.heic", astronaut_heic()))
    (photo,) = only_upload(site).files()
    assert photo.filename == "photo.jpg" and photo.content_type == "image/jpeg"
    assert_protected(photo.data, "JPEG")


def test_several_files_at_once(page, site, tmp_path):
    notes = b"notes\n"
    page.set_input_files("#js-input", [ASTRONAUT, write_file(tmp_path, "gps.jpg", astronaut_jpeg_with_gps()),
                                       write_file(tmp_path, "notes.txt", notes)])
    files = only_upload(site).files()
    assert [f.filename for f in files] == ["astronaut.png", "gps.jpg", "notes.txt"]
    assert_protected(files[0].data)
    assert_protected(files[1].data, "JPEG")
    assert files[2].data == notes


def test_upload_from_cross_origin_frame(page, site):
    # localhost and 127.0.0.1 are different origins: the frame is a third-party uploader.
    page.evaluate("(src) => { const f = document.createElement('iframe'); f.id = 'third'; f.src = src;"
                  " document.body.prepend(f); }", f"http://localhost:{site.port}/frame.html")
    frame = page.frame_locator("#third")
    frame.locator("#status").wait_for()
    frame.locator("#js-input").set_input_files(ASTRONAUT)
    upload = only_upload(site)
    assert upload.via == "input"
    assert_protected(upload.files()[0].data)


def test_non_image_files_arrive_unchanged(page, site, tmp_path):
    text = b"just some notes\n" * 100
    pdf = b"%PDF-1.4\n% not an image\n" + bytes(range(256)) * 4
    page.set_input_files("#js-input", [write_file(tmp_path, "notes.txt", text), write_file(tmp_path, "doc.pdf", pdf)])
    files = only_upload(site).files()
    assert [(f.filename, f.data) for f in files] == [("notes.txt", text), ("doc.pdf", pdf)]
    site.clear()
    page_upload(page, "fetch-blob", pdf, "application/pdf", "doc.pdf")
    assert only_upload(site).body == pdf
    assert notice(page).count() == 0


# ---- failing closed -----------------------------------------------------------------------------

def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def expect_blocked(page, site, reason):
    panel = notice(page)
    panel.wait_for(timeout=10000)
    assert panel.get_attribute("data-reason") == reason
    # The notice comes after the decision: anything that was going to leak would be on its way by now.
    assert_nothing_uploaded(site, 0.5)
    return panel.inner_text()


def test_server_stopped_blocks_upload(browser, site, tmp_path):
    stopped = start_shield(tmp_path)
    settings = {"port": stopped.port, "token": stopped.token}
    stopped.stop()
    page = open_site(browser, site, settings)
    page.set_input_files("#js-input", ASTRONAUT)
    text = expect_blocked(page, site, "server_unreachable")
    # Words for a parent or a child: what is wrong and how to start it, no command-line syntax.
    assert "Photo Shield is not running on this computer" in text and "serve.sh" in text and "`" not in text
    assert page.evaluate("document.getElementById('js-input').files.length") == 0
    page.close()


def test_wrong_token_blocks_upload(browser, site, shield):
    page = open_site(browser, site, {"port": shield.port, "token": "not-the-token"})
    page.set_input_files("#js-input", ASTRONAUT)
    # The server's proof of its own token does not match ours: to the extension, it might be anyone.
    text = expect_blocked(page, site, "not_photo_shield")
    assert "options" in text
    page.close()


def test_unpaired_blocks_upload(browser, site, shield):
    page = open_site(browser, site, {"port": shield.port})
    drop_file(page, "#dropzone", ASTRONAUT)
    expect_blocked(page, site, "not_paired")
    page.close()


def test_server_error_blocks_upload(page, site, tmp_path):
    broken = b"\xff\xd8\xff\xe0" + b"\x00garbage" * 500
    page.set_input_files("#js-input", write_file(tmp_path, "broken.jpg", broken))
    expect_blocked(page, site, "undecodable")


def test_slow_server_blocks_upload(browser, site):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        page = open_site(browser, site, {"port": silent.getsockname()[1], "token": "x", "timeoutSeconds": 1})
        page_upload(page, "xhr-formdata", astronaut_png(), "image/png", "slow.png")
        expect_blocked(page, site, "timeout")
        notice(page).locator("button[data-choice=dismiss]").click()
        page.wait_for_function("document.getElementById('status').textContent === 'error:xhr-formdata'")
        page.close()
    finally:
        silent.close()


class FakeShield(LoopbackServer):
    """A loopback stand-in that answers like a broken server would (the real one is used everywhere else).
    It proves knowledge of `token` on /v1/identify; an impostor does not know the token."""

    def __init__(self, report: dict | None, token: str = "t", impostor: bool = False):
        self.requests = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.requests.append((self.path, dict(self.headers)))
                url = urllib.parse.urlsplit(self.path)
                challenge = urllib.parse.parse_qs(url.query).get("challenge", [""])[0]
                key = (b"a guess" if impostor else token.encode())
                proof = hmac.new(key, b"photo-shield-proof:" + challenge.encode(), hashlib.sha256).hexdigest()
                body = json.dumps({"proof": proof}).encode()
                self.send_response(200 if url.path == "/v1/identify" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) + b"changed"
                fake.requests.append((self.path, dict(self.headers)))
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                if report is not None:
                    self.send_header("X-Shield-Report", json.dumps(report))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)


def test_answer_without_report_blocks_upload(browser, site):
    fake = FakeShield(report=None)
    try:
        page = open_site(browser, site, {"port": fake.port, "token": "t"})
        page.set_input_files("#js-input", ASTRONAUT)
        expect_blocked(page, site, "unexpected_answer")
        page.close()
    finally:
        fake.stop()


def test_settings_reach_the_server(browser, site):
    fake = FakeShield(report={"faces": 0, "boxes": [], "width": 512, "height": 512}, token="t0k")
    try:
        page = open_site(browser, site, {"port": fake.port, "token": "t0k", "fill": "noise", "color": "123abc",
                                         "margin": 0.5, "mode": "people"})
        page.set_input_files("#js-input", ASTRONAUT)
        only_upload(site)
        (identify, headers), (path, headers) = fake.requests
        assert identify.startswith("/v1/identify?challenge=")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        assert urllib.parse.urlsplit(path).path == "/v1/protect"
        assert {k: v[0] for k, v in query.items()} == {
            "fill": "noise", "color": "123abc", "margin": "0.5", "format": "same", "mode": "people"}
        assert headers["X-Shield-Token"] == "t0k"
        assert headers["Origin"] == f"chrome-extension://{EXTENSION_ID}"
        page.close()
    finally:
        fake.stop()


def test_program_squatting_on_the_port_gets_neither_token_nor_photo(browser, site):
    """Photo Shield stopped, another program on its port answering photos with the original: the extension
    asks it to prove the pairing token first, and it cannot."""
    impostor = FakeShield(report={"faces": 1, "boxes": [[175, 70, 275, 178]], "width": 512, "height": 512},
                          token="t", impostor=True)
    try:
        page = open_site(browser, site, {"port": impostor.port, "token": "t"})
        page.set_input_files("#js-input", ASTRONAUT)
        text = expect_blocked(page, site, "not_photo_shield")
        assert "options" in text
        # Whatever asked it (the upload, and the status check when the port changed, whichever ran first in
        # this browser): only identity challenges, never the token, never a photo.
        assert impostor.requests
        for path, headers in impostor.requests:
            assert path.startswith("/v1/identify?") and "X-Shield-Token" not in headers, (path, headers)
        page.close()
    finally:
        impostor.stop()


def test_page_fetch_rejects_when_blocked(browser, site):
    page = open_site(browser, site, {"port": closed_port(), "token": "x"})
    page_upload(page, "fetch-blob", astronaut_png(), "image/png", "a.png")
    expect_blocked(page, site, "server_unreachable")
    notice(page).locator("button[data-choice=dismiss]").click()
    page.wait_for_function("document.getElementById('status').textContent.startsWith('error:fetch-blob')")
    assert_nothing_uploaded(site, 0.3)
    page.close()


def test_strict_csp_site(browser, site, shield):
    page = browser.context.new_page()
    browser.reset(**paired(shield, review=True))
    site.clear()
    page.goto(site.origin + "/?csp=strict")
    page.set_input_files("#js-input", ASTRONAUT)
    dialog = page.locator("#photo-shield-notice [data-kind=review][data-state=ready]")
    dialog.wait_for(timeout=10000)
    assert dialog.evaluate("(panel) => getComputedStyle(panel).position") == "fixed"
    # The shared editor and the server's preview load despite the CSP.
    page.wait_for_function("() => document.getElementById('photo-shield-notice').shadowRoot"
                           ".querySelector('.shield-editor img')?.naturalWidth === 512", timeout=5000)
    dialog.locator("button[data-choice=upload]").click()
    assert_protected(only_upload(site).files()[0].data)
    page.close()


def test_unlocked_profile_may_upload_original_once(browser, site):
    page = open_site(browser, site, {"port": closed_port(), "token": "x"})
    page.set_input_files("#js-input", ASTRONAUT)
    expect_blocked(page, site, "server_unreachable")
    notice(page).locator("button[data-choice=original]").click()
    (photo,) = only_upload(site).files()
    assert photo.data == astronaut_png()
    page.close()


def test_faces_can_block_the_photo(browser, site, shield):
    page = open_site(browser, site, paired(shield, faceAction="block"))
    page.set_input_files("#js-input", ASTRONAUT)
    expect_blocked(page, site, "faces_found")
    page.close()


# ---- settings -----------------------------------------------------------------------------------

def test_review_shows_protected_photo_before_upload(browser, site, shield):
    page = open_site(browser, site, paired(shield, review=True))
    page.set_input_files("#js-input", ASTRONAUT)
    dialog = page.locator("#photo-shield-notice [data-kind=review][data-state=ready]")
    dialog.wait_for(timeout=10000)
    assert re.search(r"astronaut\.png: [1-9]\d* face", dialog.inner_text())
    dialog.locator("button[data-choice=cancel]").click()
    assert_nothing_uploaded(site, 0.5)
    page.set_input_files("#js-input", ASTRONAUT)
    dialog.locator("button[data-choice=upload]").click()
    assert_protected(only_upload(site).files()[0].data)
    page.close()


@pytest.mark.parametrize("settings", [{"enabled": False}, {"siteMode": "except", "siteList": ["127.0.0.1"]},
                                      {"siteMode": "only", "siteList": ["example.com"]}],
                         ids=["protection-off", "site-excepted", "site-not-listed"])
def test_sites_left_out_get_the_file_untouched(browser, site, shield, settings):
    page = open_site(browser, site, paired(shield, **settings))
    page.set_input_files("#js-input", ASTRONAUT)
    assert only_upload(site).files()[0].data == astronaut_png()
    page.close()


def test_only_listed_sites_are_protected(browser, site, shield):
    page = open_site(browser, site, paired(shield, siteMode="only", siteList=["127.0.0.1"]))
    page.set_input_files("#js-input", ASTRONAUT)
    assert_protected(only_upload(site).files()[0].data)
    page.close()


def options_page(browser):
    page = browser.context.new_page()
    page.goto(browser.extension_url("options/options.html"))
    page.wait_for_selector("#lock-state:not(:empty)")
    return page


def test_pairing_and_test_connection(browser, shield):
    browser.reset()
    options = options_page(browser)
    options.click("#by-hand summary")  # pairing by hand: folded away under the one-click Connect
    options.fill("#port", str(shield.port))
    options.fill("#token", "wrong")
    options.click("#test-connection")
    options.wait_for_selector("#connection-result.error")
    options.fill("#token", shield.token)
    options.click("#test-connection")
    options.wait_for_selector("#connection-result.ok:has-text('0.')")
    options.click("#save-pairing")
    options.wait_for_selector("#save-result.ok")
    assert browser.storage()["settings"]["token"] == shield.token
    options.close()


def test_options_page_changes_settings(browser):
    browser.reset()
    options = options_page(browser)
    changes = [("#siteMode", "select", "except"), ("#faceAction", "select", "block"), ("#mode", "select", "people"),
               ("#fill", "select", "sticker"), ("#sticker", "select", "heart"), ("#margin", "fill", "0.5"),
               ("#timeoutSeconds", "fill", "7"),
               ("#siteList", "fill", "Example.com\nhttps://www.Photos.example.org/upload")]
    for selector, how, value in changes:
        if how == "select":
            options.select_option(selector, value)
        else:
            options.fill(selector, value)
            options.locator(selector).blur()
        options.wait_for_selector("#save-result.ok")
        options.evaluate("document.getElementById('save-result').className = ''")
    assert options.is_checked("#reviewUntick") and options.is_checked("#reviewAddRegions")  # unlocked defaults
    for box, check in [("#review", True), ("#reviewUntick", False)]:
        options.set_checked(box, check)
        options.wait_for_selector("#save-result.ok")
        options.evaluate("document.getElementById('save-result').className = ''")
    assert browser.storage()["settings"] == {
        "siteMode": "except", "faceAction": "block", "mode": "people", "fill": "sticker", "sticker": "heart",
        "margin": 0.5, "timeoutSeconds": 7, "siteList": ["example.com", "www.photos.example.org"], "review": True,
        "reviewUntick": False}
    options.fill("#margin", "9")
    options.locator("#margin").blur()
    options.wait_for_selector("#save-result.error")
    assert browser.storage()["settings"]["margin"] == 0.5
    options.close()


def test_locked_settings_need_the_pin(browser, site, shield):
    browser.reset(**paired(shield))
    options = options_page(browser)
    options.fill("#new-pin", "2468")
    options.click("#set-pin")
    options.wait_for_selector("body[data-locked=true]")
    record = browser.storage()["pin"]
    assert set(record) == {"salt", "hash", "iterations"} and "2468" not in str(record)

    options.click("#enabled")  # no PIN given: refused, the box snaps back
    options.wait_for_selector("#save-result.error")
    options.fill("#current-pin", "1111")
    options.select_option("#faceAction", "block")
    options.wait_for_selector("#save-result.error:has-text('Wrong PIN')")
    options.click("#remove-pin")
    assert browser.storage()["settings"].get("enabled", True) is True
    assert "faceAction" not in browser.storage()["settings"]
    assert "pin" in browser.storage()
    assert options.is_checked("#enabled")

    popup = browser.context.new_page()
    popup.goto(browser.extension_url("popup/popup.html"))
    popup.wait_for_selector("#pin-row:not([hidden])")
    popup.click("#enabled")
    popup.wait_for_selector("#result.error")
    assert browser.storage()["settings"].get("enabled", True) is True

    # A locked profile hides whole people by default and never offers the original.
    page = browser.context.new_page()
    page.goto(site.origin + "/")
    site.clear()
    assert browser.worker.evaluate("async () => (await PhotoShieldSettings.load()).settings.mode") == "people"
    browser.worker.evaluate("async (port) => { const s = (await chrome.storage.local.get('settings')).settings;"
                            " await chrome.storage.local.set({ settings: { ...s, port } }); }", closed_port())
    page.set_input_files("#js-input", ASTRONAUT)
    expect_blocked(page, site, "server_unreachable")
    assert notice(page).locator("button[data-choice=original]").count() == 0

    popup.fill("#pin", "2468")
    popup.uncheck("#enabled")
    popup.wait_for_selector("#result.ok")
    assert browser.storage()["settings"]["enabled"] is False
    for tab in (options, popup, page):
        tab.close()


def test_locked_profile_hides_whole_people(browser, site, shield):
    browser.reset(**paired(shield))
    options = options_page(browser)
    assert options.evaluate("chrome.runtime.sendMessage({ type: 'setPin', newPin: '2468' })")["ok"]
    options.close()
    page = browser.context.new_page()
    page.goto(site.origin + "/")
    site.clear()
    page.set_input_files("#js-input", ASTRONAUT)
    photo = only_upload(site).files()[0].data
    assert_protected(photo)
    torso = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"), dtype=np.int16)[300:450, 150:350]
    assert (np.abs(torso - np.array(FILL)) < 40).all(axis=2).mean() > 0.9
    page.close()


def test_policy_wins_and_locks(browser):
    options = options_page(browser)
    resolved = options.evaluate("""() => PhotoShieldSettings.resolve(
        { enabled: false, fill: 'noise', port: 1234 },
        { enabled: true, port: 5555, siteList: ['Example.COM/path'], lockedProfile: true, bogus: 1 },
        null)""")
    assert resolved["settings"]["enabled"] is True
    assert resolved["settings"]["port"] == 5555
    assert resolved["settings"]["fill"] == "noise"
    assert resolved["settings"]["mode"] == "people"
    assert resolved["settings"]["reviewUntick"] is False and resolved["settings"]["reviewAddRegions"] is True
    assert resolved["settings"]["siteList"] == ["example.com"]
    assert resolved["locked"] and resolved["policyLocked"]
    assert sorted(resolved["managedKeys"]) == ["enabled", "port", "siteList"]
    options.close()


def test_popup_counts_protected_photos(page, site, browser):
    page.set_input_files("#js-input", ASTRONAUT)
    only_upload(site)
    popup = browser.context.new_page()
    popup.goto(browser.extension_url("popup/popup.html"))
    popup.wait_for_selector("#connection.ok")
    assert re.fullmatch(r"1 photo protected, (1 face|[2-9]\d* faces) replaced", popup.inner_text("#stats"))
    popup.close()


def test_french_interface(browsers, site):
    browser = browsers("french")
    page = open_site(browser, site, {"port": closed_port(), "token": "x"})
    page.set_input_files("#js-input", ASTRONAUT)
    assert "Rien n'a été envoyé" in expect_blocked(page, site, "server_unreachable")
    options = options_page(browser)
    assert options.inner_text("h1") == "Options de Photo Shield"
    for tab in (page, options):
        tab.close()


class BusyOnceServer(RelayServer):
    """In front of the real server: answers the first `busy_times` photos 429 with Retry-After, and hands every
    later request to the real server unchanged."""

    def __init__(self, shield, busy_times: int = 1, retry_after_s: int = 1):
        self.busy_answers, self.busy_times, self.retry_after_s = 0, busy_times, retry_after_s
        super().__init__(shield)

    def answer_first(self, method, path):
        if method == "POST" and path.startswith("/v1/protect") and self.busy_answers < self.busy_times:
            self.busy_answers += 1
            return 429, {"Retry-After": str(self.retry_after_s), "Content-Type": "application/json"}, \
                b'{"error": "busy", "message": "Too many photos at once."}'
        return None


def test_a_busy_server_is_asked_again_before_the_deadline(browser, site, shield):
    front = BusyOnceServer(shield)
    try:
        page = open_site(browser, site, {**paired(shield), "port": front.port})
        page.set_input_files("#js-input", ASTRONAUT)
        upload = only_upload(site)
        assert front.busy_answers == 1  # the first answer really was "busy"
        assert_protected(upload.files()[0].data)
        page.close()
    finally:
        front.stop()


@pytest.mark.parametrize("retry_after_s, asked", [(30, 1), (1, None)])
def test_a_busy_server_past_the_deadline_blocks_as_busy_not_timeout(browser, site, shield, retry_after_s, asked):
    """A server still busy when the upload's deadline would pass: the upload is blocked as `busy` (what the
    server said), never left waiting until it ends as `timeout`. A Retry-After beyond the deadline is not
    waited for at all (one request); a short one is followed while it ends before the deadline."""
    front = BusyOnceServer(shield, busy_times=1000, retry_after_s=retry_after_s)
    try:
        page = open_site(browser, site, {**paired(shield), "port": front.port, "timeoutSeconds": 4})
        page.set_input_files("#js-input", ASTRONAUT)
        expect_blocked(page, site, "busy")
        if asked is not None:
            assert front.busy_answers == asked
        else:
            assert 1 < front.busy_answers <= 4  # retried, within the 4 s deadline
        page.close()
    finally:
        front.stop()
