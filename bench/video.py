#!/usr/bin/env python3
"""Video benchmark: `shield redact` and `deface` over faces-dev's generated clips, scored by its scorer.

  python bench/video.py --clips 6                      # make 6 clips (seed 1) under /tmp/video-bench, run
                                                       # both tools clip by clip, score both, print a summary
  python bench/video.py --variant DETECT_EVERY=6 --no-deface   # a setting's trade-off, beside the shipped one

The clips come from WIDER FACE photos: they stay under /tmp, never in the repository. deface runs from its
own virtual environment (bench/out/deface-venv, which git ignores; `python3 -m venv bench/out/deface-venv
&& bench/out/deface-venv/bin/pip install deface onnxruntime`), never from .venv. Both tools paint
magenta (#FF00FF), the scorer's test colour; time and peak memory are per clip, model loading included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
FACES_DEV_VIDEO = REPO.parent / "shared" / "faces-dev" / "video"
DEFACE_VENV = REPO / "bench" / "out" / "deface-venv"
# argv[1]: constants of the video modules to change, as "NAME=VALUE,NAME=VALUE" (or "" for the shipped ones).
SHIELD_RUN = ("import sys, ast, shield_server.video_faces as f, shield_server.video_output as o\n"
              "for pair in filter(None, sys.argv[1].split(',')):\n"
              "    name, value = pair.split('='); m = f if hasattr(f, name) else o; assert hasattr(m, name), name\n"
              "    setattr(m, name, ast.literal_eval(value))\n"
              "f.HOLD = max(f.HOLD, f.DETECT_EVERY)\n"
              "from shield_server.cli import main; sys.exit(main(sys.argv[2:]))")


def run_measured(command: list[str]) -> tuple[float, int, int]:
    """(seconds, peak resident bytes, exit code) of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode(errors="replace")
    if process.returncode:
        print(f"  failed: {' '.join(command[-3:])}: {error[-400:]}", file=sys.stderr)
    return time.perf_counter() - start, usage.ru_maxrss * 1024, process.returncode


def make_clips(folder: Path, clips: int, seed: int) -> list[dict]:
    if not (folder / "clips.json").exists():
        subprocess.run([sys.executable, str(FACES_DEV_VIDEO / "make_clips.py"),
                        str(FACES_DEV_VIDEO.parent / "annotations.json"), str(folder), "--clips", str(clips),
                        "--seed", str(seed)], check=True)
    return json.loads((folder / "clips.json").read_text())["clips"]


def run_tool(name: str, clips: list[dict], folder: Path, out: Path, command) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    seconds, peaks = [], []
    for clip in clips:
        source = folder / f"{clip['name']}.mp4"
        took, peak, _ = run_measured(command(source, out / source.name))
        seconds.append(took)
        peaks.append(peak)
        print(f"  {name} {clip['name']}: {took:.1f} s, {peak / 2**20:.0f} MiB", file=sys.stderr)
    frames = sum(clip["frames"] for clip in clips)
    return {"seconds": round(sum(seconds), 1), "fps": round(frames / sum(seconds), 2),
            "median_clip_fps": round(float(np.median([c["frames"] / s for c, s in zip(clips, seconds)])), 2),
            "peak_mib": round(max(peaks) / 2**20), "median_peak_mib": round(float(np.median(peaks)) / 2**20)}


def score(folder: Path, out: Path) -> dict:
    target = out.parent / f"{out.name}.json"
    subprocess.run([sys.executable, str(FACES_DEV_VIDEO / "score_video.py"), str(folder), str(out),
                    "--json", str(target)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads(target.read_text())["summary"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/video-bench"))
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=VALUE,...",
                        help="also run shield with these video_faces.py / video_output.py constants changed (repeatable), e.g. "
                             "DETECT_EVERY=5 or FINE_EVERY=1,LIGHT_UPSCALE=1.5")
    parser.add_argument("--no-shipped", action="store_true", help="skip shield's shipped settings")
    parser.add_argument("--no-deface", action="store_true")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    folder = args.work / f"clips-{args.clips}-seed{args.seed}"
    clips = make_clips(folder, args.clips, args.seed)
    magenta = args.work / "magenta.png"
    if not magenta.exists():
        import cv2
        cv2.imwrite(str(magenta), np.full((64, 64, 3), (255, 0, 255), np.uint8))

    tools = {}
    for variant in ([] if args.no_shipped else [""]) + args.variant:
        tools[f"shield {variant or 'shipped'}"] = lambda src, dst, changes=variant: [
            sys.executable, "-c", SHIELD_RUN, changes, "redact", str(src), "-o", str(dst), "--fill", "#ff00ff"]
    if not args.no_deface:
        tools["deface 1.5.0"] = lambda src, dst: [
            str(DEFACE_VENV / "bin" / "deface"), str(src), "-o", str(dst), "--replacewith", "img",
            "--replaceimg", str(magenta), "--thresh", "0.2", "--mask-scale", "1.3"]
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "clips": len(clips),
               "frames": sum(c["frames"] for c in clips), "cpus": os.cpu_count(), "tools": {}}
    for name, command in tools.items():
        out = args.work / "out" / folder.name / name.replace(" ", "-").replace(",", "+")
        speed = run_tool(name, clips, folder, out, command)
        summary = score(folder, out)
        results["tools"][name] = {**speed, **{k: summary[k] for k in (
            "recall_all", "recall_ge16", "recall_ge32", "by_height", "face_tracks", "tracks_fully_protected",
            "tracks_fully_protected_ge32", "mean_collateral_pct", "max_frame_collateral_pct",
            "noface_clips_touched", "gps_survived", "creation_time_survived", "audio_kept",
            "frame_count_mismatch", "size_mismatch", "fps_mismatch")}}
        print(json.dumps({name: results["tools"][name]}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
