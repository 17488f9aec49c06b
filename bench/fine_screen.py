#!/usr/bin/env python3
"""Could a cheaper scan tell the 1.5x fine pass where to look? A survey on faces-dev, no product change.

  python bench/fine_screen.py            # all photos of faces-dev (or --data DIR), both halves together

The fine pass costs ~57% of a photo's time. If a cheaper scan (the coarse pass at 0.6x, which runs anyway,
or a 1x scan) marked the few places where the fine pass can find something, the fine pass could run on
tiles around them only. For each photo this scans the whole photo at 1.5x, 1x and 0.6x (score maps, no
strips) and runs the shipped detector, then, for screen thresholds t, reports:

- the share of the fine pass's candidate cells (>= CANDIDATE_MIN) with a screen cell >= t next to them,
- the share of the shipped detector's final boxes holding a screen cell >= t (a box without one is a face
  the screen would skip),
- the share of the photo a fine pass would still scan: the screen's cells >= t grown by CONTEXT px of the
  photo on each side (a tile needs about 64 px of the 1.5x scan around it to keep its scores; see
  BENCHMARKS, "Photos as a person waits, round 2"; 64 px of the photo is used here, a lower bound once
  tiles are made whole on the network's grid).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from faces_dev import DEFAULT_DATA, load  # noqa: E402

from shield_server.detect import centerface as cf  # noqa: E402

SCANS = {"fine": 1.5, "1x": 1.0, "coarse": 0.6}
SCREENS = ("coarse", "1x")
THRESHOLDS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05)
CONTEXT = 64  # photo px


def survey(data: Path) -> list[dict]:
    detector = cf.CenterFace()
    photos = []
    for rec in load(data):
        rgb = cv2.cvtColor(cv2.imread(str(data / rec["file"])), cv2.COLOR_BGR2RGB)
        maps = {}
        for name, scale in SCANS.items():
            resized = cf.resized_for_scan(rgb, scale)
            heat = detector._maps(cf.network_input(resized))[0]
            maps[name] = heat[:-(-resized.shape[0] // 4), :-(-resized.shape[1] // 4)]  # padding off
        final = np.array([[d.x0, d.y0, d.x1, d.y1] for d in detector.detect(rgb)]).reshape(-1, 4)
        photos.append({"maps": maps, "final": final})
    return photos


def report(photos: list[dict]) -> None:
    fine_cells = sum(int((p["maps"]["fine"] >= cf.CANDIDATE_MIN).sum()) for p in photos)
    finals = sum(len(p["final"]) for p in photos)
    print(f"{len(photos)} photos, {fine_cells} fine candidate cells, {finals} final boxes")
    for screen in SCREENS:
        scale = SCANS[screen]
        print(f"screen: the {screen} scan ({scale}x)")
        print("  t       fine cells seen   final boxes seen (missed)   screen cells >= t   photo still scanned")
        for t in THRESHOLDS:
            seen_cells, seen_boxes, missed, above, scanned = 0, 0, 0, [], []
            for p in photos:
                heat = p["maps"][screen]
                hot = (heat >= t).astype(np.uint8)
                ys, xs = np.nonzero(p["maps"]["fine"] >= cf.CANDIDATE_MIN)
                near = cv2.dilate(hot, np.ones((3, 3), np.uint8))  # a neighbouring cell counts
                cy = np.clip(((ys + 0.5) * 4 / SCANS["fine"] * scale / 4).astype(int), 0, heat.shape[0] - 1)
                cx = np.clip(((xs + 0.5) * 4 / SCANS["fine"] * scale / 4).astype(int), 0, heat.shape[1] - 1)
                seen_cells += int(near[cy, cx].sum())
                for x0, y0, x1, y1 in p["final"] * scale / 4:
                    inside = hot[int(y0):int(np.ceil(y1)) + 1, int(x0):int(np.ceil(x1)) + 1]
                    seen = bool(inside.size and inside.any())
                    seen_boxes += seen
                    missed += not seen
                above.append(hot.mean())
                grow = 2 * int(CONTEXT * scale / 4) + 1
                scanned.append(cv2.dilate(hot, np.ones((grow, grow), np.uint8)).mean())
            print(f"  {t:<7} {seen_cells / fine_cells:>15.4f}   {seen_boxes / finals:>12.4f} ({missed:>3})"
                  f"   {np.mean(above):>17.3f}   {np.mean(scanned):>19.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    report(survey(parser.parse_args().data))


if __name__ == "__main__":
    main()
