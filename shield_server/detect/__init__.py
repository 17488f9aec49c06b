"""Face detectors behind `detect.base.Detector`.

default_detector(): BlazeFace short-range over a scale pyramid, fused and verified (ensemble.py).
second_opinion_detector(): a stricter pass at the in-between scales, run on the redacted photo.
Models are the ones bundled with mediapipe 0.10.21, run through OpenCV's dnn module; built once.
"""

import functools

from shield_server.detect.base import Detection, Detector
from shield_server.detect.ensemble import BlazeEnsemble, StrictPyramid

__all__ = ["Detection", "Detector", "default_detector", "second_opinion_detector", "detector_names"]


@functools.cache
def default_detector() -> Detector:
    return BlazeEnsemble()


@functools.cache
def second_opinion_detector() -> Detector:
    return StrictPyramid()


def detector_names() -> list[str]:
    return [default_detector().name, second_opinion_detector().name]
