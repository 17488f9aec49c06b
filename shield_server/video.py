"""Video clips: every frame's faces replaced, container metadata gone, streamed frame by frame.

protect_video(source, target, options) is the one heart; its steps live beside it:
- video_source.py: opening the clip and holding it to the limits, then decoding upright pictures, in a child
  process under a memory ceiling (video_sandbox.py);
- video_faces.py: the detection schedule across time (which frames are searched, with which passes) and
  the boxes that cover each frame (held, moved with the camera, lost faces);
- video_output.py: the fill of each frame's heads, and encoding H.264 + AAC into a fresh MP4.
A window of frames (FaceTimeline.lookahead) is buffered before each is written, so memory stays bounded
whatever the clip's length (docs/VIDEO.md).
"""

import atexit
import os
import shutil
import stat
import tempfile
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import av

from shield_server import formats, redact
from shield_server.errors import BadOptions, UndecodableVideo
from shield_server.video_faces import FaceTimeline
from shield_server.video_output import ClipWriter, cover
from shield_server.video_sandbox import IsolatedClip
from shield_server.video_source import MAX_BYTES, MAX_PIXELS, MAX_SECONDS, Picture

AUDIO_CHOICES = ("keep", "drop")
STEPS = ("decode", "detect", "track", "fill", "encode")  # VideoResult.timings_s: seconds spent in each
WORKDIR_PREFIX = "job-"
MIN_FRAMES = 2  # one frame is a still: refused like 1x1 and frameless clips (docs/VIDEO.md, "Limits")

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


def protect_video(source: str | os.PathLike, target: str | os.PathLike, options: VideoOptions =
                  VideoOptions(), progress: Progress | None = None,
                  cancel: Callable[[], bool] | None = None) -> VideoResult:
    """Protect the clip at `source` (a path) into a new MP4 at `target`.
    Raises a ShieldError subclass on any failure, after removing whatever was written to `target`."""
    progress, cancel = progress or (lambda done, total: None), cancel or (lambda: False)
    try:
        with IsolatedClip(source, options) as clip:
            with av.open(os.fspath(target), "w", format="mp4",
                         options={"movflags": "+faststart", "fflags": "+bitexact"}) as output:
                writer = ClipWriter(output, clip.time_base, clip.rate, clip.audio)
                faces = FaceTimeline()
                window: deque = deque()  # decoded pictures not yet written
                seconds = dict.fromkeys(STEPS, 0.0)

                def write_oldest() -> None:
                    picture = window.popleft()
                    with _timed(seconds, "track"):
                        heads = faces.boxes_for(picture.index)
                    with _timed(seconds, "fill"):
                        cover(picture.rgb, heads, options)
                    with _timed(seconds, "encode"):
                        writer.picture(picture)
                    faces.forget(picture.index)

                for item in _timed_items(clip.frames(cancel), seconds, "decode"):
                    if not isinstance(item, Picture):
                        with _timed(seconds, "encode"):
                            writer.audio(item)
                        continue
                    writer.start(item.rgb.shape[1], item.rgb.shape[0])
                    window.append(item)
                    faces.add(item, window[-2] if len(window) >= 2 else None)
                    # Frames looked at, not written: writing waits for the look-ahead, so this moves sooner.
                    progress(clip.decoded, max(clip.expected_frames, clip.decoded))
                    while window and window[0].index + faces.lookahead < clip.decoded:
                        write_oldest()
                if clip.decoded < MIN_FRAMES:
                    raise UndecodableVideo(f"The video has {clip.decoded} frame; a clip needs at least "
                                           f"{MIN_FRAMES} (protect a single picture as a photo).")
                if window:
                    faces.finish(window[-1])
                while window:
                    write_oldest()
                with _timed(seconds, "encode"):
                    writer.close()
                seconds["detect"] = faces.detect_seconds
                seconds["track"] += faces.track_seconds
                height, width = faces.shape
                return VideoResult(width, height, writer.written, float(clip.rate), writer.audio_out is not None,
                                   clip.rotation, len(faces.detections_done), faces.faces_max, faces.cuts,
                                   {step: round(value, 3) for step, value in seconds.items()})
    except BaseException:
        Path(target).unlink(missing_ok=True)
        raise


@contextmanager
def _timed(seconds: dict, step: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[step] += time.perf_counter() - start


def _timed_items(items, seconds: dict, step: str):
    """The items of an iterator, the time spent making them added to seconds[step]."""
    while True:
        with _timed(seconds, step):
            item = next(items, None)
        if item is None:
            return
        yield item


def is_video(head: bytes) -> bool:
    return formats.sniff_video(head) is not None


# Private temporary folders for the server's uploads and results. Each server process makes its own root,
# <tmp>/photo-shield-<uid>-<pid>-<random>/, with mkdtemp: mode 0700, and a name nobody can take first (a
# fixed name in the shared temporary folder could be created by another account beforehand, stopping the
# server). Not XDG_RUNTIME_DIR: it is usually a small tmpfs, in memory, and a job holds up to 1 GB twice.
# Each job's folder (job-<random>) is removed when the job ends; the roots of this user's processes that no
# longer run (a crash) are removed at the next start.
RUN_PREFIX = "photo-shield-"
_root: Path | None = None


def _uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else 0


def workdir_root() -> Path:
    """This process's private folder, made on first use (and again if something removed it)."""
    global _root
    if _root is None or not _root.is_dir():
        _root = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{_uid()}-{os.getpid()}-"))
        atexit.register(remove_workdir, _root)
    return _root


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=workdir_root()))  # mode 0700


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def sweep_stale_workdirs() -> int:
    """Remove the private folders of this user's processes that no longer run; returns how many. A folder
    of another user, or a link, with such a name is left alone (never followed)."""
    removed, prefix = 0, f"{RUN_PREFIX}{_uid()}-"
    for child in Path(tempfile.gettempdir()).iterdir():
        pid = child.name[len(prefix):].split("-")[0] if child.name.startswith(prefix) else ""
        if not pid.isdigit() or int(pid) == os.getpid() or _process_alive(int(pid)):
            continue
        try:
            info = os.lstat(child)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == _uid():
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
