"""Pictures a page takes with the camera (getUserMedia -> canvas, ImageCapture, MediaRecorder), in headless
Chromium whose fake camera plays the astronaut (tests/camera.py), judged by what the receiving site got:
with the extension paired, only the protected picture (her face filled, so it went through the server);
with the server stopped, nothing and a notice; without the extension (control), every page leaks.
"""

import io
import json

import numpy as np
import pytest
from PIL import Image

from adversarial import Judge, Receiver, Verdict, _pieces
from browser import browsers_by_mode, chromium_available
from camera import camera_frame, write_y4m
from test_extension_sources import FILL, Person, closed_port

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium")

# Each page (tests/adversarial_site/camera-*.html) takes a picture when #go is clicked and sends it its way.
CAMERA_PAGES = ["camera-toblob", "camera-dataurl-json", "camera-split-base64", "camera-websocket",
                "camera-form-urlencoded", "camera-bitmap", "camera-copy-canvas", "camera-takephoto",
                "camera-grabframe", "camera-recorder"]
VIDEO_PAGES = {"camera-recorder"}
EXPECTED = {"paired": "protected", "stopped": "blocked", "control": "leaked"}


@pytest.fixture(scope="module")
def frame():
    picture, face = camera_frame()
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue(), face


@pytest.fixture(scope="module")
def camera_args(tmp_path_factory, frame):
    picture, _ = camera_frame()
    clip = write_y4m(tmp_path_factory.mktemp("camera") / "astronaut.y4m", picture)
    return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}"]


@pytest.fixture(scope="module")
def receiver(frame):
    server = Receiver(frame[0])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browsers(shield_server, camera_args):
    def settings_for(mode):
        port, token = (shield_server.port, shield_server.token) if mode == "paired" else (closed_port(), "x")
        return {"color": "ff00ff", "fill": "solid", "port": port, "token": token}

    def lock(browser, mode):
        if mode.startswith("locked"):  # the parental lock, as the options page sets it
            browser.worker.evaluate(
                "async () => chrome.storage.local.set({ pin: await PhotoShieldPin.makePinRecord('2468') })")

    with browsers_by_mode(settings_for, extra_args=camera_args, prepare=lock) as get:
        yield get


class CameraUser(Person):
    """A person on a camera page: a video's progress panel (no OK button) is not a notice to close. Keeps
    each notice's reason and buttons in `seen`."""

    def __init__(self, page, folder):
        super().__init__(page, folder)
        self.seen = []

    def dismiss_notices(self) -> bool:
        shown = False
        notices = self.page.locator("#photo-shield-notice .panel[role=alert]")
        while notices.count():
            shown = self.notice_shown = True
            panel = notices.first
            self.seen.append((panel.get_attribute("data-reason"),
                              sorted(panel.locator("button").evaluate_all("bs => bs.map((b) => b.dataset.choice)"))))
            panel.locator("button[data-choice=dismiss]").click()
        return shown


def video_verdict(received, notice_shown, original_face: np.ndarray, face) -> Verdict:
    """A clip the site got: 'protected' when her face is magenta in every frame, 'leaked' when it is there."""
    import av

    x0, y0, x1, y1 = face
    kinds = []
    for payload in _pieces(received):
        try:
            with av.open(io.BytesIO(payload)) as container:
                frames = [f.to_image().convert("RGB").resize((640, 480)) for f in container.decode(video=0)]
        except Exception:
            continue
        if not frames:
            continue
        for picture in frames:
            part = np.asarray(picture, dtype=np.int16)[y0:y1, x0:x1]
            magenta = ((part[..., 0] >= 200) & (part[..., 2] >= 200) & (part[..., 1] <= 60)).mean()
            if np.abs(part - original_face).mean() < 25:
                return Verdict("leaked", "the face arrived in a frame of the clip")
            kinds.append(magenta >= 0.9)
    if kinds and all(kinds):
        return Verdict("protected")
    if kinds:
        return Verdict("broken", "a clip arrived with a face neither kept nor replaced")
    return Verdict("blocked") if notice_shown else Verdict("broken", f"{len(received)} bodies, no clip, no notice")


@pytest.mark.parametrize("mode", list(EXPECTED))
@pytest.mark.parametrize("name", CAMERA_PAGES)
def test_camera_pictures_reach_the_site_only_protected(browsers, receiver, frame, mode, name):
    original, face = frame
    context = browsers(mode)
    page = context.new_page()
    try:
        page.goto(f"{receiver.origin}/{name}.html")
        receiver.take()
        person = CameraUser(page, None)
        person.act("click")
        person.wait_until_done(timeout=90 if name in VIDEO_PAGES else 40)
        received = receiver.take()
        detail = page.evaluate("window.advDetail")
    finally:
        page.close()
    if name in VIDEO_PAGES:
        picture = Image.open(io.BytesIO(original)).convert("RGB")
        x0, y0, x1, y1 = face
        verdict = video_verdict(received, person.notice_shown, np.asarray(picture, dtype=np.int16)[y0:y1, x0:x1], face)
    else:
        verdict = Judge(original, face, FILL).judge(received, person.notice_shown)
    assert verdict.outcome == EXPECTED[mode], f"{name} ({mode}): {verdict.outcome}: {verdict.why} {detail}"


def run_page(context, receiver, name, timeout=40):
    """Opens the page, clicks #go, waits for it to finish: (what the site got, notices' reasons and buttons, page)."""
    page = context.new_page()
    page.goto(f"{receiver.origin}/{name}.html")
    receiver.take()
    person = CameraUser(page, None)
    person.act("click")
    person.wait_until_done(timeout=timeout)
    return receiver.take(), person.seen, page


def test_ordinary_canvas_goes_out_untouched_without_the_server(browsers, receiver):
    """A chart's data URL is not held or changed, even with the server stopped (nothing asks it)."""
    received, seen, page = run_page(browsers("stopped"), receiver, "canvas-chart")
    made = page.evaluate("window.madeImage")
    page.close()
    assert not seen
    assert [item.body for item in received] == [json.dumps({"image": made}, separators=(",", ":")).encode()]


@pytest.mark.parametrize("name", ["camera-dataurl-json", "camera-takephoto", "camera-recorder"])
def test_locked_profile_never_offers_the_original_camera_picture(browsers, receiver, frame, name):
    """Server stopped, profile locked: nothing arrives, and the notice has no "upload the original"."""
    received, seen, page = run_page(browsers("locked-stopped"), receiver, name, timeout=60)
    page.close()
    assert seen and all("original" not in buttons for _, buttons in seen), seen
    original, face = frame
    assert Judge(original, face, FILL).judge(received, True).outcome == "blocked"
