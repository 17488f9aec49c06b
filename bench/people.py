"""Whole-person mode next to face mode: time per photo and how much of each photo is replaced.

    python bench/people.py [--faces-dev DIR] [--sample N] [--repeat R]

Photos: scikit-image's astronaut, a 12 MP upscale of it, and (if DIR exists, default
../shared/faces-dev) every k-th of its photos so that about N are used. Each photo goes through
protect() in both modes with a solid magenta fill and PNG output (models are loaded before timing).
Reported per set: median and max seconds per photo (PNG encoding included: large flat fills encode
faster, so the stage where people_mask runs ("people"; "redact" in face mode) is given too), median share of the image replaced (the
collateral proxy: in people mode, bodies are meant to be replaced), and, where faces-dev's ground truth
is at hand, the share of annotated faces protected (faces-dev's definition: >= 90% of the box's middle
60% x 70% replaced) and the no-face photos touched (> 0.1% replaced). Nothing is written to disk.
"""

import argparse
import io
import json
import os
import statistics
import sys
import time
import tracemalloc

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from shield_server import people, pipeline, segment  # noqa: E402
from shield_server.pipeline import ProtectOptions, protect  # noqa: E402

MAGENTA = (255, 0, 255)
MODES = ("faces", "people")


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def astronaut_photos() -> list[tuple[str, bytes, dict]]:
    import skimage
    pixels = np.array(Image.open(os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")).convert("RGB"))
    large = np.array(Image.fromarray(pixels).resize((4000, 3000), Image.BILINEAR))
    return [("astronaut 512x512", png(pixels), {}), ("astronaut upscaled 4000x3000", png(large), {})]


def faces_dev_photos(root: str, sample: int) -> list[tuple[str, bytes, dict]]:
    records = json.load(open(os.path.join(root, "annotations.json")))["images"]
    step = max(len(records) // sample, 1)
    return [(r["file"], open(os.path.join(root, r["file"]), "rb").read(), r) for r in records[::step]]


def faces_protected(mask: np.ndarray, record: dict) -> tuple[int, int]:
    height, width = mask.shape
    protected = 0
    for x, y, w, h in record.get("faces", []):
        x0, y0 = int(x + 0.2 * w), int(y + 0.15 * h)
        x1, y1 = max(int(x + 0.8 * w), x0 + 1), max(int(y + 0.85 * h), y0 + 1)
        region = mask[max(y0, 0):min(y1, height), max(x0, 0):min(x1, width)]
        protected += bool(region.size) and region.mean() >= 0.9
    return protected, len(record.get("faces", []))


def run(photos, repeat: int) -> dict:
    rows = {mode: {"seconds": [], "redact_ms": [], "replaced": [], "protected": 0, "faces": 0, "noface": 0, "noface_touched": 0}
            for mode in MODES}
    for name, data, record in photos:
        original = np.array(Image.open(io.BytesIO(data)).convert("RGB"))
        already_magenta = (original == np.array(MAGENTA, np.uint8)).all(axis=-1)
        for mode in MODES:
            options = ProtectOptions(mode=mode, color=MAGENTA, format="png")
            times, redact_ms = [], []
            for _ in range(repeat):
                start = time.perf_counter()
                result = protect(data, options)
                times.append(time.perf_counter() - start)
                redact_ms.append(result.timings_ms.get("people", result.timings_ms["redact"]))
            out = np.array(Image.open(io.BytesIO(result.data)).convert("RGB"))
            mask = (out == np.array(MAGENTA, np.uint8)).all(axis=-1) & ~already_magenta
            row = rows[mode]
            row["seconds"].append(statistics.median(times))
            row["redact_ms"].append(statistics.median(redact_ms))
            row["replaced"].append(float(mask.mean()))
            if record:
                protected, faces = faces_protected(mask, record)
                row["protected"] += protected
                row["faces"] += faces
                if not faces:
                    row["noface"] += 1
                    row["noface_touched"] += mask.mean() > 0.001
    return rows


def report(title: str, rows: dict) -> None:
    print(f"\n{title}")
    print("| mode | photos | median s | max s | redact stage, median ms | median share replaced | faces protected "
          "| no-face photos touched |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, row in rows.items():
        faces = f"{row['protected']}/{row['faces']} ({row['protected'] / row['faces']:.1%})" if row["faces"] else "-"
        noface = f"{row['noface_touched']}/{row['noface']}" if row["noface"] else "-"
        print(f"| {mode} | {len(row['seconds'])} | {statistics.median(row['seconds']):.2f} | {max(row['seconds']):.2f} "
              f"| {statistics.median(row['redact_ms']):.0f} | {statistics.median(row['replaced']):.1%} | {faces} | {noface} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "faces-dev")
    parser.add_argument("--faces-dev", default=default_root)
    parser.add_argument("--sample", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    pipeline.warm_up()
    segment.warm_up()
    for name, data, _ in astronaut_photos():
        report(name, run([(name, data, {})], args.repeat))
    large = np.array(Image.open(io.BytesIO(astronaut_photos()[1][1])).convert("RGB"))
    tracemalloc.start()
    start = time.perf_counter()
    face = (180 * 4000 // 512, 75 * 3000 // 512, 270 * 4000 // 512, 170 * 3000 // 512)  # tests/photos.py ASTRONAUT_FACE
    people.people_mask([large], [face], 0.3)
    seconds, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"\npeople_mask alone on 4000x3000: {seconds:.2f} s, peak numpy/Python allocations {peak / 2**20:.0f} MiB")
    if os.path.isdir(args.faces_dev):
        photos = faces_dev_photos(args.faces_dev, args.sample)
        report(f"faces-dev sample ({len(photos)} photos, 1 run each)", run(photos, 1))
    else:
        print(f"\n(no faces-dev photos at {args.faces_dev}; astronaut only)")


if __name__ == "__main__":
    main()
