"""The extension's review dialog in real headless Chromium with the real server: a 12 px face is covered at high
zoom and exactly that area is replaced in what the site got; an edit re-protects from the faces the server
already found; Upload stays disabled, saying why, until the protected photo answering the person's choices is
there."""

import base64
import threading

import numpy as np
import pytest

from browser import RelayServer, chromium_available
from photos import ASTRONAUT_FACE, core, decode, encode, missed_face_scene, small_face_scene
from test_extension import (assert_nothing_uploaded, browser, browsers, only_upload, open_site,  # noqa: F401
                            paired, playwright_driver, shield, site, write_file)
from test_extension_review import dialog, filled, isolated_world, upload

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium")

SMALL_FACE = (1500, 1000, 1512, 1012)
PANEL = "#photo-shield-notice [data-kind=review]"
UPLOAD = "#photo-shield-notice button[data-choice=upload]"


def zoom(page) -> float:
    return float(page.locator(".shield-editor").get_attribute("data-zoom"))


def on_screen(page, x, y):
    stage = page.locator(".shield-editor-stage").bounding_box()
    return stage["x"] + x * zoom(page), stage["y"] + y * zoom(page)


def test_cover_a_12px_face_at_high_zoom_in_review(browser, site, shield, tmp_path):
    scene = small_face_scene(2400, 1800, 100, SMALL_FACE)
    page = open_site(browser, site, paired(shield, review=True))
    page.set_input_files("#js-input", write_file(tmp_path, "crowd.png", encode(scene, "PNG")))
    dialog(page)
    fit = zoom(page)
    page.locator(".shield-editor-view").focus()
    page.keyboard.press("+")
    assert zoom(page) == pytest.approx(2 * fit, rel=1e-3)
    page.locator(".shield-editor-zoom-fit").click()
    assert zoom(page) == pytest.approx(fit, rel=1e-3)
    page.locator(".shield-editor-zoom-in").click()
    page.locator(".shield-editor-zoom-out").click()
    assert zoom(page) == pytest.approx(fit, rel=1e-3)
    x0, y0, x1, y1 = SMALL_FACE
    page.mouse.move(*on_screen(page, (x0 + x1) / 2, (y0 + y1) / 2))
    for _ in range(8):
        page.mouse.wheel(0, -300)
    page.wait_for_function("() => document.getElementById('photo-shield-notice').shadowRoot"
                           ".querySelector('.shield-editor').dataset.zoom === '8.0000'")
    page.mouse.move(*on_screen(page, x0 + 0.5, y0 + 0.5))
    page.mouse.down()
    page.mouse.move(*on_screen(page, x1 - 0.5, y1 - 0.5), steps=6)
    page.mouse.up()
    assert page.locator(PANEL).get_attribute("data-state") == "protecting"
    dialog(page)
    assert page.locator(".shield-region").count() == 1
    upload(page)
    pixels = decode(only_upload(site).files()[0].data)
    assert filled(pixels[y0:y1, x0:x1]) == 1.0
    assert filled(pixels[core((ASTRONAUT_FACE[0] + 100, ASTRONAUT_FACE[1] + 100, ASTRONAUT_FACE[2] + 100,
                               ASTRONAUT_FACE[3] + 100))]) > 0.97
    rest = np.ones(scene.shape[:2], bool)
    rest[:700, :700] = False  # the astronaut's head, replaced with its margin
    rest[y0:y1, x0:x1] = False
    assert np.array_equal(pixels[rest], scene[rest])  # nothing else touched: exactly that area
    page.close()


def test_an_edit_in_review_reuses_the_faces_found(browser, site, shield):
    """Asked as the dialog asks, the worker's re-protection after an added region and an untick comes from the
    server.s cached faces (same boxes)."""
    scene, missed = missed_face_scene()
    scene[0, 0] = (7, 7, 7)  # bytes no other test sends
    photo = encode(scene, "PNG")
    page = open_site(browser, site, paired(shield, review=True, mode="faces"))
    ask = isolated_world(page)
    opened = ask({"type": "protect", "name": "a.png", "mime": "image/png", "size": len(photo),
                  "data": base64.b64encode(photo).decode()})
    render = {"type": "reviewRender", "reviewId": opened["reviewId"]}
    first = ask({**render, "regions": [], "keep": []})["report"]
    assert first["detections_reused"] is False
    added = ask({**render, "regions": [list(missed)], "keep": []})["report"]
    kept = ask({**render, "regions": [list(missed)], "keep": [first["detections"][0]["box"]]})["report"]
    assert added["detections_reused"] is True and kept["detections_reused"] is True
    assert added["detections"] == first["detections"] and added["added"] == [list(missed)]
    assert kept["kept"] == [first["detections"][0]["box"]]
    ask({"type": "reviewFinish", "reviewId": opened["reviewId"], "choice": "cancel"})
    page.close()


class GatedServer(RelayServer):
    """In front of the real server: each photo waits until the test lets it through."""

    def __init__(self, shield):
        self.arrived = threading.Semaphore(0)
        self.gate = threading.Semaphore(0)
        super().__init__(shield)

    def answer_first(self, method, path):
        if method == "POST" and path.startswith("/v1/protect"):
            self.arrived.release()
            self.gate.acquire(timeout=30)
        return None


def assert_waiting(page):
    """Protecting: Upload is disabled and says so, and a real click on it sends nothing."""
    assert page.locator(PANEL).get_attribute("data-state") == "protecting"
    button = page.locator(UPLOAD)
    assert button.is_disabled() and button.inner_text() == "Protecting…"
    button.click(force=True)


def test_upload_waits_for_the_protected_photo(browser, site, shield, tmp_path):
    front = GatedServer(shield)
    try:
        scene, missed = missed_face_scene()
        page = open_site(browser, site, {**paired(shield, review=True), "port": front.port})
        page.set_input_files("#js-input", write_file(tmp_path, "scene.png", encode(scene, "PNG")))
        assert front.arrived.acquire(timeout=20)
        dialog(page, state="protecting")
        assert_waiting(page)
        front.gate.release()
        dialog(page)
        assert page.locator(UPLOAD).is_enabled() and page.locator(UPLOAD).inner_text() == "Upload"

        x0, y0, x1, y1 = missed
        page.mouse.move(*on_screen(page, x0 - 2, y0 - 2))
        page.mouse.down()
        page.mouse.move(*on_screen(page, x1 + 2, y1 + 2), steps=6)
        page.mouse.up()
        assert front.arrived.acquire(timeout=20)
        assert_waiting(page)
        assert_nothing_uploaded(site, 0.5)
        front.gate.release()
        dialog(page)
        upload(page)
        pixels = decode(only_upload(site).files()[0].data)
        assert filled(pixels[y0:y1, x0:x1]) > 0.99  # the answer to the latest choices, not the first preview
        page.close()
    finally:
        for _ in range(4):
            front.gate.release()
        front.stop()
