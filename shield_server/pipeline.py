"""The heart of Photo Shield: protect(photo bytes) -> protected photo bytes.

decode -> detect -> redact -> verify -> encode. The CLI, the server and the local web
page all call protect(); nothing else decides what a protected photo is.
"""

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from shield_server import formats, redact
from shield_server.detect import default_detector
from shield_server.detect.base import Detection
from shield_server.errors import BadOptions, ProtectionFailed

MODES = ("faces", "people")
OUTPUT_CHOICES = ("same", "png", "jpeg", "webp")
MAX_MARGIN = 2.0

# Detectors run their models on both cores already; one photo at a time through them keeps memory
# bounded and the models' internal state safe from concurrent calls.
_detector_lock = threading.Lock()


@dataclass(frozen=True)
class ProtectOptions:
    fill: str = "solid"  # "solid" or "noise"
    color: tuple[int, int, int] = (0, 0, 0)
    margin: float = redact.DEFAULT_MARGIN
    format: str = "same"  # "same", "png", "jpeg" or "webp"
    mode: str = "faces"  # "faces" or "people" (whole silhouettes)
    max_bytes: int = formats.DEFAULT_MAX_BYTES
    max_pixels: int = formats.DEFAULT_MAX_PIXELS

    def __post_init__(self):
        if self.fill in redact.REFUSED_FILLS:
            raise BadOptions(f"'{self.fill}' is refused: blurred or pixelated faces can be reversed or "
                             "recognised by AI models. Use a solid colour or noise, which keep nothing "
                             "of the original pixels.")
        if self.fill not in redact.FILLS:
            raise BadOptions(f"Unknown fill {self.fill!r}: use 'solid' or 'noise'.")
        if not (len(self.color) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in self.color)):
            raise BadOptions("The colour must be three 0-255 values.")
        if not 0 <= self.margin <= MAX_MARGIN:
            raise BadOptions(f"The margin must be between 0 and {MAX_MARGIN}.")
        if self.format not in OUTPUT_CHOICES:
            raise BadOptions(f"Unknown format {self.format!r}: use one of {', '.join(OUTPUT_CHOICES)}.")
        if self.mode not in MODES:
            raise BadOptions(f"Unknown mode {self.mode!r}: use 'faces' or 'people'.")

    @classmethod
    def from_params(cls, params: Mapping[str, str], **limits) -> "ProtectOptions":
        """Options from text parameters (query string, form, CLI): fill, color, margin, format, mode.
        fill may also be a colour, meaning a solid fill of that colour."""
        unknown = set(params) - {"fill", "color", "colour", "margin", "format", "mode"}
        if unknown:
            raise BadOptions(f"Unknown option(s): {', '.join(sorted(unknown))}.")
        fill = params.get("fill", "solid").strip().lower()
        color_text = params.get("color", params.get("colour"))
        if fill not in redact.FILLS and fill not in redact.REFUSED_FILLS:
            color_text, fill = fill, "solid"
        try:
            margin = float(params.get("margin", redact.DEFAULT_MARGIN))
        except ValueError:
            raise BadOptions("The margin must be a number.") from None
        return cls(fill=fill, color=parse_color(color_text) if color_text else cls.color, margin=margin,
                   format=params.get("format", "same").lower(), mode=params.get("mode", "faces").lower(),
                   **limits)


def parse_color(text: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"#?([0-9a-fA-F]{6})", text.strip())
    if not match:
        raise BadOptions(f"Not a colour: {text!r}. Use RRGGBB hex, e.g. #000000.")
    value = match.group(1)
    return tuple(int(value[i:i + 2], 16) for i in (0, 2, 4))


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in output pixels
    score: float
    detector: str

    def as_dict(self) -> dict:
        return {"box": list(self.box), "score": round(self.score, 3), "detector": self.detector}


@dataclass
class ProtectResult:
    data: bytes
    mime_type: str
    extension: str
    width: int
    height: int
    faces: list[Face]
    frames: int  # frames in the output
    timings_ms: dict[str, float] = field(default_factory=dict)
    dropped: int = 0  # images of the input not in the output (a still's extra pictures or pages)

    def report(self) -> dict:
        return {"faces": len(self.faces), "boxes": [list(f.box) for f in self.faces],
                "detections": [f.as_dict() for f in self.faces], "width": self.width, "height": self.height,
                "frames": self.frames, "dropped_images": self.dropped, "format": self.extension,
                "timings_ms": self.timings_ms}


class _Stopwatch:
    def __init__(self):
        self.timings: dict[str, float] = {}
        self._start = self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = round(self.timings.get(stage, 0.0) + (now - self._last) * 1000, 1)
        self._last = now

    def total(self) -> dict[str, float]:
        self.timings["total"] = round((time.perf_counter() - self._start) * 1000, 1)
        return self.timings


def warm_up() -> list[str]:
    """Load every model once (server start); returns the detector names."""
    from shield_server import segment

    segment.warm_up()
    detector = default_detector()
    with _detector_lock:
        detector.detect(np.zeros((64, 64, 3), dtype=np.uint8))
    return [detector.name]


def _to_face(det: Detection, width: int, height: int) -> Face:
    box = (max(int(np.floor(det.x0)), 0), max(int(np.floor(det.y0)), 0),
           min(int(np.ceil(det.x1)), width), min(int(np.ceil(det.y1)), height))
    return Face(box, float(det.score), det.detector)


def _find_faces(frames: list[np.ndarray], detector) -> list[Face]:
    height, width = frames[0].shape[:2]
    found = []
    with _detector_lock:
        for frame in frames:
            found += [_to_face(d, width, height) for d in detector.detect(np.ascontiguousarray(frame[..., :3]))]
    return [f for f in found if f.box[2] > f.box[0] and f.box[3] > f.box[1]]


def _verify(frames, mask: np.ndarray, options: ProtectOptions) -> None:
    """Fail closed if any pixel that should be replaced is not (a bug must never release a face)."""
    if options.fill != "solid" or not mask.any():
        return
    for frame in frames:
        if not (frame[mask, :3] == np.array(options.color, dtype=np.uint8)).all():
            raise ProtectionFailed("Redaction check failed: a face region was not fully replaced.")
        if frame.shape[2] == 4 and not (frame[mask, 3] == 255).all():
            raise ProtectionFailed("Redaction check failed: a redacted region is not opaque.")


def protect(data: bytes, options: ProtectOptions = ProtectOptions()) -> ProtectResult:
    clock = _Stopwatch()
    image = formats.decode(data, options.max_bytes, options.max_pixels)
    fmt = formats.output_format(image.source_format, options.format, image.has_alpha, len(image.frames) > 1)
    formats.keep_what_fits(image, fmt)
    clock.lap("decode")

    faces = _find_faces(image.frames, default_detector())
    clock.lap("detect")
    height, width = image.frames[0].shape[:2]
    mask = redact.head_mask([f.box for f in faces], options.margin, width, height)
    if options.mode == "people":  # segments the original pixels, so before anything is replaced
        from shield_server import people

        mask |= people.people_mask(image.frames, [f.box for f in faces], options.margin)
        clock.lap("people")
    # Every frame gets the union of every frame's faces: a face missed in one frame of an animation is
    # still covered by its detection in the others.
    for frame in image.frames:
        redact.fill_pixels(frame, mask, options.fill, options.color)
    clock.lap("redact")
    _verify(image.frames, mask, options)

    encoded = formats.encode(image, fmt)
    clock.lap("encode")
    return ProtectResult(encoded, formats.mime_type(fmt), formats.extension(fmt), image.width, image.height,
                         faces, len(image.frames), clock.total(), image.dropped)


def detect_only(data: bytes, options: ProtectOptions = ProtectOptions()) -> tuple[list[Face], int, int]:
    """Faces of a photo without redacting it (for previews); same decoding and limits as protect()."""
    image = formats.decode(data, options.max_bytes, options.max_pixels)
    return _find_faces(image.frames[:1], default_detector()), image.width, image.height
