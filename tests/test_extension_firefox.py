"""The extension in Firefox ESR (Debian's firefox-esr, driven by npm puppeteer-core through tests/firefox/):
the core upload paths protected when paired, blocked with a notice when the server is stopped, a real clip
protected through the server's video jobs, videos kept from the server blocked on a locked profile, and withdrawn site access shown on the toolbar badge and in the extension's pages (the rest of that: test_extension_access_firefox.py).
All scenarios run in one Firefox (its start is the slow part); each has its own loopback test site.
"""

import base64
import io
import os

import numpy as np
import pytest
from PIL import Image

from browser import UploadSite
from photos import encode, small_face_scene
from firefox.driver import firefox_available, run_scenarios
from test_extension import ASTRONAUT, assert_protected, astronaut_png, closed_port, paired
from test_extension_files import webm_bytes
from test_video import assert_every_face_replaced
from videos import GPS, make_clip

pytestmark = pytest.mark.skipif(not firefox_available() and not os.environ.get("SHIELD_REQUIRE_BROWSER"),
                                reason="needs /usr/bin/firefox-esr, node and npm puppeteer-core (scripts/test.sh)")

PHOTO_B64 = base64.b64encode(astronaut_png()).decode()
VIDEO = webm_bytes()
UNTIL_PROTECTED = "document.getElementById('{id}').files.length === 1 && " \
                  "document.getElementById('{id}').files[0].lastModified > Date.now() - 60000"
BADGE_IS = """(async () => {{ for (let i = 0; i < 100; i++) {{
    if (await chrome.action.getBadgeText({{}}) === '{text}') return true;
    await new Promise((r) => setTimeout(r, 100)); }} return chrome.action.getBadgeText({{}}); }})()"""


REVIEW_SAYS = """(() => {{ const panel = document.getElementById('photo-shield-notice')?.shadowRoot
    ?.querySelector('[data-kind=review]'); return panel?.dataset.state === 'ready' &&
    panel.querySelector('.status').textContent.includes('{words}'); }})()"""


EDITOR = "document.getElementById('photo-shield-notice').shadowRoot.querySelector('.shield-editor')"
ON_SCREEN = f"""(() => {{{{ const editor = {EDITOR}, zoom = Number(editor.dataset.zoom);
    const stage = editor.querySelector('.shield-editor-stage').getBoundingClientRect();
    return [{{points}}].map((v, i) => (i % 2 ? stage.y : stage.x) + v * zoom); }}}})()"""  # photo pixels -> screen
ZOOM_FACE = (1500, 1000, 1512, 1012)  # a 12 px face in a 2400x1800 photo, covered at high zoom in review


def status_is(prefix: str) -> str:
    return f"document.getElementById('status').textContent.startsWith('{prefix}')"


def scenarios(shield, sites, video_path, clip_path, crowd_path):
    x0, y0, x1, y1 = ZOOM_FACE
    stopped = {"port": closed_port(), "token": "x"}
    return {
        "input": (paired(shield), [
            {"goto": sites["input"].origin + "/"},
            {"upload": "#js-input", "files": [ASTRONAUT]},
            {"waitFor": status_is("uploaded:input"), "timeoutMs": 30000},
        ]),
        "form": (paired(shield), [
            {"goto": sites["form"].origin + "/"},
            {"upload": "#form-input", "files": [ASTRONAUT]},
            {"waitFor": UNTIL_PROTECTED.format(id="form-input"), "timeoutMs": 30000},
            {"click": "#form-submit"},
            {"sleep": 1500},
        ]),
        "fetch": (paired(shield), [
            {"goto": sites["fetch"].origin + "/"},
            {"evaluate": f"(window.pageUpload('fetch-formdata', '{PHOTO_B64}', 'image/png', 'made.png'), true)"},
            {"waitFor": status_is("uploaded:fetch-formdata"), "timeoutMs": 30000},
        ]),
        "stopped-input": (stopped, [
            {"goto": sites["stopped-input"].origin + "/"},
            {"upload": "#js-input", "files": [ASTRONAUT]},
            {"notice": True},
            {"evaluate": "document.getElementById('js-input').files.length"},
        ]),
        "stopped-fetch": (stopped, [
            {"goto": sites["stopped-fetch"].origin + "/"},
            {"evaluate": f"(window.pageUpload('fetch-formdata', '{PHOTO_B64}', 'image/png', 'made.png'), true)"},
            {"notice": True},
            {"answerNotice": "dismiss"},
            {"waitFor": status_is("error:fetch-formdata")},
        ]),
        "protected-video": (paired(shield), [
            {"goto": sites["protected-video"].origin + "/"},
            {"upload": "#js-input", "files": [clip_path]},
            {"waitFor": status_is("uploaded:input"), "timeoutMs": 90000},
        ]),
        "locked-video": (paired(shield, videoAction="ask"), [
            {"extension": "chrome.runtime.sendMessage({ type: 'setPin', newPin: '2468' })"},
            {"goto": sites["locked-video"].origin + "/"},
            {"upload": "#js-input", "files": [video_path]},
            {"notice": True},
        ]),
        "asked-video": (paired(shield, videoAction="ask"), [
            {"goto": sites["asked-video"].origin + "/"},
            {"upload": "#js-input", "files": [video_path]},
            {"notice": True},
            {"answerNotice": "original"},
            {"waitFor": status_is("uploaded:input"), "timeoutMs": 30000},
        ]),
        # Review: the shared editor loads in Firefox's content scripts; a region added there is in the upload.
        "review": ({**paired(shield), "review": True}, [
            {"goto": sites["review"].origin + "/"},
            {"upload": "#js-input", "files": [ASTRONAUT]},
            {"waitFor": REVIEW_SAYS.format(words="0 regions added"), "timeoutMs": 30000},
            {"click": "pierce/.shield-editor-add"},
            {"waitFor": REVIEW_SAYS.format(words="1 region added"), "timeoutMs": 30000},
            {"answerNotice": "upload"},
            {"waitFor": status_is("uploaded:input"), "timeoutMs": 30000},
        ]),
        # Zoomed in by keys, the whole-photo button and the wheel, a region drawn over a 12 px face.
        "review-zoom": ({**paired(shield), "review": True}, [
            {"goto": sites["review-zoom"].origin + "/"},
            {"upload": "#js-input", "files": [crowd_path]},
            {"waitFor": f"{EDITOR}?.querySelector('img').naturalWidth === 2400 && "
                        f"{EDITOR}.closest('[data-kind=review]').dataset.state === 'ready'", "timeoutMs": 30000},
            {"evaluate": f"Number({EDITOR}.dataset.zoom)"},
            {"evaluate": f"({EDITOR}.querySelector('.shield-editor-view').focus(), true)"},
            {"press": "+"},
            {"evaluate": f"Number({EDITOR}.dataset.zoom)"},
            {"click": "pierce/.shield-editor-zoom-fit"},
            {"evaluate": f"Number({EDITOR}.dataset.zoom)"},
            *[{"wheel": ON_SCREEN.format(points=f"{(x0 + x1) / 2}, {(y0 + y1) / 2}"), "deltaY": -300}] * 8,
            {"waitFor": f"{EDITOR}.dataset.zoom === '8.0000'"},
            {"drag": ON_SCREEN.format(points=f"{x0 + 0.5}, {y0 + 0.5}, {x1 - 0.5}, {y1 - 0.5}")},
            {"waitFor": f"{EDITOR}.querySelectorAll('.shield-region').length === 1 && "
                        f"{EDITOR}.closest('[data-kind=review]').dataset.state === 'ready'", "timeoutMs": 30000},
            {"answerNotice": "upload"},
            {"waitFor": status_is("uploaded:input"), "timeoutMs": 30000},
        ]),
        # Last: it takes the extension's access to every site away, as a person can in about:addons.
        "access-withdrawn": (paired(shield), [
            {"extension": "chrome.action.getBadgeText({})"},
            {"extension": "chrome.permissions.remove({ origins: ['http://*/*', 'https://*/*'] })"},
            {"extension": BADGE_IS.format(text="!!")},
            {"extension": "chrome.runtime.sendMessage({ type: 'getState' }).then((s) => s.siteAccessLost)"},
            {"waitForExtension": "document.body.dataset.accessLost === 'true'"},
            {"extension": "!document.getElementById('access-lost').hidden"},
            {"extension": "chrome.action.getTitle({})"},
        ]),
    }


def crowd_scene():
    return small_face_scene(2400, 1800, 100, ZOOM_FACE)


@pytest.fixture(scope="module")
def firefox(shield_server, tmp_path_factory):
    """Runs every scenario once; each test reads its own: (step results, what its site received)."""
    video = tmp_path_factory.mktemp("firefox") / "party.webm"
    video.write_bytes(VIDEO)
    clip = video.with_name("clip.mp4")
    truth = make_clip(clip)
    crowd = video.with_name("crowd.png")
    crowd.write_bytes(encode(crowd_scene(), "PNG"))
    names = ["input", "form", "fetch", "stopped-input", "stopped-fetch", "protected-video", "locked-video",
             "asked-video", "review", "review-zoom", "access-withdrawn"]
    sites = {name: UploadSite() for name in names}
    try:
        plan = scenarios(shield_server, sites, str(video), str(clip), str(crowd))
        results = run_scenarios([{"settings": plan[name][0], "steps": plan[name][1]} for name in names], timeout=240)
        yield {name: (result, sites[name]) for name, result in zip(names, results)} | {"clip-truth": truth}
    finally:
        for site in sites.values():
            site.stop()


def no_errors(results):
    errors = [r for r in results if isinstance(r, dict) and "error" in r]
    assert not errors, errors


@pytest.mark.parametrize("name, via", [("input", "input"), ("form", "form"), ("fetch", "fetch-formdata")])
def test_paired_uploads_are_protected_in_firefox(firefox, name, via):
    results, site = firefox[name]
    no_errors(results)
    uploads = site.wait_for_uploads(1, timeout=5)
    assert [u.via for u in uploads] == [via]
    (photo,) = uploads[0].files()
    assert_protected(photo.data)


@pytest.mark.parametrize("name", ["stopped-input", "stopped-fetch"])
def test_stopped_server_blocks_with_a_notice_in_firefox(firefox, name):
    results, site = firefox[name]
    no_errors(results)
    shown = results[2]
    assert shown["reason"] == "server_unreachable" and "Photo Shield is not running on this computer" in shown["text"]
    assert "`" not in shown["text"]
    if name == "stopped-input":
        assert results[3] == 0  # the field was emptied
    assert site.uploads == []


def test_video_protected_through_the_server_in_firefox(firefox, tmp_path):
    results, site = firefox["protected-video"]
    no_errors(results)
    (sent,) = site.wait_for_uploads(1, timeout=5)[0].files()
    assert sent.filename == "clip.mp4" and sent.content_type == "video/mp4" and GPS.encode() not in sent.data
    received = tmp_path / "received.mp4"
    received.write_bytes(sent.data)
    assert_every_face_replaced(received, firefox["clip-truth"])


def test_video_is_blocked_on_a_locked_profile_in_firefox(firefox):
    results, site = firefox["locked-video"]
    no_errors(results)
    assert results[0] == {"ok": True}
    shown = results[3]
    assert shown["reason"] == "video_blocked" and "it was not protected" in shown["text"]
    assert [b["choice"] for b in shown["buttons"]] == ["dismiss"]
    assert site.uploads == []


def test_video_sent_only_when_the_person_says_so_in_firefox(firefox):
    results, site = firefox["asked-video"]
    no_errors(results)
    assert results[2]["reason"] == "video_ask"
    (sent,) = site.wait_for_uploads(1, timeout=5)[0].files()
    assert sent.filename == "party.webm" and sent.data == VIDEO


def test_withdrawn_site_access_is_shown_in_firefox(firefox):
    results, _ = firefox["access-withdrawn"]
    no_errors(results)
    before, _, badge, lost, _, banner, title = results[:7]
    assert before == "ON"
    assert badge is True, f"badge text stayed {badge!r}"
    assert lost is True and banner is True
    assert "no access to websites" in title
    # The notification and the page in front: tests/test_extension_access_firefox.py.


def test_region_added_in_review_reaches_the_site_in_firefox(firefox):
    results, site = firefox["review"]
    no_errors(results)
    (photo,) = site.wait_for_uploads(1, timeout=5)[0].files()
    assert_protected(photo.data)
    pixels = np.asarray(Image.open(io.BytesIO(photo.data)).convert("RGB"), dtype=np.int16)
    added = pixels[205:307, 205:307]  # "Add a region" puts one in the middle: [204, 204, 308, 308]
    assert (np.abs(added - np.array([255, 0, 255])) < 40).all(axis=2).mean() > 0.99


def test_small_face_covered_at_high_zoom_in_review_in_firefox(firefox):
    results, site = firefox["review-zoom"]
    no_errors(results)
    fit, doubled, back = results[3], results[6], results[8]
    assert doubled == pytest.approx(2 * fit, rel=1e-3) and back == pytest.approx(fit, rel=1e-3)
    (photo,) = site.wait_for_uploads(1, timeout=5)[0].files()
    pixels = np.asarray(Image.open(io.BytesIO(photo.data)).convert("RGB"))
    scene = crowd_scene()
    x0, y0, x1, y1 = ZOOM_FACE
    assert (pixels[y0:y1, x0:x1] == [255, 0, 255]).all()
    rest = np.ones(scene.shape[:2], bool)
    rest[:700, :700] = False  # the astronaut's head, replaced with its margin
    rest[y0:y1, x0:x1] = False
    assert np.array_equal(pixels[rest], scene[rest])  # exactly that area replaced, nothing else
