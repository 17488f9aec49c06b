"""High-recall face finder: BlazeFace over a scale pyramid, fused across scales, then verified.

1. Pyramid: the short-range model is trained on faces filling ~20-70% of its 128 px frame, so the image
   is scanned at scales 1.4, 1, 0.7, 0.5, 0.35, 0.25 (x sqrt 2 apart: every face lands in the model's
   range at two or three levels), capped by a pixel budget on large photos.
2. Fusion: anchors scoring >= 0.3 from every level are clustered greedily (IoU > 0.3, best first); a
   cluster's box is the score-weighted mean of its members.
3. Verification: BlazeFace scores are poorly calibrated when it scans textures (scores 0.5-0.8 on
   foliage, fabric, hair are common) while small real faces often score only 0.3-0.6, so no single
   threshold works. Each cluster gets a probability from a small logistic model over: best score, how
   many pyramid levels agree, the face-landmark model's face-presence logit (only for clusters scoring
   >= 0.5, to bound its cost), box size (absolute and relative to the image) and the geometry of the
   predicted eyes/nose/mouth. Its weights were fitted on faces-dev (`bench/faces_dev.py --fit`) with
   false positives weighted by sqrt(area), since what a false positive costs is the area it redacts.
"""

from __future__ import annotations

import numpy as np

from shield_server.detect import blazeface, pyramid
from shield_server.detect.base import Detection
from shield_server.detect.base import iou as box_iou

SHORT_SCALES = (1.4, 1.0, 0.7, 0.5, 0.35, 0.25)

# Logistic verifier: standardise (mean, std), then dot with the weights (last one is the bias).
# Fitted by `bench/faces_dev.py --fit` on faces-dev; see docs/BENCHMARKS.md.
FEATURES = ("logit_score", "levels", "presence", "log_h", "log_rel_h", "log_h_sq", "eye_dist",
            "nose_drop", "mouth_drop", "log_score_sum")
VERIFIER_MEAN = np.array([-0.1525, 1.7557, -8.3265, 3.7995, -3.0319, 14.8067, 0.3376, 0.1657, 0.3317, 1.5180])
VERIFIER_STD = np.array([0.7572, 1.2271, 4.1661, 0.6085, 0.5774, 4.6923, 0.1020, 0.0971, 0.1179, 1.0775])
VERIFIER_W = np.array([1.6997, 0.8295, 0.6835, -4.6186, 0.3676, 3.5031, -0.3840, 0.1120, 0.2971, -1.5714, -2.4432])
# The lowest threshold whose cross-validated mean collateral on faces-dev stays under 0.5% of the photo.
ACCEPT = 0.5


def pyramid_scales(width: int, height: int, ladder=SHORT_SCALES, budget_px: float = 7e6) -> list[float]:
    """The ladder, shifted down (by sqrt 2 steps) until the levels' pixels fit the budget, and extended
    down until the coarsest level's long side is at most 256 px (a face filling the photo)."""
    area, long_side = width * height, max(width, height)
    scales = list(ladder)
    while sum(s * s for s in scales) * area > budget_px and len(scales) > 1:
        scales = [s / np.sqrt(2) for s in scales]
    while scales[-1] * long_side > 256:
        scales.append(scales[-1] / np.sqrt(2))
    # drop coarse levels whose finer neighbour already shows the whole photo within 256 px
    while len(scales) > 1 and scales[-2] * long_side <= 256:
        scales.pop()
    return scales


def fuse(cands: np.ndarray, iou: float = 0.3) -> list[np.ndarray]:
    """Greedy clustering of rows (x0, y0, x1, y1, score, level, ...) by IoU, best score first.
    Returns one array of member rows per cluster, the best member first."""
    if len(cands) == 0:
        return []
    c = cands[np.argsort(-cands[:, 4], kind="stable")]
    used = np.zeros(len(c), bool)
    out = []
    for i in range(len(c)):
        if used[i]:
            continue
        members = (box_iou(c[i, :4], c[:, :4]) > iou) & ~used
        members[i] = True
        used |= members
        out.append(c[members])
    return out


def _logit(p):
    p = np.clip(p, 1e-3, 1 - 1e-3)
    return np.log(p / (1 - p))


class BlazeEnsemble:
    name = "blazeface-pyramid"

    def __init__(self, ladder=SHORT_SCALES, min_score: float = 0.3, fuse_iou: float = 0.3,
                 presence_gate: float = 0.5, accept: float = ACCEPT, budget_px: float = 7e6,
                 mirror: bool = False):
        self.ladder, self.min_score, self.fuse_iou = tuple(ladder), min_score, fuse_iou
        self.presence_gate, self.accept, self.budget_px, self.mirror = presence_gate, accept, budget_px, mirror

    def clusters(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Candidate face boxes (N x 5: x0, y0, x1, y1, best score) and their verifier features (N x F)."""
        H, W = rgb.shape[:2]
        scales = pyramid_scales(W, H, self.ladder, self.budget_px)
        per_level = pyramid.scan(rgb, scales, "short", self.min_score, self.mirror)
        rows = [np.c_[f[:, :5], np.full(len(f), i), f[:, 5:]] for i, f in enumerate(per_level) if len(f)]
        groups = fuse(np.concatenate(rows), self.fuse_iou) if rows else []
        boxes = np.zeros((len(groups), 5))
        feats = np.zeros((len(groups), len(FEATURES)))
        for n, m in enumerate(groups):
            top, s = m[0], m[:, 4]
            box = (m[:, :4] * s[:, None]).sum(0) / s.sum()
            bw, bh = max(top[2] - top[0], 1.0), max(top[3] - top[1], 1.0)
            kp = top[6:18].reshape(6, 2)  # right eye, left eye, nose, mouth, right ear, left ear
            eye_y = (kp[0, 1] + kp[1, 1]) / 2
            presence = blazeface.face_presence(rgb, top) if top[4] >= self.presence_gate else -10.0
            log_h = np.log(max(box[3] - box[1], 1.0))
            feats[n] = [_logit(top[4]), len(set(m[:, 5])), np.clip(presence, -10, 10), log_h,
                        log_h - 0.5 * np.log(W * H), log_h * log_h,
                        np.clip(np.hypot(*(kp[1] - kp[0])) / bw, 0, 1), np.clip((kp[2, 1] - eye_y) / bh, -1, 1),
                        np.clip((kp[3, 1] - eye_y) / bh, -1, 2), np.log1p(s.sum())]
            boxes[n] = [*box, top[4]]
        return boxes, feats

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        boxes, feats = self.clusters(rgb)
        if not len(boxes):
            return []
        p = verifier_probability(feats)
        return [Detection(float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(q), self.name)
                for b, q in zip(boxes, p) if q >= self.accept]


def verifier_probability(feats: np.ndarray, mean=None, std=None, w=None) -> np.ndarray:
    mean = VERIFIER_MEAN if mean is None else mean
    std = VERIFIER_STD if std is None else std
    w = VERIFIER_W if w is None else w
    z = (feats - mean) / std
    return 1.0 / (1.0 + np.exp(-(z @ w[:-1] + w[-1])))
