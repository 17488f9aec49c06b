"""The local web page in headless Chromium: pick a photo, see it protected, download it."""

import base64
import io
import json
import os
import re
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pytest

from browser import drag_region
from photos import ASTRONAUT_FACE, astronaut, core, decode, encode, missed_face_scene

if os.environ.get("SHIELD_REQUIRE_BROWSER"):  # scripts/test.sh and CI: a missing driver fails, never skips
    import playwright.sync_api as playwright_api
else:
    playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The RGBA pixels an <img> of the page shows (read back through a canvas: the page's CSP forbids fetching blobs).
AFTER_PIXELS = """(selector) => {
    const img = document.querySelector(selector);
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(img, 0, 0);
    return canvas.toDataURL('image/png');
}"""


def wait_until(page, condition: str, arg=None, timeout: float = 30_000):
    """Waits until the JavaScript expression `condition` (which may use `arg`) is true. Always handed to
    Playwright as a function: a bare expression string is evaluated again with eval() on every poll after the
    first, and the page's CSP (no 'unsafe-eval') refuses that with an EvalError whenever the condition is not
    true at once. The one wait_for_function of this file."""
    return page.wait_for_function(f"(arg) => Boolean({condition})", arg=arg, timeout=timeout)


def shown_pixels(page, selector: str) -> np.ndarray:
    return decode(base64.b64decode(page.evaluate(AFTER_PIXELS, selector).split(",", 1)[1]))


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def test_pick_a_photo_and_get_it_protected(shield_server, page):
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("requestfailed", lambda request: problems.append(request.url))
    outside = []
    local = (shield_server.base_url, f"blob:{shield_server.base_url}", "data:")
    page.on("request", lambda request: request.url.startswith(local) or outside.append(request.url))
    page.goto(f"{shield_server.base_url}/")
    page.set_input_files("#picker", files=[{"name": "family.png", "mimeType": "image/png",
                                            "buffer": encode(astronaut(), "PNG")}])
    result = page.locator(".result.done")
    result.wait_for(timeout=30_000)
    outlines = result.locator(".before .face")
    assert re.search(rf"\b{outlines.count()} faces? replaced", result.locator(".summary").inner_text())
    wait_until(page, "document.querySelector('.result .before img').naturalWidth === 512")
    image_box = result.locator(".before img").bounding_box()
    scale = image_box["width"] / 512
    x0, y0, x1, y1 = ASTRONAUT_FACE  # one outline sits on the face in the shown image, within a few pixels
    assert any(abs(box["x"] - image_box["x"] - x0 * scale) < 20 * scale
               and abs(box["y"] - image_box["y"] - y0 * scale) < 20 * scale
               and abs(box["x"] + box["width"] - image_box["x"] - x1 * scale) < 20 * scale
               for box in (outlines.nth(i).bounding_box() for i in range(outlines.count())))
    wait_until(page, "document.querySelector('.result .after img').naturalWidth === 512")

    with page.expect_download() as download_info:
        result.locator(".download").click()
    download = download_info.value
    assert download.suggested_filename == "family.protected.png"
    protected = decode(open(download.path(), "rb").read())
    rows, cols = core(ASTRONAUT_FACE)
    assert (protected[rows, cols] == 0).all()  # the default fill: solid black
    assert np.array_equal(protected[400:, :100], astronaut()[400:, :100])  # the rest is untouched

    shown = shown_pixels(page, ".result .after img")
    assert (shown[rows, cols] == [0, 0, 0, 255]).all()  # what the page shows is the protected photo
    assert not problems and not outside


def test_options_and_a_file_that_is_not_a_photo(shield_server, page):
    page.goto(f"{shield_server.base_url}/")
    page.select_option("select[name=fill]", "solid")
    page.fill("input[name=color]", "#ff00ff")
    page.select_option("select[name=format]", "jpeg")
    page.set_input_files("#picker", files=[
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"just text"},
        {"name": "portrait.png", "mimeType": "image/png", "buffer": encode(astronaut(), "PNG")}])
    settle(page)
    failed = page.locator(".result.failed .summary")
    assert "Not protected" in failed.inner_text() and "supported" in failed.inner_text()
    assert page.locator(".result.failed .download").is_hidden()
    done = page.locator(".result.done")
    assert done.locator(".download").get_attribute("download") == "portrait.protected.jpg"
    wait_until(page, "document.querySelector('.result.done .after img').naturalWidth === 512")
    pixels = shown_pixels(page, ".result.done .after img")
    rows, cols = core(ASTRONAUT_FACE)
    assert np.abs(pixels[rows, cols, :3].astype(int) - [255, 0, 255]).max() < 12

    failed_item = page.locator(".result.failed")
    # Nothing of a photo that is not there: no spinner, no figure, no caption (.no-preview and "Before: faces
    # found are outlined" included), no download; only the name, the state and the reason.
    assert failed_item.locator(".pair").is_hidden()
    assert failed_item.locator("figcaption, .no-preview, img, .spinner, .download").evaluate_all(
        "nodes => nodes.filter(n => n.checkVisibility()).length") == 0
    assert failed_item.locator(".badge").inner_text() == "Not protected"
    assert page.locator(".result.done .badge").inner_text() == "Protected"
    assert page.locator("#status").inner_text() == "1 photo protected. 1 photo not protected (the reason is below)."


def test_a_photo_this_browser_cannot_show_keeps_only_true_captions(shield_server, page):
    """HEIC: Chromium cannot show the original, the server protects it. The "before" side says so and no
    longer claims outlines; the "after" side is the protected photo with its caption."""
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    heic = io.BytesIO()
    Image.fromarray(astronaut()).save(heic, "HEIF")
    page.goto(f"{shield_server.base_url}/")
    page.set_input_files("#picker", files=[{"name": "IMG_0001.HEIC", "mimeType": "image/heic", "buffer": heic.getvalue()}])
    settle(page)
    wait_until(page, "!document.querySelector('.result .no-preview').hidden")
    result = page.locator(".result.done")
    assert result.locator(".before figcaption").is_hidden() and result.locator(".before .frame").is_hidden()
    assert result.locator(".after figcaption").is_visible()
    assert result.locator(".download").get_attribute("download") == "IMG_0001.protected.jpg"
    assert page.locator("#status").inner_text() == "1 photo protected."


def test_another_origin_cannot_use_the_server(shield_server, page):
    """A page served from another origin (here a data: URL) cannot read the page key or call the API."""
    page.goto("data:text/html,<title>evil</title>")
    outcome = page.evaluate("""async (base) => {
        const results = {};
        for (const [name, url, init] of [
            ["page", base + "/", {}],
            ["protect", base + "/v1/protect", {method: "POST", body: "x", headers: {"X-Shield-Page-Key": "guess"}}],
            ["health", base + "/v1/health", {}]]) {
          try { const r = await fetch(url, init); results[name] = "read " + r.status; }
          catch (e) { results[name] = "blocked"; }
        }
        return results;
    }""", shield_server.base_url)
    assert outcome == {"page": "blocked", "protect": "blocked", "health": "blocked"}


def test_drop_a_photo_on_the_page(shield_server, page):
    page.goto(f"{shield_server.base_url}/")
    photo = list(encode(astronaut(), "JPEG"))
    page.evaluate("""(bytes) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(bytes)], "dropped.jpg", {type: "image/jpeg"}));
        document.body.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
    }""", photo)
    done = page.locator(".result.done")
    done.wait_for(timeout=30_000)
    assert done.locator(".download").get_attribute("download") == "dropped.protected.jpg"



SETTLED = "[...document.querySelectorAll('.result')].length > 0 && [...document.querySelectorAll('.result')]" \
          ".every(n => n.classList.contains('done') || n.classList.contains('failed'))"


def settle(page, summary_has: str | None = None) -> None:
    wait_until(page, SETTLED)
    if summary_has:
        wait_until(page, "document.querySelector('.result .summary').textContent.includes(arg)", summary_has)


def downloaded(page, link) -> bytes:
    with page.expect_download() as info:
        link.click()
    return open(info.value.path(), "rb").read()


def pick_scene(page, name="scene.png"):
    scene, missed = missed_face_scene()
    page.set_input_files("#picker", files=[{"name": name, "mimeType": "image/png", "buffer": encode(scene, "PNG")}])
    settle(page)
    wait_until(page, "document.querySelector('.result .after img').naturalWidth === 800")
    return scene, missed


def test_draw_over_a_missed_face_and_untick_a_detection(shield_server, page):
    page.goto(f"{shield_server.base_url}/")
    scene, missed = pick_scene(page)
    result = page.locator(".result")
    untouched = decode(downloaded(page, result.locator(".download")))
    assert np.array_equal(untouched[300:412, 620:720], scene[300:412, 620:720])  # the detector missed it

    result.locator(".after img").scroll_into_view_if_needed()
    drag_region(page, result.locator(".after img").bounding_box(), 800, missed)
    x0, y0, x1, y1 = missed
    settle(page, "1 region added")
    assert result.locator(".shield-region").count() == 1
    covered = decode(downloaded(page, result.locator(".download")))
    assert (covered[y0:y1, x0:x1] == 0).all()  # replaced with the default fill, by the server
    assert (covered[core(ASTRONAUT_FACE)] == 0).all()

    result.locator(".shield-detection").click()  # untick the astronaut: leave his face as it is
    settle(page, "kept")
    kept = decode(downloaded(page, result.locator(".download")))
    assert np.array_equal(kept[:, :512], scene[:, :512])
    assert (kept[y0:y1, x0:x1] == 0).all()
    assert result.locator(".shield-detection.shield-kept").count() == 1

    result.locator(".shield-editor-undo").click()  # tick it again
    settle(page, "1 face replaced")
    again = decode(downloaded(page, result.locator(".download")))
    assert (again[core(ASTRONAUT_FACE)] == 0).all() and (again[y0:y1, x0:x1] == 0).all()


def sent_regions(requests: list) -> list:
    """The regions the page's last /v1/protect call asked for."""
    from urllib.parse import parse_qs, urlparse

    query = parse_qs(urlparse(requests[-1]).query)
    return json.loads(query["regions"][0]) if "regions" in query else []


def test_regions_by_keyboard(shield_server, page):
    calls = []
    page.on("request", lambda request: "/v1/protect" in request.url and calls.append(request.url))
    page.goto(f"{shield_server.base_url}/")
    scene, _ = pick_scene(page)
    result = page.locator(".result")
    result.locator(".shield-editor-add").click()  # a region in the middle of what is shown, selected
    settle(page, "1 region added")
    [[x0, y0, x1, y1]] = sent_regions(calls)
    assert 250 < (x0 + x1) / 2 < 550 and 150 < (y0 + y1) / 2 < 370
    shown = result.get_attribute("data-shown")
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # 8 px each (1% of the longer side, the photo shown whole)
    page.keyboard.press("Shift+ArrowDown")
    wait_until(page, "document.querySelector('.result').dataset.shown !== arg", shown)
    settle(page, "1 region added")
    assert sent_regions(calls) == [[x0 + 24, y0, x1 + 24, y1 + 8]]
    moved = decode(downloaded(page, result.locator(".download")))
    assert (moved[y0:y1 + 8, x0 + 24:x1 + 24] == 0).all()  # the server filled what the keys asked for
    assert np.array_equal(moved[y0:y1 + 8, x0:x0 + 24], scene[y0:y1 + 8, x0:x0 + 24])
    result.locator(".shield-region").focus()  # (the download link took the focus)
    page.keyboard.press("Delete")
    settle(page, "1 face replaced, metadata")
    assert result.locator(".shield-region").count() == 0 and sent_regions(calls) == []
    gone = decode(downloaded(page, result.locator(".download")))
    assert np.array_equal(gone[y0:y1 + 8, x0:x1 + 24], scene[y0:y1 + 8, x0:x1 + 24])


def test_options_apply_to_photos_already_shown(shield_server, page):
    page.goto(f"{shield_server.base_url}/")
    pick_scene(page)
    page.select_option("select[name=fill]", "sticker")
    assert page.locator("select[name=sticker]").is_visible() and page.locator("input[name=color]").is_hidden()
    page.select_option("select[name=sticker]", "star")
    wait_until(page, "document.querySelector('.result').dataset.shown === '3'")  # photo, fill, sticker
    settle(page)
    star = decode(downloaded(page, page.locator(".result .download")))
    rows, cols = core(ASTRONAUT_FACE)
    colours = {tuple(c) for c in star[rows, cols].reshape(-1, 3)}
    assert colours <= {(70, 110, 200), (255, 210, 40)} or len(colours) < 40  # the star on its blue background
    assert (70, 110, 200) in colours and (255, 210, 40) in colours


def test_french_spinner_and_download_all(shield_server, browser):
    context = browser.new_context(accept_downloads=True, locale="fr-FR")
    page = context.new_page()
    try:
        held = []
        page.route("**/v1/protect*", lambda route: held.append(route))  # hold the first answer to see the page wait for it
        page.goto(f"{shield_server.base_url}/")
        assert "métadonnées" in page.locator("header p").inner_text()
        assert page.locator("#drop strong").inner_text() == "Déposez des photos ou des vidéos ici"
        scene, _ = missed_face_scene()
        photo = encode(scene, "PNG")
        page.set_input_files("#picker", files=[{"name": "a.png", "mimeType": "image/png", "buffer": photo},
                                               {"name": "a.png", "mimeType": "image/png", "buffer": photo}])
        for _ in range(100):
            if held:
                break
            page.wait_for_timeout(50)
        assert held, "the page never asked the server"
        assert page.locator(".result .spinner").first.is_visible()
        assert page.locator(".result .after img").count() == 0  # no empty or broken image while waiting
        # Each item says where it stands (the second waits for the first) and the status line sums them up.
        assert page.locator(".result .summary").all_inner_texts() == ["En attente…", "Protection en cours…"]
        assert page.locator(".result .badge").all_inner_texts() == ["En attente", "En cours"]
        assert page.locator("#status").inner_text() == "Protection en cours : 2 photos…"
        page.unroute("**/v1/protect*")  # lets the held request go on to the server
        settle(page)
        assert "visage" in page.locator(".result .summary").first.inner_text()
        assert page.locator("#status").inner_text() == "2 photos protégées."
        singles = [decode(downloaded(page, link)) for link in page.locator(".result .download").all()]
        archive = zipfile.ZipFile(io.BytesIO(downloaded(page, page.locator("#download-all"))))
        assert archive.testzip() is None  # every CRC right
        assert sorted(archive.namelist()) == ["a.protected-2.png", "a.protected.png"]
        for name in archive.namelist():
            assert any(np.array_equal(decode(archive.read(name)), single) for single in singles)
    finally:
        context.close()


def test_draw_a_region_with_a_finger(shield_server, browser):
    context = browser.new_context(accept_downloads=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(f"{shield_server.base_url}/")
        scene, missed = pick_scene(page)
        page.locator(".result .after img").scroll_into_view_if_needed()  # touches off the screen are cancelled
        shown = page.locator(".result .after img").bounding_box()
        scale = shown["width"] / 800
        x0, y0, x1, y1 = missed
        cdp = context.new_cdp_session(page)
        points = [(x0 - 2, y0 - 2), ((x0 + x1) / 2, (y0 + y1) / 2), (x1 + 2, y1 + 2)]
        for kind, (x, y) in zip(["touchStart", "touchMove", "touchMove"], points):
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [
                {"x": shown["x"] + x * scale, "y": shown["y"] + y * scale}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        settle(page, "1 region added")
        covered = decode(downloaded(page, page.locator(".result .download")))
        assert (covered[y0:y1, x0:x1] == 0).all()
    finally:
        context.close()


# Every change of the page, noted with what the status line and the first item said at that moment.
RECORD_CHANGES = """() => {
    window.seen = [];
    const note = () => {
        const items = [...document.querySelectorAll('.result')].map(r => ({
            state: r.dataset.state, summary: r.querySelector('.summary').textContent,
            bar: !r.querySelector('progress').hidden, value: r.querySelector('progress').getAttribute('value')}));
        window.seen.push({status: document.getElementById('status').textContent, items});
    };
    new MutationObserver(note).observe(document.body,
        {subtree: true, childList: true, characterData: true, attributes: true});
}"""
# The protected clip in the page's own player: playable, seekable, and the frame it shows read back via a canvas.
PLAYER_FRAME = """async (at) => {
    const video = document.querySelector('.result.done video');
    const within = (promise, what) => Promise.race([promise, new Promise((_, reject) => setTimeout(
        () => reject(new Error(what + ' never came; readyState ' + video.readyState + ', error ' +
                               (video.error && video.error.code))), 20000))]);
    if (video.readyState < 2) await within(new Promise(r => video.addEventListener('loadeddata', r, {once: true})), 'loadeddata');
    const ready = video.readyState;
    video.currentTime = at;
    await within(new Promise(r => video.addEventListener('seeked', r, {once: true})), 'seeked');
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    canvas.getContext('2d').drawImage(video, 0, 0);
    return {ready, time: video.currentTime, png: canvas.toDataURL('image/png')};
}"""
PHASES = ["Sending the video", "Waiting for its turn", "Reading the video", "Protecting every frame"]


def phase_of(summary: str) -> int | None:
    return next((i for i, words in enumerate(PHASES) if summary.startswith(words)), None)


def test_a_video_plays_in_the_page_protected_with_progress_from_the_start(shield_server, page, tmp_path):
    from videos import GPS, decode_frames, magenta_share, make_clip

    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    clip = tmp_path / "family.mp4"
    truth = make_clip(clip, frames=36)
    page.goto(f"{shield_server.base_url}/")
    page.fill("input[name=color]", "#ff00ff")
    page.evaluate(RECORD_CHANGES)
    page.set_input_files("#picker", str(clip))
    page.locator(".result.done").wait_for(timeout=180_000)

    seen = page.evaluate("window.seen")
    working = [moment for moment in seen if moment["items"] and moment["items"][0]["state"] in ("waiting", "protecting")]
    assert working and phase_of(working[0]["items"][0]["summary"]) == 0  # progress from the first byte sent
    phases = [phase_of(moment["items"][0]["summary"]) for moment in working]
    assert None not in phases and phases == sorted(phases), phases  # sending, waiting, reading, protecting
    for moment in working:
        item = moment["items"][0]
        assert item["bar"] and moment["status"] == "Protecting 1 video…", moment  # never "Done" while it works
        if phase_of(item["summary"]) == 3:  # a share only once frames are written; before that the bar moves alone
            assert float(item["value"]) > 0 and not item["summary"].endswith(" 0%"), moment
    assert page.locator("#status").inner_text() == "1 video protected."
    assert page.locator(".result.done .cancel").is_hidden() and page.locator(".result.done progress").is_hidden()

    link = page.locator(".result.done .download")
    assert link.get_attribute("download") == "family.protected.mp4"
    out = tmp_path / "out.mp4"
    out.write_bytes(downloaded(page, link))
    frames = decode_frames(out)
    assert len(frames) == len(truth)
    shares = [magenta_share(rgb, box) for rgb, box in zip(frames, truth)]
    assert min(shares) >= 0.95, shares
    assert GPS.encode() not in out.read_bytes()

    index = 18  # the page's player (a blob: URL under the page's CSP) shows that frame, its face filled
    shown = page.evaluate(PLAYER_FRAME, (index + 0.5) / 12)
    assert shown["ready"] >= 2 and abs(shown["time"] - (index + 0.5) / 12) < 0.05
    frame = decode(base64.b64decode(shown["png"].split(",", 1)[1]))[..., :3]
    assert frame.shape == frames[index].shape
    assert magenta_share(frame, truth[index]) >= 0.9
    assert magenta_share(frame, None) < 0.5  # the rest of the frame is the scene, not a blank or filled picture
    assert not problems, problems


class HeldVideo:
    """Answers the page's polls of video jobs with "running, 42%" until released; then they reach the server."""

    def __init__(self, page):
        self.released = False
        page.route(re.compile(r".*/v1/video/[^/]+$"), self._answer)

    def _answer(self, route):
        if self.released or route.request.method != "GET":
            route.continue_()
            return
        job = route.request.url.rsplit("/", 1)[1]
        route.fulfill(status=200, content_type="application/json", body=json.dumps(
            {"id": job, "state": "running", "progress": 0.42, "frames_done": 15, "frames_total": 36, "received": 1}))


def statuses_while(page, active: str):
    """Every status line noted while an item was in state `active`."""
    return [m["status"] for m in page.evaluate("window.seen") if any(i["state"] == active for i in m["items"])]


def test_a_video_still_running_while_the_photos_are_done(shield_server, page, tmp_path):
    from videos import make_clip

    clip = tmp_path / "party.mp4"
    make_clip(clip, frames=24)
    held = HeldVideo(page)
    page.goto(f"{shield_server.base_url}/")
    page.evaluate(RECORD_CHANGES)
    page.set_input_files("#picker", files=[
        {"name": "party.mp4", "mimeType": "video/mp4", "buffer": clip.read_bytes()},
        {"name": "one.png", "mimeType": "image/png", "buffer": encode(astronaut(), "PNG")},
        {"name": "two.png", "mimeType": "image/png", "buffer": encode(astronaut(), "PNG")}])
    wait_until(page, "document.querySelectorAll('.result.done').length === 2")
    video = page.locator(".result", has_text="party.mp4")
    wait_until(page, "document.querySelector('.result[data-state=protecting] .summary')?.textContent.includes('42%')")
    assert page.locator("#status").inner_text() == "Protecting 1 video… 2 photos protected."
    assert video.locator(".badge").inner_text() == "Protecting" and video.locator(".cancel").is_visible()
    assert video.locator("progress").get_attribute("value") == "0.42"
    assert page.locator("#download-all").is_disabled()  # a zip now would leave the video out
    held.released = True
    video.locator(".badge", has_text="Protected").wait_for(timeout=120_000)
    assert page.locator("#status").inner_text() == "2 photos and 1 video protected."
    for status in statuses_while(page, "protecting") + statuses_while(page, "waiting"):
        assert status.startswith("Protecting"), status
    assert page.locator("#download-all").is_enabled()


def test_each_video_has_its_own_cancel(shield_server, page, tmp_path):
    from videos import make_clip

    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=24)
    deleted = []
    page.on("request", lambda request: request.method == "DELETE" and deleted.append(request.url))
    held = HeldVideo(page)
    uploads = []  # the first part of each video, held until the Cancel is pressed
    page.route(re.compile(r".*/v1/video\?.*"), lambda route: uploads.append(route))
    page.goto(f"{shield_server.base_url}/")
    page.set_input_files("#picker", files=[
        {"name": name, "mimeType": "video/mp4", "buffer": clip.read_bytes()} for name in ("first.mp4", "second.mp4")])
    first, second = page.locator(".result", has_text="first.mp4"), page.locator(".result", has_text="second.mp4")
    wait_until(page, "document.querySelectorAll('.result .summary').length === 2")
    first.locator(".cancel").click()  # while its first part is still on its way
    assert first.locator(".badge").inner_text() == "Cancelled"
    assert first.locator(".summary").inner_text() == "Cancelled: nothing was kept."
    assert first.locator(".cancel").is_hidden() and first.locator("progress").is_hidden()
    assert first.locator(".pair").is_hidden() and first.locator(".download").is_hidden()
    assert second.get_attribute("data-state") == "protecting"  # the other one goes on
    assert page.locator("#status").inner_text() == "Protecting 1 video… 1 video cancelled."
    for _ in range(100):
        if len(uploads) == 2:
            break
        page.wait_for_timeout(50)
    for route in uploads:
        route.continue_()
    wait_until(page, "document.querySelector('.result .summary').textContent.includes('42%')")
    held.released = True
    second.locator(".badge", has_text="Protected").wait_for(timeout=120_000)
    assert first.locator(".badge").inner_text() == "Cancelled"
    assert page.locator("#status").inner_text() == "1 video protected. 1 video cancelled."
    assert len(deleted) == 1  # the job its first part made is deleted on the server, files and all
    assert shield_server.request("GET", deleted[0].replace(shield_server.base_url, "")).status == 404


def test_a_file_named_like_a_video_that_is_not_one(shield_server, page):
    page.goto(f"{shield_server.base_url}/")
    page.set_input_files("#picker", files=[{"name": "holiday.mp4", "mimeType": "video/mp4", "buffer": b"not a video" * 100}])
    settle(page)
    failed = page.locator(".result.failed")
    assert failed.locator(".summary").inner_text().startswith("Not protected: Not a supported video.")
    assert failed.locator(".badge").inner_text() == "Not protected"
    assert page.locator(".result video, .result progress:visible, .result .cancel:visible, .result .pair:visible").count() == 0
    assert page.locator("#status").inner_text() == "1 video not protected (the reason is below)."


def test_a_stopped_server_is_named_in_plain_words(tmp_path, browser):
    from server_process import start_server

    server = start_server(tmp_path / "config")
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{server.base_url}/")
        server.stop()
        page.set_input_files("#picker", files=[
            {"name": "family.png", "mimeType": "image/png", "buffer": encode(astronaut(), "PNG")},
            {"name": "clip.mp4", "mimeType": "video/mp4", "buffer": b"\0\0\0\x18ftypmp42" + bytes(64)}])
        wait_until(page, "document.querySelectorAll('.result.failed').length === 2")
        for summary in page.locator(".result .summary").all_inner_texts():
            assert summary == ("Not protected: Photo Shield's server is not reachable: it may have been stopped. "
                               "Start Photo Shield again, then reload this page."), summary
        assert "fetch" not in page.locator("body").inner_text().lower()
        assert page.locator("#status").inner_text() == "1 photo and 1 video not protected (the reason is below)."
        assert page.locator(".result .pair:visible, .result .download:visible, .result progress:visible").count() == 0
    finally:
        context.close()
        server.stop()


HOSTILE_NAMES = [
    "..\\..\\Startup\\evil.png", "../../.ssh/authorized_keys.png", "C:\\Users\\Public\\x.png", "/etc/cron.d/job.png",
    "\u202egnp.exe.png", "\u2066evil\u2069 \u200bname\u200f.png", "bell\x07\x00nul\x1b[31m\x7f\x85.png",
    "line\nbreak\rname\u2028.png", "x" * 1000 + ".png", "\U0001F600" * 300 + ".png", "CON.png", "...png",
    "..", "photo.png", "PHOTO.png", " space .png", 'a<b>c:d"e|f?g*h.png',
]


def plain_base_name(name: str) -> bool:
    """A name that is safe to save on any platform: no folder, no "..", nothing invisible, bounded."""
    return (re.fullmatch(r".+\.protected(-\d+)?\.png", name) is not None and not re.search(r'[/\\<>:"|?*]', name)
            and ".." not in name and not name.startswith((".", " ")) and len(name.encode()) <= 200
            and not any(unicodedata.category(c)[0] == "C" or c in "\u2028\u2029" for c in name))


def test_download_names_and_zip_entries_are_plain_base_names(shield_server, page):
    photo = list(encode(astronaut()[::4, ::4], "PNG"))
    page.goto(f"{shield_server.base_url}/")
    page.evaluate("""([bytes, names]) => {
        const transfer = new DataTransfer();
        for (const name of names) transfer.items.add(new File([new Uint8Array(bytes)], name, {type: "image/png"}));
        document.body.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
    }""", [photo, HOSTILE_NAMES])
    wait_until(page, "document.querySelectorAll('.result.done').length === arg", len(HOSTILE_NAMES))
    singles = page.locator(".result .download").evaluate_all("links => links.map(a => a.download)")
    assert len(singles) == len(HOSTILE_NAMES)
    for name in singles:
        assert plain_base_name(name), repr(name)
    assert "evil.protected.png" in singles and "authorized_keys.protected.png" in singles
    assert "_CON.protected.png" in singles and "photo.protected.png" in singles

    archive = zipfile.ZipFile(io.BytesIO(downloaded(page, page.locator("#download-all"))))
    names = archive.namelist()
    assert archive.testzip() is None and len(names) == len(HOSTILE_NAMES)
    assert len({name.casefold() for name in names}) == len(names)  # unique on a case-blind disk too
    for name in names:
        assert plain_base_name(name), repr(name)
    assert {"evil.protected.png", "job.protected.png", "_CON.protected.png", "gnp.exe.protected.png"} <= set(names)
    assert any(name.endswith(".protected-2.png") for name in names)  # photo.png and PHOTO.png: numbered


SCREENSHOT_STATUS = {  # what the status line says in each state of the screenshots, per language
    ("working", "en"): "Protecting 1 video… 1 photo protected. 1 photo not protected (the reason is below).",
    ("working", "fr"): "Protection en cours : 1 vidéo… 1 photo protégée. 1 photo non protégée (la raison est indiquée "
                       "plus bas).",
    ("done", "en"): "1 photo and 1 video protected. 1 photo not protected (the reason is below).",
    ("done", "fr"): "1 photo et 1 vidéo protégées. 1 photo non protégée (la raison est indiquée plus bas).",
    ("unreachable", "en"): "1 photo not protected (the reason is below).",
    ("unreachable", "fr"): "1 photo non protégée (la raison est indiquée plus bas).",
}
NOT_A_PHOTO = {
    "en": "Not protected: Not a supported image. Photo Shield reads JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF and AVIF.",
    "fr": "Non protégée : Ce fichier n'est pas une photo ou une vidéo que Photo Shield sait lire (photos : JPEG, PNG, "
          "WebP, GIF, BMP, TIFF, HEIC/HEIF, AVIF ; vidéos : MP4, MOV, M4V, WebM, MKV).",
}
BACKGROUNDS = {"light": "rgb(245, 246, 248)", "dark": "rgb(20, 23, 28)"}


def test_screenshots_of_the_main_states(shield_server, browser, tmp_path):
    """The main states in both languages and both themes, checked and photographed: in docs/screenshots/ when
    SHIELD_SCREENSHOTS names that folder, else in a temporary one. (A server that cannot be reached is played
    here by refusing the page's connections; test_a_stopped_server_is_named_in_plain_words stops a real one.)"""
    from videos import make_clip

    folder = Path(os.environ.get("SHIELD_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    clip = tmp_path / "party.mp4"
    make_clip(clip, frames=24)
    files = [{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"shopping list"},
             {"name": "family.png", "mimeType": "image/png", "buffer": encode(astronaut()[::2, ::2], "PNG")}]
    for language, scheme in [("en", "light"), ("en", "dark"), ("fr", "light"), ("fr", "dark")]:
        context = browser.new_context(locale=language, color_scheme=scheme, viewport={"width": 1000, "height": 800})
        try:
            page = context.new_page()
            held = HeldVideo(page)
            page.goto(f"{shield_server.base_url}/")
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") == BACKGROUNDS[scheme]
            page.set_input_files("#picker", files=files + [
                {"name": "party.mp4", "mimeType": "video/mp4", "buffer": clip.read_bytes()}])
            wait_until(page, "document.querySelector('.result[data-state=protecting] progress')?.value === 0.42")
            wait_until(page, "document.querySelectorAll('.result.done, .result.failed').length === 2")
            for state in ("working", "done"):
                if state == "done":
                    held.released = True
                    wait_until(page, "document.querySelectorAll('.result.done').length === 2", timeout=120_000)
                    wait_until(page, "document.querySelector('.result.done video').readyState >= 2")
                assert page.locator("#status").inner_text() == SCREENSHOT_STATUS[state, language]
                assert page.locator(".result.failed .summary").inner_text() == NOT_A_PHOTO[language]
                page.screenshot(path=folder / f"{state}-{language}-{scheme}.jpg", full_page=True, type="jpeg", quality=70)

            page.locator("#clear").click()
            assert page.locator("#status").inner_text() == "" and page.locator(".result").count() == 0
            page.route("**/v1/protect*", lambda route: route.abort("connectionrefused"))
            page.set_input_files("#picker", files=files[1:])
            wait_until(page, "document.querySelector('.result.failed')")
            assert page.locator("#status").inner_text() == SCREENSHOT_STATUS["unreachable", language]
            page.set_viewport_size({"width": 1000, "height": 560})
            page.screenshot(path=folder / f"unreachable-{language}-{scheme}.jpg", full_page=True, type="jpeg", quality=70)
        finally:
            context.close()
