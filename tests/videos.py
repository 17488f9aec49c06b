"""Real test clips, made with PyAV from scikit-image's astronaut photo: her face moves across the frame,
with an AAC tone track and the metadata a phone writes (GPS position, creation time, make and model).

    truth = make_clip(path, frames=24, rotation=90)   # truth[i]: the face box (x0, y0, x1, y1) as displayed
    magenta_share(rgb, box)                           # the share of the box's middle that is magenta
"""

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data

WIDTH, HEIGHT = 320, 240  # as displayed
FACE_SIZE = 240  # the astronaut photo scaled to FACE_SIZE x FACE_SIZE
# The astronaut's face in the 512 px photo (brow to chin, ear to ear), checked by eye and by CenterFace.
FACE_IN_PHOTO = (178, 60, 269, 178)
GPS = "+48.8584+002.2945/"
CREATION = "2024-05-01T10:00:00Z"
MAGENTA = (255, 0, 255)
CHAPTER = "Birthday at Grandma's"
# Per-stream tags a phone or an editor writes: a handler name that can name the device or person, a language.
VIDEO_HANDLER = "Core Media Video of Anna's iPhone"
AUDIO_HANDLER = "Core Media Audio of Anna's iPhone"
AUDIO_LANGUAGE = "fra"
COVER = b"\xff\xd8\xff\xe0" + b"cover art of the family " * 20


def upright_frames(frames: int, cut_at: int | None = None, travel: tuple[int, int] = (-60, 80),
                   stop_at: int | None = None, gone_at: int | None = None):
    """(frame, face box) pairs: the photo slides from left to right over a grey background, its left edge
    from travel[0] to travel[1] px (the face leaves the frame from about 200; with stop_at, it gets there
    at that frame and stays). From frame cut_at on, a hard cut to a photo of coffee with no face (box None);
    from frame gone_at on, the photo is gone from the grey background (box None)."""
    photo = cv2.resize(data.astronaut(), (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
    coffee = cv2.resize(data.coffee(), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    scale = FACE_SIZE / 512
    for i in range(frames):
        if cut_at is not None and i >= cut_at:
            yield coffee, None
            continue
        if gone_at is not None and i >= gone_at:
            yield np.full((HEIGHT, WIDTH, 3), 90, np.uint8), None
            continue
        moving = frames - 1 if stop_at is None else stop_at
        x = travel[0] + round(min(i, moving) * (travel[1] - travel[0]) / max(moving, 1))
        canvas = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
        left, right = max(x, 0), min(x + FACE_SIZE, WIDTH)
        canvas[:, left:right] = photo[:HEIGHT, left - x:right - x]
        box = tuple(v * scale + (x if k % 2 == 0 else 0) for k, v in enumerate(FACE_IN_PHOTO))
        yield canvas, box


def make_clip(path: Path, frames: int = 24, fps: int = 12, rotation: int = 0, audio: bool = True,
              metadata: bool = True, faststart: bool = False, container: str = "mp4", codec: str = "libx264",
              cut_at: int | None = None, travel: tuple[int, int] = (-60, 80), stop_at: int | None = None,
              gone_at: int | None = None):
    """Writes the clip; returns the face box of each frame, in displayed (upright) pixels. rotation=90 stores
    each frame turned clockwise with a display matrix that turns it back (as a phone held upright does)."""
    options = {"movflags": "+faststart+use_metadata_tags"} if container == "mp4" and faststart else (
        {"movflags": "use_metadata_tags"} if container == "mp4" else {})
    truth = []
    with av.open(str(path), "w", format=container, options=options) as out:
        if metadata:
            out.metadata.update({"location": GPS, "creation_time": CREATION, "make": "Apple",
                                 "model": "iPhone 15 Pro", "com.apple.quicktime.location.ISO6709": GPS})
            out.set_chapters([{"id": 1, "start": 0, "end": frames, "time_base": Fraction(1, fps),
                               "metadata": {"title": CHAPTER}}])  # MP4: a text track; MKV: chapters
            if container == "matroska":  # cover art: an attached picture stream when read back
                out.add_attachment("cover.jpg", "image/jpeg", COVER)
        stream = out.add_stream(codec, rate=fps)
        stored = (HEIGHT, WIDTH) if rotation in (0, 180) else (WIDTH, HEIGHT)
        stream.height, stream.width = stored
        stream.pix_fmt = "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        sound = out.add_stream("aac" if container == "mp4" else "libopus", rate=48000) if audio else None
        if metadata:
            stream.metadata["handler_name"] = VIDEO_HANDLER
            if sound is not None:
                sound.metadata.update({"handler_name": AUDIO_HANDLER, "language": AUDIO_LANGUAGE})
        for canvas, box in upright_frames(frames, cut_at, travel, stop_at=stop_at, gone_at=gone_at):
            stored_pixels = np.ascontiguousarray(np.rot90(canvas, k=-rotation // 90))
            for packet in stream.encode(av.VideoFrame.from_ndarray(stored_pixels, format="rgb24")):
                out.mux(packet)
            truth.append(box)
        for packet in stream.encode():
            out.mux(packet)
        if sound is not None:
            _write_tone(out, sound, seconds=frames / fps)
    return truth


def _write_tone(out, sound, seconds: float) -> None:
    rate, step = 48000, 960
    samples = (0.2 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)).astype(np.float32)
    for start in range(0, len(samples) - step + 1, step):
        frame = av.AudioFrame.from_ndarray(samples[None, start:start + step], format="flt", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        for packet in sound.encode(frame):
            out.mux(packet)
    for packet in sound.encode():
        out.mux(packet)


def decode_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as clip:
        return [frame.to_ndarray(format="rgb24") for frame in clip.decode(video=0)]


def middle(box, share: float = 0.6):
    """The middle of a box (share of its width and height), as integer pixel bounds."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * (1 - share) / 2, (y1 - y0) * (1 - share) / 2
    return int(x0 + dx), int(y0 + dy), int(np.ceil(x1 - dx)), int(np.ceil(y1 - dy))


def magenta_share(rgb: np.ndarray, box) -> float:
    """Share of the box's middle (clipped to the frame) that is magenta after lossy coding (faces-dev's rule)."""
    if box is None:  # no face: the share of the whole frame
        return float(((rgb[..., 0] >= 200) & (rgb[..., 2] >= 200) & (rgb[..., 1] <= 60)).mean())
    x0, y0, x1, y1 = middle(box)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, rgb.shape[1]), min(y1, rgb.shape[0])
    if x1 <= x0 or y1 <= y0:
        return 1.0
    part = rgb[y0:y1, x0:x1].astype(int)
    return float(((part[..., 0] >= 200) & (part[..., 2] >= 200) & (part[..., 1] <= 60)).mean())
