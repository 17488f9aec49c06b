"""protect() on real faces: what must be replaced is replaced, nothing else changes, nothing is reversible."""

import numpy as np
import pytest

from photos import ASTRONAUT_FACE, astronaut, composed_scene, core, decode, encode, outside_heads
from shield_server import redact
from shield_server.errors import BadOptions, ProtectionFailed
from shield_server.pipeline import ProtectOptions, protect

MAGENTA = (255, 0, 255)
PNG_MAGENTA = ProtectOptions(color=MAGENTA, format="png")


def is_color(pixels: np.ndarray, color) -> np.ndarray:
    return (pixels[..., :3] == np.array(color, np.uint8)).all(axis=-1)


def test_astronaut_face_replaced_and_rest_untouched():
    photo = astronaut()
    result = protect(encode(photo, "PNG"), PNG_MAGENTA)
    out = decode(result.data)
    assert result.mime_type == "image/png" and out.shape == photo.shape
    assert is_color(out[core(ASTRONAUT_FACE)], MAGENTA).all()
    assert len(result.faces) >= 1
    keep = outside_heads(photo.shape, [f.box for f in result.faces])
    assert (out[keep] == photo[keep]).all()
    assert keep.mean() > 0.8  # the head took a small part of the photo, not the whole of it


def test_composed_lfw_scene_every_face_replaced():
    scene, boxes = composed_scene(sizes=(64, 96, 128))
    result = protect(encode(scene, "PNG"), PNG_MAGENTA)
    out = decode(result.data)
    for box in boxes:
        assert is_color(out[core(box)], MAGENTA).mean() >= 0.9, f"face at {box} not protected"
    keep = outside_heads(scene.shape, [f.box for f in result.faces])
    assert (out[keep] == scene[keep]).all()
    assert is_color(out, MAGENTA).mean() < 0.2


def test_face_boxes_are_reported_in_output_coordinates():
    result = protect(encode(astronaut(), "PNG"), PNG_MAGENTA)
    x0, y0, x1, y1 = max(result.faces, key=lambda f: f.score).box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    fx0, fy0, fx1, fy1 = ASTRONAUT_FACE
    assert fx0 < cx < fx1 and fy0 < cy < fy1
    assert set(result.timings_ms) >= {"decode", "detect", "redact", "encode", "total"}


def test_solid_fill_is_independent_of_the_original_pixels():
    first = astronaut()
    second = astronaut()
    rows, cols = core(ASTRONAUT_FACE)
    noise = np.random.default_rng(1).integers(-40, 40, second[rows, cols].shape)
    second[rows, cols] = np.clip(second[rows, cols] + noise, 0, 255)  # another face in the same place
    assert (first != second).any()
    out_first = protect(encode(first, "PNG"), PNG_MAGENTA)
    out_second = protect(encode(second, "PNG"), PNG_MAGENTA)
    assert (decode(out_first.data)[rows, cols] == decode(out_second.data)[rows, cols]).all()


def test_noise_fill_differs_between_runs_and_owes_nothing_to_the_face():
    photo = astronaut()
    options = ProtectOptions(fill="noise", format="png")
    a = decode(protect(encode(photo, "PNG"), options).data)[core(ASTRONAUT_FACE)]
    b = decode(protect(encode(photo, "PNG"), options).data)[core(ASTRONAUT_FACE)]
    original = photo[core(ASTRONAUT_FACE)].astype(float)
    assert (a != b).mean() > 0.95
    assert (a == photo[core(ASTRONAUT_FACE)]).all(axis=-1).mean() < 0.01
    correlation = np.corrcoef(a.astype(float).ravel(), original.ravel())[0, 1]
    assert abs(correlation) < 0.05


@pytest.mark.parametrize("fill", ["blur", "pixelate", "mosaic"])
def test_blur_and_mosaic_are_refused_with_the_reason(fill):
    with pytest.raises(BadOptions, match="reversed or recognised"):
        ProtectOptions.from_params({"fill": fill})


@pytest.mark.parametrize("params", [{"color": "red"}, {"margin": "5"}, {"margin": "x"}, {"format": "bmp"},
                                    {"mode": "everything"}, {"sharpen": "1"}])
def test_bad_options_are_refused(params):
    with pytest.raises(BadOptions):
        ProtectOptions.from_params(params)


def test_colour_may_be_given_as_the_fill():
    assert ProtectOptions.from_params({"fill": "#FF00FF"}).color == MAGENTA
    assert ProtectOptions.from_params({"fill": "solid", "color": "00ff00"}).color == (0, 255, 0)


def _broken_fill(skip_rows: int = 0, leave_alpha: bool = False):
    """A fill with a bug: it leaves the top `skip_rows` rows of each face as they were, or their alpha."""
    def fill(frame, mask, values):
        partial = mask.copy()
        rows = np.nonzero(mask.any(axis=1))[0]
        partial[rows[:skip_rows]] = False
        frame[partial, :3] = values[partial[mask]]
        if frame.shape[2] == 4 and not leave_alpha:
            frame[partial, 3] = 255
    return fill


@pytest.mark.parametrize("broken,alpha", [(_broken_fill(skip_rows=3), False), (_broken_fill(leave_alpha=True), True)],
                         ids=["rows_left_unfilled", "alpha_left_transparent"])
def test_a_face_left_by_a_broken_fill_fails_closed(monkeypatch, broken, alpha):
    photo = astronaut()
    if alpha:
        photo = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
        photo[..., 3][core(ASTRONAUT_FACE)] = 0  # the face hides behind transparency; a fill must make it opaque
    data = encode(photo, "PNG")
    assert len(protect(data, PNG_MAGENTA).faces) >= 1  # with the real fill, the photo is protected
    monkeypatch.setattr(redact, "fill_pixels", broken)
    with pytest.raises(ProtectionFailed):
        protect(data, PNG_MAGENTA)
