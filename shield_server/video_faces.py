"""Faces across time: which frames are searched, with which passes, and which boxes cover each frame
(docs/VIDEO.md, "Detection across time").

    faces = FaceTimeline()
    faces.add(picture, previous_picture)    # every decoded frame, in order: camera motion, cuts, detection
    faces.boxes_for(index)                   # once frame `index` is HOLD frames old: the boxes covering it
                                             # (every frame once, in order: parked faces carry over)
    faces.forget(index)                      # after it is written: drop what no later frame needs

Something looks at every frame. The full search (the photo detector plus a 0.3x pass) runs on every
DETECT_EVERY-th frame, on both sides of every scene cut and on the clip's last frame. Every other frame gets
a glimpse: one small CenterFace scan (GLIMPSE_PIXELS), plus a search of whatever changed since the previous
frame that the camera's motion does not explain (a face that flashes by between two full searches). Each
frame is then covered by the detections of every full search within HOLD frames of it (same scene only),
each moved along the camera's motion and grown with its distance in time, plus the path between matched
faces of the full searches around it, plus the last sighting of any face not found again since
(LOST_HOLD; at the frame's edge, EDGE_LOST_HOLD, then parked while nothing changes there), plus the glimpses
within GLIMPSE_HOLD frames.
"""

import copy
import dataclasses
import time

import cv2
import numpy as np

from shield_server.detect import default_detector
from shield_server.detect.base import intersection

# A full search every 5th frame, each held 10 frames each way (round 5): the misses on faces-dev's clips are
# frames where CenterFace does not find a face it finds a few frames away, so what a longer interval loses is
# won back by holding each sighting further (docs/BENCHMARKS.md, video round 5).
DETECT_EVERY = 5
# The photo detector's fine pass (1.5x, there for faces under ~20 px) is ~80% of a detection frame's time.
# It runs on every FINE_EVERY-th detection frame and on both sides of a scene cut; the detection frames
# between scan at LIGHT_UPSCALE instead. Small faces are far away and move few pixels, so the held boxes
# cover them between fine frames; larger faces are found at every detection frame. Every 4th (every 12th
# frame, with DETECT_EVERY=3 then) rather than every 2nd: the same tracks >= 32 px protected in every frame
# on faces-dev's clips, and 4-10% more frames/s (docs/BENCHMARKS.md, video round 4). Every 6th (every 30th
# frame) with the light scans at 0.75x: 13-16% more frames/s for the same tracks >= 32 px, a few more
# face-frames of 32-64 px left to the holds (round 6).
FINE_EVERY = 6
LIGHT_UPSCALE = 0.75
HOLD = 10  # >= DETECT_EVERY: each frame sees the detection frames before and after it, and more; also the
# look-ahead, so HOLD frames are buffered (~27 MB at 720p, ~250 MB at 4K)
# A face not found again at a later detection frame (turning, covered, leaving) is held forward from its
# last sighting LOST_HOLD frames; one last seen at the frame's edge (within EDGE of it, as a share of the
# frame's short side) EDGE_LOST_HOLD frames, moving with the camera: once the frame's edge cuts its top or
# side off, the detector no longer finds a face the viewer still sees part of. Forward only: no more
# frames are buffered. After EDGE_LOST_HOLD frames such a face stays parked, held for as long as nothing
# changes where it is (CHANGE_LEVEL, CHANGE_SHARE), counted from the first full search that missed it:
# someone standing half out of the picture.
LOST_HOLD = 12
EDGE_LOST_HOLD = 24
EDGE = 0.02
# A face counts as found again only by a box that covers at least FOUND_AGAIN_COVER of its box (moved with
# the camera): a face the frame's edge or something in front of it cuts is found as a smaller box around
# what is left, often off its middle, and the earlier, whole box is still the better guess of where it is.
FOUND_AGAIN_COVER = 0.5
# A held box follows the camera's motion, and grows by this fraction of its size per frame of distance
# for the face's own motion; where the camera's motion is unknown it grows faster.
GROW_PER_FRAME = 0.04
GROW_PER_FRAME_UNTRACKED = 0.1
MAX_GROW = 0.6
MOTION_WIDTH = 320  # camera motion is estimated on frames scaled to this width
MOTION_MIN_POINTS = 12
MATCH_DISTANCE = 1.5  # faces of two detection frames match when their centres are this many sizes apart
SCENE_CUT = 35.0  # mean absolute grey difference (0-255) of 64x36 thumbnails between consecutive frames
# Between full searches, every frame is glimpsed (EVERY_FRAME; off, the schedule above alone leaves a face
# seen only between two full searches, or in the last frames, intact). The glimpse scans the frame at the
# scale that makes it GLIMPSE_PIXELS (never above 1x): at 720p, 0.35x, so faces from ~30 px.
EVERY_FRAME = True
GLIMPSE_PIXELS = 0.11e6
GLIMPSE_THRESHOLD = 0.3
GLIMPSE_HOLD = 2  # glimpsed boxes cover their frame and this many frames on each side
# A change the camera's motion does not explain: on the grey frames of MOTION_WIDTH, the previous frame
# moved along the camera's motion differs from this one by CHANGE_LEVEL grey levels in at least CHANGE_SHARE
# of a CHANGE_CELL-pixel cell. The changed cells (grown by a cell) are searched at the full search's
# scales; a change over CHANGE_WHOLE of the frame searches the whole frame at the light scales.
CHANGE_LEVEL = 40
CHANGE_SHARE = 0.25
CHANGE_CELL = 8
CHANGE_WHOLE = 0.3


class FaceTimeline:
    def __init__(self):
        self.detector, self.light_detector, self.glimpse_detector = _video_detectors()
        self.motion: dict[int, np.ndarray | None] = {}  # frame index -> camera motion from the frame before
        self.detections: dict[int, list[tuple]] = {}  # frame index -> face boxes (x0, y0, x1, y1)
        self.detections_done: set[int] = set()
        self.glimpses: dict[int, list[tuple]] = {}  # frame index -> boxes glimpsed between full searches
        self.changed: dict[int, np.ndarray] = {}  # frame index -> cells (MOTION_WIDTH / CHANGE_CELL) that changed
        self.parked: list[tuple[tuple, int]] = []  # (box at the last frame covered, scene): lost at the edge
        self.changes = 0  # frames whose unexplained change was searched
        self.track_seconds = self.detect_seconds = 0.0  # in add() outside the detector, in the detector
        self.scene_of: dict[int, int] = {}
        self.scene = self.cuts = self.faces_max = 0
        self.previous_small = self.previous_thumb = None
        self.shape = None

    @property
    def lookahead(self) -> int:
        """How many frames after a frame must be seen before its boxes are final."""
        return HOLD

    def add(self, item, previous) -> None:
        """Take the next decoded frame (`previous`: the one before it, while it is not written yet)."""
        start, detecting = time.perf_counter(), self.detect_seconds
        self._add(item, previous)
        self.track_seconds += time.perf_counter() - start - (self.detect_seconds - detecting)

    def _add(self, item, previous) -> None:
        rgb, index = item.rgb, item.index
        self.shape = rgb.shape[:2]
        small = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (MOTION_WIDTH, max(round(
            MOTION_WIDTH * rgb.shape[0] / rgb.shape[1]), 1)), interpolation=cv2.INTER_AREA)
        if self.previous_small is not None:
            self.motion[index] = _camera_motion(self.previous_small, small, rgb.shape[1] / MOTION_WIDTH)
            self.changed[index] = _changed_cells(self.previous_small, small, self.motion[index],
                                                 rgb.shape[1] / MOTION_WIDTH)
        self.previous_small = small
        thumb = cv2.resize(small, (64, 36), interpolation=cv2.INTER_AREA)
        # A cut: the pictures change a lot and no camera motion explains it (a fast pan changes them too).
        if (self.previous_thumb is not None and self.motion.get(index) is None
                and np.abs(thumb.astype(np.int16) - self.previous_thumb).mean() > SCENE_CUT):
            self.scene += 1
            self.cuts += 1
            if previous is not None:
                self._detect(previous, fine=True)  # the last frame of the old scene
            self._detect(item, fine=True)
        self.previous_thumb = thumb.astype(np.int16)
        self.scene_of[index] = self.scene
        if index % DETECT_EVERY == 0:
            self._detect(item, fine=index % (DETECT_EVERY * FINE_EVERY) == 0)
        elif EVERY_FRAME and index not in self.detections_done:
            self._glimpse(item)

    def finish(self, last) -> None:
        """The clip ended with `last`: search it fully, so its final frames are not left to glimpses."""
        if EVERY_FRAME:
            self._detect(last, fine=True)

    def _find(self, rgb, detector) -> list[tuple]:
        from shield_server.pipeline import _find_faces  # the photo path's detector lock and box clipping

        start = time.perf_counter()
        boxes = [face.box for face in _find_faces([rgb], detector)]
        self.detect_seconds += time.perf_counter() - start
        return boxes

    def _detect(self, item, fine: bool) -> None:
        if item.index in self.detections_done:
            return
        faces = self._find(item.rgb, self.detector if fine else self.light_detector)
        self.detections[item.index] = faces
        self.detections_done.add(item.index)
        self.faces_max = max(self.faces_max, len(faces))

    def _glimpse(self, item) -> None:
        """A small scan of the whole frame, and a full-scale search of what changed since the frame before."""
        boxes = self._find(item.rgb, self.glimpse_detector)
        region = _changed_region(self.changed[item.index], item.rgb.shape) if item.index in self.changed else None
        if region is not None:
            self.changes += 1
            x0, y0, x1, y1 = region
            height, width = item.rgb.shape[:2]
            if (x1 - x0) * (y1 - y0) > CHANGE_WHOLE * width * height:
                boxes += self._find(item.rgb, self.light_detector)
            else:
                found = self._find(item.rgb[y0:y1, x0:x1], self.detector)
                boxes += [(bx0 + x0, by0 + y0, bx1 + x0, by1 + y0) for bx0, by0, bx1, by1 in found]
        self.glimpses[item.index] = boxes
        self.faces_max = max(self.faces_max, len(boxes))

    def boxes_for(self, index: int) -> list[tuple]:
        scene = self.scene_of[index]
        nearby = [d for d in self.detections if abs(d - index) <= HOLD and self.scene_of.get(d) == scene]
        glimpsed = [(box, g) for g, boxes in self.glimpses.items() if abs(g - index) <= GLIMPSE_HOLD
                    and self.scene_of.get(g) == scene for box in boxes]
        lost = self._lost_faces(index)
        held_lost = self._held(lost, index)
        boxes = self._held([(box, d) for d in nearby for box in self.detections[d]] + glimpsed, index) + held_lost
        boxes += self._parked_boxes(index, [held for held, (box, d) in zip(held_lost, lost)
                                            if index - d == EDGE_LOST_HOLD and self._still_since_missed(box, d, index)])
        before = [d for d in nearby if d <= index]
        after = [d for d in nearby if d >= index]
        if before and after and max(before) != min(after):
            start, end = max(before), min(after)
            share = (index - start) / (end - start)
            for a, b in _matches(self.detections[start], self.detections[end]):
                boxes.append(tuple(pa + (pb - pa) * share for pa, pb in zip(a, b)))
        return boxes

    def _parked_boxes(self, index: int, parking: list[tuple]) -> list[tuple]:
        """The boxes of the faces parked at the frame's edge that are still there at frame index, after parking
        those whose EDGE_LOST_HOLD ends at it (`parking`, boxes at frame index)."""
        scene, still = self.scene_of[index], []
        for box, parked_scene in self.parked:
            moved = _moved(box, self.motion.get(index))
            if parked_scene == scene and not _changed_at(moved, self.changed.get(index), self.shape):
                still.append((moved, scene))
        self.parked = still + [(box, scene) for box in parking]
        return [box for box, _ in self.parked]

    def _still_since_missed(self, box: tuple, d: int, index: int) -> bool:
        """Whether nothing changed under the box found at frame d (held, so moving with the camera and growing)
        from the first full search that missed it to frame index. Before that search, a change is the face
        settling at the edge as often as it is the face leaving; in doubt, the face stays covered (a box left
        over a still background until something moves there costs collateral, not a leak)."""
        missed = min((k for k in self.detections if k > d), default=index)
        return not any(_changed_at(self._held([(box, d)], k)[0], self.changed.get(k), self.shape)
                       for k in range(missed, index + 1))

    def forget(self, index: int) -> None:
        """Frame `index` is written: drop what no later frame's boxes need."""
        kept = max(HOLD, LOST_HOLD, EDGE_LOST_HOLD)
        for old in [d for d in self.detections if d < index - kept]:
            del self.detections[old]
        self.glimpses.pop(index - GLIMPSE_HOLD, None)
        self.scene_of.pop(index - kept - 1, None)
        self.motion.pop(index - kept, None)
        self.changed.pop(index - kept, None)

    def _held(self, pairs: list[tuple[tuple, int]], index: int) -> list[tuple]:
        """Boxes of (box, frame found at) pairs, moved to frame index along the camera's motion and grown with
        the distance in time."""
        held = []
        for box, d in pairs:
            motion = self._motion_between(d, index)
            grow = (GROW_PER_FRAME if motion is not None else GROW_PER_FRAME_UNTRACKED) * abs(d - index)
            held.append(_grow(_moved(box, motion), min(grow, MAX_GROW)))
        return held

    def _lost_faces(self, index: int) -> list[tuple[tuple, int]]:
        """(box, frame) of the faces last found over HOLD frames before frame index (but within LOST_HOLD, or
        EDGE_LOST_HOLD at the frame's edge), in its scene, and not found again at any detection frame since."""
        scene = self.scene_of[index]
        height, width = self.shape
        edge = EDGE * min(width, height)
        lost = []
        for d in self.detections:
            if not HOLD < index - d <= max(LOST_HOLD, EDGE_LOST_HOLD) or self.scene_of.get(d) != scene:
                continue
            motion_to = {k: self._motion_between(d, k) for k in self.detections if d < k <= index}
            for box in self.detections[d]:
                at_edge = min(box[0], box[1], width - box[2], height - box[3]) <= edge
                if index - d > (EDGE_LOST_HOLD if at_edge else LOST_HOLD):
                    continue
                if not any(_found_again(_moved(box, motion), self.detections[k]) for k, motion in motion_to.items()):
                    lost.append((box, d))
        return lost

    def _motion_between(self, start: int, end: int) -> np.ndarray | None:
        """The camera's motion from frame start to frame end (3x3), or None where a step is unknown."""
        total = np.eye(3)
        for k in range(min(start, end) + 1, max(start, end) + 1):
            step = self.motion.get(k)
            if step is None:
                return None
            total = step @ total
        if end >= start:
            return total
        return np.vstack([cv2.invertAffineTransform(total[:2]), [0.0, 0.0, 1.0]])


def _video_detectors():
    """(fine, light, glimpse): the photo detector plus a pass at 0.3x, for a face filling most of a video
    frame (a selfie), too large for the photo passes at 720p and above; the light one has its fine pass at
    LIGHT_UPSCALE; the glimpse is one pass of GLIMPSE_PIXELS. All share the model's session.
    The fine pass is the photo pass without its mirror check (threshold 0.2, as in detection round 2): the
    video results in docs/BENCHMARKS.md were measured that way, and holding across frames covers a weak
    frame."""
    from shield_server.detect.centerface import DEFAULT_PASSES, CenterFace, Pass

    detector = default_detector()
    if not isinstance(detector, CenterFace):
        return detector, detector, detector
    versions = []
    for upscale in (DEFAULT_PASSES[0].upscale, LIGHT_UPSCALE):
        first = dataclasses.replace(DEFAULT_PASSES[0], upscale=upscale, threshold=0.2, mirror=False)
        versions.append(_with_passes(detector, (first, *DEFAULT_PASSES[1:], Pass(0.3, 0.5, 0.3e6))))
    return (*versions, _with_passes(detector, (Pass(1.0, GLIMPSE_THRESHOLD, GLIMPSE_PIXELS),)))


def _with_passes(detector, passes):
    version = copy.copy(detector)
    version.passes = passes
    return version


def _changed_cells(previous: np.ndarray, current: np.ndarray, motion: np.ndarray | None,
                   scale: float) -> np.ndarray:
    """Which CHANGE_CELL cells of `current` (a small grey frame, `scale` times smaller than the full one)
    differ from `previous` moved along the camera's `motion` (full-size pixels)."""
    matrix = np.eye(3)[:2] if motion is None else motion[:2].copy()
    matrix[:, 2] /= scale
    size = (current.shape[1], current.shape[0])
    moved = cv2.warpAffine(previous, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpAffine(np.full_like(previous, 255), matrix, size, flags=cv2.INTER_NEAREST) > 0
    differs = (cv2.absdiff(cv2.GaussianBlur(moved, (5, 5), 0), cv2.GaussianBlur(current, (5, 5), 0))
               > CHANGE_LEVEL) & inside  # what came in through the frame's edge is not a change
    rows, cols = -(-size[1] // CHANGE_CELL), -(-size[0] // CHANGE_CELL)
    padded = np.zeros((rows * CHANGE_CELL, cols * CHANGE_CELL), np.float32)
    padded[:size[1], :size[0]] = differs
    return padded.reshape(rows, CHANGE_CELL, cols, CHANGE_CELL).mean(axis=(1, 3)) >= CHANGE_SHARE


def _changed_region(cells: np.ndarray, shape: tuple) -> tuple[int, int, int, int] | None:
    """The box (full-size pixels) around the changed cells, grown by a cell, or None when none changed."""
    if not cells.any():
        return None
    height, width = shape[:2]
    ys, xs = np.nonzero(cells)
    cell = CHANGE_CELL * width / MOTION_WIDTH
    return (max(int((xs.min() - 1) * cell), 0), max(int((ys.min() - 1) * cell), 0),
            min(int((xs.max() + 2) * cell), width), min(int((ys.max() + 2) * cell), height))


def _changed_at(box: tuple, cells: np.ndarray | None, shape: tuple) -> bool:
    """Whether any changed cell lies under the box (full-size pixels); True when the change is unknown."""
    if cells is None:
        return True
    cell = CHANGE_CELL * shape[1] / MOTION_WIDTH
    x0, y0 = max(int(box[0] // cell), 0), max(int(box[1] // cell), 0)
    return bool(cells[y0:max(int(-(-box[3] // cell)), y0), x0:max(int(-(-box[2] // cell)), x0)].any())


MOTION_SEED = 0


def _camera_motion(previous: np.ndarray, current: np.ndarray, scale: float) -> np.ndarray | None:
    """The similarity transform (pan, zoom, roll) from the previous frame to this one, in full-size pixels,
    from corners tracked by optical flow on the small grey frames; None when it cannot be trusted."""
    points = cv2.goodFeaturesToTrack(previous, maxCorners=200, qualityLevel=0.01, minDistance=6)
    if points is None or len(points) < MOTION_MIN_POINTS:
        return None
    moved, found, _ = cv2.calcOpticalFlowPyrLK(previous, current, points, None)
    found = found.reshape(-1).astype(bool)
    if found.sum() < MOTION_MIN_POINTS:
        return None
    cv2.setRNGSeed(MOTION_SEED)  # RANSAC draws from the calling thread's generator: same clip, same boxes
    matrix, inliers = cv2.estimateAffinePartial2D(points[found], moved[found], method=cv2.RANSAC,
                                                  ransacReprojThreshold=1.5)
    if matrix is None or inliers.sum() < max(MOTION_MIN_POINTS, 0.5 * found.sum()):
        return None
    matrix[:, 2] *= scale
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


def _moved(box: tuple, motion: np.ndarray | None) -> tuple:
    if motion is None:
        return box
    x0, y0, x1, y1 = box
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], float) @ motion.T
    return (corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(), corners[:, 1].max())


def _grow(box: tuple, fraction: float) -> tuple:
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * fraction, (y1 - y0) * fraction
    return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)


def _found_again(box: tuple, later: list[tuple]) -> bool:
    if not later:
        return False
    area = (box[2] - box[0]) * (box[3] - box[1])
    return bool((intersection(np.asarray(box, float), np.asarray(later, float)) >= FOUND_AGAIN_COVER * area).any())


def _matches(first: list[tuple], second: list[tuple]) -> list[tuple[tuple, tuple]]:
    """Each face of `first` paired with the nearest face of `second` whose centre is close enough."""
    pairs = []
    for a in first:
        size = max(a[2] - a[0], a[3] - a[1])
        centre = np.array([(a[0] + a[2]) / 2, (a[1] + a[3]) / 2])
        best = min(second, default=None, key=lambda b: np.hypot(*(centre - [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])))
        if best is not None and np.hypot(*(centre - [(best[0] + best[2]) / 2, (best[1] + best[3]) / 2])) <= MATCH_DISTANCE * size:
            pairs.append((a, best))
    return pairs
