"""The local web page in headless Chromium: pick a photo, see it protected, download it."""

import base64
import io
import os
import re
import zipfile

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
    page.wait_for_function("document.querySelector('.result .before img').naturalWidth === 512")
    image_box = result.locator(".before img").bounding_box()
    scale = image_box["width"] / 512
    x0, y0, x1, y1 = ASTRONAUT_FACE  # one outline sits on the face in the shown image, within a few pixels
    assert any(abs(box["x"] - image_box["x"] - x0 * scale) < 20 * scale
               and abs(box["y"] - image_box["y"] - y0 * scale) < 20 * scale
               and abs(box["x"] + box["width"] - image_box["x"] - x1 * scale) < 20 * scale
               for box in (outlines.nth(i).bounding_box() for i in range(outlines.count())))
    page.wait_for_function("document.querySelector('.result .after img').naturalWidth === 512")

    with page.expect_download() as download_info:
        result.locator(".download").click()
    download = download_info.value
    assert download.suggested_filename == "family-protected.png"
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
    page.locator(".result.done").wait_for(timeout=30_000)
    failed = page.locator(".result.failed .summary")
    assert "Not protected" in failed.inner_text() and "supported" in failed.inner_text()
    assert page.locator(".result.failed .download").is_hidden()
    done = page.locator(".result.done")
    assert done.locator(".download").get_attribute("download") == "portrait-protected.jpg"
    page.wait_for_function("document.querySelector('.result.done .after img').naturalWidth === 512")
    pixels = shown_pixels(page, ".result.done .after img")
    rows, cols = core(ASTRONAUT_FACE)
    assert np.abs(pixels[rows, cols, :3].astype(int) - [255, 0, 255]).max() < 12

    failed_item = page.locator(".result.failed")
    assert failed_item.locator(".after").is_hidden()  # no spinner forever, no caption of a photo that is not there
    assert failed_item.locator(".no-preview").is_visible()
    assert page.evaluate("[...document.querySelectorAll('.result.failed img')]"
                         ".every(img => img.offsetParent === null || img.naturalWidth > 0)")


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
    assert done.locator(".download").get_attribute("download") == "dropped-protected.jpg"



SETTLED = "() => { const r = [...document.querySelectorAll('.result')]; " \
          "return r.length > 0 && r.every(n => n.classList.contains('done') || n.classList.contains('failed')); }"


def settle(page, summary_has: str | None = None) -> None:
    page.wait_for_function(SETTLED, timeout=30_000)
    if summary_has:
        page.wait_for_function("(words) => document.querySelector('.result .summary').textContent.includes(words)",
                               arg=summary_has, timeout=30_000)


def downloaded(page, link) -> bytes:
    with page.expect_download() as info:
        link.click()
    return open(info.value.path(), "rb").read()


def pick_scene(page, name="scene.png"):
    scene, missed = missed_face_scene()
    page.set_input_files("#picker", files=[{"name": name, "mimeType": "image/png", "buffer": encode(scene, "PNG")}])
    settle(page)
    page.wait_for_function("document.querySelector('.result .after img').naturalWidth === 800")
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


def test_regions_by_keyboard(shield_server, page):
    page.goto(f"{shield_server.base_url}/")
    scene, _ = pick_scene(page)
    result = page.locator(".result")
    result.locator(".shield-editor-add").click()  # a region in the middle, selected: [320, 204, 480, 308]
    settle(page, "1 region added")
    shown = result.get_attribute("data-shown")
    for _ in range(3):
        page.keyboard.press("ArrowRight")  # 8 px each (1% of the longer side)
    page.keyboard.press("Shift+ArrowDown")
    page.wait_for_function("(before) => document.querySelector('.result').dataset.shown !== before", arg=shown)
    settle(page, "1 region added")
    moved = decode(downloaded(page, result.locator(".download")))
    assert (moved[204:316, 344:504] == 0).all()
    assert np.array_equal(moved[204:316, 320:344], scene[204:316, 320:344])
    result.locator(".shield-region").focus()  # (the download link took the focus)
    page.keyboard.press("Delete")
    settle(page, "1 face replaced, metadata")
    assert result.locator(".shield-region").count() == 0
    gone = decode(downloaded(page, result.locator(".download")))
    assert np.array_equal(gone[204:316, 320:504], scene[204:316, 320:504])


def test_options_apply_to_photos_already_shown(shield_server, page):
    page.goto(f"{shield_server.base_url}/")
    pick_scene(page)
    page.select_option("select[name=fill]", "sticker")
    assert page.locator("select[name=sticker]").is_visible() and page.locator("input[name=color]").is_hidden()
    page.select_option("select[name=sticker]", "star")
    page.wait_for_function("() => document.querySelector('.result').dataset.shown === '3'")  # photo, fill, sticker
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
        assert "Protection" in page.locator(".result .summary").first.inner_text()
        page.unroute("**/v1/protect*")  # lets the held request go on to the server
        settle(page)
        assert "visage" in page.locator(".result .summary").first.inner_text()
        singles = [decode(downloaded(page, link)) for link in page.locator(".result .download").all()]
        archive = zipfile.ZipFile(io.BytesIO(downloaded(page, page.locator("#download-all"))))
        assert archive.testzip() is None  # every CRC right
        assert sorted(archive.namelist()) == ["a (2)-protected.png", "a-protected.png"]
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


def test_a_video_is_protected_in_every_frame_with_progress(shield_server, page, tmp_path):
    from videos import GPS, decode_frames, magenta_share, make_clip

    clip = tmp_path / "family.mp4"
    truth = make_clip(clip, frames=36)
    page.goto(f"{shield_server.base_url}/")
    page.fill("input[name=color]", "#ff00ff")
    page.set_input_files("#picker", str(clip))
    page.wait_for_function("document.querySelector('.result .summary').textContent.includes('%')", timeout=60_000)
    page.locator(".result.done").wait_for(timeout=180_000)
    link = page.locator(".result.done .download")
    assert link.get_attribute("download") == "family-protected.mp4"
    out = tmp_path / "out.mp4"
    out.write_bytes(downloaded(page, link))
    frames = decode_frames(out)
    assert len(frames) == len(truth)
    shares = [magenta_share(rgb, box) for rgb, box in zip(frames, truth)]
    assert min(shares) >= 0.95, shares
    assert GPS.encode() not in out.read_bytes()
    assert page.locator(".result.done video").count() == 1
