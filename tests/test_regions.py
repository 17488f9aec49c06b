"""Regions the person adds and detections they keep: API, CLI and engine, judged on the output pixels."""

import json
import subprocess
import sys
import urllib.parse
import uuid

import numpy as np
import pytest

from photos import ASTRONAUT_FACE, astronaut, core, decode, encode, missed_face_scene, oriented_jpeg
from shield_server import pipeline, redact
from shield_server.errors import BadOptions, ProtectionFailed

MAGENTA = [255, 0, 255]


@pytest.fixture(scope="module")
def scene():
    pixels, missed = missed_face_scene()
    return pixels, missed, encode(pixels, "PNG")


def query(**params) -> str:
    return urllib.parse.urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()})


def protect(server, body: bytes, **params):
    return server.request("POST", f"/v1/protect?{query(**params)}", body=body)


def rect(pixels, box):
    x0, y0, x1, y1 = box
    return pixels[y0:y1, x0:x1]


def test_the_missed_face_is_missed_by_the_detector(scene):
    """Precondition of the tests below: without a region, the painted-over face is left as it is."""
    pixels, missed, data = scene
    result = pipeline.protect(data)
    assert all(pipeline._iou(face.box, missed) == 0 for face in result.faces), "the detector found it"
    assert np.array_equal(rect(decode(result.data), missed), rect(pixels, missed))


def test_a_region_replaces_the_missed_face(shield_server, scene):
    pixels, missed, data = scene
    reply = protect(shield_server, data, fill="ff00ff", regions=[list(missed)])
    assert reply.status == 200, reply
    out = decode(reply.body)
    assert (rect(out, missed) == MAGENTA).all()
    assert (out[core(ASTRONAUT_FACE)] == MAGENTA).all()  # detection still runs
    report = json.loads(reply.headers["X-Shield-Report"])
    assert report["added"] == [list(missed)] and report["kept"] == [] and report["faces"] == 1
    assert [d["kept"] for d in report["detections"]] == [False]
    x0, y0, x1, y1 = missed  # replaced as drawn: the rectangle, nothing around it
    assert np.array_equal(out[y0 - 5:y0, x0:x1], pixels[y0 - 5:y0, x0:x1])
    assert np.array_equal(out[y0:y1, x1:x1 + 5], pixels[y0:y1, x1:x1 + 5])


def test_fractional_regions_cover_every_pixel_they_touch(shield_server, scene):
    _, missed, data = scene
    x0, y0, x1, y1 = missed
    reply = protect(shield_server, data, fill="ff00ff", regions=[[x0 + 0.5, y0 + 0.2, x1 - 0.5, y1 - 0.9]])
    assert reply.status == 200, reply
    assert (rect(decode(reply.body), missed) == MAGENTA).all()
    assert json.loads(reply.headers["X-Shield-Report"])["added"] == [list(missed)]


def test_a_kept_detection_is_left_exactly_as_it_was(shield_server, scene):
    pixels, missed, data = scene
    detected = json.loads(protect(shield_server, data).headers["X-Shield-Report"])["boxes"][0]
    reply = protect(shield_server, data, fill="ff00ff", keep=[detected], regions=[list(missed)])
    assert reply.status == 200, reply
    out = decode(reply.body)
    assert np.array_equal(out[:, :512], pixels[:, :512])  # the astronaut, every pixel as it was
    assert (rect(out, missed) == MAGENTA).all()
    report = json.loads(reply.headers["X-Shield-Report"])
    assert report["faces"] == 0 and report["boxes"] == [] and report["kept"] == [detected]
    assert report["detections"][0]["box"] == detected and report["detections"][0]["kept"] is True
    # A box drawn by hand near the detection (overlap >= 0.5) names it too.
    x0, y0, x1, y1 = detected
    near = protect(shield_server, data, keep=[[x0 + 6, y0 - 4, x1 + 3, y1 + 5]])
    assert near.status == 200 and json.loads(near.headers["X-Shield-Report"])["kept"] == [detected]


def test_regions_and_keep_as_multipart_fields(shield_server, scene):
    _, missed, data = scene
    boundary = uuid.uuid4().hex

    def part(name, value, filename=None):
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        return f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"

    body = part("regions", json.dumps([list(missed)]).encode()) + part("file", data, "x.png") + \
        f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    reply = shield_server.request("POST", "/v1/protect?color=ff00ff", body=body, headers=headers)
    assert reply.status == 200, reply
    assert (rect(decode(reply.body), missed) == MAGENTA).all()
    twice = shield_server.request("POST", f"/v1/protect?{query(regions=[list(missed)])}", body=body,
                                  headers=headers)
    assert twice.status == 400 and "more than once" in twice.json()["message"]


@pytest.mark.parametrize("params, words", [
    ({"regions": "[[1, 2, 3"}, "not valid JSON"),
    ({"regions": '{"x0": 1}'}, "JSON list"),
    ({"regions": "[[1, 2, 3]]"}, "4 numbers"),
    ({"regions": "[[1, 2, 3, 4, 5]]"}, "4 numbers"),
    ({"regions": "[5]"}, "must be a list"),
    ({"regions": '[[1, 2, "3", 4]]'}, "not a number"),
    ({"regions": "[[1, 2, true, 4]]"}, "not a number"),
    ({"regions": "[[1, 2, NaN, 4]]"}, "not valid JSON"),
    ({"regions": "[[1, 2, 1e999, 4]]"}, "not a number"),
    ({"regions": "[[1, 2, 1" + "0" * 400 + ", 4]]"}, "not a number"),
    ({"regions": "[[10, 10, 10, 20]]"}, "empty or inverted"),
    ({"regions": "[[30, 10, 20, 20]]"}, "empty or inverted"),
    ({"regions": "[[-1, 10, 20, 20]]"}, "outside the 800x512 photo"),
    ({"regions": "[[700, 400, 801, 500]]"}, "outside the 800x512 photo"),
    ({"regions": "[[700, 400, 790, 513]]"}, "outside the 800x512 photo"),
    ({"regions": json.dumps([[1, 1, 2, 2]] * (pipeline.MAX_REGIONS + 1))}, "at most 200"),
    ({"keep": json.dumps([[1, 1, 2, 2]] * (pipeline.MAX_REGIONS + 1))}, "at most 200"),
    ({"keep": "[[600, 10, 700, 100]]"}, "matches no detected face"),
    ({"keep": "[[1, 2, 3]]"}, "4 numbers"),
    ({"fill": "sticker", "sticker": "skull"}, "Unknown sticker"),
])
def test_bad_regions_and_keep_get_a_clear_400(shield_server, scene, params, words):
    reply = shield_server.request("POST", f"/v1/protect?{urllib.parse.urlencode(params)}", body=scene[2])
    assert reply.status == 400, reply
    assert reply.json()["error"] == "bad_options" and words in reply.json()["message"]
    assert shield_server.request("GET", "/v1/health").status == 200


def test_boxes_on_the_edges_are_accepted(shield_server, scene):
    reply = protect(shield_server, scene[2], fill="ff00ff", regions=[[0, 0, 10, 10], [790, 502, 800, 512]])
    assert reply.status == 200, reply
    out = decode(reply.body)
    assert (out[:10, :10] == MAGENTA).all() and (out[502:, 790:] == MAGENTA).all()


def test_detect_reports_the_choices(shield_server, scene):
    _, missed, data = scene
    first = shield_server.request("POST", "/v1/detect", body=data).json()
    detected = first["faces"][0]["box"]
    reply = shield_server.request("POST", f"/v1/detect?{query(keep=[detected], regions=[list(missed)])}", body=data)
    assert reply.status == 200, reply
    body = reply.json()
    assert body["kept"] == [detected] and body["added"] == [list(missed)] and body["faces"][0]["kept"] is True
    bad = shield_server.request("POST", f"/v1/detect?{query(regions=[[0, 0, 900, 10]])}", body=data)
    assert bad.status == 400


def test_regions_are_in_pixels_of_the_upright_photo(shield_server, scene):
    pixels, missed, _ = scene
    stored_sideways = oriented_jpeg(pixels, orientation=6)  # stored 512 wide, 800 high; shown 800x512
    reply = protect(shield_server, stored_sideways, fill="ff00ff", format="png", regions=[list(missed)])
    assert reply.status == 200, reply
    out = decode(reply.body)
    assert out.shape[:2] == (512, 800) and (rect(out, missed) == MAGENTA).all()


def test_regions_apply_to_every_frame_of_an_animation(shield_server, scene):
    pixels, missed, _ = scene
    from PIL import Image
    import io

    frames = [Image.fromarray(pixels), Image.fromarray(pixels[:, ::-1].copy())]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    reply = protect(shield_server, out.getvalue(), fill="ff00ff", regions=[list(missed)])
    assert reply.status == 200, reply
    shown = Image.open(io.BytesIO(reply.body))
    assert shown.n_frames == 2
    for index in range(2):
        shown.seek(index)
        assert (rect(np.array(shown.convert("RGB")), missed) == MAGENTA).all()


@pytest.mark.parametrize("sticker", sorted(redact.STICKERS))
def test_sticker_fill_keeps_no_original_pixel(sticker, scene):
    """The same sticker over two different photos gives the same pixels: nothing of either photo is left in it."""
    pixels, missed, data = scene
    options = pipeline.ProtectOptions(fill="sticker", sticker=sticker, regions=(missed,))
    first = decode(pipeline.protect(data, options).data)
    second = decode(pipeline.protect(encode(255 - pixels, "PNG"), options).data)
    assert np.array_equal(rect(first, missed), rect(second, missed))
    assert len(np.unique(rect(first, missed).reshape(-1, 3), axis=0)) >= 2  # a drawing, not a flat colour
    face = first[core(ASTRONAUT_FACE)].reshape(-1, 3)
    assert (face[:, None, :] == np.array(astronaut()[core(ASTRONAUT_FACE)]).reshape(-1, 3)[:, None, :]).all(-1).mean() < 0.01


def test_the_verify_step_checks_sticker_and_region_pixels(monkeypatch, scene):
    """A fill that leaves one pixel of a region behind is caught: the photo is refused, not released."""
    _, missed, data = scene
    real_fill = redact.fill_pixels

    def leaky_fill(frame, mask, values):
        before = frame[missed[1], missed[0]].copy()
        real_fill(frame, mask, values)
        frame[missed[1], missed[0]] = before

    monkeypatch.setattr(redact, "fill_pixels", leaky_fill)
    for fill in ("sticker", "noise", "solid"):
        with pytest.raises(ProtectionFailed):
            pipeline.protect(data, pipeline.ProtectOptions(fill=fill, regions=(missed,)))


def test_options_built_in_code_are_checked_too():
    with pytest.raises(BadOptions):
        pipeline.ProtectOptions(regions=((1, 2, 3),))
    with pytest.raises(BadOptions):
        pipeline.ProtectOptions(keep=((5, 5, 5, 9),))


SHIELD = [sys.executable, "-m", "shield_server"]


def test_cli_region_and_keep(tmp_path, scene):
    pixels, missed, data = scene
    source = tmp_path / "scene.png"
    source.write_bytes(data)
    region = ",".join(map(str, missed))
    run = subprocess.run([*SHIELD, "redact", str(source), "-o", str(tmp_path / "out.png"), "--fill", "#ff00ff",
                          "--region", region, "--region", "0,0,10,10", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)[0]
    out = decode((tmp_path / "out.png").read_bytes())
    assert (rect(out, missed) == MAGENTA).all() and (out[:10, :10] == MAGENTA).all()
    assert report["added"] == [list(missed), [0, 0, 10, 10]]

    keep = ",".join(map(str, report["boxes"][0]))
    run = subprocess.run([*SHIELD, "redact", str(source), "-o", str(tmp_path / "kept.png"), "--keep", keep,
                          "--fill", "sticker", "--sticker", "star"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert np.array_equal(decode((tmp_path / "kept.png").read_bytes()), pixels)

    run = subprocess.run([*SHIELD, "redact", str(source), "-o", str(tmp_path / "bad.png"), "--region", "1,2,3"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "4 numbers" in run.stderr and not (tmp_path / "bad.png").exists()
