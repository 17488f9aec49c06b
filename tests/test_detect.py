"""Face detection on real images shipped with scikit-image (no data set needed)."""

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
skdata = pytest.importorskip("skimage.data")

from shield_server.detect import default_detector  # noqa: E402
from shield_server.detect import centerface  # noqa: E402
from shield_server.detect.base import Detection  # noqa: E402

ASTRONAUT_FACE = (175, 70, 275, 178)  # x0, y0, x1, y1, brow to chin, by eye


def _center_inside(d: Detection, box, slack=0.0) -> bool:
    cx, cy = (d.x0 + d.x1) / 2, (d.y0 + d.y1) / 2
    w, h = box[2] - box[0], box[3] - box[1]
    return box[0] - slack * w <= cx <= box[2] + slack * w and box[1] - slack * h <= cy <= box[3] + slack * h


def _iou(d: Detection, box) -> float:
    w = max(0.0, min(d.x1, box[2]) - max(d.x0, box[0]))
    h = max(0.0, min(d.y1, box[3]) - max(d.y0, box[1]))
    inter = w * h
    return inter / (d.width * d.height + (box[2] - box[0]) * (box[3] - box[1]) - inter)


def test_interface_and_names():
    assert default_detector() is default_detector()  # built once
    assert default_detector().name == "centerface"
    assert default_detector().detect(np.zeros((64, 64, 3), np.uint8)) == []


def test_astronaut_face_found_at_the_right_place():
    found = default_detector().detect(skdata.astronaut())
    assert any(_iou(d, ASTRONAUT_FACE) > 0.6 for d in found)
    assert all(d.detector == default_detector().name for d in found)


def _lfw_canvas(size: int, count: int = 6, seed: int = 0):
    """Real 25x25 LFW faces (scikit-image lfw_subset: 100 faces then 100 non-faces), upscaled to `size`
    px and pasted on a wood-textured canvas at known, well separated places."""
    faces = skdata.lfw_subset()[:100]
    rng = np.random.default_rng(seed)
    H, W = 720, 960
    canvas = cv2.resize(skdata.coffee(), (W, H), interpolation=cv2.INTER_LINEAR) // 2 + 64
    places = []
    for i in rng.choice(100, count, replace=False):
        face = cv2.resize((faces[i] * 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
        for _ in range(1000):
            x, y = int(rng.integers(8, W - size - 8)), int(rng.integers(8, H - size - 8))
            if all(abs(x - px) > size + 24 or abs(y - py) > size + 24 for px, py in places):
                break
        places.append((x, y))
        canvas[y:y + size, x:x + size] = face[..., None]
    return np.ascontiguousarray(canvas), [(x, y, x + size, y + size) for x, y in places]


@pytest.mark.parametrize("size", [24, 40, 80, 160])
def test_lfw_faces_found_at_known_sizes_and_places(size):
    canvas, boxes = _lfw_canvas(size, count=6 if size < 160 else 4, seed=size)
    found = default_detector().detect(canvas)
    hits = {box: [d for d in found if _center_inside(d, box)] for box in boxes}
    missed = [box for box, near in hits.items() if not near]
    # CenterFace misses one of these 24 synthetic faces (a tight 40 px LFW crop pasted on the cup's
    # reflection); recall on real photos is measured by bench/faces_dev.py, not here.
    assert len(missed) <= 1, f"{size}px faces missed at {missed}"
    for near in hits.values():
        assert not near or any(0.5 * size <= d.height <= 2.0 * size for d in near)


@pytest.mark.parametrize("name", ["coffee", "rocket", "chelsea"])
def test_face_free_photos_yield_few_detections(name):
    img = getattr(skdata, name)()
    found = default_detector().detect(img)
    assert len(found) <= 1, found


@pytest.mark.parametrize("angle", [-25, 25])
def test_tilted_face_found(angle):
    img = skdata.astronaut()
    m = cv2.getRotationMatrix2D((225.0, 124.0), angle, 1.0)
    rotated = cv2.warpAffine(img, m, (512, 512), borderMode=cv2.BORDER_REFLECT)
    found = default_detector().detect(rotated)
    assert any(_center_inside(d, ASTRONAUT_FACE, slack=0.1) for d in found)


def test_detections_are_in_image_coordinates_for_non_square_photos():
    img = skdata.astronaut()
    wide = np.zeros((512, 1500, 3), np.uint8) + 100
    wide[:, 900:1412] = img
    found = default_detector().detect(wide)
    shifted = (ASTRONAUT_FACE[0] + 900, ASTRONAUT_FACE[1], ASTRONAUT_FACE[2] + 900, ASTRONAUT_FACE[3])
    assert any(_iou(d, shifted) > 0.6 for d in found)


@pytest.mark.parametrize("shape", [(1, 1), (7, 300), (300, 7), (33, 2000), (129, 127)])
def test_tiny_and_extreme_shapes_do_not_fail(shape):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    assert default_detector().detect(img) == []  # noise: nothing to find, and no failure


@pytest.mark.parametrize("shape", [(72, 2400), (2400, 72), (72, 72)])
def test_faces_in_extreme_shapes_are_found_inside_the_image(shape):
    """A face at the far end of a thin strip: found, with a box inside the image."""
    img = np.full((*shape, 3), 120, np.uint8)
    face = cv2.resize((skdata.lfw_subset()[0] * 255).astype(np.uint8), (64, 64), interpolation=cv2.INTER_CUBIC)
    y, x = shape[0] - 68, shape[1] - 68
    img[y:y + 64, x:x + 64] = face[..., None]
    found = default_detector().detect(img)
    assert any(_center_inside(d, (x, y, x + 64, y + 64)) for d in found), found
    assert all(0 <= d.x0 < d.x1 <= shape[1] and 0 <= d.y0 < d.y1 <= shape[0] for d in found)


def _lfw_grid(size: int, count: int = 100):
    """The 100 real LFW faces of scikit-image's lfw_subset, upscaled to `size` px, on a 10-column grid over
    lightly noisy grey: (canvas, face boxes)."""
    faces = skdata.lfw_subset()[:count]
    step = 2 * size
    canvas = np.full((-(-count // 10) * step + size, 10 * step + size, 3), 128, np.uint8)
    canvas += np.random.default_rng(size).integers(0, 16, canvas.shape, dtype=np.uint8)
    boxes = []
    for i, face in enumerate(faces):
        y, x = size + (i // 10) * step, size + (i % 10) * step
        pixels = cv2.resize((np.clip(face, 0, 1) * 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
        canvas[y:y + size, x:x + size] = pixels[..., None]
        boxes.append((x, y, x + size, y + size))
    return canvas, boxes


@pytest.mark.parametrize("width", [48, 96, 192, 512])
def test_astronaut_found_at_every_size(width):
    """The astronaut shrunk until her face is ~9 px wide, on a grey canvas: always found, where she is."""
    canvas = np.full((640, 640, 3), 128, np.uint8)
    canvas[64:64 + width, 96:96 + width] = cv2.resize(skdata.astronaut(), (width, width), interpolation=cv2.INTER_AREA)
    face = tuple(96 + v * width / 512 if i % 2 == 0 else 64 + v * width / 512 for i, v in enumerate(ASTRONAUT_FACE))
    found = default_detector().detect(canvas)
    assert any(_center_inside(d, face, slack=0.1) for d in found), found


# Faces of the 100 found by the shipped detector, measured 2026-11-30 (16 px: 98, 20 px: 99, others: 100),
# less a little slack for numeric noise between machines. Fixed numbers, not read from the detector's module:
# doubling its pass thresholds finds 56, 54, 62, 99 and 100, and must fail here.
LFW_GRID_MINIMUM = {16: 94, 20: 95, 24: 97, 32: 98, 48: 98}


@pytest.mark.parametrize("size", LFW_GRID_MINIMUM)
def test_recall_on_real_lfw_faces_stays_pinned(size):
    canvas, boxes = _lfw_grid(size)
    found = default_detector().detect(canvas)
    hits = sum(any(_center_inside(d, box) for d in found) for box in boxes)
    assert hits >= LFW_GRID_MINIMUM[size], f"{hits} of 100 faces of {size} px found"
    assert len(found) <= 102, "more detections than faces: boxes on the background"


def test_a_weak_candidate_is_kept_only_when_another_scale_sees_it():
    face, elsewhere = np.array([[100.0, 100, 140, 150]]), np.array([[400.0, 50, 430, 90]])
    weak = centerface.CORROBORATED_MIN + 0.01
    fine = (np.concatenate([face, elsewhere]), np.array([weak, weak]))
    coarse = (face + 2, np.array([centerface.CANDIDATE_MIN]))  # the same face, barely seen at the other scale
    boxes, scores = centerface.accepted([fine, coarse], [0.5, 0.5], [1.0, 0.5])
    assert boxes.tolist() == face.tolist() and scores.tolist() == [weak]
    # Confident candidates need no corroboration; below CORROBORATED_MIN nothing is kept.
    boxes, _ = centerface.accepted([(elsewhere, np.array([0.6])), (face, np.array([0.5 * weak]))], [0.5, 0.5],
                                   [1.0, 0.5])
    assert boxes.tolist() == elsewhere.tolist()


def test_a_box_far_above_the_models_size_needs_more_than_the_pass_threshold():
    big = np.array([[0.0, 0, 100, 120]])  # 180 px tall in a 1.5x scan: above IN_RANGE_MAX
    assert 120 * 1.5 > centerface.IN_RANGE_MAX
    nothing = (np.zeros((0, 4)), np.zeros(0))
    for score, kept in [(0.3, False), (centerface.OUT_OF_RANGE_MIN, True)]:
        boxes, _ = centerface.accepted([(big, np.array([score])), nothing], [0.2, 0.5], [1.5, 0.6])
        assert len(boxes) == kept
    boxes, _ = centerface.accepted([(big, np.array([0.3])), nothing], [0.2, 0.5], [1.0, 0.6])  # 120 px: in range
    assert len(boxes) == 1


def test_mirror_check_moves_weak_scores_to_the_mirrored_photos():
    """The fine pass averages its weak candidates' maps with the mirrored photo's, scanning mirrored crops
    around them: there the result must be close to averaging with a whole mirrored scan (cells lined up,
    x offsets turned round), and far from the plain scan."""
    det = default_detector()
    canvas, _ = _lfw_canvas(24, count=6, seed=24)  # 720 x 960: cropped below to whole 32 px cells
    blob = np.ascontiguousarray(canvas[:704].transpose(2, 0, 1)[None].astype(np.float32))
    plain = det._maps(blob)
    whole = det._maps(np.ascontiguousarray(blob[..., ::-1]))[..., ::-1].copy()
    whole[4] = -whole[4]
    want = (plain + whole) / 2
    checked = plain.copy()
    det._average_mirrored(blob, checked)
    weak = (plain[0] >= centerface.CANDIDATE_MIN) & (plain[0] < centerface.MIRROR_BELOW)
    assert weak.sum() >= 10
    error, unchecked = np.abs(checked[:, weak] - want[:, weak]), np.abs(plain[:, weak] - want[:, weak])
    # crops see less context than a whole scan, so they agree closely, not exactly
    assert error[0].mean() < 0.5 * unchecked[0].mean() and error[0].max() < 0.1
    assert error[3:].max() < 0.1  # centre offsets (x turned round in the mirror)


def test_model_rewrite_without_onnx_matches_the_onnx_packages_own():
    """centerface.flexible_model edits the file with a protobuf subset (onnx_model.py): the result must be the
    model the `onnx` package (a test dependency) makes with its own tools, every other field kept."""
    onnx = pytest.importorskip("onnx")
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    path = centerface.model_path()
    expected = onnx.load_model(str(path))
    weights = {w.name for w in expected.graph.initializer}
    kept = [value for value in expected.graph.input if value.name not in weights]
    del expected.graph.input[:]
    expected.graph.input.extend(kept)

    def symbolic(values):  # batch, height and width named after the tensor; channels as they are
        return {v.name: [f"n_{v.name}", v.type.tensor_type.shape.dim[1].dim_value, f"h_{v.name}", f"w_{v.name}"]
                for v in values}
    expected = update_inputs_outputs_dims(expected, symbolic(expected.graph.input), symbolic(expected.graph.output))
    rewritten = onnx.load_model_from_string(centerface.flexible_model(path))
    onnx.checker.check_model(rewritten)
    assert rewritten == expected
    assert [d.dim_param or d.dim_value for d in rewritten.graph.input[0].type.tensor_type.shape.dim] == \
        ["n_input.1", 3, "h_input.1", "w_input.1"]


def test_a_face_across_a_strip_seam_is_seen_whole():
    """A scan over MAX_SCAN_PIXELS goes in strips that overlap by STRIP_OVERLAP: a face the fine pass is
    for (up to 2 x STRIP_OVERLAP px tall in the scan), centred just past a seam, must come out with the
    box an unsplit scan gives it. Planted overlaps of 32 and 16 px move or lose it."""
    det = default_detector()
    photo = cv2.resize(skdata.coffee(), (960, 600), interpolation=cv2.INTER_LINEAR)
    face = cv2.resize(skdata.astronaut()[40:220, 140:310], (128, 136), interpolation=cv2.INTER_AREA)
    # at 1.5x: 1440 x 900 = 1.3 MP, two strips with a seam at x = 720 in the scan (480 in the photo);
    # the face (~80 px tall here, ~120 in the scan) is centred 4 px (6 in the scan) past it
    x0, y0 = 484 - 64, 240
    photo[y0:y0 + 136, x0:x0 + 128] = face
    scale = 1.5
    assert 1440 * 900 > centerface.MAX_SCAN_PIXELS > 720 * 900
    boxes, scores = det.scan(photo, scale, centerface.CANDIDATE_MIN, mirror=True)
    whole = cv2.resize(photo, (1440, 900), interpolation=cv2.INTER_LINEAR)
    ref_boxes, ref_scores = det._scan_piece(whole, centerface.CANDIDATE_MIN, mirror=True)
    ref = ref_boxes[np.argmax(ref_scores)] / scale
    assert ref[0] < 480 < ref[2] and max(ref_scores) > 0.5  # the unsplit scan sees the face across the seam
    same = [b for b in boxes if np.abs(b - ref).max() <= 2]
    assert same, f"unsplit {ref.round(1)}, strips {boxes.round(1)[np.argsort(-scores)][:3]}"


def test_candidates_too_strong_for_the_mirror_to_drop_are_not_checked():
    """MIRROR_BELOW skips the mirror for candidates it cannot drop: the mean of MIRROR_BELOW and a mirrored
    score of 0 must still clear the fine pass's threshold (and so corroboration's). A lower MIRROR_BELOW
    would keep, unchecked, candidates the mirror would have dropped."""
    fine = next(p for p in centerface.DEFAULT_PASSES if p.mirror)
    worst = np.float32(centerface.MIRROR_BELOW) / 2  # the mean with a mirrored 0, as the maps compute it
    box = np.array([[0.0, 0, 30, 36]])
    nothing = (np.zeros((0, 4)), np.zeros(0))
    kept, _ = centerface.accepted([(box, np.array([worst], np.float64)), nothing],
                                  [p.threshold for p in centerface.DEFAULT_PASSES], [1.5, 0.6])
    assert worst >= fine.threshold and len(kept) == 1
