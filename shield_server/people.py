"""Whole-person mode: the mask of every person's silhouette, grown by the margin.

MediaPipe's selfie-segmentation model is trained on close-up selfies, so one pass over a group photo
finds at most the largest people. It is run where people are known to be (a person-sized window
around every detected face) and, to find people whose face was not detected, over the whole image and
over overlapping tiles. A silhouette from those passes is kept if it holds a detected face, or if the
pose model confirms a person in it. Where no silhouette covers the body under a detected face, a
body-sized box below the face is taken instead: a detected face never leaves its person unprotected.
"""

import cv2
import numpy as np

from shield_server import redact, segment

# Probabilities are combined at this resolution (long side) and the mask is upsampled at the end: this
# bounds time and memory on 12 MP photos; the margin covers the coarser edge.
WORK_LONG_SIDE = 1024
# Recall first: a pixel the model is 35% sure belongs to a person is replaced.
PERSON_THRESHOLD = 0.35
# Tiles of 0.6 x the short side (overlapping by half) make people in a group photo large enough for the
# selfie model to see.
TILE_FRACTION = 0.6

# Regions relative to a face box: (width in face widths, centred on the face; top and bottom in face
# heights below the face's top edge).
PERSON_WINDOW = (4.0, -1.0, 8.0)  # what the segmentation model sees around a face
STAND_IN_BODY = (3.0, 0.0, 8.0)  # replaced when segmentation finds no body under the face
CHEST = (1.5, 1.5, 3.0)  # "found a body" means at least half of this region is silhouette
CHEST_MIN_COVERAGE = 0.5

# Silhouettes without a face smaller than this fraction of the image are noise, not people; at most
# MAX_VERIFIED of them (largest first) go to the pose model, which takes ~50-150 ms each.
MIN_PERSON_AREA = 0.002
MAX_VERIFIED = 6
# A silhouette grows by margin x GROWTH x the person's height (8 face heights when the face is known):
# about 1% of the height at the default margin, enough to cover the outline's uncertainty.
GROWTH = 0.04
FACES_PER_PERSON = 8


def _face_relative(box, region, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    across, top, bottom = region
    center, face_w, face_h = (x0 + x1) / 2, x1 - x0, y1 - y0
    return (max(int(center - across / 2 * face_w), 0), max(int(y0 + top * face_h), 0),
            min(int(np.ceil(center + across / 2 * face_w)), width), min(int(np.ceil(y0 + bottom * face_h)), height))


def _scaled(box, scale: float, width: int, height: int) -> tuple[int, int, int, int]:
    """A full-resolution box in work-resolution pixels (never empty, clipped to width x height)."""
    x0, y0 = min(int(box[0] * scale), width - 1), min(int(box[1] * scale), height - 1)
    return (x0, y0, min(max(int(np.ceil(box[2] * scale)), x0 + 1), width),
            min(max(int(np.ceil(box[3] * scale)), y0 + 1), height))


def _grow_into(people: np.ndarray, local: np.ndarray, x0: int, y0: int, radius: float) -> None:
    """OR local (a mask whose top-left corner is at x0, y0 of people) into people, dilated by radius."""
    r = max(int(np.ceil(radius)), 0)
    h, w = local.shape
    ex0, ey0 = max(x0 - r, 0), max(y0 - r, 0)
    ex1, ey1 = min(x0 + w + r, people.shape[1]), min(y0 + h + r, people.shape[0])
    padded = np.zeros((ey1 - ey0, ex1 - ex0), np.uint8)
    padded[y0 - ey0:y0 - ey0 + h, x0 - ex0:x0 - ex0 + w] = local
    if r:
        padded = cv2.dilate(padded, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    people[ey0:ey1, ex0:ex1] |= padded.astype(bool)


def _confirmed_silhouettes(found: np.ndarray, faces: np.ndarray, frames, scale: float):
    """The connected silhouettes of found (x, y, mask) that hold a face or that the pose model confirms."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(found.astype(np.uint8))
    verified = 0
    for label in sorted(range(1, count), key=lambda label: -stats[label][4]):
        x, y, w, h, area = stats[label]
        silhouette = labels[y:y + h, x:x + w] == label
        if not (silhouette & faces[y:y + h, x:x + w]).any():
            if area < MIN_PERSON_AREA * found.size or verified == MAX_VERIFIED:
                continue
            verified += 1
            box = (x / scale, y / scale, (x + w) / scale, (y + h) / scale)
            if not any(segment.pose_confirms(frame, box) for frame in frames):
                continue
        yield x, y, silhouette


def people_mask(frames: list[np.ndarray], face_boxes, margin: float) -> np.ndarray:
    """Bool HxW mask of every person's silhouette (union over frames), grown by margin x person size."""
    height, width = frames[0].shape[:2]
    scale = min(1.0, WORK_LONG_SIDE / max(height, width))
    work_w, work_h = max(round(width * scale), 1), max(round(height * scale), 1)
    boxes = [tuple(int(v) for v in b) for b in face_boxes if b[2] > b[0] and b[3] > b[1]]
    windows = [_face_relative(b, PERSON_WINDOW, width, height) for b in boxes]
    views = segment.tiles(width, height, TILE_FRACTION)

    # Probability of a person: from the whole image and tiles (anyone), and per face window.
    anywhere = np.zeros((work_h, work_w), np.float32)
    around_faces = [np.zeros((wy1 - wy0, wx1 - wx0), np.float32)
                    for wx0, wy0, wx1, wy1 in (_scaled(w, scale, work_w, work_h) for w in windows)]
    for frame in frames:
        np.maximum(anywhere, segment.person_probability(frame, (work_w, work_h)), out=anywhere)
        for x0, y0, x1, y1 in views:
            wx0, wy0, wx1, wy1 = _scaled((x0, y0, x1, y1), scale, work_w, work_h)
            view = anywhere[wy0:wy1, wx0:wx1]
            np.maximum(view, segment.person_probability(frame[y0:y1, x0:x1], (wx1 - wx0, wy1 - wy0)), out=view)
        for (x0, y0, x1, y1), probability in zip(windows, around_faces):
            np.maximum(probability, segment.person_probability(frame[y0:y1, x0:x1], probability.shape[::-1]),
                       out=probability)

    faces = np.zeros((work_h, work_w), bool)
    for box in boxes:
        x0, y0, x1, y1 = _scaled(box, scale, work_w, work_h)
        faces[y0:y1, x0:x1] = True
    people = np.zeros((work_h, work_w), bool)
    confirmed = np.zeros((work_h, work_w), bool)
    for x, y, silhouette in _confirmed_silhouettes(anywhere >= PERSON_THRESHOLD, faces, frames, scale):
        confirmed[y:y + silhouette.shape[0], x:x + silhouette.shape[1]] |= silhouette
        _grow_into(people, silhouette, x, y, margin * GROWTH * silhouette.shape[0])

    for box, window, probability in zip(boxes, windows, around_faces):
        wx0, wy0, wx1, wy1 = _scaled(window, scale, work_w, work_h)
        silhouette = (probability >= PERSON_THRESHOLD) | confirmed[wy0:wy1, wx0:wx1]
        chest_box = _face_relative(box, CHEST, width, height)
        cx0, cy0, cx1, cy1 = _scaled(chest_box, scale, work_w, work_h)
        chest = silhouette[cy0 - wy0:cy1 - wy0, cx0 - wx0:cx1 - wx0]
        in_frame = chest_box[3] > chest_box[1] and chest_box[2] > chest_box[0]
        if in_frame and chest.size and chest.mean() < CHEST_MIN_COVERAGE:
            bx0, by0, bx1, by1 = _scaled(_face_relative(box, STAND_IN_BODY, width, height), scale, work_w, work_h)
            silhouette[by0 - wy0:by1 - wy0, bx0 - wx0:bx1 - wx0] = True
        _grow_into(people, silhouette, wx0, wy0, margin * GROWTH * FACES_PER_PERSON * (box[3] - box[1]) * scale)

    if scale < 1.0:
        people = cv2.resize(people.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
    for x0, y0, x1, y1 in boxes:  # the whole face box, even at margin 0 (the head ellipse cuts its corners)
        people[max(y0, 0):y1, max(x0, 0):x1] = True
    return people | redact.head_mask(boxes, margin, width, height)
