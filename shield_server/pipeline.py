"""The heart of Photo Shield: protect(photo bytes) -> protected photo bytes.

decode -> detect -> redact -> verify -> encode. The CLI, the server and the local web
page all call protect(); nothing else decides what a protected photo is.
"""

import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from shield_server import formats, redact, security
from shield_server.detect import default_detector
from shield_server.detect.base import Detection
from shield_server.errors import BadOptions, ProtectionFailed
from shield_server.face_cache import cache_key

MODES = ("faces", "people")
FILL_CHOICES = "a solid colour (#RRGGBB), 'noise' or 'sticker' (" + ", ".join(redact.STICKERS) + ")"
OUTPUT_CHOICES = ("same", "png", "jpeg", "webp")
MAX_MARGIN = 2.0
MAX_REGIONS = 200  # per list (regions, keep): far more than a person draws, few enough to check quickly
KEEP_MIN_IOU = 0.5  # a keep box names the detection it overlaps by at least this intersection over union
OPTION_NAMES = {"fill", "color", "colour", "margin", "format", "mode", "sticker", "regions", "keep"}

Box = tuple[float, float, float, float]

# Detectors run their models on both cores already; one photo at a time through them keeps memory
# bounded and the models' internal state safe from concurrent calls.
_detector_lock = threading.Lock()


@dataclass(frozen=True)
class ProtectOptions:
    fill: str = "solid"  # "solid", "noise" or "sticker"
    color: tuple[int, int, int] = (0, 0, 0)
    margin: float = redact.DEFAULT_MARGIN
    format: str = "same"  # "same", "png", "jpeg" or "webp"
    mode: str = "faces"  # "faces" or "people" (whole silhouettes)
    max_bytes: int = formats.DEFAULT_MAX_BYTES
    max_pixels: int = formats.DEFAULT_MAX_PIXELS
    sticker: str = "smile"  # with fill="sticker": one of redact.STICKERS
    # Boxes in pixels of the upright photo: regions are replaced in addition to the faces found; keep names
    # detected faces the person chose to leave as they are. Detection always runs (or its answer for these
    # very bytes is reused: protect()'s faces_cache).
    regions: tuple[Box, ...] = ()
    keep: tuple[Box, ...] = ()

    def __post_init__(self):
        if self.fill in redact.REFUSED_FILLS:
            raise BadOptions(f"The fill '{self.fill}' is refused: blurred or pixelated faces can be reversed or "
                             f"recognised by AI models. Use one of the fills that keep nothing of the original "
                             f"pixels: {FILL_CHOICES}.", option="fill")
        if self.fill not in redact.FILLS:
            raise BadOptions(f"Unknown fill {self.fill!r}: use {FILL_CHOICES}.", option="fill")
        if self.sticker not in redact.STICKERS:
            raise BadOptions(f"Unknown sticker {self.sticker!r}: use one of {', '.join(redact.STICKERS)}.")
        if not (len(self.color) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in self.color)):
            raise BadOptions("The colour must be three 0-255 values.")
        if not 0 <= self.margin <= MAX_MARGIN:
            raise BadOptions(f"The margin ({{option}}) must be between 0 and {MAX_MARGIN}.", option="margin")
        if self.format not in OUTPUT_CHOICES:
            raise BadOptions(f"Unknown format {self.format!r}: use one of {', '.join(OUTPUT_CHOICES)}.")
        if self.mode not in MODES:
            raise BadOptions(f"Unknown mode {self.mode!r}: use 'faces' or 'people'.", option="mode")
        _check_boxes("regions", self.regions)
        _check_boxes("keep", self.keep)

    @classmethod
    def from_params(cls, params: Mapping[str, str], **limits) -> "ProtectOptions":
        """Options from text parameters (query string, form, CLI): fill, color, margin, format, mode, sticker,
        and regions/keep as JSON lists of [x0, y0, x1, y1]. fill may also be a colour, meaning a solid fill."""
        security.check_option_sizes(params.items())
        unknown = set(params) - OPTION_NAMES
        if unknown:
            raise BadOptions(f"Unknown option(s): {', '.join(sorted(unknown))}.")
        fill = params.get("fill", "solid").strip().lower()
        color_text = params.get("color", params.get("colour"))
        if fill not in redact.FILLS and fill not in redact.REFUSED_FILLS:
            color_text, fill = fill, "solid"
        try:
            margin = float(params.get("margin", redact.DEFAULT_MARGIN))
        except ValueError:
            raise BadOptions("The margin ({option}) must be a number.", option="margin") from None
        return cls(fill=fill, color=parse_color(color_text) if color_text else cls.color, margin=margin,
                   format=params.get("format", "same").lower(), mode=params.get("mode", "faces").lower(),
                   sticker=params.get("sticker", cls.sticker).strip().lower(),
                   regions=parse_boxes("regions", params.get("regions", "[]")),
                   keep=parse_boxes("keep", params.get("keep", "[]")), **limits)


def parse_color(text: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"#?([0-9a-fA-F]{6})", text.strip())
    if not match:
        raise BadOptions(f"Not a colour: {text!r}. Use RRGGBB hex, e.g. #000000.")
    value = match.group(1)
    return tuple(int(value[i:i + 2], 16) for i in (0, 2, 4))


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number")


def parse_boxes(name: str, text: str) -> tuple[Box, ...]:
    """A JSON list of [x0, y0, x1, y1] boxes (checked by _check_boxes when the options are built)."""
    security.check_json_nesting(name, text)
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise BadOptions("{option} is not valid JSON: expected a list of [x0, y0, x1, y1] boxes, "
                         "e.g. [[10, 20, 110, 140]].", option=name) from None
    if not isinstance(value, list):
        raise BadOptions("{option} must be a JSON list of [x0, y0, x1, y1] boxes.", option=name)
    if not all(isinstance(box, list) for box in value):
        raise BadOptions("Each box of {option} must be a list [x0, y0, x1, y1].", option=name)
    return tuple(tuple(box) for box in value)


def _finite_number(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _check_boxes(name: str, boxes) -> None:
    if len(boxes) > MAX_REGIONS:
        raise BadOptions(f"{{option}} has {len(boxes)} boxes; at most {MAX_REGIONS} are accepted.", option=name)
    for box in boxes:
        if len(box) != 4:
            raise BadOptions(f"Each box of {{option}} must have 4 numbers [x0, y0, x1, y1]; got {list(box)!r:.80}.",
                             option=name)
        if not all(_finite_number(v) for v in box):
            raise BadOptions(f"A box of {{option}} holds something that is not a number: {list(box)!r:.80}.",
                             option=name)
        x0, y0, x1, y1 = box
        if x1 <= x0 or y1 <= y0:
            raise BadOptions(f"A box of {{option}} is empty or inverted (x1 <= x0 or y1 <= y0): {list(box)!r:.80}.",
                             option=name)


def _pixel_box(name: str, box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """Whole pixels covering the box. Boxes past the photo's edges are refused, never clipped: a region drawn
    for another size or orientation of the photo would otherwise land on the wrong pixels unnoticed."""
    x0, y0, x1, y1 = box
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise BadOptions(f"A box of {{option}} is outside the {width}x{height} photo (as shown upright): "
                         f"{list(box)!r:.80}.", option=name)
    return math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)


def _iou(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


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
    faces: list[Face]  # detected and replaced
    frames: int  # frames in the output
    timings_ms: dict[str, float] = field(default_factory=dict)
    kept: list[Face] = field(default_factory=list)  # detected, left as they are (options.keep)
    added: list[tuple[int, int, int, int]] = field(default_factory=list)  # options.regions, replaced
    dropped: int = 0  # images of the input not in the output (a still's extra pictures or pages)
    replaced_share: float = 0.0  # of the photo's pixels (whole-person mode: how much the people took)
    detections_reused: bool = False  # the faces came from a face cache, found earlier in these very bytes

    def report(self) -> dict:
        return {"faces": len(self.faces), "boxes": [list(f.box) for f in self.faces],
                "detections": detections(self.faces, self.kept), "added": [list(b) for b in self.added],
                "kept": [list(f.box) for f in self.kept], "width": self.width, "height": self.height,
                "frames": self.frames, "dropped_images": self.dropped, "format": self.extension,
                "replaced_share": round(self.replaced_share, 4), "detections_reused": self.detections_reused,
                "timings_ms": self.timings_ms}


def detections(replaced: list[Face], kept: list[Face]) -> list[dict]:
    """Every detected face, each marked kept (left as it is) or not (replaced)."""
    return [{**f.as_dict(), "kept": False} for f in replaced] + [{**f.as_dict(), "kept": True} for f in kept]


@dataclass
class Plan:
    """What the person's choices make of the detections: faces replaced, faces kept, regions added."""
    replaced: list[Face]
    kept: list[Face]
    added: list[tuple[int, int, int, int]]


def plan(faces: list[Face], options: ProtectOptions, width: int, height: int) -> Plan:
    added = [_pixel_box("regions", box, width, height) for box in options.regions]
    kept_ids = set()
    for box in options.keep:
        matches = {i for i, face in enumerate(faces) if _iou(box, face.box) >= KEEP_MIN_IOU}
        if not matches:
            raise BadOptions(f"A box of {{option}} matches no detected face (overlap under {KEEP_MIN_IOU} IoU): "
                             f"{list(box)!r:.80}. Use the boxes the report lists as detections.", option="keep")
        kept_ids |= matches
    return Plan([f for i, f in enumerate(faces) if i not in kept_ids],
                [f for i, f in enumerate(faces) if i in kept_ids], added)


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
    """Load the face detector once (server start); returns the detector names. Whole-person mode's models
    load with its first photo instead (~0.6 s once): a server that only ever protects faces, the default,
    never holds their ~170 MB."""
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


def _faces(frames: list[np.ndarray], data: bytes, faces_cache) -> tuple[list[Face], bool]:
    """The faces of these frames, and whether they came from the cache: its key is the original's bytes
    with how many of its frames are kept (an animation written as JPEG keeps its first)."""
    detector = default_detector()
    if faces_cache is None:
        return _find_faces(frames, detector), False
    height, width = frames[0].shape[:2]
    key = cache_key(data, detector.name, len(frames), width, height)
    return faces_cache.faces(key, lambda: _find_faces(frames, detector))


def _verify(frames, mask: np.ndarray, values: np.ndarray) -> None:
    """Fail closed if any pixel that should be replaced is not (a bug must never release a face)."""
    if not mask.any():
        return
    for frame in frames:
        if not (frame[mask, :3] == values).all():
            raise ProtectionFailed("Redaction check failed: a face region was not fully replaced.")
        if frame.shape[2] == 4 and not (frame[mask, 3] == 255).all():
            raise ProtectionFailed("Redaction check failed: a redacted region is not opaque.")


def _redact(frames: list[np.ndarray], choices: Plan, options: ProtectOptions, clock: _Stopwatch) -> float:
    """Replace the planned faces and regions in every frame, then check that they are replaced; returns the
    share of the photo replaced. The photo-sized mask lives only in here, so it is freed before encoding."""
    height, width = frames[0].shape[:2]
    heads = [f.box for f in choices.replaced]
    mask = redact.head_mask(heads, options.margin, width, height)
    if options.mode == "people":  # segments the original pixels, so before anything is replaced
        from shield_server import people

        mask |= people.people_mask(frames, heads, options.margin)
        clock.lap("people")
    if choices.added:
        mask |= redact.rectangle_mask(choices.added, width, height)
    sticker_boxes = [redact.head_ellipse_box(box, options.margin) for box in heads] + choices.added
    values = redact.replacement(mask, options.fill, options.color, options.sticker, sticker_boxes)
    # Every frame gets the union of every frame's faces (and every added region): a face missed in one frame
    # of an animation is still covered by its detection in the others.
    for frame in frames:
        redact.fill_pixels(frame, mask, values)
    clock.lap("redact")
    _verify(frames, mask, values)
    clock.lap("verify")
    return float(mask.mean())


def protect(data: bytes, options: ProtectOptions = ProtectOptions(), faces_cache=None) -> ProtectResult:
    """faces_cache (a face_cache.FaceCache, the server's): faces found earlier in the same bytes are reused
    instead of detected again; everything else is done from `data` as always."""
    clock = _Stopwatch()
    image = formats.decode(data, options.max_bytes, options.max_pixels)
    fmt = formats.output_format(image.source_format, options.format, image.has_alpha, len(image.frames) > 1)
    formats.keep_what_fits(image, fmt)
    clock.lap("decode")

    height, width = image.frames[0].shape[:2]
    faces, reused = _faces(image.frames, data, faces_cache)
    choices = plan(faces, options, width, height)
    clock.lap("detect")
    replaced_share = _redact(image.frames, choices, options, clock)
    encoded = formats.encode(image, fmt)
    clock.lap("encode")
    return ProtectResult(encoded, formats.mime_type(fmt), formats.extension(fmt), image.width, image.height,
                         choices.replaced, len(image.frames), clock.total(), choices.kept, choices.added,
                         image.dropped, replaced_share, reused)


def detect_only(data: bytes, options: ProtectOptions = ProtectOptions()) -> tuple[Plan, int, int]:
    """Faces of a photo without redacting it (for previews), sorted by the person's keep/regions choices;
    same decoding, limits and checks as protect()."""
    image = formats.decode(data, options.max_bytes, options.max_pixels)
    faces = _find_faces(image.frames[:1], default_detector())
    return plan(faces, options, image.width, image.height), image.width, image.height
