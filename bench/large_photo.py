#!/usr/bin/env python3
"""Large photos through the real server, as the extension sends them: JPEG in, `format=same` (JPEG out).

  python bench/large_photo.py                  # 3 and 12 MP synthetic photos (bench/faces_dev.py), each
                                               # through a fresh `shield serve` on loopback: 1 warm-up
                                               # request, then 5 timed; the server's peak RSS (VmHWM),
                                               # its RSS when ready and after each photo; deface 1.5 on
                                               # the same photo after it (deface_s, its median per photo
                                               # with its model loaded) when bench/out/deface-venv exists
  python bench/large_photo.py --in-process     # the same photos through protect() in a fresh process
  python bench/large_photo.py --mp 12 --requests 3
  python bench/large_photo.py --edits          # a person's review: each round a photo the server has not
                                               # seen (first protection), then a 12 px region added, then a
                                               # face unticked (each re-sends the same original: its faces
                                               # are reused, not detected again); deface 1.5 on the same
                                               # photo in the same run when bench/out/deface-venv exists

Wall time is the client's (request sent to last byte of the answer received); the stages are the server's
own (the X-Shield-Report header's timings_ms). Nothing is written to disk but the server's config folder.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from faces_dev import synthetic_jpeg  # noqa: E402

QUERY = "/v1/protect?fill=solid&color=FF00FF&format=same"  # the extension's options, magenta for a look


def rss_mb(pid: int, key: str = "VmHWM") -> int:
    """The process's peak (VmHWM) or current (VmRSS) resident memory."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key + ":"):
                return round(int(line.split()[1]) / 1024)
    return 0


def summary(mp: float, size, walls: list[float], stages: list[dict], faces: int, peak_mb: int, out_bytes: int) -> dict:
    median_stages = {k: round(float(np.median([s[k] for s in stages])), 0) for k in stages[0]}
    return {"mp": mp, "size": list(size), "requests": len(walls), "median_s": round(float(np.median(walls)), 3),
            "min_s": round(min(walls), 3), "max_s": round(max(walls), 3), "server_ms": median_stages,
            "faces": faces, "out_kb": round(out_bytes / 1024), "peak_rss_mb": peak_mb}


def through_server(mp: float, requests: int) -> dict:
    from server_process import start_server

    photo, w, h = synthetic_jpeg(mp)
    with tempfile.TemporaryDirectory() as config:
        server = start_server(Path(config) / "config")
        try:
            walls, stages, after = [], [], []
            ready = rss_mb(server.pid, "VmRSS")
            for i in range(requests + 1):
                t = time.perf_counter()
                # Other bytes each time: the same original again would reuse its faces (face_cache.py).
                reply = server.request("POST", QUERY, body=with_comment(photo, i),
                                       headers={"Content-Type": "image/jpeg"}, timeout=120)
                wall = time.perf_counter() - t
                if reply.status != 200 or not reply.body.startswith(b"\xff\xd8\xff"):
                    raise RuntimeError(f"protect failed: {reply!r}\n{server.output_tail()}")
                report = json.loads(reply.headers["X-Shield-Report"])
                if report["detections_reused"]:
                    raise RuntimeError("the server reused the faces of an earlier request: not a first protection")
                after.append(rss_mb(server.pid, "VmRSS"))
                if i:  # the first request is the warm-up
                    walls.append(wall)
                    stages.append(report["timings_ms"])
            result = {**summary(mp, (w, h), walls, stages, report["faces"], rss_mb(server.pid), len(reply.body)),
                      "ready_rss_mb": ready, "rss_after_each_mb": after}
        finally:
            server.stop()
    result["deface_s"] = deface_seconds(photo, requests)
    return result


def with_comment(jpeg: bytes, n: int) -> bytes:
    """The same picture with a JPEG comment after SOI: other bytes, so the server has not seen this original."""
    comment = f"large_photo round {n}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]


def edits_through_server(mp: float, rounds: int) -> dict:
    from urllib.parse import quote

    from server_process import start_server

    photo, w, h = synthetic_jpeg(mp)
    region = [w // 10, h // 10, w // 10 + 12, h // 10 + 12]  # a 12 px face the detector missed
    times = {"first": [], "add": [], "untick": []}
    stages = {name: [] for name in times}
    with tempfile.TemporaryDirectory() as config:
        server = start_server(Path(config) / "config")
        try:
            for i in range(rounds + 1):
                body = with_comment(photo, i)
                keep = None
                for step, extra in (("first", ""), ("add", f"&regions={quote(json.dumps([region]))}"),
                                    ("untick", None)):
                    if extra is None:
                        extra = f"&regions={quote(json.dumps([region]))}&keep={quote(json.dumps([keep]))}"
                    t = time.perf_counter()
                    reply = server.request("POST", QUERY + extra, body=body,
                                           headers={"Content-Type": "image/jpeg"}, timeout=120)
                    wall = time.perf_counter() - t
                    if reply.status != 200 or not reply.body.startswith(b"\xff\xd8\xff"):
                        raise RuntimeError(f"protect failed: {reply!r}\n{server.output_tail()}")
                    report = json.loads(reply.headers["X-Shield-Report"])
                    if report["detections_reused"] != (step != "first"):
                        raise RuntimeError(f"{step}: detections_reused is {report['detections_reused']}")
                    keep = keep or report["detections"][0]["box"]
                    if i:  # the first round is the warm-up
                        times[step].append(wall)
                        stages[step].append(report["timings_ms"])
        finally:
            server.stop()
    result = {"mp": mp, "size": [w, h], "rounds": rounds, "faces": report["faces"] + len(report["kept"])}
    for step in times:
        result[step] = {"median_s": round(float(np.median(times[step])), 3), "min_s": round(min(times[step]), 3),
                        "max_s": round(max(times[step]), 3),
                        "server_ms": {k: round(float(np.median([s[k] for s in stages[step]])), 0)
                                      for k in stages[step][0]}}
    result["deface_s"] = deface_seconds(photo, rounds)
    return result


def deface_seconds(photo: bytes, rounds: int):
    """deface 1.5 on the same photo (its CLI's steps, model loading not counted): median of `rounds`, or None."""
    python = REPO / "bench" / "out" / "deface-venv" / "bin" / "python"
    if not python.exists():
        return None
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i in range(rounds):
            paths.append(Path(folder) / f"photo{i}.jpg")
            paths[-1].write_bytes(photo)
        run = subprocess.run([str(python), str(REPO / "bench" / "deface_times.py"), *map(str, paths)],
                             capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(run.stderr[-2000:])
    return round(float(np.median(json.loads(run.stdout.splitlines()[-1]))) / 1000, 3)


def _in_process_child(mp: float, requests: int) -> None:
    from shield_server.pipeline import ProtectOptions, protect

    photo, w, h = synthetic_jpeg(mp)
    options = ProtectOptions(fill="solid", color=(255, 0, 255), format="same")
    protect(photo, options)  # warm-up: model loading is not per photo
    walls, stages = [], []
    for _ in range(requests):
        t = time.perf_counter()
        result = protect(photo, options)
        walls.append(time.perf_counter() - t)
        stages.append(result.timings_ms)
    peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(summary(mp, (w, h), walls, stages, len(result.faces), peak, len(result.data))))


def in_process(mp: float, requests: int) -> dict:
    run = subprocess.run([sys.executable, __file__, "--child", str(mp), "--requests", str(requests)],
                         capture_output=True, text=True)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(run.stderr[-2000:])
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mp", type=float, nargs="+", default=[3, 12], help="photo sizes in megapixels")
    ap.add_argument("--requests", type=int, default=5, help="timed requests per size, after one warm-up")
    ap.add_argument("--in-process", action="store_true", help="protect() in a fresh process instead of the server")
    ap.add_argument("--edits", action="store_true", help="first protection, then a region added, then an untick")
    ap.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return _in_process_child(args.child, args.requests)
    for mp in args.mp:
        if args.edits:
            print(json.dumps(edits_through_server(mp, args.requests)), flush=True)
            continue
        print(json.dumps(in_process(mp, args.requests) if args.in_process else through_server(mp, args.requests)),
              flush=True)


if __name__ == "__main__":
    main()
