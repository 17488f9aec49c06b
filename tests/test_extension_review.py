"""The extension's review dialog (setting `review`): the web page's editor in real headless Chromium, with the
real extension and a real `shield serve`. Judged by what the loopback test site received: regions drawn over a
face the detector missed are replaced, a detection is left as it is only where the profile allows it, and
the service worker refuses what the profile forbids even when asked directly.
"""

import base64
import io
import json
import socket
import urllib.request

import numpy as np
import pytest
from PIL import Image

from browser import EXTENSION_ID, chromium_available, drag_region
from photos import ASTRONAUT_FACE, core, decode, encode, missed_face_scene
from test_extension import (ASTRONAUT, FILL, assert_nothing_uploaded, assert_protected,  # noqa: F401 (fixtures)
                            astronaut_png, browser, browsers, only_upload, open_site, options_page, paired,
                            playwright_driver, shield, site, write_file)

pytestmark = pytest.mark.skipif(not chromium_available(), reason="needs /usr/bin/chromium")


def filled(part) -> float:
    """Share of these pixels that carry the test's magenta fill."""
    return float((np.abs(part[..., :3].astype(np.int16) - np.array(FILL)) < 40).all(axis=-1).mean())


def box(pixels, x0, y0, x1, y1):
    return pixels[y0:y1, x0:x1]


def dialog(page, state="ready", says=None):
    panel = page.locator(f"#photo-shield-notice [data-kind=review][data-state={state}]")
    panel.wait_for(timeout=20000)
    if says:
        page.wait_for_function("""(words) => document.getElementById('photo-shield-notice').shadowRoot
            .querySelector('[data-kind=review] .status').textContent.includes(words)""", arg=says, timeout=20000)
    return panel


def pick_scene(page, tmp_path):
    scene, missed = missed_face_scene()
    page.set_input_files("#js-input", write_file(tmp_path, "scene.png", encode(scene, "PNG")))
    dialog(page, says="0 regions added")
    return scene, missed


def upload(page):
    page.locator("#photo-shield-notice button[data-choice=upload]").click()


def test_region_drawn_over_a_missed_face_is_replaced_in_the_upload(browser, site, shield, tmp_path):
    page = open_site(browser, site, paired(shield, review=True))
    scene, missed = pick_scene(page, tmp_path)
    assert page.locator(".shield-detection").count() == 1  # the astronaut; the painted-over face is missed
    # Playwright's locators reach into the dialog's shadow root.
    drag_region(page, page.locator(".shield-editor-stage").bounding_box(), 800, missed, pad=3)
    dialog(page, says="1 region added")
    assert page.locator(".shield-region").count() == 1
    upload(page)
    (photo,) = only_upload(site).files()
    pixels = decode(photo.data)
    assert pixels.shape[:2] == (512, 800)
    assert filled(box(pixels, *missed)) > 0.99, "the region drawn in review is not replaced in what the site got"
    assert filled(pixels[core(ASTRONAUT_FACE)]) > 0.97
    page.close()


def test_keyboard_region_and_undo(browser, site, shield, tmp_path):
    page = open_site(browser, site, paired(shield, review=True))
    scene, _ = pick_scene(page, tmp_path)
    page.locator(".shield-editor-add").click()  # a region in the middle: [320, 204, 480, 308]
    dialog(page, says="1 region added")
    page.keyboard.press("ArrowRight")  # 8 px (1% of the longer side)
    page.keyboard.press("Shift+ArrowDown")
    page.wait_for_function("""() => document.getElementById('photo-shield-notice').shadowRoot
        .querySelector('[data-kind=review]').dataset.state === 'protecting'""", timeout=5000)
    dialog(page, says="1 region added")
    upload(page)
    pixels = decode(only_upload(site).files()[0].data)
    assert filled(box(pixels, 328, 204, 488, 316)) > 0.99
    assert np.array_equal(pixels[204:316, 320:328], scene[204:316, 320:328])
    page.close()


@pytest.mark.parametrize("profile", ["unlocked", "untick-off", "locked"])
def test_untick_a_detection_only_where_allowed(browser, site, shield, tmp_path, profile):
    settings = paired(shield, review=True, mode="faces", **({"reviewUntick": False} if profile == "untick-off" else {}))
    page = open_site(browser, site, settings)
    if profile == "locked":
        options = options_page(browser)
        assert options.evaluate("chrome.runtime.sendMessage({ type: 'setPin', newPin: '2468' })")["ok"]
        options.close()
        page.reload()
    scene, _ = pick_scene(page, tmp_path)
    page.locator(".shield-detection").click(force=True)  # a real click, also on a face that may not be unticked
    if profile == "unlocked":
        dialog(page, says="1 face left as it is")
        assert page.locator(".shield-detection.shield-kept").count() == 1
    else:
        assert page.locator(".shield-detection").get_attribute("aria-disabled") == "true"
        page.wait_for_timeout(500)
        assert page.locator("#photo-shield-notice [data-kind=review]").get_attribute("data-state") == "ready"
    upload(page)
    pixels = decode(only_upload(site).files()[0].data)
    if profile == "unlocked":
        assert np.array_equal(pixels[:, :512], scene[:, :512])  # left pixel for pixel as it was
    else:
        assert filled(pixels[core(ASTRONAUT_FACE)]) > 0.97
    page.close()


def isolated_world(page):
    """A CDP handle on the extension's content-script world in this page, to talk to the worker as the
    content scripts do (a page script cannot; this stands for a content script that asks too much)."""
    cdp = page.context.new_cdp_session(page)
    contexts = []
    cdp.on("Runtime.executionContextCreated", lambda event: contexts.append(event["context"]))
    cdp.send("Runtime.enable")
    page.wait_for_timeout(200)
    worlds = [c for c in contexts if c.get("auxData", {}).get("type") == "isolated" and EXTENSION_ID in c["origin"]]
    assert worlds, contexts
    world = worlds[0]  # any frame's will do: a review belongs to the frame that asks

    def ask(message: dict) -> dict:
        answer = cdp.send("Runtime.evaluate", {
            "expression": f"chrome.runtime.sendMessage({json.dumps(message)})",
            "contextId": world["id"], "awaitPromise": True, "returnByValue": True})
        assert "exceptionDetails" not in answer, answer
        return answer["result"]["value"]

    return ask


@pytest.mark.parametrize("profile", ["locked", "block-faces"])
def test_worker_refuses_what_the_profile_forbids(browser, site, shield, profile):
    """Asked directly, the worker refuses to untick on a locked profile, and with faceAction=block a kept
    face still counts as a face found (the report's `faces` counts only the replaced ones)."""
    extra = {"faceAction": "block"} if profile == "block-faces" else {}
    page = open_site(browser, site, paired(shield, review=True, mode="faces", **extra))
    if profile == "locked":
        options = options_page(browser)
        assert options.evaluate("chrome.runtime.sendMessage({ type: 'setPin', newPin: '2468' })")["ok"]
        options.close()
    ask = isolated_world(page)
    data = base64.b64encode(astronaut_png()).decode()
    opened = ask({"type": "protect", "name": "a.png", "mime": "image/png", "size": len(astronaut_png()), "data": data})
    assert opened["action"] == "review"
    if profile == "locked":
        assert opened["allowUntick"] is False and opened["allowAdd"] is True
        first = ask({"type": "reviewRender", "reviewId": opened["reviewId"], "regions": [], "keep": []})
        assert first["action"] == "preview"
        face = first["report"]["detections"][0]["box"]
        refused = ask({"type": "reviewRender", "reviewId": opened["reviewId"], "regions": [], "keep": [face]})
        assert refused == {"action": "refused", "reason": "review_refused"}
        done = ask({"type": "reviewFinish", "reviewId": opened["reviewId"], "choice": "upload"})
        assert done["action"] == "protected"
        assert_protected(base64.b64decode(done["data"]))
    else:
        # The first protection already finds the face: blocked, the review ends.
        first = ask({"type": "reviewRender", "reviewId": opened["reviewId"], "regions": [], "keep": []})
        assert first["action"] == "blocked" and first["reason"] == "faces_found"
        again = ask({"type": "protect", "name": "a.png", "mime": "image/png", "size": len(astronaut_png()),
                     "data": data})
        kept = ask({"type": "reviewRender", "reviewId": again["reviewId"], "regions": [],
                    "keep": [detection_box(shield)]})
        assert kept["action"] == "blocked" and kept["reason"] == "faces_found"
    assert_nothing_uploaded(site, 0.3)
    page.close()


def detection_box(shield) -> list:
    """The astronaut's detection as the server reports it (the box a `keep` must name)."""
    request = urllib.request.Request(f"http://127.0.0.1:{shield.port}/v1/protect", data=astronaut_png(),
                                     headers={"X-Shield-Token": shield.token}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.headers["X-Shield-Report"])["detections"][0]["box"]


def test_protecting_state_shows_before_the_server_answers(browser, site):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        page = open_site(browser, site, {"port": silent.getsockname()[1], "token": "x", "timeoutSeconds": 3,
                                         "review": True})
        page.set_input_files("#js-input", ASTRONAUT)
        waiting = dialog(page, state="protecting", says="Protecting astronaut.png")
        assert waiting.locator(".waiting").is_visible()
        assert waiting.locator("button[data-choice=upload]").is_disabled()
        # No answer in time: the dialog gives way to the notice saying why, and nothing is sent.
        page.locator("#photo-shield-notice .panel[data-reason=timeout]").wait_for(timeout=15000)
        assert page.locator("#photo-shield-notice [data-kind=review]").count() == 0
        assert_nothing_uploaded(site, 0.5)
        page.close()
    finally:
        silent.close()


def server_output(shield, **params) -> bytes:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    request = urllib.request.Request(f"http://127.0.0.1:{shield.port}/v1/protect?{query}", data=astronaut_png(),
                                     headers={"X-Shield-Token": shield.token}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.read()


def test_sticker_fill_arrives(browser, site, shield):
    page = open_site(browser, site, paired(shield, fill="sticker", sticker="cat"))
    page.set_input_files("#js-input", ASTRONAUT)
    photo = only_upload(site).files()[0].data
    common = {"color": "ff00ff", "margin": "0.3", "format": "same", "mode": "faces", "fill": "sticker"}
    assert photo == server_output(shield, **common, sticker="cat")
    assert photo != server_output(shield, **common, sticker="smile")
    assert Image.open(io.BytesIO(photo)).size == (512, 512)
    page.close()
