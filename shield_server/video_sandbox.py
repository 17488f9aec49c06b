"""Decoding a clip in a child process under a hard memory ceiling, as browsers isolate their media decoders.

A hostile file can make FFmpeg allocate gigabytes from a few bytes: an MP4 whose sample table declares 89
million samples (the demuxer builds an index for all of them while opening the file), or a stream whose
header says 64x36 and whose later pictures are 16384x9216. So everything that reads the file (open, probe,
demux, decode: video_source.ClipSource, with the checks of video_bounds.py) runs in a child process whose
address space is capped with RLIMIT_AS; whatever the file says, the child fails inside its ceiling and
the parent reports a clear refusal.

The child streams upright, even-sized RGB pictures to the parent through a shared-memory ring (a memfd of
SLOTS frames; one copy out of it in the parent; where there is no memfd, through the pipe) and decoded
audio, resampled to what the encoder takes. Its stdout carries messages: a 4-byte length, a JSON header
(never pickle: a child taken over by a hostile file cannot make the parent run code), and for audio the
samples. The parent checks each header against the limits before it allocates anything for it, and
acknowledges each picture on the child's stdin, freeing its slot.

    with IsolatedClip(path, options) as clip:   # refused here: too large, unsupported, unreadable, bomb
        clip.rate, clip.time_base, clip.seconds, clip.expected_frames, clip.audio, clip.rotation
        for item in clip.frames(cancel):         # Picture (upright RGB) or av.AudioFrame, in file order
            ...
    clip.peak_rss, clip.address_peak            # what the child reported of its memory at its highest
"""

import json
import mmap
import os
import struct
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from shield_server.errors import Cancelled, ShieldError, TooLarge, UndecodableVideo, UnsupportedImage
from shield_server.video_source import Picture

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
        self.decoded = 0  # pictures received

    def __enter__(self) -> "IsolatedClip":
        frame_bytes = self.options.max_pixels * 3
        if hasattr(os, "memfd_create"):  # Linux; elsewhere the pictures come through the pipe (one more copy)
            self.ring_fd = os.memfd_create("shield-frames")
            os.ftruncate(self.ring_fd, frame_bytes * SLOTS)  # pages are only allocated when written
            self.ring = mmap.mmap(self.ring_fd, frame_bytes * SLOTS)
        settings = {"path": os.fspath(self.source), "ring_fd": self.ring_fd, "slot_bytes": frame_bytes,
                    "max_bytes": self.options.max_bytes, "max_pixels": self.options.max_pixels,
                    "max_seconds": self.options.max_seconds, "audio": self.options.audio}
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

    def frames(self, cancel=lambda: False):
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
                self.decoded += 1
                self.rotation = message["rotation"]
                yield Picture(self.decoded - 1, message["pts"], rgb)
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


class _Child:
    """Opens the clip with video_source.ClipSource (its limits and checks) and ships what it decodes."""

    def __init__(self, settings: dict, out, acks):
        self.settings, self.out, self.acks = settings, out, acks
        self.ring = None if settings["ring_fd"] is None else mmap.mmap(settings["ring_fd"], settings["slot_bytes"] * SLOTS)
        self.ceiling = CEILING_BASE
        self.in_flight = self.slot = 0

    def run(self) -> None:
        import av

        from shield_server.video_source import ClipSource

        limits = {name: self.settings[name] for name in ("audio", "max_bytes", "max_pixels", "max_seconds")}
        with ClipSource(self.settings["path"], SimpleNamespace(**limits)) as clip:
            context = clip.video.codec_context
            self.ceiling = decode_ceiling(context.width * context.height)
            _limit_memory(self.ceiling)
            context.thread_count = DECODER_THREADS
            audio = resampler = None
            if clip.audio is not None:
                channels = 1 if clip.audio.codec_context.channels == 1 else 2
                audio = {"channels": channels, "sample_rate": clip.audio.codec_context.sample_rate or 48000}
                resampler = av.AudioResampler(format="fltp", layout="mono" if channels == 1 else "stereo",
                                              rate=audio["sample_rate"])
            time_base = clip.video.time_base
            _send(self.out, {"t": "info", "codec": context.codec.canonical_name, "width": context.width,
                             "height": context.height, "rate": [clip.rate.numerator, clip.rate.denominator],
                             "time_base": [time_base.numerator, time_base.denominator], "seconds": clip.seconds,
                             "expected_frames": clip.expected_frames, "audio": audio})
            for item in clip.frames(lambda: False):
                if isinstance(item, Picture):
                    self.picture(item, clip.rotation)
                else:
                    for resampled in resampler.resample(item):
                        self.audio(resampled)
            if resampler is not None:
                for resampled in resampler.resample(None):
                    self.audio(resampled)
        _send(self.out, {"t": "end", "peak": _memory("VmHWM"), "address_peak": _memory("VmPeak")})

    def picture(self, picture, rotation: int) -> None:
        while self.in_flight >= SLOTS:  # wait until the parent has copied a picture out
            if not self.acks.read(1):
                raise SystemExit(0)  # the parent is gone
            self.in_flight -= 1
        rgb = picture.rgb
        header = {"t": "video", "slot": self.slot, "pts": picture.pts, "width": rgb.shape[1],
                  "height": rgb.shape[0], "rotation": rotation}
        if self.ring is None:
            _send(self.out, header, rgb.tobytes())
        else:
            start = self.slot * self.settings["slot_bytes"]
            np.frombuffer(self.ring, np.uint8, rgb.size, start)[:] = rgb.reshape(-1)
            _send(self.out, header)
        self.slot = (self.slot + 1) % SLOTS
        self.in_flight += 1

    def audio(self, frame) -> None:
        samples = np.ascontiguousarray(frame.to_ndarray(), np.float32)
        time_base = frame.time_base or Fraction(1, frame.sample_rate)
        _send(self.out, {"t": "audio", "pts": frame.pts, "time_base": [time_base.numerator, time_base.denominator],
                         "sample_rate": frame.sample_rate, "channels": samples.shape[0], "bytes": samples.nbytes},
              samples.tobytes())

    def refusal(self, error: BaseException) -> dict:
        """What the parent is told: the check that refused the clip, or that it hit the memory ceiling (an
        allocation failed in FFmpeg or numpy; ClipSource reports FFmpeg's as undecodable)."""
        if isinstance(error, MemoryError) or isinstance(error.__context__, MemoryError):
            error = TooLarge(f"Decoding the video needs more than the {self.ceiling >> 20} MB of memory allowed for "
                             "its frame size: it may be built to exhaust memory.")
        return {"t": "error", "code": error.code, "message": error.message, "peak": _memory("VmHWM")}


def main() -> None:
    settings = json.loads(sys.argv[1])
    out = os.fdopen(os.dup(1), "wb")  # messages only: anything else printing to stdout goes to stderr
    os.dup2(2, 1)
    acks = os.fdopen(0, "rb", buffering=0)
    # The hard limit: not even this code goes past the ceiling of the largest frame size allowed.
    _limit_memory(CEILING_BASE, decode_ceiling(settings["max_pixels"]))
    child = _Child(settings, out, acks)
    try:
        try:
            child.run()
        except (ShieldError, MemoryError) as error:
            _send(out, child.refusal(error))
    except BrokenPipeError:
        pass  # the parent stopped reading (cancelled, or refused the clip itself)
    finally:
        try:
            out.close()
        except OSError:
            pass


if __name__ == "__main__":
    main()
