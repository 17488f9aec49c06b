"""The same faces before and after a speed change.

protect() on a fixed set of generated photos (scikit-image's astronaut and LFW faces) must report the boxes
recorded when the set was made (2026-12-06), each edge within BOX_SLACK px: ONNX Runtime's thread count may
move a box edge by a pixel, nothing else may. The set reaches every path a speed change could touch: small
faces only the 1.5x pass sees and a weak one its mirror check keeps, a photo large enough for the pixel
budgets and strips, an EXIF-turned JPEG, whole-person mode, drawn regions and kept faces, and the CLI's
worker pool. When a change is meant to move boxes, re-record them and say why in docs/BENCHMARKS.md.
"""

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import photos
from shield_server.pipeline import ProtectOptions, protect

BOX_SLACK = 2

ASTRONAUT = [(181, 65, 268, 180)]
# LFW faces of 12, 14, 16, 20, 26 and 34 px: the 12 and 14 px ones are below what the detector finds; the
# 16 px one scores ~0.39, a weak candidate kept through the mirror check.
SMALL_FACES = [(830, 202, 857, 232), (503, 199, 519, 220), (664, 61, 684, 85), (346, 58, 360, 77)]
# 2400x1800 (4.3 MP): the 1.5x pass is capped by its pixel budget and both passes scan in strips.
LARGE = [(983, 348, 1246, 693), (2123, 1511, 2158, 1555), (1950, 1647, 1977, 1680)]


def small_faces() -> np.ndarray:
    scene, _ = photos.composed_scene(sizes=(12, 14, 16, 20, 26, 34), canvas=(360, 1100))
    return scene


def large() -> np.ndarray:
    canvas = np.full((1800, 2400, 3), 120, np.uint8)
    canvas[200:1600, 500:1900] = np.array(Image.fromarray(photos.astronaut()).resize((1400, 1400)))
    canvas[1450:1750, 1750:2350] = photos.composed_scene(sizes=(20, 30, 44), canvas=(300, 600))[0]
    return canvas


@functools.cache
def _protected(name: str, **options):
    pixels = {"astronaut": photos.astronaut, "small_faces": small_faces, "large": large}[name]()
    return protect(photos.encode(pixels, "PNG"), ProtectOptions(**options))


def assert_same_boxes(found, expected) -> None:
    found, expected = sorted(map(tuple, found)), sorted(expected)
    assert len(found) == len(expected), f"{len(found)} faces instead of {len(expected)}: {found}"
    for box, wanted in zip(found, expected):
        assert max(abs(a - b) for a, b in zip(box, wanted)) <= BOX_SLACK, f"{box} moved from {wanted}"


@pytest.mark.parametrize("name, expected", [("astronaut", ASTRONAUT), ("small_faces", SMALL_FACES),
                                            ("large", LARGE)])
def test_same_boxes_as_recorded(name, expected):
    assert_same_boxes([f.box for f in _protected(name).faces], expected)


def test_turned_jpeg_same_boxes_upright():
    result = protect(photos.oriented_jpeg(small_faces(), 6))
    assert (result.width, result.height) == (1100, 360)
    assert_same_boxes([f.box for f in result.faces], SMALL_FACES)


def test_people_mode_same_faces():
    result = protect(photos.encode(photos.astronaut(), "PNG"), ProtectOptions(mode="people", format="png"))
    assert_same_boxes([f.box for f in result.faces], ASTRONAUT)


def test_regions_and_kept_faces_same_boxes():
    result = _protected("small_faces", regions=((0, 0, 100, 100),), keep=(SMALL_FACES[0],))
    assert result.added == [(0, 0, 100, 100)]
    assert_same_boxes([f.box for f in result.kept], SMALL_FACES[:1])
    assert_same_boxes([f.box for f in result.faces], SMALL_FACES[1:])


def test_cli_worker_pool_same_boxes(tmp_path):
    for name, pixels in (("astronaut", photos.astronaut()), ("small_faces", small_faces())):
        Image.fromarray(pixels).save(tmp_path / f"{name}.png")
    run = subprocess.run([sys.executable, "-m", "shield_server", "redact", str(tmp_path), "--out-dir",
                          str(tmp_path / "out"), "--json", "--jobs", "2"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    boxes = {Path(r["file"]).stem: r["boxes"] for r in json.loads(run.stdout)}
    assert_same_boxes(boxes["astronaut"], ASTRONAUT)
    assert_same_boxes(boxes["small_faces"], SMALL_FACES)
