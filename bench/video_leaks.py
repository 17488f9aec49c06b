#!/usr/bin/env python3
"""Why a video schedule leaks: every (face, frame) of faces-dev's clips that the boxes of FaceTimeline leave
uncovered, with what the detector saw around it.

  python bench/video_leaks.py /tmp/video-bench/clips-40-seed3 [--only NAME,...] [--set DETECT_EVERY=6,...]

Runs the timeline on each clip's decoded frames (no encode: the ground truth is judged on the head mask
itself, with score_video.py's rule: >= 90% of the face box's central region covered), and prints, per leaked
frame of a track, the face's height, its distance to the nearest full searches and whether each of them,
the glimpse of that frame, or any held box found it. A summary line per cause ends the output.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import Counter
from pathlib import Path

import av
import numpy as np


def overlaps(box, face) -> bool:
    """box (x0, y0, x1, y1) contains the centre of face (x, y, w, h)."""
    x, y, w, h = face
    return box[0] <= x + w / 2 <= box[2] and box[1] <= y + h / 2 <= box[3]


def covered(mask: np.ndarray, face) -> bool:
    x, y, w, h = face
    x0, y0 = int(x + 0.2 * w), int(y + 0.15 * h)
    x1, y1 = max(int(x + 0.8 * w), x0 + 1), max(int(y + 0.85 * h), y0 + 1)
    region = mask[max(y0, 0):min(y1, mask.shape[0]), max(x0, 0):min(x1, mask.shape[1])]
    return bool(region.size and region.mean() >= 0.9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", type=Path)
    parser.add_argument("--only", default="")
    parser.add_argument("--set", default="", help="video_faces constants, NAME=VALUE,...")
    args = parser.parse_args()
    from shield_server import redact, video_faces as f
    from shield_server.video_source import Picture

    for pair in filter(None, args.set.split(",")):
        name, value = pair.split("=")
        assert hasattr(f, name), name
        setattr(f, name, ast.literal_eval(value))
    f.HOLD = max(f.HOLD, f.DETECT_EVERY)
    clips = json.loads((args.clips / "clips.json").read_text())["clips"]
    only = set(filter(None, args.only.split(",")))
    causes, tracks_total, tracks_leaked = Counter(), 0, 0
    for clip in clips:
        if only and clip["name"] not in only:
            continue
        with av.open(str(args.clips / clip["file"])) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        timeline = f.FaceTimeline()
        searches: dict[int, list] = {}
        glimpses: dict[int, list] = {}
        masks = {}
        original_detect = timeline._detect

        def detect(item, fine, original=original_detect):
            original(item, fine)
            searches.setdefault(item.index, list(timeline.detections[item.index]))
        timeline._detect = detect
        for index, rgb in enumerate(frames):
            timeline.add(Picture(index, index, rgb), Picture(index - 1, index - 1, frames[index - 1]) if index else None)
            if index in timeline.glimpses:
                glimpses[index] = list(timeline.glimpses[index])
            ready = index - timeline.lookahead
            if ready >= 0:
                masks[ready] = (timeline.boxes_for(ready), redact)
                timeline.forget(ready)
        timeline.finish(Picture(len(frames) - 1, 0, frames[-1]))
        for ready in range(max(len(frames) - timeline.lookahead, 0), len(frames)):
            masks[ready] = (timeline.boxes_for(ready), redact)
            timeline.forget(ready)
        height, width = frames[0].shape[:2]
        leaks: dict[int, list] = {}
        for index, boxes in enumerate(clip["frame_boxes"]):
            heads, _ = masks[index]
            mask = redact.head_mask(heads, redact.DEFAULT_MARGIN, width, height)
            for face, track in zip(boxes["faces"], boxes["ids"]):
                if not covered(mask, face):
                    leaks.setdefault(track, []).append((index, face, heads))
        track_ids = {t for boxes in clip["frame_boxes"] for t in boxes["ids"]}
        tracks_total += len(track_ids)
        for track, frames_leaked in sorted(leaks.items()):
            heights = [face[3] for boxes in clip["frame_boxes"] for face, t in zip(boxes["faces"], boxes["ids"]) if t == track]
            if np.median(heights) < 32:
                continue
            tracks_leaked += 1
            visible = [i for i, boxes in enumerate(clip["frame_boxes"]) if track in boxes["ids"]]
            print(f"{clip['name']} track {track}: median {np.median(heights):.0f} px, visible {visible[0]}-{visible[-1]}, "
                  f"leaked {len(frames_leaked)} frames")
            for index, face, heads in frames_leaked:
                before = max((s for s in searches if s <= index), default=None)
                after = min((s for s in searches if s >= index), default=None)

                def seen(s):
                    if s is None:
                        return "-"
                    boxes = clip["frame_boxes"][s]
                    own = [fc for fc, t in zip(boxes["faces"], boxes["ids"]) if t == track]
                    if not own:
                        return "gone"
                    return "found" if any(overlaps(b, own[0]) for b in searches[s]) else "MISSED"
                near = [h for h in heads if overlaps(h, face)]
                glimpsed = any(overlaps(b, face) for b in glimpses.get(index, []))
                cause = ("late" if index < min((s for s in searches if seen(s) == "found"), default=10**9) else
                         "search missed" if "MISSED" in (seen(before), seen(after)) else
                         "box off the face" if near else "no box")
                causes[cause] += 1
                print(f"   frame {index} h={face[3]:.0f} search before {before} ({seen(before)}) after {after} "
                      f"({seen(after)}) glimpse {'found' if glimpsed else 'no'}; boxes on it {len(near)}: {cause}")
    print(f"tracks >= 32 px leaked {tracks_leaked} (of {tracks_total} tracks in all); leaked frames by cause: "
          f"{dict(causes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
