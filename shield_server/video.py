"""Video clips: every frame's faces replaced, container metadata gone, streamed frame by frame.

protect_video(source, target, options) decodes with PyAV (FFmpeg's libraries, bundled in its wheel; see
docs/VIDEO.md), turns each frame upright by the stored display matrix, finds faces, fills them with
redact.py's fills and encodes H.264 + AAC into a fresh MP4 that carries none of the source's metadata.

Across time (docs/VIDEO.md, docs/BENCHMARKS.md): the detector runs on every DETECT_EVERY-th frame, and
on both sides of every scene cut. Each frame is then covered by the detections of every detection frame
within HOLD frames of it (same scene only), each moved along the camera's motion and grown with its
distance in time, plus the path between matched faces of the detection frames around it, plus the last
sighting of any face not found again since (LOST_HOLD). So a window of HOLD frames is buffered: memory
stays bounded whatever the clip's length.
"""

import copy
import dataclasses
import os
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Callable, Mapping

import av
import cv2
import numpy as np

from shield_server import formats, redact
from shield_server.detect import default_detector
from shield_server.errors import (BadOptions, Cancelled, ProtectionFailed, TooLarge, UndecodableVideo,
                                  UnsupportedImage)

MAX_BYTES = 1_000_000_000
MAX_SECONDS = 600.0
MAX_PIXELS = 4096 * 2304  # 4K UHD and DCI 4K
MAX_FPS = 240
DETECT_EVERY = 3
# The photo detector's fine pass (1.5x, there for faces under ~20 px) is ~80% of a detection frame's time.
# It runs on every FINE_EVERY-th detection frame and on both sides of a scene cut; the detection frames
# between scan at LIGHT_UPSCALE instead. Small faces are far away and move few pixels, so the held boxes
# cover them between fine frames; larger faces are found at every detection frame.
FINE_EVERY = 2
LIGHT_UPSCALE = 1.0
HOLD = 6  # >= DETECT_EVERY: each frame sees the detection frames before and after it, and more
# A face not found again at a later detection frame (turning, covered, leaving) is held forward from its
# last sighting LOST_HOLD frames; one last seen at the frame's edge (within EDGE of it, as a share of the
# frame's short side) EDGE_LOST_HOLD frames, moving with the camera: once the frame's edge cuts its top or
# side off, the detector no longer finds a face the viewer still sees part of. Forward only: no more
# frames are buffered.
LOST_HOLD = 12
EDGE_LOST_HOLD = 24
EDGE = 0.02
# A held box follows the camera's motion, and grows by this fraction of its size per frame of distance
# for the face's own motion; where the camera's motion is unknown it grows faster.
GROW_PER_FRAME = 0.04
GROW_PER_FRAME_UNTRACKED = 0.1
MAX_GROW = 0.6
MOTION_WIDTH = 320  # camera motion is estimated on frames scaled to this width
MOTION_MIN_POINTS = 12
MATCH_DISTANCE = 1.5  # faces of two detection frames match when their centres are this many sizes apart
SCENE_CUT = 35.0  # mean absolute grey difference (0-255) of 64x36 thumbnails between consecutive frames
VIDEO_CRF = "20"
VIDEO_PRESET = "veryfast"
AUDIO_BITRATE = 128_000
AUDIO_CHOICES = ("keep", "drop")
MAX_EARLY_AUDIO_FRAMES = 500
READABLE_CONTAINERS = {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"}
WORKDIR_PREFIX = "job-"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class VideoOptions:
    fill: str = "solid"
    color: tuple[int, int, int] = (0, 0, 0)
    margin: float = redact.DEFAULT_MARGIN
    sticker: str = "smile"
    audio: bool = True
    max_bytes: int = MAX_BYTES
    max_seconds: float = MAX_SECONDS
    max_pixels: int = MAX_PIXELS

    @classmethod
    def from_params(cls, params: Mapping[str, str], **limits) -> "VideoOptions":
        """fill, color, margin, sticker as for photos (same checks: blur refused), audio=keep|drop. Video has
        no people mode, no drawn regions or kept faces, and one output format (MP4)."""
        from shield_server.pipeline import ProtectOptions

        rest = dict(params)
        audio = rest.pop("audio", "keep").strip().lower()
        if audio not in AUDIO_CHOICES:
            raise BadOptions("audio must be 'keep' or 'drop'.")
        if rest.pop("mode", "faces").strip().lower() != "faces":
            raise BadOptions("Video has no people mode: faces are replaced (see docs/VIDEO.md).")
        if rest.pop("format", "same").strip().lower() not in ("same", "mp4"):
            raise BadOptions("Protected videos are always MP4 (H.264 + AAC).")
        if {"regions", "keep"} & set(rest):
            raise BadOptions("regions and keep are for photos: a video's faces are found in every frame.")
        photo = ProtectOptions.from_params(rest)
        return cls(fill=photo.fill, color=photo.color, margin=photo.margin, sticker=photo.sticker,
                   audio=audio == "keep", **limits)


@dataclass
class VideoResult:
    width: int
    height: int
    frames: int
    fps: float
    audio: bool
    rotation: int
    detected_frames: int
    faces_per_frame_max: int
    scene_cuts: int
    timings_s: dict = field(default_factory=dict)

    def report(self) -> dict:
        return {"width": self.width, "height": self.height, "frames": self.frames, "fps": round(self.fps, 3),
                "audio": self.audio, "rotation": self.rotation, "detected_frames": self.detected_frames,
                "faces_max": self.faces_per_frame_max, "scene_cuts": self.scene_cuts, "format": "mp4",
                "mime_type": "video/mp4"}


def protect_video(source: str | os.PathLike | BinaryIO, target: str | os.PathLike, options: VideoOptions =
                  VideoOptions(), progress: Progress | None = None,
                  cancel: Callable[[], bool] | None = None) -> VideoResult:
    """Protect the clip at `source` (a path or a seekable binary file) into a new MP4 at `target`.
    Raises a ShieldError subclass on any failure, after removing whatever was written to `target`."""
    try:
        with _open_input(source, options) as clip:
            with av.open(os.fspath(target), "w", format="mp4",
                         options={"movflags": "+faststart", "fflags": "+bitexact"}) as output:
                return _Transcoder(clip, output, options, progress, cancel).run()
    except BaseException:
        Path(target).unlink(missing_ok=True)
        raise


def is_video(head: bytes) -> bool:
    return formats.sniff_video(head) is not None


class _open_input:
    """The source opened by PyAV after the size check, the magic-byte sniff and the container check."""

    def __init__(self, source, options: VideoOptions):
        self.source, self.options = source, options
        self.container = None

    def __enter__(self) -> "av.container.InputContainer":
        source = self.source
        if isinstance(source, (str, os.PathLike)):
            size = os.stat(source).st_size
            with open(source, "rb") as handle:
                head = handle.read(64)
        else:
            source.seek(0, os.SEEK_END)
            size = source.tell()
            source.seek(0)
            head = source.read(64)
            source.seek(0)
        if size > self.options.max_bytes:
            raise TooLarge(f"The video is {size / 1e6:.0f} MB; the limit is {self.options.max_bytes / 1e6:.0f} MB.")
        if formats.sniff_video(head) is None:
            raise UnsupportedImage("Not a supported video. Photo Shield reads MP4, MOV, M4V, WebM and MKV.")
        try:
            self.container = av.open(source if not isinstance(source, os.PathLike) else os.fspath(source),
                                     "r", metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            raise UndecodableVideo(f"The video cannot be read ({_reason(exc)}); it may be truncated or damaged.") from None
        if self.container.format.name not in READABLE_CONTAINERS:
            self.container.close()
            raise UnsupportedImage("Not a supported video. Photo Shield reads MP4, MOV, M4V, WebM and MKV.")
        return self.container

    def __exit__(self, *exc_info):
        if self.container is not None:
            self.container.close()


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__


class _Transcoder:
    def __init__(self, clip, output, options: VideoOptions, progress, cancel):
        self.clip, self.output, self.options = clip, output, options
        self.progress, self.cancel = progress or (lambda done, total: None), cancel or (lambda: False)
        self.video = _video_stream(clip)
        self.audio = (clip.streams.audio[0] if options.audio and clip.streams.audio else None)
        self._check_limits()
        self.detector, self.light_detector = _video_detectors()
        self.motion: dict[int, np.ndarray | None] = {}  # frame index -> camera motion from the frame before
        self.previous_small = None
        self.window: deque[_Frame] = deque()  # decoded frames not yet written
        self.detections: dict[int, list[tuple]] = {}  # frame index -> face boxes (x0, y0, x1, y1)
        self.scene_of: dict[int, int] = {}
        self.decoded = self.written = self.scene = self.cuts = self.faces_max = 0
        self.previous_thumb = None
        self.video_out = self.audio_out = self.resampler = None
        self.rotation = 0
        self.first_pts = None
        self.early_audio = []

    def _check_limits(self) -> None:
        stream, options = self.video, self.options
        width, height = stream.codec_context.width, stream.codec_context.height
        if width <= 0 or height <= 0:
            raise UndecodableVideo("The video's frame size cannot be read; it may be damaged.")
        if width * height > options.max_pixels:
            raise TooLarge(f"The video is {width}x{height}; the limit is {options.max_pixels / 1e6:.1f} megapixels.")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        seconds = self._duration()
        if seconds is None or not rate or not 0 < float(rate) <= MAX_FPS:
            measured_rate, measured_seconds = self._measure_timing() or (None, None)
            seconds = seconds if seconds is not None else measured_seconds
            rate = rate if rate and 0 < float(rate) <= MAX_FPS else measured_rate
        if not rate or not 0 < float(rate) <= MAX_FPS:
            raise UndecodableVideo("The video's frame rate cannot be read, or is over 240 fps.")
        self.rate = rate
        if seconds is None:
            raise UndecodableVideo("The video's duration cannot be read; it may be truncated or damaged.")
        if seconds > options.max_seconds:
            raise TooLarge(f"The video lasts {seconds / 60:.1f} minutes; the limit is "
                           f"{options.max_seconds / 60:.0f} minutes.")
        self.seconds = seconds
        self.expected_frames = stream.frames or round(seconds * float(rate))

    def _measure_timing(self):
        """A browser's MediaRecorder writes WebM with neither frame rate nor duration: read them from the
        packets' timestamps (no decoding), then start again from the beginning. None if that fails."""
        first = last = None
        count = 0
        try:
            for packet in self.clip.demux(self.video):
                if packet.pts is None:
                    continue
                first = packet.pts if first is None else min(first, packet.pts)
                last = packet.pts if last is None else max(last, packet.pts)
                count += 1
            self.clip.seek(0)
        except (av.error.FFmpegError, ValueError):
            return None
        if count < 2 or not self.video.time_base or last <= first:
            return None
        seconds = float((last - first) * self.video.time_base)
        return Fraction(round((count - 1) / seconds * 1000), 1000), seconds * count / (count - 1)

    def _duration(self) -> float | None:
        stream = self.video
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        if self.clip.duration:
            return self.clip.duration / av.time_base
        return None

    def _open_outputs(self, width: int, height: int) -> None:
        video_out = self.output.add_stream("libx264", rate=self.rate)
        video_out.width, video_out.height, video_out.pix_fmt = width, height, "yuv420p"
        video_out.time_base = self.video.time_base
        video_out.codec_context.time_base = self.video.time_base
        video_out.options = {"crf": VIDEO_CRF, "preset": VIDEO_PRESET}
        video_out.thread_type = "AUTO"
        self.video_out = video_out
        if self.audio is not None:
            layout = "mono" if self.audio.codec_context.channels == 1 else "stereo"
            rate = self.audio.codec_context.sample_rate or 48000
            self.audio_out = self.output.add_stream("aac", rate=rate, layout=layout)
            self.audio_out.bit_rate = AUDIO_BITRATE
            self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)

    def run(self) -> VideoResult:
        self.video.thread_type = "AUTO"
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        try:
            for packet in self.clip.demux(streams):
                if self.cancel():
                    raise Cancelled("The video was cancelled.")
                for frame in packet.decode():
                    if packet.stream is self.video:
                        self._take(frame)
                    else:
                        self._take_audio(frame)
        except av.error.FFmpegError as exc:
            raise UndecodableVideo(f"The video cannot be decoded ({_reason(exc)}); it may be truncated or damaged.") from None
        if self.decoded == 0:
            raise UndecodableVideo("The video has no frame that can be decoded.")
        self._check_complete()
        while self.window:
            self._write_oldest()
        self._flush_encoders()
        height, width = self.out_shape
        return VideoResult(width, height, self.written, float(self.rate), self.audio_out is not None,
                           self.rotation, len(self.detections_done), self.faces_max, self.cuts)

    def _check_complete(self) -> None:
        """A truncated file decodes without error up to where it stops: refuse it rather than release part
        of a clip the user did not choose to cut."""
        if self.video.frames and self.decoded < self.video.frames - 1:
            raise UndecodableVideo(f"The video is truncated or damaged: {self.decoded} of {self.video.frames} "
                                   "frames could be read.")
        last_seconds = float((self.last_pts - self.first_pts) * self.video.time_base)
        # The stated duration ends after the last frame's own duration, and audio may run a little longer.
        if not self.video.frames and last_seconds < self.seconds - max(3 / float(self.rate), 0.25):
            raise UndecodableVideo(f"The video is truncated or damaged: it stops after {last_seconds:.1f} s "
                                   f"of {self.seconds:.1f} s.")

    def _take(self, frame) -> None:
        if frame.is_corrupt:
            raise UndecodableVideo("The video is damaged: a frame could not be decoded intact.")
        if self.video_out is None:
            self.rotation = int(round((frame.rotation or 0) / 90.0)) % 4 * 90
            self.detections_done: set[int] = set()
        rgb = frame.to_ndarray(format="rgb24")
        if self.rotation:
            rgb = np.rot90(rgb, k=self.rotation // 90)  # FFmpeg's rotation is counter-clockwise
        rgb = np.ascontiguousarray(rgb[:rgb.shape[0] // 2 * 2, :rgb.shape[1] // 2 * 2])  # 4:2:0 needs even sizes
        if self.video_out is None:
            self.out_shape = rgb.shape[:2]
            self._open_outputs(rgb.shape[1], rgb.shape[0])
        if frame.pts is None:
            raise UndecodableVideo("The video's frames carry no timestamps; it may be damaged.")
        if self.first_pts is None:
            self.first_pts = frame.pts
        self.last_pts = frame.pts
        if float((frame.pts - self.first_pts) * self.video.time_base) > self.options.max_seconds:
            raise TooLarge(f"The video lasts over {self.options.max_seconds / 60:.0f} minutes.")
        index = self.decoded
        self.decoded += 1
        item = _Frame(index, frame.pts, rgb)
        self.window.append(item)
        small = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (MOTION_WIDTH, max(round(
            MOTION_WIDTH * rgb.shape[0] / rgb.shape[1]), 1)), interpolation=cv2.INTER_AREA)
        if self.previous_small is not None:
            self.motion[index] = _camera_motion(self.previous_small, small, rgb.shape[1] / MOTION_WIDTH)
        self.previous_small = small
        thumb = cv2.resize(small, (64, 36), interpolation=cv2.INTER_AREA)
        # A cut: the pictures change a lot and no camera motion explains it (a fast pan changes them too).
        if (self.previous_thumb is not None and self.motion.get(index) is None
                and np.abs(thumb.astype(np.int16) - self.previous_thumb).mean() > SCENE_CUT):
            self.scene += 1
            self.cuts += 1
            if len(self.window) >= 2:
                self._detect(self.window[-2], fine=True)  # the last frame of the old scene
            self._detect(item, fine=True)
        self.previous_thumb = thumb.astype(np.int16)
        self.scene_of[index] = self.scene
        if index % DETECT_EVERY == 0:
            self._detect(item, fine=index % (DETECT_EVERY * FINE_EVERY) == 0)
        while self.window and self.window[0].index + HOLD < self.decoded:
            self._write_oldest()

    def _detect(self, item: "_Frame", fine: bool) -> None:
        if item.index in self.detections_done:
            return
        from shield_server.pipeline import _find_faces  # the photo path's detector lock and box clipping

        faces = _find_faces([item.rgb], self.detector if fine else self.light_detector)
        self.detections[item.index] = [face.box for face in faces]
        self.detections_done.add(item.index)
        self.faces_max = max(self.faces_max, len(faces))

    def _boxes_for(self, index: int) -> list[tuple]:
        scene = self.scene_of[index]
        nearby = [d for d in self.detections if abs(d - index) <= HOLD and self.scene_of.get(d) == scene]
        boxes = self._held([(box, d) for d in nearby for box in self.detections[d]] + self._lost_faces(index), index)
        before = [d for d in nearby if d <= index]
        after = [d for d in nearby if d >= index]
        if before and after and max(before) != min(after):
            start, end = max(before), min(after)
            share = (index - start) / (end - start)
            for a, b in _matches(self.detections[start], self.detections[end]):
                boxes.append(tuple(pa + (pb - pa) * share for pa, pb in zip(a, b)))
        return boxes

    def _held(self, pairs: list[tuple[tuple, int]], index: int) -> list[tuple]:
        """Boxes of (box, frame found at) pairs, moved to frame index along the camera's motion and grown with
        the distance in time."""
        held = []
        for box, d in pairs:
            motion = self._motion_between(d, index)
            grow = (GROW_PER_FRAME if motion is not None else GROW_PER_FRAME_UNTRACKED) * abs(d - index)
            held.append(_grow(_moved(box, motion), min(grow, MAX_GROW)))
        return held

    def _lost_faces(self, index: int) -> list[tuple[tuple, int]]:
        """(box, frame) of the faces last found over HOLD frames before frame index (but within LOST_HOLD, or
        EDGE_LOST_HOLD at the frame's edge), in its scene, and not found again at any detection frame since."""
        scene = self.scene_of[index]
        height, width = self.out_shape
        edge = EDGE * min(width, height)
        lost = []
        for d in self.detections:
            if not HOLD < index - d <= max(LOST_HOLD, EDGE_LOST_HOLD) or self.scene_of.get(d) != scene:
                continue
            motion_to = {k: self._motion_between(d, k) for k in self.detections if d < k <= index}
            for box in self.detections[d]:
                at_edge = min(box[0], box[1], width - box[2], height - box[3]) <= edge
                if index - d > (EDGE_LOST_HOLD if at_edge else LOST_HOLD):
                    continue
                if not any(_matches([_moved(box, motion)], self.detections[k]) for k, motion in motion_to.items()):
                    lost.append((box, d))
        return lost

    def _motion_between(self, start: int, end: int) -> np.ndarray | None:
        """The camera's motion from frame start to frame end (3x3), or None where a step is unknown."""
        total = np.eye(3)
        for k in range(min(start, end) + 1, max(start, end) + 1):
            step = self.motion.get(k)
            if step is None:
                return None
            total = step @ total
        if end >= start:
            return total
        return np.vstack([cv2.invertAffineTransform(total[:2]), [0.0, 0.0, 1.0]])

    def _write_oldest(self) -> None:
        item = self.window.popleft()
        height, width = item.rgb.shape[:2]
        options = self.options
        heads = self._boxes_for(item.index)
        mask = redact.head_mask(heads, options.margin, width, height)
        values = redact.replacement(mask, options.fill, options.color, options.sticker,
                                    [redact.head_ellipse_box(box, options.margin) for box in heads])
        redact.fill_pixels(item.rgb, mask, values)
        if mask.any() and not (item.rgb[mask] == values).all():
            raise ProtectionFailed("Redaction check failed: a face region was not fully replaced.")
        frame = av.VideoFrame.from_ndarray(item.rgb, format="rgb24")
        frame.pts, frame.time_base = item.pts, self.video.time_base
        for packet in self.video_out.encode(frame):
            self.output.mux(packet)
        self.written += 1
        kept = max(HOLD, LOST_HOLD, EDGE_LOST_HOLD)
        for old in [d for d in self.detections if d < item.index - kept]:
            del self.detections[old]
        self.scene_of.pop(item.index - kept - 1, None)
        self.motion.pop(item.index - kept, None)
        self.progress(self.written, max(self.expected_frames, self.written))

    def _take_audio(self, frame) -> None:
        if self.audio_out is None:  # the output streams open with the first video frame (its rotation)
            if len(self.early_audio) > MAX_EARLY_AUDIO_FRAMES:
                raise UndecodableVideo("The video's audio runs far ahead of its pictures; try without audio.")
            self.early_audio.append(frame)
            return
        for early in self.early_audio:
            self._encode_audio(early)
        self.early_audio.clear()
        self._encode_audio(frame)

    def _encode_audio(self, frame) -> None:
        for resampled in self.resampler.resample(frame):
            for packet in self.audio_out.encode(resampled):
                self.output.mux(packet)

    def _flush_encoders(self) -> None:
        if self.audio_out is not None:
            for early in self.early_audio:
                self._encode_audio(early)
            for resampled in self.resampler.resample(None):
                for packet in self.audio_out.encode(resampled):
                    self.output.mux(packet)
            for packet in self.audio_out.encode(None):
                self.output.mux(packet)
        for packet in self.video_out.encode(None):
            self.output.mux(packet)


@dataclass
class _Frame:
    index: int
    pts: int
    rgb: np.ndarray


def _video_stream(clip):
    for stream in clip.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:  # cover art is a "video" stream
            return stream
    raise UndecodableVideo("The file has no video stream.")


def _video_detectors():
    """(fine, light): the photo detector plus a pass at 0.3x, for a face filling most of a video frame (a
    selfie), too large for the photo passes at 720p and above; the light one has its fine pass at
    LIGHT_UPSCALE. Both share the model's session.
    The fine pass is the photo pass without its mirror check (threshold 0.2, as in detection round 2): the
    video results in docs/BENCHMARKS.md were measured that way, and holding across frames covers a weak
    frame."""
    from shield_server.detect.centerface import DEFAULT_PASSES, CenterFace, Pass

    detector = default_detector()
    if not isinstance(detector, CenterFace):
        return detector, detector
    versions = []
    for upscale in (DEFAULT_PASSES[0].upscale, LIGHT_UPSCALE):
        version = copy.copy(detector)
        first = dataclasses.replace(DEFAULT_PASSES[0], upscale=upscale, threshold=0.2, mirror=False)
        version.passes = (first, *DEFAULT_PASSES[1:], Pass(0.3, 0.5, 0.3e6))
        versions.append(version)
    return tuple(versions)


def _camera_motion(previous: np.ndarray, current: np.ndarray, scale: float) -> np.ndarray | None:
    """The similarity transform (pan, zoom, roll) from the previous frame to this one, in full-size pixels,
    from corners tracked by optical flow on the small grey frames; None when it cannot be trusted."""
    points = cv2.goodFeaturesToTrack(previous, maxCorners=200, qualityLevel=0.01, minDistance=6)
    if points is None or len(points) < MOTION_MIN_POINTS:
        return None
    moved, found, _ = cv2.calcOpticalFlowPyrLK(previous, current, points, None)
    found = found.reshape(-1).astype(bool)
    if found.sum() < MOTION_MIN_POINTS:
        return None
    matrix, inliers = cv2.estimateAffinePartial2D(points[found], moved[found], method=cv2.RANSAC,
                                                  ransacReprojThreshold=1.5)
    if matrix is None or inliers.sum() < max(MOTION_MIN_POINTS, 0.5 * found.sum()):
        return None
    matrix[:, 2] *= scale
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


def _moved(box: tuple, motion: np.ndarray | None) -> tuple:
    if motion is None:
        return box
    x0, y0, x1, y1 = box
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], float) @ motion.T
    return (corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(), corners[:, 1].max())


def _grow(box: tuple, fraction: float) -> tuple:
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * fraction, (y1 - y0) * fraction
    return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)


def _matches(first: list[tuple], second: list[tuple]) -> list[tuple[tuple, tuple]]:
    """Each face of `first` paired with the nearest face of `second` whose centre is close enough."""
    pairs = []
    for a in first:
        size = max(a[2] - a[0], a[3] - a[1])
        centre = np.array([(a[0] + a[2]) / 2, (a[1] + a[3]) / 2])
        best = min(second, default=None, key=lambda b: np.hypot(*(centre - [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])))
        if best is not None and np.hypot(*(centre - [(best[0] + best[2]) / 2, (best[1] + best[3]) / 2])) <= MATCH_DISTANCE * size:
            pairs.append((a, best))
    return pairs


# A private temporary folder for the server's uploads and results: <tmp>/photo-shield-<uid>/job-<pid>-*,
# mode 0700. Each job's folder is removed when the job ends; folders of processes no longer alive (a crash)
# are removed at the next start.

def workdir_root() -> Path:
    root = Path(tempfile.gettempdir()) / f"photo-shield-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(root)
    if not os.path.isdir(root) or os.path.islink(root) or info.st_uid != os.getuid():
        raise ProtectionFailed(f"{root} is not a private folder of this user; remove it and try again.")
    os.chmod(root, 0o700)
    return root


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-", dir=workdir_root()))  # mode 0700


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def sweep_stale_workdirs() -> int:
    """Remove the job folders of processes that no longer run; returns how many were removed."""
    removed = 0
    for child in workdir_root().iterdir():
        parts = child.name.split("-")
        if not child.name.startswith(WORKDIR_PREFIX) or len(parts) < 3 or not parts[1].isdigit():
            continue
        if not _process_alive(int(parts[1])):
            remove_workdir(child)
            removed += 1
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
