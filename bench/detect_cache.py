#!/usr/bin/env python3
"""Candidate caches for tuning the face detector offline, scored on both halves of the event split.

  python bench/detect_cache.py build    # once: raw CenterFace maps per photo (1.5x and 0.6x, plain and
                                        # mirrored) and yuface's raw boxes, into bench/out/cache/ (git-ignored)
  python bench/detect_cache.py --int8 [--fp32-ends] build / eval  # the same with CenterFace quantised to int8
  python bench/detect_cache.py eval [PART...]  # rules of bench/detect_rules.py (names containing a PART) on the caches, per half (bench/faces_dev.py's
                                        # split), painted with redact.head_mask and scored as score.py does

`build` needs `pip install yuface` in the venv (BSD-3, libfacedetection's YuNet compiled into the cp311
wheel, no model file); the product does not use it.

The caches skip the product's pixel strips (whole scans), so a rule's numbers are within a face or two of
the same rule through the benchmark contract; what ships is checked there.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from faces_dev import DEFAULT_DATA, halves, load, score_masks  # noqa: E402

from shield_server import redact  # noqa: E402
from shield_server.detect import centerface as cf  # noqa: E402

CACHE = BENCH / "out" / "cache"
INT8 = "--int8" in sys.argv  # caches of CenterFace quantised to int8 (static, calibrated on scikit-image photos)
INT8_FP32_ENDS = "--fp32-ends" in sys.argv  # ... with the first convolution and the heads left in float
if INT8:
    CACHE = BENCH / "out" / ("cache-int8-fp32-ends" if INT8_FP32_ENDS else "cache-int8")
SCALES = {"fine": cf.DEFAULT_PASSES[0], "coarse": cf.DEFAULT_PASSES[1]}


def cache_file(rec: dict) -> Path:
    return CACHE / (Path(rec["file"]).stem + ".npz")


def int8_session(det: cf.CenterFace):
    """CenterFace quantised to int8 (QDQ, per-channel weights, opset 13), activations calibrated on eight
    scikit-image photos at 0.6x and 1.5x; the quantised file goes to a temporary folder outside the repo."""
    import tempfile

    import onnx
    import onnx.version_converter
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from skimage import data as skdata

    model = onnx.load_model_from_string(cf.flexible_model(cf.model_path()))  # bench extras: onnx installed
    model = onnx.version_converter.convert_version(model, 13)
    for i, node in enumerate(model.graph.node):
        node.name = node.name or f"node{i}"
    exclude = []
    if INT8_FP32_ENDS:
        made_by = {out: node for node in model.graph.node for out in node.output}
        convs = [n for n in model.graph.node if n.op_type == "Conv"]
        heads = [made_by[o] for o in ("536", "538", "539", "540")]  # 536: the score head before its sigmoid
        feature = made_by[made_by["535"].input[0]] if made_by["535"].op_type == "Relu" else made_by["535"]
        exclude = [convs[0].name, feature.name] + [h.name for h in heads]

    photos = [cf.network_input(cv2.resize(getattr(skdata, n)(), None, fx=f, fy=f))
              for n in ("astronaut", "coffee", "chelsea", "rocket") for f in (0.6, 1.5)]

    class Photos(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{det._input: b} for b in photos])

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as tmp:
        quantize_static(model, f"{tmp}/q.onnx", Photos(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        nodes_to_exclude=exclude)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.log_severity_level, options.enable_mem_pattern = 1, 3, False
        return onnxruntime.InferenceSession(f"{tmp}/q.onnx", options, providers=["CPUExecutionProvider"])


def build(data: Path) -> None:
    import yuface

    CACHE.mkdir(parents=True, exist_ok=True)
    det = cf.CenterFace()
    if INT8:
        det._session = int8_session(det)
    for n, rec in enumerate(load(data)):
        out = cache_file(rec)
        if out.exists():
            continue
        bgr = cv2.imread(str(data / rec["file"]))
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        arrays, t = {}, time.perf_counter()
        for key, p in SCALES.items():
            scale = p.scale_for(w, h)
            resized = cf.resized_for_scan(rgb, scale)
            sh, sw = resized.shape[:2]
            blob = cf.network_input(resized)
            for flip, b in (("", blob), ("_m", np.ascontiguousarray(blob[..., ::-1]))):
                heat, size, off = det._session.run(list(cf.OUTPUTS), {det._input: b})
                maps = np.concatenate([heat[0], size[0], off[0]])  # 5 x ph/4 x pw/4
                if flip:  # back into the plain scan's frame: cells mirrored, x offsets negated
                    maps = maps[..., ::-1].copy()
                    maps[4] = -maps[4]
                arrays[key + flip] = maps.astype(np.float16)
            arrays[key + "_scale"] = np.array([scale, sw, sh])
        confs, boxes, _ = yuface.detect(bgr, conf=0.0)
        arrays["yu"] = np.column_stack([boxes, confs]).astype(np.float32).reshape(-1, 5)
        np.savez_compressed(out, **arrays)
        print(f"{n} {rec['file']} {time.perf_counter() - t:.2f}s", flush=True)


def paint(rec: dict, boxes: np.ndarray) -> np.ndarray:
    w, h = rec["width"], rec["height"]
    rounded = [(max(int(np.floor(a)), 0), max(int(np.floor(b)), 0), min(int(np.ceil(c)), w), min(int(np.ceil(d)), h))
               for a, b, c, d in np.asarray(boxes).reshape(-1, 4)]
    return redact.head_mask([r for r in rounded if r[2] > r[0] and r[3] > r[1]], redact.DEFAULT_MARGIN, w, h)


def evaluate(recs: list[dict], rules: dict) -> dict:
    """Score each `rule(cache) -> boxes` on each half: {rule name: {half: score}}."""
    masks = {name: [] for name in rules}
    for r in recs:
        z = dict(np.load(cache_file(r)))
        for name, rule in rules.items():
            masks[name].append(paint(r, rule(z)))
    return {name: {h: score_masks(part, [m for r, m in zip(recs, masks[name]) if r in part])
                   for h, part in halves(recs).items()} for name in rules}


def main() -> None:
    sys.argv = [a for a in sys.argv if a not in ("--int8", "--fp32-ends")]
    what = sys.argv[1] if len(sys.argv) > 1 else "eval"
    if what == "build":
        return build(DEFAULT_DATA)
    import detect_rules

    recs = load(DEFAULT_DATA)
    wanted = sys.argv[2:]  # parts of rule names; none: every rule
    results = evaluate(recs, {name: r for name, r in detect_rules.RULES.items()
                              if not wanted or any(w in name for w in wanted)})
    for name, res in results.items():
        cells = " | ".join(f"{res[h]['recall_ge32']:.3f} {res[h]['recall_16_32']:.3f} {res[h]['recall_all']:.3f} "
                           f"{res[h]['mean_collateral_pct']:.3f}% {res[h]['noface_images_touched']}" for h in "AB")
        print(f"{name:40s} | {cells}", flush=True)


if __name__ == "__main__":
    main()
