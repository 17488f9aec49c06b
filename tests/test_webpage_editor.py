"""The editor's zoom and pan on the local web page, in headless Chromium with a real server: a 12 px face in a
12 MP photo is covered at high zoom (wheel, buttons, keys), the server replaces exactly that area, and the
edit is answered from the faces found the first time (no second detection)."""

import json

import numpy as np
import pytest

from photos import decode, encode, small_face_scene
from test_webpage import browser, downloaded, settle  # noqa: F401 (browser: a fixture)

SMALL_FACE = (2600, 1800, 2612, 1812)  # 12 px, far too small for the detector at this size
VIEW = ".result .shield-editor-view"
STAGE = ".result .shield-editor-stage"


@pytest.fixture(scope="module")
def large_scene():
    scene = small_face_scene(4000, 3000, 200, SMALL_FACE)
    return scene, encode(scene, "PNG")


def zoom(page) -> float:
    return float(page.locator(".result .shield-editor").get_attribute("data-zoom"))


def on_screen(page, x, y) -> tuple[float, float]:
    """Where the photo pixel (x, y) is on the screen now."""
    stage = page.locator(STAGE).bounding_box()
    scale = zoom(page)
    return stage["x"] + x * scale, stage["y"] + y * scale


def reports(page) -> list[dict]:
    """The X-Shield-Report of every answer the page gets from now on."""
    seen = []
    page.on("response", lambda response: "/v1/protect" in response.url and response.status == 200 and seen.append(
        json.loads(response.headers["x-shield-report"])))
    return seen


def open_photo(page, base_url, photo, name="crowd.png"):
    page.goto(f"{base_url}/")
    page.set_input_files("#picker", files=[{"name": name, "mimeType": "image/png", "buffer": photo}])
    settle(page)
    page.wait_for_function("document.querySelector('.result .after img').naturalWidth === 4000", timeout=30_000)
    page.locator(VIEW).scroll_into_view_if_needed()


def test_cover_a_12px_face_at_high_zoom(shield_server, browser, large_scene):  # noqa: F811
    scene, photo = large_scene
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        answers = reports(page)
        open_photo(page, shield_server.base_url, photo)
        first = answers[-1]
        assert first["detections_reused"] is False and first["faces"] == 1
        untouched = decode(downloaded(page, page.locator(".result .download")))
        x0, y0, x1, y1 = SMALL_FACE
        assert np.array_equal(untouched[y0:y1, x0:x1], scene[y0:y1, x0:x1])  # the detector missed it

        fit = zoom(page)
        assert fit < 0.2  # the whole photo in sight: the face is under 3 screen pixels
        assert page.locator(".result .shield-editor-zoom-out").is_disabled()
        page.locator(VIEW).focus()
        page.keyboard.press("+")
        assert zoom(page) == pytest.approx(2 * fit, rel=1e-3)
        page.locator(".result .shield-editor-zoom-in").click()
        assert zoom(page) == pytest.approx(4 * fit, rel=1e-3)
        page.locator(VIEW).focus()
        page.keyboard.press("-")
        assert zoom(page) == pytest.approx(2 * fit, rel=1e-3)
        page.keyboard.press("0")
        assert zoom(page) == pytest.approx(fit, rel=1e-3)

        # The wheel zooms where the pointer is: the face stays under it, up to 8 screen pixels per photo pixel.
        face_x, face_y = on_screen(page, (x0 + x1) / 2, (y0 + y1) / 2)
        page.mouse.move(face_x, face_y)
        for _ in range(8):
            page.mouse.wheel(0, -300)
        page.wait_for_function(f"document.querySelector('{STAGE}').getBoundingClientRect().width >= 4000 * 7.99")
        assert zoom(page) == pytest.approx(8)
        assert page.locator(".result .shield-editor-zoom-in").is_disabled()
        left, top = on_screen(page, x0, y0)
        right, bottom = on_screen(page, x1, y1)
        assert left < face_x < right and top < face_y < bottom and right - left == pytest.approx(96)

        # Drag from the middle of the face's first pixel to the middle of its last: exactly its 12x12 pixels.
        page.mouse.move(*on_screen(page, x0 + 0.5, y0 + 0.5))
        page.mouse.down()
        page.mouse.move(*on_screen(page, (x0 + x1) / 2, (y0 + y1) / 2), steps=4)
        page.mouse.move(*on_screen(page, x1 - 0.5, y1 - 0.5), steps=4)
        page.mouse.up()
        settle(page, "1 region added")
        edit = answers[-1]
        assert edit["added"] == [list(SMALL_FACE)]
        assert edit["detections_reused"] is True and edit["detections"] == first["detections"]
        assert zoom(page) == pytest.approx(8)  # the new preview keeps the zoom

        covered = decode(downloaded(page, page.locator(".result .download")))
        assert (covered[y0:y1, x0:x1] == 0).all()
        expected = untouched.copy()
        expected[y0:y1, x0:x1] = 0
        assert np.array_equal(covered, expected)  # that area and nothing else changed

        # Zoomed in, an arrow key moves the region by one photo pixel (1% of the photo when shown whole).
        shown = page.locator(".result").get_attribute("data-shown")
        page.locator(".result .shield-region").focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function("(before) => document.querySelector('.result').dataset.shown !== before", arg=shown,
                               timeout=30_000)
        settle(page)
        assert answers[-1]["added"] == [[x0 + 1, y0, x1 + 1, y1]] and answers[-1]["detections_reused"] is True
    finally:
        page.close()


def test_pinch_zooms_and_draws_nothing(shield_server, browser, large_scene):  # noqa: F811
    _, photo = large_scene
    context = browser.new_context(has_touch=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        open_photo(page, shield_server.base_url, photo)
        shown = page.locator(".result").get_attribute("data-shown")
        fit = zoom(page)
        view = page.locator(VIEW).bounding_box()
        cx, cy = view["x"] + view["width"] / 2, view["y"] + view["height"] / 2
        photo_point = ((cx - page.locator(STAGE).bounding_box()["x"]) / fit,
                       (cy - page.locator(STAGE).bounding_box()["y"]) / fit)
        cdp = context.new_cdp_session(page)
        for kind, spread in [("touchStart", 20), ("touchMove", 40), ("touchMove", 60), ("touchMove", 80)]:
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [
                {"x": cx - spread, "y": cy, "id": 1}, {"x": cx + spread, "y": cy, "id": 2}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        assert zoom(page) == pytest.approx(4 * fit, rel=0.02)
        # The photo pixel between the fingers stayed between them.
        stage = page.locator(STAGE).bounding_box()
        assert abs(stage["x"] + photo_point[0] * zoom(page) - cx) < 2
        assert abs(stage["y"] + photo_point[1] * zoom(page) - cy) < 2
        page.wait_for_timeout(300)
        assert page.locator(".result .shield-region").count() == 0
        assert page.locator(".result").get_attribute("data-shown") == shown  # nothing was sent
    finally:
        context.close()


def test_pan_with_arrows_the_hand_tool_and_the_middle_button(shield_server, browser, large_scene):  # noqa: F811
    _, photo = large_scene
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        open_photo(page, shield_server.base_url, photo)
        shown = page.locator(".result").get_attribute("data-shown")
        page.locator(".result .shield-editor-zoom-in").click()
        page.locator(".result .shield-editor-zoom-in").click()
        view = page.locator(VIEW).bounding_box()
        before = page.locator(STAGE).bounding_box()
        page.locator(VIEW).focus()
        page.keyboard.press("ArrowRight")  # shows more of the right: the photo moves left by a fifth
        after = page.locator(STAGE).bounding_box()
        assert after["x"] == pytest.approx(before["x"] - view["width"] / 5, abs=1)

        def drag(dx, dy, button="left"):
            start = page.locator(STAGE).bounding_box()
            page.mouse.move(view["x"] + view["width"] / 2, view["y"] + view["height"] / 2)
            page.mouse.down(button=button)
            page.mouse.move(view["x"] + view["width"] / 2 + dx, view["y"] + view["height"] / 2 + dy, steps=5)
            page.mouse.up(button=button)
            end = page.locator(STAGE).bounding_box()
            return end["x"] - start["x"], end["y"] - start["y"]

        hand = page.locator(".result .shield-editor-move")
        hand.click()
        assert hand.get_attribute("aria-pressed") == "true"
        assert drag(-60, -40) == (pytest.approx(-60, abs=1), pytest.approx(-40, abs=1))
        hand.click()
        assert drag(50, 30, button="middle") == (pytest.approx(50, abs=1), pytest.approx(30, abs=1))
        page.wait_for_timeout(300)
        assert page.locator(".result .shield-region").count() == 0
        assert page.locator(".result").get_attribute("data-shown") == shown  # nothing was sent
        for name in ("zoom-in", "zoom-out", "zoom-fit", "move"):  # every button has a name a screen reader says
            assert page.locator(f".result .shield-editor-{name}").get_attribute("aria-label")
    finally:
        page.close()


def test_french_zoom_buttons(shield_server, browser, large_scene):  # noqa: F811
    _, photo = large_scene
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    try:
        open_photo(page, shield_server.base_url, photo)
        assert page.locator(".result .shield-editor-zoom-in").get_attribute("aria-label") == "Zoomer"
        assert page.locator(".result .shield-editor-zoom-fit").inner_text() == "Photo entière"
        assert "molette" in page.locator(".result .shield-editor").inner_text()
    finally:
        context.close()
