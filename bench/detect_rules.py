"""Acceptance rules measured by bench/detect_cache.py eval (each: cache -> boxes in photo pixels)."""

from __future__ import annotations

import functools

import numpy as np

from shield_server.detect import centerface as cf
from shield_server.detect.base import iou


def decode(maps: np.ndarray, scale_row: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (photo pixels) and scores from one scan's 5 maps, as CenterFace._scan_piece + scan do."""
    scale, sw, sh = scale_row
    boxes, scores = cf._decode(maps.astype(np.float32), maps[0].astype(np.float32) > threshold)
    boxes = np.clip(boxes, 0, [sw, sh, sw, sh])
    real = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, scores = boxes[real] / scale, scores[real]
    keep = cf._nms(boxes, scores)
    return boxes[keep], scores[keep]


def maps(z, key: str, mirror: str) -> np.ndarray:
    """One scan's maps: plain, or averaged with the mirrored scan ('avg')."""
    m = z[key].astype(np.float32)
    if mirror == "avg":
        m = (m + z[key + "_m"].astype(np.float32)) / 2
    return m


def candidates(z, key: str, mirror: str = "", minimum: float = cf.CANDIDATE_MIN):
    """(boxes, scores, mirrored-scan score at the same cell) of one pass."""
    m = maps(z, key, mirror)
    boxes, scores = decode(m, z[key + "_scale"], minimum)
    # the mirrored scan's score at each candidate's centre cell
    scale = z[key + "_scale"][0]
    mm = z[key + "_m"][0].astype(np.float32)
    cy = np.clip(((boxes[:, 1] + boxes[:, 3]) / 2 * scale / 4).astype(int), 0, mm.shape[0] - 1)
    cx = np.clip(((boxes[:, 0] + boxes[:, 2]) / 2 * scale / 4).astype(int), 0, mm.shape[1] - 1)
    return boxes, scores, mm[cy, cx]


def yu_boxes(z, minimum: float) -> np.ndarray:
    yu = z["yu"]
    yu = yu[yu[:, 4] >= 100 * minimum]
    return np.column_stack([yu[:, 0], yu[:, 1], yu[:, 0] + yu[:, 2], yu[:, 1] + yu[:, 3]]) if len(yu) else np.zeros((0, 4))


def rule(z, thresholds=(0.2, 0.5), corr_min=cf.CORROBORATED_MIN, in_range_max=cf.IN_RANGE_MAX,
         oor_min=cf.OUT_OF_RANGE_MIN, mirror="", weak_mirror_min=None, yu_min=None, yu_from=0.1, yu_iou=0.3,
         yu_geometry=False, lone_max=None, lone_needs=None, aspect=None, big_coarse=None, mirror_min=None,
         mirror_below=0.5, weak_avg=None, weak_avg_passes=(0, 1)):
    """Round 2's acceptance (the defaults) with optional extras; the shipped detector is
    mirror="fine", thresholds=(0.18, 0.5) (its crops approximate the whole mirrored scan):
    mirror='avg': score maps averaged with the mirrored scan's (both passes) / 'fine': fine pass only.
    weak_mirror_min: a weak candidate (corr_min..threshold) is also kept when the mean of its score and
      the mirrored scan's score at its cell reaches this.
    yu_min: a candidate >= yu_from is kept when a yuface box (>= yu_min) overlaps it (IoU > yu_iou).
    yu_geometry: a kept box confirmed by yuface grows to cover yuface's box.
    lone_max / lone_needs: a candidate kept on its own score below lone_max also needs one of
      'corr' (other pass), 'mirror' (mirrored score >= its threshold / 2), 'yu' (yuface >= 0.5).
    aspect: boxes whose width/height is outside (lo, hi) are dropped unless corroborated.
    big_coarse: (height px in the photo, min score): large coarse boxes need that score or corroboration.
    mirror_min: a kept candidate scoring under mirror_below also needs the mirrored scan's score at its
      cell to reach mirror_min (a face is still a face in a mirror; texture often is not).
    weak_avg: candidates (of the passes in weak_avg_passes) scoring under weak_avg are judged on the mean
      of their score and the mirrored scan's score at their cell (what mirrored crops around them give)."""
    keys = ("fine", "coarse")
    found = [candidates(z, k, "avg" if (mirror == "avg" or (mirror == "fine" and k == "fine")) else "")
             for k in keys]
    scales = [z[k + "_scale"][0] for k in keys]
    yb = yu_boxes(z, yu_min) if yu_min is not None else np.zeros((0, 4))
    yb_loose = yu_boxes(z, 0.5) if lone_needs and "yu" in lone_needs else np.zeros((0, 4))
    kept_boxes, kept_scores = [np.zeros((0, 4))], [np.zeros(0)]
    if weak_avg is not None:
        for i in weak_avg_passes:
            boxes, scores, mscores = found[i]
            found[i] = (boxes, np.where(scores < weak_avg, (scores + mscores) / 2, scores), mscores)
    for i, ((boxes, scores, mscores), thr) in enumerate(zip(found, thresholds)):
        others = np.concatenate([found[j][0] for j in range(len(found)) if j != i] + [np.zeros((0, 4))])
        corr = np.array([(iou(b, others) > cf.SAME_FACE_IOU).any() for b in boxes], bool)
        in_range = (boxes[:, 3] - boxes[:, 1]) * scales[i] <= in_range_max
        confident = scores >= np.where(in_range, thr, max(thr, oor_min))
        if lone_max is not None:
            ok = np.zeros(len(boxes), bool)
            if "corr" in lone_needs:
                ok |= corr
            if "mirror" in lone_needs:
                ok |= mscores >= thr / 2
            if "yu" in lone_needs and len(yb_loose):
                ok |= np.array([(iou(b, yb_loose) > yu_iou).any() for b in boxes], bool)
            confident &= (scores >= lone_max) | ok
        if aspect is not None:
            ar = (boxes[:, 2] - boxes[:, 0]) / np.maximum(boxes[:, 3] - boxes[:, 1], 1e-6)
            confident &= ((ar >= aspect[0]) & (ar <= aspect[1])) | corr
        if big_coarse is not None and i == 1:
            big = (boxes[:, 3] - boxes[:, 1]) >= big_coarse[0]
            confident &= ~big | (scores >= big_coarse[1]) | corr
        keep = confident | ((scores >= corr_min) & corr)
        if weak_mirror_min is not None:
            keep |= (scores >= corr_min) & ((scores + mscores) / 2 >= weak_mirror_min)
        if mirror_min is not None:
            keep &= (scores >= mirror_below) | (mscores >= mirror_min)
        confirmed = np.zeros(len(boxes), bool)
        if len(yb):
            confirmed = np.array([(iou(b, yb) > yu_iou).any() for b in boxes], bool) & (scores >= yu_from)
            keep |= confirmed
        b = boxes[keep].copy()
        if yu_geometry and len(yb):
            for k, box in enumerate(b):
                o = iou(box, yb)
                if len(o) and o.max() > yu_iou:
                    y = yb[o.argmax()]
                    b[k] = [min(box[0], y[0]), min(box[1], y[1]), max(box[2], y[2]), max(box[3], y[3])]
        kept_boxes.append(b)
        kept_scores.append(scores[keep])
    boxes, scores = np.concatenate(kept_boxes), np.concatenate(kept_scores)
    return boxes[cf._nms(boxes, scores)]


P = functools.partial
RULES = {
    "round 2 rule": P(rule),
    "mirror avg both": P(rule, mirror="avg"),
    "mirror avg fine": P(rule, mirror="fine"),
    "weak: mean with mirror >= 0.2": P(rule, weak_mirror_min=0.2),
    "weak: mean with mirror >= 0.18": P(rule, weak_mirror_min=0.18),
    "yuface >= 0.8 confirms >= 0.1": P(rule, yu_min=0.8),
    "lone below 0.3 needs yuface >= 0.5 or other pass": P(rule, lone_max=0.3, lone_needs=("corr", "yu")),
    "lone below 0.3 needs mirror or other pass": P(rule, lone_max=0.3, lone_needs=("corr", "mirror")),
    "aspect 0.5-1.1 or corroborated": P(rule, aspect=(0.5, 1.1)),
    "coarse boxes >= 128 px need 0.7 or corroboration": P(rule, big_coarse=(128, 0.7)),
    "yuface >= 0.8 confirms, geometry": P(rule, yu_min=0.8, yu_geometry=True),
    "yuface >= 0.7 confirms >= 0.1": P(rule, yu_min=0.7),
    "yuface >= 0.9 confirms >= 0.1": P(rule, yu_min=0.9),
}

for fine in (0.2, 0.18, 0.16, 0.15):
    for corr in (0.13, 0.11):
        RULES[f"mirror avg fine; fine {fine}, corroborated {corr}"] = P(
            rule, thresholds=(fine, 0.5), corr_min=corr, mirror="fine")
        for below, passes in ((0.5, (0,)), (0.5, (0, 1)), (0.35, (0,))):
            RULES[f"weak avg under {below} passes {passes}; fine {fine}, corroborated {corr}"] = P(
                rule, thresholds=(fine, 0.5), corr_min=corr, weak_avg=below, weak_avg_passes=passes)

for fine in (0.2, 0.18, 0.16, 0.15):
    for corr in (0.13, 0.11):
        for mmin in (0.1, 0.13, 0.16, 0.2):
            RULES[f"mirror >= {mmin} under 0.5; fine {fine}, corroborated {corr}"] = P(
                rule, thresholds=(fine, 0.5), corr_min=corr, mirror_min=mmin)

for extra_name, extra in (("", {}), (" + lone below 0.3 needs mirror or other pass", dict(lone_max=0.3, lone_needs=("corr", "mirror"))),
                          (" + aspect 0.5-1.1 or corroborated", dict(aspect=(0.5, 1.1))),
                          (" + yuface >= 0.8 confirms", dict(yu_min=0.8))):
    for fine in (0.19, 0.17):
        RULES[f"mirror avg fine; fine {fine}, corroborated 0.13{extra_name}"] = P(
            rule, thresholds=(fine, 0.5), mirror="fine", **extra)
    if extra:
        RULES[f"mirror avg fine; fine 0.18, corroborated 0.13{extra_name}"] = P(
            rule, thresholds=(0.18, 0.5), mirror="fine", **extra)
