"""Silencing what native libraries write straight to file descriptor 2 (used by the CLI and the server)."""

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced(silenced: bool):
    """MediaPipe's TFLite and absl write INFO/WARNING lines straight to file descriptor 2 when their models
    load and first run ("Created TensorFlow Lite XNNPACK delegate", "Feedback manager requires..."); no
    setting of theirs reaches those from Python. Unless --verbose, descriptor 2 points at the null device
    meanwhile; Python's own errors are reported by the caller after it is restored."""
    if not silenced:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def stderr_to_null() -> None:
    """For good (a worker process that reports through its results only)."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
