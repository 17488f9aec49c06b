"""Faces across time: which frames are searched, with which passes, and which boxes cover each frame
(docs/VIDEO.md, "Detection across time").

    faces = FaceTimeline()
    faces.add(picture, previous_picture)    # every decoded frame, in order: camera motion, cuts, detection
    faces.boxes_for(index)                   # once frame `index` is HOLD frames old: the boxes covering it
    faces.forget(index)                      # after it is written: drop what no later frame needs

The detector runs on every DETECT_EVERY-th frame, and on both sides of every scene cut. Each frame is then
covered by the detections of every detection frame within HOLD frames of it (same scene only), each moved
along the camera's motion and grown with its distance in time, plus the path between matched faces of the
detection frames around it, plus the last sighting of any face not found again since (LOST_HOLD).
"""

import copy
import dataclasses

import cv2
import numpy as np

from shield_server.detect import default_detector

DETECT_EVERY = 3
# The photo detector's fine pass (1.5x, there for faces under ~20 px) is ~80% of a detection frame's time.
# It runs on every FINE_EVERY-th detection frame and on both sides of a scene cut; the detection frames
# between scan at LIGHT_UPSCALE instead. Small faces are far away and move few pixels, so the held boxes
# cover them between fine frames; larger faces are found at every detection frame.
FINE_EVERY = 2
LIGHT_UPSCALE = 1.0
HOLD = 6  # >= DETECT_EVERY: each frame sees the detection frames before and after it, and more
# A face not found again at a later detection frame (turning, covered, leaving) is held forward from its
# last sighting LOST_HOLD frames; one last seen at the frame's edge (within EDGE of it, as a share of the
# frame's short side) EDGE_LOST_HOLD frames, moving with the camera: once the frame's edge cuts its top or
# side off, the detector no longer finds a face the viewer still sees part of. Forward only: no more
# frames are buffered.
LOST_HOLD = 12
EDGE_LOST_HOLD = 24
EDGE = 0.02
# A held box follows the camera's motion, and grows by this fraction of its size per frame of distance
# for the face's own motion; where the camera's motion is unknown it grows faster.
GROW_PER_FRAME = 0.04
GROW_PER_FRAME_UNTRACKED = 0.1
MAX_GROW = 0.6
MOTION_WIDTH = 320  # camera motion is estimated on frames scaled to this width
MOTION_MIN_POINTS = 12
MATCH_DISTANCE = 1.5  # faces of two detection frames match when their centres are this many sizes apart
SCENE_CUT = 35.0  # mean absolute grey difference (0-255) of 64x36 thumbnails between consecutive frames


class FaceTimeline:
    def __init__(self):
        self.detector, self.light_detector = _video_detectors()
        self.motion: dict[int, np.ndarray | None] = {}  # frame index -> camera motion from the frame before
        self.detections: dict[int, list[tuple]] = {}  # frame index -> face boxes (x0, y0, x1, y1)
        self.detections_done: set[int] = set()
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
        rgb, index = item.rgb, item.index
        self.shape = rgb.shape[:2]
        small = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (MOTION_WIDTH, max(round(
            MOTION_WIDTH * rgb.shape[0] / rgb.shape[1]), 1)), interpolation=cv2.INTER_AREA)
        if self.previous_small is not None:
            self.motion[index] = _camera_motion(self.previous_small, small, rgb.shape[1] / MOTION_WIDTH)
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

    def _detect(self, item, fine: bool) -> None:
        if item.index in self.detections_done:
            return
        from shield_server.pipeline import _find_faces  # the photo path's detector lock and box clipping

        faces = _find_faces([item.rgb], self.detector if fine else self.light_detector)
        self.detections[item.index] = [face.box for face in faces]
        self.detections_done.add(item.index)
        self.faces_max = max(self.faces_max, len(faces))

    def boxes_for(self, index: int) -> list[tuple]:
        scene = self.scene_of[index]
        nearby = [d for d in self.detections if abs(d - index) <= HOLD and self.scene_of.get(d) == scene]
        boxes = self._held([(box, d) for d in nearby for box in self.detections[d]] + self._lost_faces(index), index)
        before = [d for d in nearby if d <= index]
        after = [d for d in nearby if d >= index]
        if before and after and max(before) != min(after):
            start, end = max(before), min(after)
            share = (index - start) / (end - start)
            for a, b in _matches(self.detections[start], self.detections[end]):
                boxes.append(tuple(pa + (pb - pa) * share for pa, pb in zip(a, b)))
        return boxes

    def forget(self, index: int) -> None:
        """Frame `index` is written: drop what no later frame's boxes need."""
        kept = max(HOLD, LOST_HOLD, EDGE_LOST_HOLD)
        for old in [d for d in self.detections if d < index - kept]:
            del self.detections[old]
        self.scene_of.pop(index - kept - 1, None)
        self.motion.pop(index - kept, None)

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
                if not any(_matches([_moved(box, motion)], self.detections[k]) for k, motion in motion_to.items()):
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
    """(fine, light): the photo detector plus a pass at 0.3x, for a face filling most of a video frame (a
    selfie), too large for the photo passes at 720p and above; the light one has its fine pass at
    LIGHT_UPSCALE. Both share the model's session.
    The fine pass is the photo pass without its mirror check (threshold 0.2, as in detection round 2): the
    video results in docs/BENCHMARKS.md were measured that way, and holding across frames covers a weak
    frame."""
    from shield_server.detect.centerface import DEFAULT_PASSES, CenterFace, Pass

    detector = default_detector()
    if not isinstance(detector, CenterFace):
        return detector, detector
    versions = []
    for upscale in (DEFAULT_PASSES[0].upscale, LIGHT_UPSCALE):
        version = copy.copy(detector)
        first = dataclasses.replace(DEFAULT_PASSES[0], upscale=upscale, threshold=0.2, mirror=False)
        version.passes = (first, *DEFAULT_PASSES[1:], Pass(0.3, 0.5, 0.3e6))
        versions.append(version)
    return tuple(versions)


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
