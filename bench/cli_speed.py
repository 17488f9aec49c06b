#!/usr/bin/env python3
"""What a person waits for: the whole `shield redact FOLDER` against the whole `deface FILES`, same photos.

  python bench/cli_speed.py                    # faces-dev's halves A and B, 3 runs, shield and deface
                                               # alternated (who goes first swaps every time)
  python bench/cli_speed.py --runs 5 --halves A
  python bench/cli_speed.py --profile          # where the time goes per photo, in-process, stage by stage
  python bench/cli_speed.py --variant 'jobs1||--jobs 1' --variant 'trial|/tmp/copy|'
                                               # more shield variants in the same rotation, each
                                               # LABEL|CODE|ARGS: CODE a folder holding another
                                               # shield_server package (PYTHONPATH), ARGS extra arguments

Each tool runs as a person runs it, with its own defaults: `shield redact HALF --out-dir OUT` (the photos'
own formats: JPEG stays JPEG, PNG stays PNG) and `deface FILES` (bench/out/deface-venv, see faces_dev.py:
blurred ellipses at threshold 0.2, written beside each input as NAME_anonymized.EXT). Wall clock of the
whole command, process start and model loading included. The photos are copied to a temporary folder,
never into the repository, and every output is removed after each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from faces_dev import DEFAULT_DATA, SHIELD, halves, load  # noqa: E402

DEFACE = REPO / "bench" / "out" / "deface-venv" / "bin" / "deface"


def copy_halves(data: Path, root: Path, names: list[str]) -> dict[str, dict[str, Path]]:
    """For each tool and half, a folder of its own copies (deface writes its outputs beside its inputs)."""
    parts = halves(load(data))
    folders = {}
    for tool in ("shield", "deface"):
        for name in names:
            folder = root / tool / name
            folder.mkdir(parents=True)
            for rec in parts[name]:
                shutil.copy(data / rec["file"], folder / Path(rec["file"]).name)
            folders.setdefault(tool, {})[name] = folder
    return folders


def run_shield(folder: Path, out: Path, code: str, extra: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": code} if code else None
    t = time.perf_counter()
    run = subprocess.run([str(SHIELD), "redact", str(folder), "--out-dir", str(out)] + extra,
                         capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if run.returncode != 0:
        raise SystemExit(f"shield failed: {run.stderr[-2000:]}")
    shutil.rmtree(out)
    return wall


def run_deface(folder: Path) -> float:
    files = sorted(str(p) for p in folder.iterdir())
    t = time.perf_counter()
    run = subprocess.run([str(DEFACE)] + files, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if run.returncode != 0:
        raise SystemExit(f"deface failed: {run.stderr[-2000:]}")
    for p in folder.iterdir():
        if "_anonymized" in p.name:
            p.unlink()
    return wall


def bench_cli(data: Path, runs: int, names: list[str], variants: list[str]) -> dict:
    """variants: LABEL|CODE|ARGS for shield (the first is "shield"), each alternated with deface."""
    if not DEFACE.exists():
        raise SystemExit("no bench/out/deface-venv: see bench/faces_dev.py's deface_times()")
    shields = {label: (code, args.split()) for label, code, args in (v.split("|") for v in variants)}
    tools = list(shields) + ["deface"]
    walls = {(tool, name): [] for tool in tools for name in names}
    with tempfile.TemporaryDirectory(prefix="shield-cli-speed-") as root:
        folders = copy_halves(data, Path(root), names)
        counts = {name: len(list(folders["shield"][name].iterdir())) for name in names}
        turn = 0
        for run in range(runs):
            for name in names:
                order = tools if turn % 2 == 0 else tools[::-1]
                turn += 1
                for tool in order:
                    if tool == "deface":
                        wall = run_deface(folders["deface"][name])
                    else:
                        wall = run_shield(folders["shield"][name], Path(root) / "out", *shields[tool])
                    walls[(tool, name)].append(wall)
                print(f"run {run + 1} half {name} ({counts[name]} photos): "
                      + ", ".join(f"{tool} {1000 * walls[(tool, name)][-1] / counts[name]:.0f} ms/photo"
                                  for tool in order), flush=True)
    summary = {}
    for name in names + ["all"]:
        parts = names if name == "all" else [name]
        n = sum(counts[p] for p in parts)
        per_run = {tool: np.sum([walls[(tool, p)] for p in parts], axis=0) for tool in tools}
        deface = per_run["deface"]
        print(f"{name} ({n} photos, {runs} runs): deface {1000 * np.median(deface) / n:.0f} ms/photo "
              f"(runs {[round(1000 * x / n) for x in deface]})")
        for tool in shields:
            w = per_run[tool]
            row = {"photos": n, "runs": runs, "ms_per_photo_median": round(1000 * float(np.median(w)) / n),
                   "ms_per_photo_runs": [round(1000 * x / n) for x in w],
                   "deface_ms_per_photo_median": round(1000 * float(np.median(deface)) / n),
                   "ratio_of_totals": round(float(w.sum() / deface.sum()), 3),
                   "ratio_of_medians": round(float(np.median(w) / np.median(deface)), 3)}
            summary[f"{tool} {name}"] = row
            print(f"  {tool}: {row['ms_per_photo_median']} ms/photo (runs {row['ms_per_photo_runs']}); "
                  f"/ deface: ratio of totals {row['ratio_of_totals']:.2f}, of medians {row['ratio_of_medians']:.2f}")
    return summary


# ------------------------------------------------------------------------------- where the time goes

def _command_seconds(argv: list[str], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


class _Timed:
    """Wraps a detector method on one instance, adding its time to a tally."""

    def __init__(self, obj, method: str, tally: dict, key):
        self.inner, self.tally, self.key = getattr(obj, method), tally, key
        setattr(obj, method, self)

    def __call__(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            key = self.key(*args, **kwargs) if callable(self.key) else self.key
            self.tally[key] = self.tally.get(key, 0.0) + 1000 * (time.perf_counter() - t)


def profile(data: Path, limit: int | None) -> None:
    """Per photo, in this process with the CLI's defaults (photo's own format): each stage's median and
    share; then what a CLI run adds (interpreter and imports, model loading, the worker pool)."""
    python = sys.executable
    starts = {
        "python -c pass": _command_seconds([python, "-c", "pass"]),
        "import shield_server.cli (shield --help)": _command_seconds([python, "-c", "import shield_server.cli"]),
        "import shield_server.pipeline": _command_seconds([python, "-c", "import shield_server.pipeline"]),
        "import + CenterFace session": _command_seconds(
            [python, "-c", "from shield_server.detect import default_detector; default_detector()"]),
    }
    if DEFACE.exists():
        deface_python = DEFACE.parent / "python"
        starts["deface: import deface.deface"] = _command_seconds([str(deface_python), "-c", "import deface.deface"])
        starts["deface: import + CenterFace session"] = _command_seconds(
            [str(deface_python), "-c", "from deface.centerface import CenterFace; CenterFace(in_shape=None, backend='auto')"])
    print("start-up (median of 3 fresh processes):")
    for k, v in starts.items():
        print(f"  {k}: {1000 * v:.0f} ms")

    from shield_server import pipeline
    from shield_server.detect import default_detector

    detector = default_detector()
    tally: dict = {}
    _Timed(detector, "scan", tally, lambda rgb, scale, *a, **k: f"scan at {'1.5x' if (a[1] if len(a) > 1 else k.get('mirror', False)) else '0.6x'} (incl. resize)")
    _Timed(detector, "_average_mirrored", tally, "mirror check (in the 1.5x scan)")
    recs = load(data)[:limit]
    rows = []
    for rec in recs:
        raw = (data / rec["file"]).read_bytes()
        tally.clear()
        result = pipeline.protect(raw)
        row = dict(result.timings_ms)
        row.update(tally)
        row["pixels"] = result.width * result.height
        rows.append(row)
    keys = [k for k in rows[0] if k not in ("pixels", "total")] + ["total"]
    total = np.median([r["total"] for r in rows])
    print(f"per photo, {len(rows)} photos (median {np.median([r['pixels'] for r in rows]) / 1e6:.2f} MP), "
          f"in-process, the photo's own format:")
    print("| stage | median ms | mean ms | share of mean total |")
    print("|---|---|---|---|")
    mean_total = np.mean([r["total"] for r in rows])
    for k in keys:
        values = [r.get(k, 0.0) for r in rows]
        print(f"| {k} | {np.median(values):.0f} | {np.mean(values):.0f} | {100 * np.mean(values) / mean_total:.0f}% |")
    print(f"(median total {total:.0f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--halves", nargs="+", default=["A", "B"], choices=["A", "B"])
    ap.add_argument("--variant", action="append", default=[], help="another shield: LABEL|CODE|ARGS")
    ap.add_argument("--profile", action="store_true", help="where the time goes per photo")
    ap.add_argument("--limit", type=int, help="with --profile: the first N photos only")
    ap.add_argument("--json", type=Path, help="write the summary here")
    args = ap.parse_args()
    if args.profile:
        return profile(args.data, args.limit)
    summary = bench_cli(args.data, args.runs, args.halves, ["shield||"] + args.variant)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
