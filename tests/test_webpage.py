"""The local web page in headless Chromium: pick a photo, see it protected, download it."""

import base64
import os
import re

import numpy as np
import pytest

from photos import ASTRONAUT_FACE, astronaut, core, decode, encode

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
