"""Scan an image at several scales with a fully convolutional BlazeFace model.

Each pyramid level runs as one input (padded to a multiple of 32) when it is small enough, else as
equal-sized overlapping tiles, so peak memory stays bounded whatever the photo size (cv2.dnn needs
roughly 250 bytes per input pixel for this model).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from shield_server.detect import blazeface

MAX_PIECE_PX = 1.6e6
OVERLAP = 128  # > the largest face the model sizes well (~100 px), so each face is whole in some tile


def _spans(n: int, k: int) -> list[tuple[int, int]]:
    if k == 1:
        return [(0, n)]
    size = int(math.ceil((n + (k - 1) * OVERLAP) / k))
    step = (n - size) / (k - 1)
    return [(int(round(i * step)), size) for i in range(k)]


def _pieces(w: int, h: int) -> list[tuple[int, int, int, int]]:
    kx = ky = 1
    while math.ceil((w + (kx - 1) * OVERLAP) / kx) * math.ceil((h + (ky - 1) * OVERLAP) / ky) > MAX_PIECE_PX:
        if w / kx >= h / ky:
            kx += 1
        else:
            ky += 1
    return [(x, y, tw, th) for y, th in _spans(h, ky) for x, tw in _spans(w, kx)]


def scan(rgb: np.ndarray, scales: list[float], model: str = "short", min_score: float = 0.3,
         mirror: bool = False) -> list[np.ndarray]:
    """Run `model` ('short' or 'full') over `rgb` at each scale (and over its mirror image if `mirror`,
    appending those levels after the plain ones).

    Returns one array per scale with rows (x0, y0, x1, y1, score, 12 keypoint coords) in `rgb` pixels,
    keeping anchors scoring at least `min_score`.
    """
    H, W = rgb.shape[:2]
    run = blazeface.run_short if model == "short" else blazeface.run_full
    out = []
    for flip in (False, True) if mirror else (False,):
        out += [_scan_level(rgb[:, ::-1] if flip else rgb, s, run, min_score, flip) for s in scales]
    return out


def _scan_level(rgb: np.ndarray, s: float, run, min_score: float, flip: bool) -> np.ndarray:
    H, W = rgb.shape[:2]
    w, h = max(int(round(W * s)), 1), max(int(round(H * s)), 1)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    level = rgb if (w, h) == (W, H) else cv2.resize(np.ascontiguousarray(rgb), (w, h), interpolation=interp)
    found = []
    for x, y, tw, th in _pieces(w, h):
        pw, ph = -(-tw // 64) * 64, -(-th // 64) * 64  # coarser shapes: more net reuse across photo sizes
        scores, boxes, kps = run(blazeface.to_tensor(level[y : y + th, x : x + tw], ph, pw))
        keep = scores >= min_score
        if not keep.any():
            continue
        b = (boxes[keep].reshape(-1, 2, 2) + (x, y)).reshape(-1, 4) / s
        k = (kps[keep] + (x, y)).reshape(-1, 12) / s
        if flip:
            b[:, [0, 2]] = W - b[:, [2, 0]]
            k[:, 0::2] = W - k[:, 0::2]
        found.append(np.concatenate([b, scores[keep, None], k], 1))
    return np.concatenate(found) if found else np.zeros((0, 17), np.float32)
