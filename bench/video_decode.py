#!/usr/bin/env python3
"""What decoding in a child process costs: the pictures of one clip decoded to upright RGB in this process
(PyAV, as before isolation) and through shield_server.video_sandbox (a child under its memory ceiling, the
pictures copied out of a shared-memory ring), side by side, several rounds, medians.

  flock /work/notes/bench.lock python bench/video_decode.py            # 720p, 10 s at 25 fps, 3 rounds
  python bench/video_decode.py --width 1920 --height 1080 --rounds 5
  python bench/video_decode.py --frames 100 --end-to-end               # also protect_video() both ways

The clip is generated (moving textures from scikit-image, H.264 at crf 23) under /tmp and removed.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shield_server import video  # noqa: E402
from shield_server.video import VideoOptions  # noqa: E402
from shield_server.video_sandbox import IsolatedClip  # noqa: E402
from shield_server.video_source import ClipSource  # noqa: E402


class InProcessClip(ClipSource):
    """ClipSource as protect_video() used it before isolation (no audio: the clip has none)."""

    def __enter__(self):
        super().__enter__()
        self.time_base = self.video.time_base
        return self


def make_clip(path: Path, width: int, height: int, frames: int) -> None:
    photo = data.astronaut()
    scene = cv2.resize(np.concatenate([photo, photo[:, ::-1]], axis=1), (width * 2, height))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        for i in range(frames):
            x = (i * 7) % width
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(scene[:, x:x + width]), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def in_process(path: Path) -> int:
    """The pictures as the engine decoded them before isolation: decode, RGB, even-sized copy."""
    count = 0
    with av.open(str(path)) as clip:
        stream = clip.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in clip.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            np.ascontiguousarray(rgb[:rgb.shape[0] // 2 * 2, :rgb.shape[1] // 2 * 2])
            count += 1
    return count


def isolated(path: Path) -> int:
    count = 0
    with IsolatedClip(path, VideoOptions(audio=False)) as clip:
        for _ in clip.frames():
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--end-to-end", action="store_true", help="also time protect_video() both ways")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        make_clip(path, args.width, args.height, args.frames)
        times = {"in-process": [], "isolated": []}
        for _ in range(args.rounds):
            for name, run in (("in-process", in_process), ("isolated", isolated)):
                start = time.perf_counter()
                assert run(path) == args.frames
                times[name].append((time.perf_counter() - start) * 1000 / args.frames)
        if args.end_to_end:
            for name, clip_class in (("protect, in-process", InProcessClip), ("protect, isolated", IsolatedClip)):
                video.IsolatedClip = clip_class
                times[name] = []
                for _ in range(args.rounds):
                    start = time.perf_counter()
                    assert video.protect_video(path, Path(folder) / "out.mp4", VideoOptions(audio=False)).frames == args.frames
                    times[name].append((time.perf_counter() - start) * 1000 / args.frames)
    for name, values in times.items():
        print(f"{name:20s} median {statistics.median(values):6.2f} ms/frame  (rounds: "
              f"{', '.join(f'{v:.2f}' for v in values)})")
    overhead = statistics.median(times["isolated"]) - statistics.median(times["in-process"])
    print(f"isolation costs {overhead:+.2f} ms/frame at {args.width}x{args.height} "
          f"({args.frames} frames, child start included)")


if __name__ == "__main__":
    main()
