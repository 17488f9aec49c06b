#!/usr/bin/env python3
"""Face-detection benchmark on an annotated folder (faces-dev format: images/, annotations.json, score.py).

  python bench/faces_dev.py                 # redact every photo through `shield redact` (fill #FF00FF,
                                            # PNG), score with the folder's score.py, print time per photo
  python bench/faces_dev.py --synthetic     # time and peak memory of one photo of 1, 3 and 12 MP
  python bench/faces_dev.py --quick         # detector only, in-process, magenta painted with redact.head_mask

What a person waits for (the whole CLI against the whole deface CLI, each with its own defaults) is
bench/cli_speed.py.

Outputs go to a temporary folder (or --out, e.g. bench/out/, which git ignores); nothing from the data set
is written into the repository.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "faces-dev"
SHIELD = Path(sys.executable).parent / "shield"
sys.path.insert(0, str(REPO))


def load(data: Path) -> list[dict]:
    return json.loads((data / "annotations.json").read_text())["images"]


def half(file: str) -> str:
    """The photo's half of the event split ("A" or "B"): tune on one, check on the other. WIDER FACE photos
    of one event (the number after `wider_`) share scenes and cameras, so an event goes wholly to one half
    (even events A, odd B); every other photo is its own event, alternating by its number in the name."""
    name = Path(file).name
    event = re.match(r"wider_(\d+)_", name)
    if event:
        return "AB"[int(event.group(1)) % 2]
    digits = re.findall(r"\d+", name)
    return "AB"[int(digits[-1]) % 2] if digits else "A"


def halves(recs: list[dict]) -> dict[str, list[dict]]:
    return {h: [r for r in recs if half(r["file"]) == h] for h in "AB"}


def score(data: Path, out: Path) -> dict:
    """score.py on the whole set and on each half of the event split."""
    splits = out / "splits.json"
    splits.write_text(json.dumps({h: [r["file"] for r in part] for h, part in halves(load(data)).items()}))
    results = {}
    for name, extra in (("all", []), ("A", ["--split", str(splits), "A"]), ("B", ["--split", str(splits), "B"])):
        run = subprocess.run([sys.executable, str(data / "score.py"), str(data / "annotations.json"), str(out)] + extra,
                             capture_output=True, text=True, check=True)
        results[name] = json.loads(run.stdout)
    for name, s in results.items():
        print(f"{name:3s} {s['images']:3d} photos: >=32 {s['recall_ge32']:.3f}  16-32 {s['by_height']['16-32']['recall']:.3f}"
              f"  all {s['recall_all']:.3f}  collateral {s['mean_collateral_pct']:.3f}%  no-face {s['noface_images_touched']}")
    return results


def deface_times(data: Path) -> np.ndarray | None:
    """Milliseconds per photo of deface 1.5 from its own venv (bench/out/deface-venv, made by
    `python3.11 -m venv bench/out/deface-venv && bench/out/deface-venv/bin/pip install deface==1.5.0 onnxruntime`)."""
    python = REPO / "bench" / "out" / "deface-venv" / "bin" / "python"
    if not python.exists():
        print("deface: no bench/out/deface-venv, not timed")
        return None
    photos = [str(data / r["file"]) for r in load(data)]
    run = subprocess.run([str(python), str(REPO / "bench" / "deface_times.py")] + photos, capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stderr[-2000:], file=sys.stderr)
        return None
    return np.array(json.loads(run.stdout.splitlines()[-1]))


def bench_cli(data: Path, out: Path, jobs: int) -> None:
    """The benchmark contract: `shield redact images --out-dir OUT --fill '#FF00FF' --format png`; deface
    is timed on the same photos just before, in the same run (the machine is shared and noisy)."""
    deface = deface_times(data)
    t0 = time.perf_counter()
    run = subprocess.run([str(SHIELD), "redact", str(data / "images"), "--out-dir", str(out), "--fill", "#FF00FF",
                          "--format", "png", "--json", "--jobs", str(jobs)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if run.returncode != 0:
        print(run.stderr[-2000:], file=sys.stderr)
    results = json.loads(run.stdout)
    (out / "shield_report.json").write_text(json.dumps(results))
    score(data, out)
    totals = np.array([r["timings_ms"]["total"] for r in results if "timings_ms" in r])
    stages = {}
    for r in results:
        for k, v in r.get("timings_ms", {}).items():
            stages.setdefault(k, []).append(v)
    print(f"{len(results)} photos, --jobs {jobs}, wall {wall:.1f} s")
    print(f"per photo (ms): median {np.median(totals):.0f}, p95 {np.percentile(totals, 95):.0f}, max {totals.max():.0f}")
    print("median per stage (ms): " + ", ".join(f"{k} {np.median(v):.0f}" for k, v in stages.items()))
    if deface is not None:
        print(f"deface per photo (ms): median {np.median(deface):.0f}, p95 {np.percentile(deface, 95):.0f}; "
              f"Photo Shield / deface median: {np.median(totals) / np.median(deface):.2f}")


def run_detectors(data: Path, recs: list[dict], detectors: dict, clock=time.perf_counter) -> tuple[dict, dict, dict]:
    """Each detector on each photo in turn (so all see the same load): per detector, the seconds by `clock`,
    the boxes made whole pixels as the pipeline makes them, and the pipeline's head masks of those boxes
    (so the masks are the contract run's)."""
    import cv2

    from shield_server import redact
    from shield_server.pipeline import _to_face

    times, boxes, masks = ({name: [] for name in detectors} for _ in range(3))
    for rec in recs:
        rgb = cv2.cvtColor(cv2.imread(str(data / rec["file"])), cv2.COLOR_BGR2RGB)
        height, width = rgb.shape[:2]
        for name, det in detectors.items():
            t = clock()
            found = [_to_face(d, width, height).box for d in det.detect(rgb)]
            times[name].append(clock() - t)
            boxes[name].append(found)
            masks[name].append(redact.head_mask(found, redact.DEFAULT_MARGIN, width, height))
    return times, boxes, masks


def bench_quick(data: Path, versus_round2: bool = False) -> None:
    """Detector only, in-process; the same scoring rules as score.py on an in-memory magenta mask.
    versus_round2: the round 2 detector (no mirror check, fine threshold 0.2) runs on each photo too,
    alternately, so both are timed under the same load."""
    from shield_server.detect import centerface, default_detector

    detectors = {"shipped": default_detector()}
    if versus_round2:
        detectors["round 2"] = centerface.CenterFace(passes=(centerface.Pass(1.5, 0.2, 3.0e6), centerface.Pass(0.6, 0.5, 1.2e6)))
    recs = load(data)
    times, _, painted = run_detectors(data, recs, detectors)
    for name in detectors:
        print(name)
        for part_name, part in (("all", recs),) + tuple(halves(recs).items()):
            picked = [m for r, m in zip(recs, painted[name]) if r in part]
            print(part_name, json.dumps(score_masks(part, picked)))
        print(f"detect per photo (ms): median {1000 * np.median(times[name]):.0f}, p95 {1000 * np.percentile(times[name], 95):.0f}")
    if versus_round2:
        ratio = np.array(times["shipped"]) / np.array(times["round 2"])
        print(f"shipped / round 2 time per photo: median {np.median(ratio):.2f}, of the medians "
              f"{np.median(times['shipped']) / np.median(times['round 2']):.2f}")


def face_surroundings(rec: dict) -> list[tuple[float, float, float, float]]:
    """(x0, y0, x1, y1) of each annotated face and ignore region grown by half its size on every side:
    what score.py does not count as collateral."""
    return [(x - 0.5 * w, y - 0.5 * h, x + 1.5 * w, y + 1.5 * h) for x, y, w, h in rec["faces"] + rec.get("ignore", [])]


def score_masks(recs: list[dict], masks: list[np.ndarray]) -> dict:
    """score.py's rules on boolean masks (True = magenta)."""
    buckets = [(0, 16), (16, 32), (32, 64), (64, 128), (128, 10**9)]
    tot, prot = np.zeros(5, int), np.zeros(5, int)
    collateral, touched, noface = [], 0, 0
    for rec, m in zip(recs, masks):
        H, W = m.shape
        keep = np.ones_like(m)
        for x, y, w, h in rec["faces"]:
            x0, y0 = int(x + 0.2 * w), int(y + 0.15 * h)
            x1, y1 = max(int(x + 0.8 * w), x0 + 1), max(int(y + 0.85 * h), y0 + 1)
            region = m[max(y0, 0):min(y1, H), max(x0, 0):min(x1, W)]
            b = next(i for i, (lo, hi) in enumerate(buckets) if lo <= h < hi)
            tot[b] += 1
            prot[b] += (region.mean() if region.size else 0.0) >= 0.9
        for x0, y0, x1, y1 in face_surroundings(rec):
            keep[max(int(y0), 0):min(int(y1), H), max(int(x0), 0):min(int(x1), W)] = False
        collateral.append(float((m & keep).mean()))
        if not rec["faces"]:
            noface += 1
            touched += bool(m.mean() > 0.001)
    r = lambda p, t: round(int(p) / max(int(t), 1), 4)
    return {"recall_ge32": r(prot[2:].sum(), tot[2:].sum()), "recall_16_32": r(prot[1], tot[1]),
            "recall_all": r(prot.sum(), tot.sum()), "recall_lt16": r(prot[0], tot[0]),
            "mean_collateral_pct": round(100 * float(np.mean(collateral)), 3), "noface_images_touched": f"{touched}/{noface}"}


# ----------------------------------------------------------------------------------- synthetic photos

def synthetic_jpeg(mp: float) -> tuple[bytes, int, int]:
    """A 4:3 JPEG (quality 90) of `mp` megapixels: 6 real faces (scikit-image's astronaut) of 3-18% of the
    width pasted on a texture; returns (bytes, width, height)."""
    import io

    from PIL import Image
    from skimage import data as skdata

    w = int(round(np.sqrt(mp * 1e6 * 4 / 3)))
    h = int(round(w * 3 / 4))
    rng = np.random.default_rng(0)
    base = np.asarray(Image.fromarray(skdata.coffee()).resize((w, h), Image.BILINEAR)).copy()
    face = skdata.astronaut()[30:250, 110:340]
    for k in range(6):  # a few real faces at different sizes
        s = max(int(w * (0.03 + 0.03 * k)), 16)
        f = np.asarray(Image.fromarray(face).resize((s, s), Image.BILINEAR))
        y, x = rng.integers(0, h - s), rng.integers(0, w - s)
        base[y:y + s, x:x + s] = f
    buf = io.BytesIO()
    Image.fromarray(base).save(buf, "JPEG", quality=90)
    return buf.getvalue(), w, h


def _synthetic_child(mp: float) -> None:
    """Runs in a fresh process: protect() one synthetic photo of `mp` megapixels; prints JSON."""
    from shield_server.pipeline import ProtectOptions, protect

    photo, w, h = synthetic_jpeg(mp)
    options = ProtectOptions(fill="solid", color=(255, 0, 255), format="png")
    protect(photo, options)  # warm-up: model loading is not per photo
    t = time.perf_counter()
    result = protect(photo, options)
    elapsed = time.perf_counter() - t
    print(json.dumps({"mp": mp, "size": [w, h], "seconds": round(elapsed, 3), "faces": len(result.faces),
                      "timings_ms": result.timings_ms,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def bench_synthetic() -> None:
    for mp in (1, 3, 12):
        run = subprocess.run([sys.executable, __file__, "--synthetic-child", str(mp)], capture_output=True, text=True)
        line = [l for l in run.stdout.splitlines() if l.startswith("{")]
        print(line[-1] if line else run.stderr[-2000:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="annotated folder (default ../shared/faces-dev)")
    ap.add_argument("--out", type=Path, help="output folder (default: a temporary one)")
    ap.add_argument("--jobs", type=int, default=1, help="shield redact --jobs (1: latency of one photo at a time)")
    ap.add_argument("--synthetic", action="store_true", help="time and peak memory on synthetic 1/3/12 MP photos")
    ap.add_argument("--synthetic-child", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="detector only, in-process")
    ap.add_argument("--versus-round2", action="store_true", help="with --quick: time round 2's detector alongside")
    args = ap.parse_args()
    if args.synthetic_child:
        return _synthetic_child(args.synthetic_child)
    if args.synthetic:
        return bench_synthetic()
    if args.quick:
        return bench_quick(args.data, args.versus_round2)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        return bench_cli(args.data, args.out, args.jobs)
    with tempfile.TemporaryDirectory() as out:
        bench_cli(args.data, Path(out), args.jobs)


if __name__ == "__main__":
    main()
