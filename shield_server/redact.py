"""Pixel replacement: which pixels a face or a drawn region claims, and what they are replaced with.

No fill reads a single original pixel: a solid colour, noise from the operating system's secure random
source, or a sticker drawn here in code over a solid background. Blur and mosaic are refused: models can
reverse or recognise them.
"""

import os

import numpy as np
from PIL import Image, ImageDraw

# A face box from a detector spans roughly brow to chin and cheek to cheek. The redacted region is the
# ellipse inscribed in that box grown by MARGIN x its width on the left and right, MARGIN x its height
# below (chin, neck line) and TOP_FACTOR x MARGIN x its height above (forehead, hair line). With the
# default margin the ellipse still contains every corner of the face box, so the whole face is covered.
DEFAULT_MARGIN = 0.3
TOP_FACTOR = 1.6

FILLS = ("solid", "noise", "sticker")
REFUSED_FILLS = ("blur", "pixelate", "pixelize", "mosaic")
MIN_FEATURE_SIDE = 6  # pixels: a sticker drawn smaller than this is its background colour alone


def head_ellipse_box(box, margin: float) -> tuple[float, float, float, float]:
    """The box of the head ellipse a face box claims (not clipped to the image)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    return x0 - margin * w, y0 - TOP_FACTOR * margin * h, x1 + margin * w, y1 + margin * h


def head_box(box: tuple[float, float, float, float], margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The face box grown by the margin, clipped to the image: (x0, y0, x1, y1), x1/y1 exclusive."""
    ex0, ey0, ex1, ey1 = head_ellipse_box(box, margin)
    return (max(int(np.floor(ex0)), 0), max(int(np.floor(ey0)), 0),
            min(int(np.ceil(ex1)), width), min(int(np.ceil(ey1)), height))


def head_mask(boxes, margin: float, width: int, height: int) -> np.ndarray:
    """Boolean HxW mask of the pixels to replace: one ellipse per face, inscribed in its grown box."""
    mask = np.zeros((height, width), dtype=bool)
    for box in boxes:
        ex0, ey0, ex1, ey1 = head_ellipse_box(box, margin)
        cx, cy, rx, ry = (ex0 + ex1) / 2, (ey0 + ey1) / 2, (ex1 - ex0) / 2, (ey1 - ey0) / 2
        gx0, gy0, gx1, gy1 = head_box(box, margin, width, height)
        if gx1 <= gx0 or gy1 <= gy0:
            continue
        ys = (np.arange(gy0, gy1) + 0.5 - cy) / ry
        xs = (np.arange(gx0, gx1) + 0.5 - cx) / rx
        mask[gy0:gy1, gx0:gx1] |= (ys[:, None] ** 2 + xs[None, :] ** 2) <= 1.0
    return mask


def rectangle_mask(boxes, width: int, height: int) -> np.ndarray:
    """Boolean HxW mask of whole rectangles (regions a person drew: replaced exactly as drawn)."""
    mask = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


def replacement(mask: np.ndarray, fill: str, color: tuple[int, int, int], sticker: str = "smile",
                sticker_boxes=()) -> np.ndarray:
    """The new colour of every masked pixel, in mask order (N x 3 uint8). For stickers, one sticker is drawn in
    each of sticker_boxes (face heads, drawn regions) over the sticker's background, which covers the whole mask."""
    count = int(mask.sum())
    if fill == "solid":
        return np.broadcast_to(np.array(color, dtype=np.uint8), (count, 3))
    if fill == "noise":
        return np.frombuffer(os.urandom(count * 3), dtype=np.uint8).reshape(count, 3)
    if fill != "sticker":
        raise ValueError(f"unknown fill {fill!r}")
    if count == 0:
        return np.zeros((0, 3), dtype=np.uint8)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, left = int(rows[0]), int(cols[0])
    window = mask[top:int(rows[-1]) + 1, left:int(cols[-1]) + 1]
    background, draw_features = STICKERS[sticker]
    canvas = Image.new("RGB", (window.shape[1], window.shape[0]), background)
    draw = ImageDraw.Draw(canvas)
    for x0, y0, x1, y1 in sticker_boxes:
        square = _Square(x0 - left, y0 - top, x1 - left, y1 - top)
        if square.side >= MIN_FEATURE_SIDE:
            draw_features(draw, square)
    return np.asarray(canvas)[window]


def fill_pixels(frame: np.ndarray, mask: np.ndarray, values: np.ndarray) -> None:
    """Overwrite the masked pixels of an RGB or RGBA frame in place with replacement() values. Alpha becomes
    opaque there, so a transparent pixel cannot keep its old colour hidden behind alpha 0."""
    if not mask.any():
        return
    frame[mask, :3] = values
    if frame.shape[2] == 4:
        frame[mask, 3] = 255


class _Square:
    """Sticker features are drawn in a unit square centred in the region, so they keep their proportions."""

    def __init__(self, x0, y0, x1, y1):
        self.side = min(x1 - x0, y1 - y0)
        self.left, self.top = (x0 + x1 - self.side) / 2, (y0 + y1 - self.side) / 2

    def point(self, u: float, v: float) -> tuple[float, float]:
        return self.left + u * self.side, self.top + v * self.side

    def box(self, u0, v0, u1, v1) -> list[float]:
        return [*self.point(u0, v0), *self.point(u1, v1)]

    def width(self, fraction: float) -> int:
        return max(1, round(fraction * self.side))


def _star_points(square: _Square, points: int = 5, outer: float = 0.42, inner: float = 0.18):
    angles = np.pi * np.arange(2 * points) / points - np.pi / 2
    radii = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return [square.point(0.5 + r * np.cos(a), 0.5 + r * np.sin(a)) for r, a in zip(radii, angles)]


def _smile(draw: ImageDraw.ImageDraw, s: _Square) -> None:
    ink = (92, 56, 20)
    draw.ellipse(s.box(0.30, 0.30, 0.40, 0.45), fill=ink)
    draw.ellipse(s.box(0.60, 0.30, 0.70, 0.45), fill=ink)
    draw.arc(s.box(0.25, 0.30, 0.75, 0.75), 25, 155, fill=ink, width=s.width(0.06))


def _cat(draw: ImageDraw.ImageDraw, s: _Square) -> None:
    ink = (60, 40, 30)
    draw.ellipse(s.box(0.28, 0.32, 0.40, 0.46), fill=(70, 150, 70))
    draw.ellipse(s.box(0.60, 0.32, 0.72, 0.46), fill=(70, 150, 70))
    draw.polygon([s.point(0.44, 0.55), s.point(0.56, 0.55), s.point(0.50, 0.62)], fill=(230, 110, 140))
    for v0, v1 in ((0.58, 0.54), (0.62, 0.62), (0.66, 0.70)):
        draw.line([s.point(0.08, v0), s.point(0.38, v1)], fill=ink, width=s.width(0.02))
        draw.line([s.point(0.92, v0), s.point(0.62, v1)], fill=ink, width=s.width(0.02))


def _heart(draw: ImageDraw.ImageDraw, s: _Square) -> None:
    red = (220, 30, 70)
    draw.ellipse(s.box(0.15, 0.22, 0.52, 0.58), fill=red)
    draw.ellipse(s.box(0.48, 0.22, 0.85, 0.58), fill=red)
    draw.polygon([s.point(0.17, 0.47), s.point(0.83, 0.47), s.point(0.50, 0.85)], fill=red)


def _star(draw: ImageDraw.ImageDraw, s: _Square) -> None:
    draw.polygon(_star_points(s), fill=(255, 210, 40))


def _flower(draw: ImageDraw.ImageDraw, s: _Square) -> None:
    for angle in np.arange(6) * np.pi / 3:
        u, v = 0.5 + 0.24 * np.cos(angle), 0.5 + 0.24 * np.sin(angle)
        draw.ellipse(s.box(u - 0.15, v - 0.15, u + 0.15, v + 0.15), fill=(255, 255, 255))
    draw.ellipse(s.box(0.36, 0.36, 0.64, 0.64), fill=(255, 200, 30))


# name -> (background colour covering the whole region, features drawn over it)
STICKERS = {
    "smile": ((255, 204, 51), _smile),
    "cat": ((245, 160, 80), _cat),
    "heart": ((255, 190, 205), _heart),
    "star": ((70, 110, 200), _star),
    "flower": ((150, 205, 120), _flower),
}
