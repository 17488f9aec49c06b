"""The server's face cache: an edit (regions, keep, fill) of the same original is protected without detecting
again, with the same faces and the same output as a fresh protection; any other original, even one byte
apart, is detected afresh; the cache stays bounded. Judged by detector calls and output pixels."""

import io
import json
import urllib.parse

import numpy as np
import pytest
from PIL import Image

from photos import ASTRONAUT_FACE, core, decode, encode, missed_face_scene
from shield_server import pipeline
from shield_server.face_cache import FaceCache, cache_key


class CountingDetector:
    """The real detector, counting the photos it is given."""

    def __init__(self, detector):
        self.detector, self.name, self.calls = detector, detector.name, 0

    def detect(self, rgb):
        self.calls += 1
        return self.detector.detect(rgb)


@pytest.fixture
def detector(monkeypatch):
    counting = CountingDetector(pipeline.default_detector())
    monkeypatch.setattr(pipeline, "default_detector", lambda: counting)
    return counting


@pytest.fixture(scope="module")
def scene():
    pixels, missed = missed_face_scene()
    return pixels, missed, encode(pixels, "BMP")  # uncompressed: one byte is one pixel's channel


def options(**choices) -> pipeline.ProtectOptions:
    """Lossless output (PNG) unless said otherwise, so that pixels can be compared."""
    choices.setdefault("format", "png")
    return pipeline.ProtectOptions(**{key: tuple(map(tuple, value)) if key in ("regions", "keep") else value
                                      for key, value in choices.items()})


def test_an_edit_reuses_the_faces_and_matches_a_fresh_protection(detector, scene):
    pixels, missed, data = scene
    cache = FaceCache()
    first = pipeline.protect(data, options(), cache)
    assert detector.calls == 1 and not first.detections_reused
    (face,) = first.report()["detections"]

    edits = [options(regions=[missed]), options(keep=[face["box"]]), options(regions=[missed], fill="noise"),
             options(regions=[missed], format="jpeg", mode="people")]
    for edit in edits:
        calls = detector.calls
        again = pipeline.protect(data, edit, cache)
        assert detector.calls == calls and again.detections_reused, edit
        fresh = pipeline.protect(data, edit)  # no cache: detects
        assert detector.calls == calls + 1
        assert again.report()["detections"] == fresh.report()["detections"], edit
        if edit.fill != "noise":  # noise is random each time
            assert again.data == fresh.data, edit
    covered = decode(pipeline.protect(data, options(regions=[missed]), cache).data)
    x0, y0, x1, y1 = missed
    assert (covered[y0:y1, x0:x1] == 0).all() and (covered[core(ASTRONAUT_FACE)] == 0).all()
    kept = decode(pipeline.protect(data, options(keep=[face["box"]]), cache).data)
    assert np.array_equal(kept[:, :512], pixels[:, :512])


def test_another_original_is_detected_afresh_even_one_byte_apart(detector, scene):
    pixels, _, data = scene
    cache = FaceCache()
    pipeline.protect(data, options(), cache)
    changed = bytearray(data)
    changed[-1] ^= 1  # the last pixel's last channel (far from any face)
    result = pipeline.protect(bytes(changed), options(), cache)
    assert detector.calls == 2 and not result.detections_reused

    # Same size and header, the face elsewhere: reusing the first photo's faces would leave this one bare.
    mirrored = encode(np.ascontiguousarray(pixels[:, ::-1]), "BMP")
    assert len(mirrored) == len(data)
    shown = decode(pipeline.protect(mirrored, options(), cache).data)
    x0, y0, x1, y1 = ASTRONAUT_FACE
    assert detector.calls == 3
    assert (shown[core((800 - x1, y0, 800 - x0, y1))] == 0).all()


def test_an_animation_with_other_frames_kept_is_its_own_entry(detector, scene):
    pixels, _, _ = scene
    frames = [Image.fromarray(pixels), Image.fromarray(np.ascontiguousarray(pixels[:, ::-1]))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    cache = FaceCache()
    every = pipeline.protect(out.getvalue(), options(format="same"), cache)  # GIF: both frames
    first = pipeline.protect(out.getvalue(), options(format="jpeg"), cache)  # the first frame only
    assert detector.calls == 3 and not first.detections_reused
    assert len(every.faces) == 2 and len(first.faces) == 1
    assert pipeline.protect(out.getvalue(), options(format="png"), cache).detections_reused
    assert cache_key(b"photo", "centerface", 1) != cache_key(b"photo!", "centerface", 1)


def test_the_cache_is_bounded_by_entries_and_age():
    now = [0.0]
    cache = FaceCache(max_entries=3, max_age_s=60, clock=lambda: now[0])
    found = []

    def finder(name):
        return lambda: found.append(name) or [name]

    for name in "abc":
        assert cache.faces(name.encode(), finder(name)) == ([name], False)
    assert cache.faces(b"a", finder("a")) == (["a"], True)  # a is now the most recent
    cache.faces(b"d", finder("d"))  # evicts b, the least recently used
    assert len(cache) == 3
    assert cache.faces(b"b", finder("b"))[1] is False  # detected again (and evicts c)
    assert cache.faces(b"a", finder("a"))[1] is True
    now[0] = 61.0
    assert len(cache) == 0  # every entry past its age is gone
    assert cache.faces(b"a", finder("a"))[1] is False
    assert found == ["a", "b", "c", "d", "b", "a"]


def query(**params) -> str:
    return urllib.parse.urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()})


def test_the_server_reports_reused_detections(shield_server):
    pixels, missed = missed_face_scene()
    pixels[0, 0] = (1, 2, 3)  # an original no other test sends (the server is shared)
    data = encode(pixels, "BMP")
    lossless = {"format": "png"}

    def protect(body, **params):
        reply = shield_server.request("POST", f"/v1/protect?{query(**params)}", body=body)
        assert reply.status == 200, reply
        return json.loads(reply.headers["X-Shield-Report"]), decode(reply.body)

    first, _ = protect(data, **lossless)
    assert first["detections_reused"] is False and first["faces"] == 1
    added, covered = protect(data, regions=[missed], **lossless)
    assert added["detections_reused"] is True
    assert added["detections"] == first["detections"] and added["added"] == [list(missed)]
    x0, y0, x1, y1 = missed
    assert (covered[y0:y1, x0:x1] == 0).all() and (covered[core(ASTRONAUT_FACE)] == 0).all()
    kept, shown = protect(data, regions=[missed], keep=[first["detections"][0]["box"]], **lossless)
    assert kept["detections_reused"] is True and kept["kept"] == [first["detections"][0]["box"]]
    assert np.array_equal(shown[:, :512], pixels[:, :512])
    other = bytearray(data)
    other[-1] ^= 1
    again, _ = protect(bytes(other))
    assert again["detections_reused"] is False
