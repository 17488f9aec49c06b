#!/usr/bin/env python3
"""CenterFace quantised to int8, calibrated on crops of faces-dev photos, against the shipped float model.

  python bench/int8.py --calibrate-on A --float-to 5        # calibrate on half A, compare on both halves
  python bench/int8.py --calibrate-on B --float-to 0 5 10 20 --method MinMax Percentile
  python bench/int8.py --calibrate-on A --float-to 5 --cli-copy /tmp/int8code
      # then: SHIELD_INT8_MODEL=/tmp/int8code/q.onnx python bench/cli_speed.py --variant 'int8|/tmp/int8code|'

Needs the bench extras in the venv, for onnxruntime.quantization: `pip install onnx "ml_dtypes<0.6"` (newer
ml_dtypes pull numpy 2, which the product's numpy<2 pin excludes).

Static quantisation (QDQ, per-channel int8 weights, uint8 activations) of the model as the product loads it;
the activation ranges come from one CROP px crop per photo and pass (the photo resized as that pass scans
it). `--float-to N` leaves the graph's first N nodes in float (5: the first block, i.e. the 3 px convolution
on the pixels, the depthwise one and its projection, with their ReLUs). The quantised model and its ranges
go to a temporary folder (or --cli-copy's), never into the repository.

The product's detector (passes, strips, mirror crops, rules) runs on every photo with each model in turn,
with one ONNX Runtime thread (the CLI workers' setting); CPU time by `time.thread_time`; masks scored with
score.py's rules on each half (as `faces_dev.py --quick`). Per half, the final boxes are compared with
fp32's too: kept, or found by one model only, near an annotated face or away from faces. `--cli-copy DIR`
also writes a copy of shield_server whose detector loads the quantised model, for the whole-CLI bench.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from faces_dev import DEFAULT_DATA, face_surroundings, halves, load, run_detectors, score_masks  # noqa: E402

CROP = 256


def calibration_blobs(data: Path, recs: list[dict], seed: int = 1) -> list[np.ndarray]:
    """One CROP px crop of each photo as each pass scans it (resized by the pass's scale), at random."""
    from shield_server.detect import centerface as cf

    rng = np.random.default_rng(seed)
    blobs = []
    for rec in recs:
        rgb = cv2.cvtColor(cv2.imread(str(data / rec["file"])), cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        for p in cf.DEFAULT_PASSES:
            scan = cf.resized_for_scan(rgb, p.scale_for(w, h))
            sh, sw = scan.shape[:2]
            y, x = rng.integers(0, max(sh - CROP, 0) + 1), rng.integers(0, max(sw - CROP, 0) + 1)
            piece = scan[y:y + CROP, x:x + CROP]
            blob = np.zeros((1, 3, CROP, CROP), np.float32)
            blob[0, :, :piece.shape[0], :piece.shape[1]] = piece.transpose(2, 0, 1)
            blobs.append(blob)
    return blobs


def quantise(blobs: list[np.ndarray], method: str, float_to: int, folder: Path) -> Path:
    """folder/q.onnx, with its activation ranges in folder/ranges.json (ONNX Runtime's calibration cache)."""
    import onnx
    import onnx.version_converter
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    from shield_server.detect import centerface as cf

    model = onnx.load_model_from_string(cf.flexible_model(cf.model_path()))
    model = onnx.version_converter.convert_version(model, 13)  # QDQ per channel needs opset 13
    for i, node in enumerate(model.graph.node):
        node.name = node.name or f"node{i}"
    name = model.graph.input[0].name

    class Crops(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{name: b} for b in blobs])

        def get_next(self):
            return next(self.it, None)

    t = time.perf_counter()
    quantize_static(model, folder / "q.onnx", Crops(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                    calibrate_method=getattr(CalibrationMethod, method),
                    nodes_to_exclude=[node.name for node in model.graph.node[:float_to]],
                    calibration_cache_path=folder / "ranges.json")
    print(f"quantised in {time.perf_counter() - t:.0f} s ({len(blobs)} crops, {method}, first {float_to} nodes "
          "float)", flush=True)
    return folder / "q.onnx"


def quantised_detector(path: Path, name: str, fine_threshold: float | None = None):
    import onnxruntime

    from shield_server.detect import centerface as cf

    fine, coarse = cf.DEFAULT_PASSES
    if fine_threshold is not None:
        fine = cf.Pass(fine.upscale, fine_threshold, fine.max_pixels, fine.mirror)
    detector = cf.CenterFace(passes=(fine, coarse), name=name)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level, options.enable_mem_pattern = 1, 3, False
    detector._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return detector


def compare(data: Path, recs: list[dict], detectors: dict) -> dict:
    times, boxes, masks = run_detectors(data, recs, detectors, clock=time.thread_time)
    base = next(iter(detectors))
    results = {}
    for name in detectors:
        row = {h: score_masks(part, [m for r, m in zip(recs, masks[name]) if r in part])
               for h, part in halves(recs).items()}
        row["cpu_ms_median"] = round(1000 * float(np.median(times[name])))
        row["cpu_vs_first"] = round(float(np.sum(times[name]) / np.sum(times[base])), 3)
        row["same_boxes"] = sum(sorted(a) == sorted(b) for a, b in zip(boxes[name], boxes[base]))
        row.update(box_changes(recs, boxes[base], boxes[name]))
        results[name] = row
        print(name, json.dumps(row), flush=True)
    return results


def box_changes(recs: list[dict], before: list, after: list) -> dict:
    """How the final boxes changed, per half: boxes found by both (IoU > 0.5) and the median ratio of their
    heights, then the boxes found by one only, split into those centred near an annotated face or ignore
    region (within half its size, score.py's collateral margin) and those away from every face."""
    from shield_server.detect.base import iou

    def near_face(rec, box):
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return any(x0 <= cx <= x1 and y0 <= cy <= y1 for x0, y0, x1, y1 in face_surroundings(rec))

    changes = {}
    for h, part in halves(recs).items():
        heights, lost, new = [], [0, 0], [0, 0]  # [near a face, away from faces]
        for rec, a, b in ((r, np.array(x, float).reshape(-1, 4), np.array(y, float).reshape(-1, 4))
                          for r, x, y in zip(recs, before, after) if r in part):
            matched = set()
            for box in a:
                if len(b) and (overlap := iou(box, b)).max() > 0.5:
                    j = int(overlap.argmax())
                    matched.add(j)
                    heights.append((b[j, 3] - b[j, 1]) / (box[3] - box[1]))
                else:
                    lost[not near_face(rec, box)] += 1
            for j, box in enumerate(b):
                if j not in matched:
                    new[not near_face(rec, box)] += 1
        changes[h + "_boxes"] = {"both": len(heights), "height_ratio_median": round(float(np.median(heights)), 4),
                                 "first_only_near_face_away": lost, "this_only_near_face_away": new}
    return changes


def cli_copy(model: Path, folder: Path) -> None:
    """A copy of shield_server whose detector loads $SHIELD_INT8_MODEL, for `cli_speed.py --variant`."""
    shutil.copytree(BENCH.parent / "shield_server", folder / "shield_server",
                    ignore=shutil.ignore_patterns("__pycache__"))
    source = folder / "shield_server" / "detect" / "centerface.py"
    text = source.read_text()
    line = 'return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])'
    if line not in text:
        raise SystemExit(f"cannot patch {source}: its session line changed")
    source.write_text(text.replace(line, line.replace("(model,", '(os.environ["SHIELD_INT8_MODEL"],')))
    shutil.copy(model, folder / "q.onnx")
    print(f"SHIELD_INT8_MODEL={folder / 'q.onnx'} python bench/cli_speed.py --variant 'int8|{folder}|'")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--calibrate-on", default="A", choices=["A", "B", "AB"], help="the half (or both) of the crops")
    ap.add_argument("--method", nargs="+", default=["MinMax"], choices=["MinMax", "Percentile", "Entropy"])
    ap.add_argument("--float-to", type=int, nargs="+", default=[5],
                    help="variants: the graph's first N nodes left in float (0: all quantised)")
    ap.add_argument("--fine-threshold", type=float, nargs="+", default=[0],
                    help="variants: the fine pass's threshold for the quantised model (0: the shipped one)")
    ap.add_argument("--every", type=int, default=1, help="compare on every Nth photo only")
    ap.add_argument("--cli-copy", type=Path, help="with one variant: write a shield_server copy that loads it")
    args = ap.parse_args()
    cv2.setNumThreads(1)  # the CLI workers' setting: one ONNX Runtime thread
    from shield_server.detect import centerface as cf

    recs = load(args.data)
    blobs = calibration_blobs(args.data, [r for h in args.calibrate_on for r in halves(recs)[h]])
    detectors = {"fp32": cf.CenterFace()}
    with tempfile.TemporaryDirectory(prefix="shield-int8-") as tmp:
        for method in args.method:
            for float_to in args.float_to:
                label = f"int8 {method}, first {float_to} nodes float, calibrated on {args.calibrate_on}"
                folder = Path(tmp) / f"{method}-{float_to}"
                folder.mkdir()
                path = quantise(blobs, method, float_to, folder)
                for threshold in args.fine_threshold:
                    detectors[label + (f", fine pass threshold {threshold}" if threshold else "")] = \
                        quantised_detector(path, "int8", threshold or None)
        if args.cli_copy:
            cli_copy(path, args.cli_copy)
        compare(args.data, recs[::args.every], detectors)


if __name__ == "__main__":
    main()
