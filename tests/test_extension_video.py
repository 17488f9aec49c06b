"""Videos through the server's video jobs, in real headless Chromium with the real extension and a real
`shield serve`: the page hands over a real clip (tests/videos.py, a face moving across the frame, GPS and
creation time in the container) and the receiving site gets an MP4 whose every frame has the face replaced
and no metadata; cancelled, failed or unreachable means the site gets nothing."""

import hashlib
import hmac
import http.server
import json
import socket
import urllib.parse

import av
import pytest

from browser import LoopbackServer, chromium_available
from test_extension import assert_nothing_uploaded, notice, only_upload, paired, site  # noqa: F401
from test_extension_files import browser, mp4_bytes, open_page  # noqa: F401 (browser: fixture)
from test_video import assert_every_face_replaced
from videos import GPS, make_clip

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "party.mov"  # MP4 bytes under a .mov name: the site gets .mp4
    return path, make_clip(path)


def progress_panel(page):
    return page.locator("#photo-shield-notice .panel[data-kind=progress]")


def expect_refused(page, site, *reasons):
    """The notice saying why nothing was uploaded (not the progress panel that comes before it)."""
    panel = page.locator("#photo-shield-notice .panel[role=alert]")
    panel.wait_for(timeout=60000)
    assert panel.get_attribute("data-reason") in reasons
    assert_nothing_uploaded(site, 0.5)
    return panel.inner_text()


@pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])
def test_video_protected_through_a_real_page(browser, site, shield_server, clip, tmp_path, locked):
    source, truth = clip
    page = open_page(browser, site, paired(shield_server), locked=locked)
    page.set_input_files("#js-input", str(source))
    progress_panel(page).wait_for(timeout=10000)
    assert "%" in progress_panel(page).inner_text()
    uploads = site.wait_for_uploads(1, timeout=120)
    assert uploads, "nothing reached the site"
    (sent,) = only_upload(site).files()
    assert sent.filename == "party.mp4" and sent.content_type == "video/mp4"
    assert sent.data != source.read_bytes()
    received = tmp_path / "received.mp4"
    received.write_bytes(sent.data)
    assert_every_face_replaced(received, truth)
    with av.open(str(received)) as out:
        assert set(out.metadata) <= {"major_brand", "minor_version", "compatible_brands"}
    assert GPS.encode() not in sent.data and b"iPhone" not in sent.data
    assert progress_panel(page).count() == 0 and notice(page).count() == 0
    page.close()


def test_cancelled_video_is_not_uploaded(browser, site, shield_server, tmp_path):
    source = tmp_path / "long.mp4"
    make_clip(source, frames=240)
    page = open_page(browser, site, paired(shield_server))
    page.set_input_files("#js-input", str(source))
    progress_panel(page).locator("button[data-choice=cancel]").click(timeout=10000)
    text = expect_refused(page, site, "video_cancelled")
    assert "cancelled" in text
    assert notice(page).locator("button[data-choice=original]").count() == 0
    assert_nothing_uploaded(site, 2.0)
    assert page.evaluate("document.getElementById('js-input').files.length") == 0
    page.close()


def test_damaged_video_is_not_uploaded(browser, site, shield_server):
    page = open_page(browser, site, paired(shield_server), locked=True)
    page.set_input_files("#js-input", files=[{"name": "clip.mp4", "mimeType": "video/mp4", "buffer": mp4_bytes()}])
    expect_refused(page, site, "video_failed", "undecodable")
    assert notice(page).locator("button[data-choice=original]").count() == 0
    assert_nothing_uploaded(site, 1.0)
    page.close()


@pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])
def test_server_stopped_blocks_the_video(browser, site, clip, locked):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    page = open_page(browser, site, {"port": port, "token": "t" * 32}, locked=locked)
    page.set_input_files("#js-input", str(clip[0]))
    text = expect_refused(page, site, "server_unreachable")
    assert "not running" in text
    assert notice(page).locator("button[data-choice=original]").count() == (0 if locked else 1)
    assert_nothing_uploaded(site, 1.0)
    page.close()


class OldServer(LoopbackServer):
    """A Photo Shield from before video jobs: it proves the pairing token, and has no /v1/video (404)."""

    def __init__(self, token: str):
        self.video_requests = 0
        old = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                if url.path != "/v1/identify":
                    return self.answer(404, {"error": "not_found"})
                challenge = urllib.parse.parse_qs(url.query)["challenge"][0]
                proof = hmac.new(token.encode(), f"photo-shield-proof:{challenge}".encode(), hashlib.sha256).hexdigest()
                self.answer(200, {"proof": proof})

            def do_POST(self):
                old.video_requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.answer(404, {"error": "not_found"})

        super().__init__(Handler)


@pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])
def test_server_without_video_jobs_asks_or_blocks_as_before(browser, site, clip, locked):
    old = OldServer("k" * 32)
    try:
        page = open_page(browser, site, {"port": old.port, "token": "k" * 32}, locked=locked)
        page.set_input_files("#js-input", str(clip[0]))
        expect_refused(page, site, "video_blocked" if locked else "video_ask")
        assert old.video_requests == 1
        if not locked:  # the person may still send the original, as before video protection existed
            notice(page).locator("button[data-choice=original]:enabled").click()
            (sent,) = only_upload(site).files()
            assert sent.data == clip[0].read_bytes()
        else:
            assert notice(page).locator("button[data-choice=original]").count() == 0
            assert_nothing_uploaded(site, 1.0)
        page.close()
    finally:
        old.stop()
