"""The bundled MediaPipe models behind whole-person mode: person segmentation and a pose check.

Both ship inside the mediapipe package (no download). The selfie-segmentation models run through
OpenCV's TFLite importer (NCHW float input, RGB in [0, 1]; its output matches MediaPipe's own
SelfieSegmentation solution), which lets us feed them any crop without MediaPipe's graph overhead.
"""

import functools
import os
import threading

import cv2
import mediapipe
import numpy as np

MODEL_DIR = os.path.join(os.path.dirname(mediapipe.__file__), "modules", "selfie_segmentation")
SQUARE_MODEL = ("selfie_segmentation.tflite", 256, 256)  # file, input width, input height
LANDSCAPE_MODEL = ("selfie_segmentation_landscape.tflite", 256, 144)

# A silhouette without a detected face is kept only if the pose model finds a person in it this surely
# (detection confidence) and its head and shoulders (landmarks 0-12) this visibly on average; legs are
# often out of frame. Looser values let it call flowers and parrots people (faces-dev no-face photos).
POSE_MIN_DETECTION = 0.8
POSE_MIN_VISIBILITY = 0.7
HEAD_AND_SHOULDERS = slice(0, 13)

# cv2.dnn networks and MediaPipe solutions must not be called from several threads at once.
_model_lock = threading.Lock()


@functools.cache
def _segmenter(spec: tuple[str, int, int]):
    return cv2.dnn.readNetFromTFLite(os.path.join(MODEL_DIR, spec[0]))


@functools.cache
def _pose():
    return mediapipe.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                         min_detection_confidence=POSE_MIN_DETECTION)


def person_probability(rgb: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """Per-pixel probability (float32, out_size = (width, height)) that rgb shows a person."""
    height, width = rgb.shape[:2]
    spec = LANDSCAPE_MODEL if width >= 1.5 * height else SQUARE_MODEL
    shrinking = width > spec[1] and height > spec[2]
    model_input = cv2.resize(rgb[..., :3], spec[1:],
                             interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    blob = (model_input.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
    with _model_lock:
        net = _segmenter(spec)
        net.setInput(blob)
        probability = net.forward()[0, 0]
    return cv2.resize(probability, out_size, interpolation=cv2.INTER_LINEAR)


def tiles(width: int, height: int, fraction: float) -> list[tuple[int, int, int, int]]:
    """Square tiles with side fraction x the short side, overlapping by half, covering the image."""
    side = max(int(fraction * min(width, height)), 1)
    step = max(side // 2, 1)

    def starts(length):
        positions = list(range(0, max(length - side, 0) + 1, step))
        if positions[-1] + side < length:
            positions.append(length - side)
        return positions

    return [(x, y, min(x + side, width), min(y + side, height)) for y in starts(height) for x in starts(width)]


def pose_confirms(rgb: np.ndarray, box) -> bool:
    """Whether the pose model finds a clearly visible person in box (grown by a fifth on each side)."""
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = box
    pad_x, pad_y = (x1 - x0) / 5, (y1 - y0) / 5
    crop = rgb[max(int(y0 - pad_y), 0):min(int(np.ceil(y1 + pad_y)), height),
               max(int(x0 - pad_x), 0):min(int(np.ceil(x1 + pad_x)), width), :3]
    if crop.size == 0:
        return False
    with _model_lock:
        result = _pose().process(np.ascontiguousarray(crop))
    if result.pose_landmarks is None:
        return False
    visibility = [p.visibility for p in result.pose_landmarks.landmark[HEAD_AND_SHOULDERS]]
    return float(np.mean(visibility)) >= POSE_MIN_VISIBILITY


def warm_up() -> None:
    """Load every model now (server start, benchmarks) rather than on the first photo."""
    blank = np.zeros((SQUARE_MODEL[2], SQUARE_MODEL[1], 3), np.uint8)
    person_probability(blank, (8, 8))
    person_probability(np.zeros((LANDSCAPE_MODEL[2], LANDSCAPE_MODEL[1], 3), np.uint8), (8, 8))
    pose_confirms(blank, (0, 0, blank.shape[1], blank.shape[0]))
