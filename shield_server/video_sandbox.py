"""Decoding a clip in a child process under a hard memory ceiling, as browsers isolate their media decoders.

A hostile file can make FFmpeg allocate gigabytes from a few bytes: an MP4 whose sample table declares 89
million samples (the demuxer builds an index for all of them while opening the file), or a stream whose
header says 64x36 and whose later pictures are 16384x9216. So everything that reads the file (open, probe,
demux, decode) runs in a child process whose address space is capped with RLIMIT_AS; whatever the file
says, the child fails inside its ceiling and the parent reports a clear refusal. The child also checks
what it decodes: the codec is one of the documented ones, every picture's size (not only the header's) is
within the limit and the same as the first one's, the index lists no more frames than the limits allow.

The child streams upright, even-sized RGB pictures to the parent through a shared-memory ring (a memfd of
SLOTS frames; one copy out of it in the parent) and decoded audio, resampled to what the encoder takes,
through its stdout. Its stdout carries messages: a 4-byte length, a JSON header, and for audio the
samples. The parent acknowledges each picture on the child's stdin, freeing its slot.

    with IsolatedClip(path, options) as clip:   # refused here: too large, unsupported, unreadable, bomb
        clip.width, clip.height, clip.rate, clip.time_base, clip.seconds, clip.expected_frames, clip.audio
        for item in clip.decoded(cancel):        # Picture (upright RGB) or av.AudioFrame, in file order
            ...
    clip.peak_rss                               # the child's peak resident memory (Linux), as it reported it
"""

import json
import mmap
import os
import struct
import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from shield_server.errors import Cancelled, ShieldError, TooLarge, UndecodableVideo, UnsupportedImage

ALLOWED_CODECS = {"h264": "H.264", "hevc": "HEVC", "vp8": "VP8", "vp9": "VP9", "av1": "AV1"}
READABLE_CONTAINERS = {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"}
MAX_FPS = 240
MIN_SIDE = 16  # smaller pictures (1x1, 2x2) are no video a person shoots; the detector needs some pixels
# The child's address-space ceiling: CEILING_BASE while it opens the file (the interpreter, PyAV's
# libraries and the demuxer's index: a legitimate 10-minute clip's index is a few MB), then
# CEILING_BASE plus CEILING_PER_PIXEL bytes per pixel of the header's frame size (the decoder's reference
# and threading frames, the RGB conversion, the ring's slots). Measured in docs/VIDEO.md ("Limits").
CEILING_BASE = 640 << 20
CEILING_PER_PIXEL = 64
DECODER_THREADS = 4  # each decoding thread holds frames and a stack: a fixed count keeps the ceiling fixed
SLOTS = 3
MAX_MESSAGE = 64 << 20
_LENGTH = struct.Struct("<I")


@dataclass
class Picture:
    """One decoded frame, upright, cropped to even sizes (4:2:0 needs them)."""
    index: int
    pts: int
    rgb: np.ndarray


def decode_ceiling(pixels: int) -> int:
    return CEILING_BASE + CEILING_PER_PIXEL * pixels


class IsolatedClip:
    """The parent's side: starts the child, reads its messages, and turns them into Pictures and audio
    frames; the child is killed and reaped on every way out."""

    def __init__(self, source: str | os.PathLike, options):
        self.source, self.options = Path(source), options
        self.process = self.ring = self.ring_fd = None
        self.peak_rss = self.address_peak = 0  # the child's peak resident memory and address space
        self.rotation = 0  # the display matrix's turn, already applied to the pictures
        self.decoded_count = 0

    def __enter__(self) -> "IsolatedClip":
        frame_bytes = self.options.max_pixels * 3
        if hasattr(os, "memfd_create"):  # Linux; elsewhere the pictures come through the pipe (one more copy)
            self.ring_fd = os.memfd_create("shield-frames")
            os.ftruncate(self.ring_fd, frame_bytes * SLOTS)  # pages are only allocated when written
            self.ring = mmap.mmap(self.ring_fd, frame_bytes * SLOTS)
        settings = {"path": os.fspath(self.source), "ring_fd": self.ring_fd, "slot_bytes": frame_bytes,
                    "max_pixels": self.options.max_pixels, "max_seconds": self.options.max_seconds,
                    "audio": self.options.audio}
        env = {**os.environ, "MALLOC_ARENA_MAX": "2"}  # each arena reserves 64 MB of address space
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                          env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shield_server.video_sandbox", json.dumps(settings)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            pass_fds=(self.ring_fd,) if self.ring is not None else (), env=env)
        try:
            info = self._message()
            if info.get("t") != "info":
                self._raise(info)
        except BaseException:
            self._stop()
            raise
        self.width, self.height = info["width"], info["height"]
        self.rate, self.time_base = Fraction(*info["rate"]), Fraction(*info["time_base"])
        self.seconds, self.expected_frames = info["seconds"], info["expected_frames"]
        self.codec = info["codec"]
        self.audio = info["audio"]  # {"channels": 1|2, "sample_rate": n} or None
        return self

    def __exit__(self, *exc_info):
        self._stop()

    def decoded(self, cancel=lambda: False):
        """Pictures and audio frames in the file's order; raises the child's refusal (damaged, truncated,
        too large, over its memory ceiling) and Cancelled when cancel() says so."""
        import av

        while True:
            if cancel():
                self._stop()
                raise Cancelled("The video was cancelled.")
            message = self._message()
            kind = message.get("t")
            if kind == "video":
                height, width, slot = message["height"], message["width"], message["slot"]
                if not (0 < width and 0 < height and width * height <= self.options.max_pixels and 0 <= slot < SLOTS):
                    self._raise({})  # the child says what no picture within the limits is: it is not ours
                rgb = np.empty((height, width, 3), np.uint8)
                if self.ring is not None:
                    start = slot * self.options.max_pixels * 3
                    rgb[:] = np.frombuffer(self.ring, np.uint8, rgb.size, start).reshape(rgb.shape)
                elif self.process.stdout.readinto(memoryview(rgb).cast("B")) != rgb.size:
                    self._raise({})
                try:
                    self.process.stdin.write(b"\x01")  # the slot is free again
                    self.process.stdin.flush()
                except BrokenPipeError:
                    pass  # the child has sent everything and ended
                self.decoded_count += 1
                self.rotation = message["rotation"]
                yield Picture(self.decoded_count - 1, message["pts"], rgb)
            elif kind == "audio":
                if message["channels"] not in (1, 2):
                    self._raise({})
                samples = np.frombuffer(self._read(message["bytes"]), np.float32).reshape(message["channels"], -1)
                frame = av.AudioFrame.from_ndarray(samples, format="fltp",
                                                   layout="mono" if message["channels"] == 1 else "stereo")
                frame.sample_rate, frame.pts = message["sample_rate"], message["pts"]
                frame.time_base = Fraction(*message["time_base"])
                yield frame
            elif kind == "end":
                self.peak_rss, self.address_peak = message["peak"], message["address_peak"]
                return
            else:
                self._raise(message)

    def _read(self, count: int) -> bytes:
        if count > MAX_MESSAGE:
            self._raise({})
        data = self.process.stdout.read(count)
        if len(data) != count:
            self._raise({})
        return data

    def _message(self) -> dict:
        length, = _LENGTH.unpack(self._read(_LENGTH.size))
        return json.loads(self._read(length))

    def _raise(self, message: dict):
        """The child's refusal, or a clear one when it died without saying why (killed at its ceiling)."""
        self._stop()
        self.peak_rss = message.get("peak", self.peak_rss)
        errors = {cls.code: cls for cls in (TooLarge, UndecodableVideo, UnsupportedImage)}
        if message.get("code") in errors:
            raise errors[message["code"]](message.get("message", ""))
        raise UndecodableVideo("The video could not be decoded: its decoder stopped (damaged, or built to "
                               "exhaust memory).")

    def _stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            for pipe in (self.process.stdin, self.process.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass
            self.process.wait()
        if self.ring is not None:
            self.ring.close()
            os.close(self.ring_fd)
            self.ring = None


# The child's side.

class _Refused(Exception):
    def __init__(self, error: ShieldError):
        self.error = error


def _send(out, header: dict, payload: bytes = b"") -> None:
    data = json.dumps(header).encode()
    out.write(_LENGTH.pack(len(data)) + data)
    if payload:
        out.write(payload)
    out.flush()


def _memory(field: str) -> int:
    """VmPeak (address space) or VmHWM (resident memory) of this process at its highest, in bytes (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _limit_memory(soft: int, hard: int | None = None) -> None:
    """RLIMIT_AS where the system has it (Linux enforces it; Windows has no such limit)."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (soft, resource.getrlimit(resource.RLIMIT_AS)[1] if hard is None
                                                else hard))
    except (ImportError, ValueError, OSError):
        pass


def _child(settings: dict, out, acks) -> None:
    # The hard limit: not even this code goes past the ceiling of the largest frame size allowed.
    _limit_memory(CEILING_BASE, decode_ceiling(settings["max_pixels"]))
    decoder = None
    try:
        ring = None if settings["ring_fd"] is None else mmap.mmap(settings["ring_fd"], settings["slot_bytes"] * SLOTS)
        decoder = _Decoder(settings, ring, out, acks)
        decoder.run()
    except _Refused as refused:
        _send(out, {"t": "error", "code": refused.error.code, "message": refused.error.message,
                    "peak": _memory("VmHWM")})
    except MemoryError:
        ceiling = decoder.ceiling if decoder is not None else CEILING_BASE
        _send(out, {"t": "error", "code": TooLarge.code,
                    "message": f"Decoding the video needs more than the {ceiling >> 20} MB of memory allowed "
                               "for its frame size: it may be built to exhaust memory.", "peak": _memory("VmHWM")})


class _Decoder:
    def __init__(self, settings: dict, ring, out, acks):
        self.settings, self.ring, self.out, self.acks = settings, ring, out, acks
        self.in_flight = 0
        self.slot = 0
        self.decoded = 0
        self.first_pts = self.last_pts = None
        self.size = None
        self.ceiling = CEILING_BASE

    def raise_ceiling(self, pixels: int) -> None:
        self.ceiling = decode_ceiling(pixels)
        _limit_memory(self.ceiling)

    def refuse(self, cls, message: str):
        raise _Refused(cls(message))

    def run(self) -> None:
        import av

        try:
            container = av.open(self.settings["path"], "r", metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            if _memory("VmPeak") > 0.9 * CEILING_BASE or isinstance(exc, MemoryError):
                raise MemoryError from None
            self.refuse(UndecodableVideo, f"The video cannot be read ({_reason(exc)}); it may be truncated "
                                          "or damaged.")
        with container:
            if container.format.name not in READABLE_CONTAINERS:
                self.refuse(UnsupportedImage, "Not a supported video. Photo Shield reads MP4, MOV, M4V, "
                                              "WebM and MKV.")
            video = _video_stream(container, self)
            audio = container.streams.audio[0] if self.settings["audio"] and container.streams.audio else None
            info = self.check_header(video)
            if audio is not None:
                channels = 1 if audio.codec_context.channels == 1 else 2
                rate = audio.codec_context.sample_rate or 48000
                info["audio"] = {"channels": channels, "sample_rate": rate}
                resampler = av.AudioResampler(format="fltp", layout="mono" if channels == 1 else "stereo",
                                              rate=rate)
            self.raise_ceiling(info["width"] * info["height"])
            _send(self.out, info)
            video.thread_type = "AUTO"
            video.codec_context.thread_count = DECODER_THREADS
            streams = [video] + ([audio] if audio is not None else [])
            self.video = video
            try:
                for packet in container.demux(streams):
                    for frame in packet.decode():
                        if packet.stream is video:
                            self.picture(frame)
                        else:
                            for resampled in resampler.resample(frame):
                                self.audio_frame(resampled)
                if audio is not None:
                    for resampled in resampler.resample(None):
                        self.audio_frame(resampled)
            except av.error.FFmpegError as exc:
                if isinstance(exc, MemoryError):
                    raise
                self.refuse(UndecodableVideo, f"The video cannot be decoded ({_reason(exc)}); it may be "
                                              "truncated or damaged.")
            self.check_complete(info)
        _send(self.out, {"t": "end", "frames": self.decoded, "peak": _memory("VmHWM"),
                         "address_peak": _memory("VmPeak")})

    def check_header(self, stream) -> dict:
        import av

        context = stream.codec_context
        codec = context.codec.canonical_name  # "av1" whichever decoder (dav1d) reads it
        if codec not in ALLOWED_CODECS:
            self.refuse(UnsupportedImage, f"The video's pictures are {codec.upper()}; Photo Shield reads "
                                          f"{', '.join(ALLOWED_CODECS.values())}.")
        width, height = context.width, context.height
        if width <= 0 or height <= 0:
            self.refuse(UndecodableVideo, "The video's frame size cannot be read; it may be damaged.")
        self.check_size(width, height)
        if not stream.frames and not stream.duration and not stream.container.duration:
            self.refuse(UndecodableVideo, "The video has no frame: its index lists none and it lasts 0 s.")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or not 0 < float(rate) <= MAX_FPS:
            self.refuse(UndecodableVideo, f"The video's frame rate cannot be read, or is over {MAX_FPS} fps.")
        seconds = None
        if stream.duration and stream.time_base:
            seconds = float(stream.duration * stream.time_base)
        elif stream.container.duration:
            seconds = stream.container.duration / av.time_base
        if seconds is None:
            self.refuse(UndecodableVideo, "The video's duration cannot be read; it may be truncated or damaged.")
        max_seconds = self.settings["max_seconds"]
        if seconds > max_seconds:
            self.refuse(TooLarge, f"The video lasts {seconds / 60:.1f} minutes; the limit is "
                                  f"{max_seconds / 60:.0f} minutes.")
        if stream.frames > max_seconds * MAX_FPS:
            self.refuse(TooLarge, f"The video's index lists {stream.frames} frames; the limit is "
                                  f"{max_seconds / 60:.0f} minutes at {MAX_FPS} frames per second.")
        return {"t": "info", "codec": codec, "width": width, "height": height,
                "rate": [rate.numerator, rate.denominator],
                "time_base": [stream.time_base.numerator, stream.time_base.denominator], "seconds": seconds,
                "frames": stream.frames, "expected_frames": stream.frames or round(seconds * float(rate)),
                "audio": None}

    def check_size(self, width: int, height: int) -> None:
        max_pixels = self.settings["max_pixels"]
        if width * height > max_pixels:
            self.refuse(TooLarge, f"The video has frames of {width}x{height}; the limit is "
                                  f"{max_pixels / 1e6:.1f} megapixels.")
        if min(width, height) < MIN_SIDE:
            self.refuse(UndecodableVideo, f"The video is {width}x{height} pixels; Photo Shield protects clips of "
                                          f"at least {MIN_SIDE}x{MIN_SIDE}.")

    def picture(self, frame) -> None:
        if frame.is_corrupt:
            self.refuse(UndecodableVideo, "The video is damaged: a frame could not be decoded intact.")
        self.check_size(frame.width, frame.height)  # every picture, not only the header's size
        if self.size is None:
            self.size = (frame.width, frame.height)
            self.rotation = int(round((frame.rotation or 0) / 90.0)) % 4 * 90
        elif (frame.width, frame.height) != self.size:
            self.refuse(UndecodableVideo, f"The video changes its frame size from {self.size[0]}x{self.size[1]} "
                                          f"to {frame.width}x{frame.height}; Photo Shield protects clips of one size.")
        if frame.pts is None:
            self.refuse(UndecodableVideo, "The video's frames carry no timestamps; it may be damaged.")
        if self.first_pts is None:
            self.first_pts = frame.pts
        self.last_pts = frame.pts
        max_seconds = self.settings["max_seconds"]
        if float((frame.pts - self.first_pts) * self.video.time_base) > max_seconds:
            self.refuse(TooLarge, f"The video lasts over {max_seconds / 60:.0f} minutes.")
        rgb = frame.to_ndarray(format="rgb24")
        if self.rotation:
            rgb = np.rot90(rgb, k=self.rotation // 90)  # FFmpeg's rotation is counter-clockwise
        rgb = rgb[:rgb.shape[0] // 2 * 2, :rgb.shape[1] // 2 * 2]  # 4:2:0 needs even sizes
        while self.in_flight >= SLOTS:  # wait until the parent has copied a picture out
            if not self.acks.read(1):
                raise SystemExit(0)  # the parent is gone
            self.in_flight -= 1
        height, width = rgb.shape[:2]
        header = {"t": "video", "slot": self.slot, "pts": frame.pts, "width": width, "height": height,
                  "rotation": self.rotation}
        if self.ring is None:
            _send(self.out, header, np.ascontiguousarray(rgb).tobytes())
        else:
            start = self.slot * self.settings["slot_bytes"]
            np.copyto(np.frombuffer(self.ring, np.uint8, rgb.size, start).reshape(rgb.shape), rgb)
            _send(self.out, header)
        self.slot = (self.slot + 1) % SLOTS
        self.in_flight += 1
        self.decoded += 1

    def audio_frame(self, frame) -> None:
        samples = np.ascontiguousarray(frame.to_ndarray(), np.float32)
        time_base = frame.time_base or Fraction(1, frame.sample_rate)
        _send(self.out, {"t": "audio", "pts": frame.pts, "time_base": [time_base.numerator, time_base.denominator],
                         "sample_rate": frame.sample_rate,
                         "channels": samples.shape[0], "bytes": samples.nbytes}, samples.tobytes())

    def check_complete(self, info: dict) -> None:
        """A truncated file decodes without error up to where it stops: refuse it rather than release part
        of a clip the user did not choose to cut."""
        if self.decoded == 0:
            self.refuse(UndecodableVideo, "The video has no frame that can be decoded.")
        frames, seconds, rate = info["frames"], info["seconds"], Fraction(*info["rate"])
        if frames and self.decoded < frames - 1:
            self.refuse(UndecodableVideo, f"The video is truncated or damaged: {self.decoded} of {frames} "
                                          "frames could be read.")
        last_seconds = float((self.last_pts - self.first_pts) * self.video.time_base)
        # The stated duration ends after the last frame's own duration, and audio may run a little longer.
        if not frames and last_seconds < seconds - max(3 / float(rate), 0.25):
            self.refuse(UndecodableVideo, f"The video is truncated or damaged: it stops after {last_seconds:.1f} s "
                                          f"of {seconds:.1f} s.")


def _video_stream(container, decoder: _Decoder):
    import av

    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:  # cover art is a "video" stream
            return stream
    decoder.refuse(UndecodableVideo, "The file has no video stream.")


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__


def main() -> None:
    settings = json.loads(sys.argv[1])
    out = os.fdopen(os.dup(1), "wb")  # messages only: anything else printing to stdout goes to stderr
    os.dup2(2, 1)
    acks = os.fdopen(0, "rb", buffering=0)
    try:
        _child(settings, out, acks)
    except BrokenPipeError:
        pass  # the parent stopped reading (cancelled, or refused the clip itself)
    finally:
        try:
            out.close()
        except OSError:
            pass


if __name__ == "__main__":
    main()
