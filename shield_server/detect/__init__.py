"""Placeholder until the recall work lands: MediaPipe's full-range model, one pass."""

import functools

import mediapipe as mp
import numpy as np

from shield_server.detect.base import Detection


class MediaPipeFullRange:
    name = "mediapipe-full-range"

    def __init__(self, threshold: float = 0.5):
        self._solution = mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                                   min_detection_confidence=threshold)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        result = self._solution.process(rgb)
        out = []
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            out.append(Detection(b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h,
                                 d.score[0], self.name))
        return out


@functools.cache
def default_detector():
    return MediaPipeFullRange(0.5)


@functools.cache
def second_opinion_detector():
    return MediaPipeFullRange(0.6)


def detector_names() -> list[str]:
    return [default_detector().name, second_opinion_detector().name]
