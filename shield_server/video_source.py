"""Opening a clip and holding it to the limits: the size check, the magic-byte sniff, the container check,
the header's frame size, frame rate and duration, then decoding picture by picture into upright RGB with
the stream's timestamps, refusing corrupt frames and truncated files (docs/VIDEO.md, "Limits").

    with ClipSource(path_or_file, options) as clip:   # refused here: too large, unsupported, unreadable
        for item in clip.frames(cancel):              # Picture (upright RGB) or av.AudioFrame, in file order
            ...
"""

import os
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from shield_server import formats, video_bounds
from shield_server.errors import Cancelled, TooLarge, UndecodableVideo, UnsupportedImage

MAX_BYTES = 1_000_000_000
MAX_SECONDS = 600.0
MAX_PIXELS = 4096 * 2304  # 4K UHD and DCI 4K
MAX_FPS = 240
READABLE_CONTAINERS = {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"}


@dataclass
class Picture:
    """One decoded frame, upright, cropped to even sizes (4:2:0 needs them)."""
    index: int
    pts: int
    rgb: np.ndarray


class ClipSource:
    """The source opened by PyAV after the size check, the magic-byte sniff and the container check, with its
    video stream (and first audio stream, when kept) checked against the options' limits."""

    def __init__(self, source, options):
        self.source, self.options = source, options
        self.container = None
        self.rotation = 0
        self.decoded = 0
        self.first_pts = self.last_pts = None

    def __enter__(self) -> "ClipSource":
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
        try:
            if self.container.format.name not in READABLE_CONTAINERS:
                raise UnsupportedImage("Not a supported video. Photo Shield reads MP4, MOV, M4V, WebM and MKV.")
            self.video = _video_stream(self.container)
            self.audio = (self.container.streams.audio[0] if self.options.audio and self.container.streams.audio
                          else None)
            self._check_limits()
        except BaseException:
            self.container.close()
            raise
        return self

    def __exit__(self, *exc_info):
        if self.container is not None:
            self.container.close()

    def _check_limits(self) -> None:
        stream, options = self.video, self.options
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        seconds = self._duration()
        if seconds is None or not rate or not 0 < float(rate) <= MAX_FPS:
            measured_rate, measured_seconds = self._measure_timing() or (None, None)
            seconds = seconds if seconds is not None else measured_seconds
            rate = rate if rate and 0 < float(rate) <= MAX_FPS else measured_rate
        video_bounds.check_stream(stream, options, MAX_FPS, measured_seconds=seconds)
        width, height = stream.codec_context.width, stream.codec_context.height
        if width <= 0 or height <= 0:
            raise UndecodableVideo("The video's frame size cannot be read; it may be damaged.")
        if width * height > options.max_pixels:
            raise TooLarge(f"The video is {width}x{height}; the limit is {options.max_pixels / 1e6:.1f} megapixels.")
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
        """A browser's MediaRecorder writes WebM with neither duration nor (in Chromium) frame rate: read them
        from the packets' timestamps (no decoding), then start again from the beginning. None if that fails."""
        first = last = None
        count = 0
        try:
            for packet in self.container.demux(self.video):
                if packet.pts is None:
                    continue
                first = packet.pts if first is None else min(first, packet.pts)
                last = packet.pts if last is None else max(last, packet.pts)
                count += 1
            self.container.seek(0)
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
        if self.container.duration:
            return self.container.duration / av.time_base
        return None

    def frames(self, cancel):
        """Pictures and audio frames in the file's order; raises when the clip turns out damaged, truncated
        or longer than the limit, and Cancelled when cancel() says so (checked before each packet)."""
        self.video.thread_type = "AUTO"
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        try:
            for packet in self.container.demux(streams):
                if cancel():
                    raise Cancelled("The video was cancelled.")
                for frame in packet.decode():
                    yield self._picture(frame) if packet.stream is self.video else frame
        except av.error.FFmpegError as exc:
            raise UndecodableVideo(f"The video cannot be decoded ({_reason(exc)}); it may be truncated or damaged.") from None
        if self.decoded == 0:
            raise UndecodableVideo("The video has no frame that can be decoded.")
        self._check_complete()

    def _picture(self, frame) -> Picture:
        if frame.is_corrupt:
            raise UndecodableVideo("The video is damaged: a frame could not be decoded intact.")
        if self.decoded == 0:
            self.rotation = int(round((frame.rotation or 0) / 90.0)) % 4 * 90
            self.size = (frame.width, frame.height)
        video_bounds.check_picture(frame.width, frame.height, self.size, self.options.max_pixels)
        rgb = frame.to_ndarray(format="rgb24")
        if self.rotation:
            rgb = np.rot90(rgb, k=self.rotation // 90)  # FFmpeg's rotation is counter-clockwise
        rgb = np.ascontiguousarray(rgb[:rgb.shape[0] // 2 * 2, :rgb.shape[1] // 2 * 2])  # 4:2:0 needs even sizes
        if frame.pts is None:
            raise UndecodableVideo("The video's frames carry no timestamps; it may be damaged.")
        if self.first_pts is None:
            self.first_pts = frame.pts
        self.last_pts = frame.pts
        if float((frame.pts - self.first_pts) * self.video.time_base) > self.options.max_seconds:
            raise TooLarge(f"The video lasts over {self.options.max_seconds / 60:.0f} minutes.")
        self.decoded += 1
        return Picture(self.decoded - 1, frame.pts, rgb)

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


def _video_stream(clip):
    for stream in clip.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:  # cover art is a "video" stream
            return stream
    raise UndecodableVideo("The file has no video stream.")


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__
