"""Pixel replacement: which pixels a face claims, and what they are replaced with.

Only two fills exist, and neither reads a single original pixel: a solid colour, or noise from the
operating system's secure random source. Blur and mosaic are refused: models can reverse or recognise them.
"""

import os

import numpy as np

# A face box from a detector spans roughly brow to chin and cheek to cheek. The redacted region is the
# ellipse inscribed in that box grown by MARGIN x its width on the left and right, MARGIN x its height
# below (chin, neck line) and TOP_FACTOR x MARGIN x its height above (forehead, hair line). With the
# default margin the ellipse still contains every corner of the face box, so the whole face is covered.
DEFAULT_MARGIN = 0.3
TOP_FACTOR = 1.6

FILLS = ("solid", "noise")
REFUSED_FILLS = ("blur", "pixelate", "pixelize", "mosaic")


def head_box(box: tuple[float, float, float, float], margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The face box grown by the margin, clipped to the image: (x0, y0, x1, y1), x1/y1 exclusive."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    return (max(int(np.floor(x0 - margin * w)), 0), max(int(np.floor(y0 - TOP_FACTOR * margin * h)), 0),
            min(int(np.ceil(x1 + margin * w)), width), min(int(np.ceil(y1 + margin * h)), height))


def head_mask(boxes, margin: float, width: int, height: int) -> np.ndarray:
    """Boolean HxW mask of the pixels to replace: one ellipse per face, inscribed in its grown box."""
    mask = np.zeros((height, width), dtype=bool)
    for box in boxes:
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        ex0, ey0 = x0 - margin * w, y0 - TOP_FACTOR * margin * h
        ex1, ey1 = x1 + margin * w, y1 + margin * h
        cx, cy, rx, ry = (ex0 + ex1) / 2, (ey0 + ey1) / 2, (ex1 - ex0) / 2, (ey1 - ey0) / 2
        gx0, gy0, gx1, gy1 = head_box(box, margin, width, height)
        if gx1 <= gx0 or gy1 <= gy0:
            continue
        ys = (np.arange(gy0, gy1) + 0.5 - cy) / ry
        xs = (np.arange(gx0, gx1) + 0.5 - cx) / rx
        mask[gy0:gy1, gx0:gx1] |= (ys[:, None] ** 2 + xs[None, :] ** 2) <= 1.0
    return mask


def fill_pixels(frame: np.ndarray, mask: np.ndarray, fill: str, color: tuple[int, int, int]) -> None:
    """Overwrite the masked pixels of an RGB or RGBA frame in place. Alpha becomes opaque there, so a
    transparent pixel cannot keep its old colour hidden behind alpha 0."""
    count = int(mask.sum())
    if count == 0:
        return
    if fill == "solid":
        replacement = np.array(color, dtype=np.uint8)
        frame[mask, :3] = replacement
    elif fill == "noise":
        frame[mask, :3] = np.frombuffer(os.urandom(count * 3), dtype=np.uint8).reshape(count, 3)
    else:
        raise ValueError(f"unknown fill {fill!r}")
    if frame.shape[2] == 4:
        frame[mask, 3] = 255
