"""A fake camera for the browser tests: scikit-image's astronaut (a real face photo) as a YUV4MPEG2 clip that
Chromium plays to a page's getUserMedia (`--use-file-for-fake-video-capture`), and what the site should get.

    frame, face = camera_frame()          # the RGB picture the camera shows, and the face core in its pixels
    write_y4m(path, frame, frames=10)     # the clip (4:2:0, full-range "C420jpeg")
"""

import os
from pathlib import Path

import numpy as np
import skimage
from PIL import Image

ASTRONAUT = os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png")
WIDTH, HEIGHT = 640, 480  # what getUserMedia({video: true}) asks for by default
FACE_CORE_512 = (195, 95, 255, 155)  # eyes to mouth of the astronaut, in her 512 x 512 photo


def camera_frame() -> tuple[Image.Image, tuple[int, int, int, int]]:
    """The astronaut scaled to the frame's height and centred on grey, and her face core in frame pixels."""
    scale = HEIGHT / 512
    offset = (WIDTH - HEIGHT) // 2
    frame = Image.new("RGB", (WIDTH, HEIGHT), (128, 128, 128))
    frame.paste(Image.open(ASTRONAUT).convert("RGB").resize((HEIGHT, HEIGHT), Image.LANCZOS), (offset, 0))
    x0, y0, x1, y1 = FACE_CORE_512
    face = (round(x0 * scale) + offset, round(y0 * scale), round(x1 * scale) + offset, round(y1 * scale))
    return frame, face


def write_y4m(path: Path, frame: Image.Image, frames: int = 10) -> Path:
    """`frames` copies of `frame` as a 4:2:0 YUV4MPEG2 clip at 30 frames/s (Chromium loops it)."""
    ycbcr = np.asarray(frame.convert("YCbCr"))
    y = ycbcr[:, :, 0]
    chroma = [Image.fromarray(ycbcr[:, :, i]).resize((frame.width // 2, frame.height // 2), Image.BILINEAR)
              for i in (1, 2)]
    picture = b"FRAME\n" + y.tobytes() + b"".join(np.asarray(plane).tobytes() for plane in chroma)
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{frame.width} H{frame.height} F30:1 Ip A1:1 C420jpeg\n".encode())
        out.write(picture * frames)
    return Path(path)
