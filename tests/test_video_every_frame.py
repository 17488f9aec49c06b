"""Every frame, really: a face on screen for one or two frames, in the first or last frame only, or moving
~90 px a frame and turning, is replaced in every frame it shows in. The clips paste real faces (scikit-image's
astronaut and faces of its LFW subset) on a real photo the camera pans over, at frame indices all around
the full-search schedule (video_faces.DETECT_EVERY), and every frame of the output is judged."""

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from skimage import data

from shield_server import video_faces
from shield_server.video import VideoOptions, protect_video
from videos import FACE_IN_PHOTO, MAGENTA, decode_frames, magenta_share

MAGENTA_OPTIONS = VideoOptions(color=MAGENTA)
EVERY = video_faces.DETECT_EVERY  # the schedule the clips are placed against (5)


def faces() -> dict[str, np.ndarray]:
    """Face pictures as they are pasted: the astronaut's face (brow to chin) and three LFW faces CenterFace
    finds on a still (most of the subset's tight 25 px crops score under its threshold), 60 px."""
    x0, y0, x1, y1 = FACE_IN_PHOTO
    astronaut = cv2.resize(data.astronaut()[y0:y1, x0:x1], (50, 64), interpolation=cv2.INTER_AREA)
    lfw = data.lfw_subset()  # the first 100 are faces
    chosen = {f"lfw{i}": cv2.resize(np.repeat((lfw[i] * 255).astype(np.uint8)[..., None], 3, axis=2), (60, 60),
                                    interpolation=cv2.INTER_CUBIC) for i in (15, 36, 46)}
    return {"astronaut": astronaut, **chosen}


FACES = faces()


def make_clip(path: Path, frames: int, places: dict[int, tuple[int, int]], face: np.ndarray,
              size: tuple[int, int] = (320, 240), pan: int = 2, fps: int = 25) -> list:
    """Writes an H.264 clip of `frames` frames: a camera panning `pan` px a frame over a photo of coffee,
    with `face` pasted at places[i] = (x, y) in frame i. Returns the face box of each frame (None: none)."""
    width, height = size
    background = cv2.resize(data.coffee(), (width + pan * frames + 2, height + 2), interpolation=cv2.INTER_AREA)
    fh, fw = face.shape[:2]
    truth = []
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            canvas = np.ascontiguousarray(background[1:height + 1, pan * i:pan * i + width])
            box = None
            if i in places:
                x, y = places[i]
                canvas[y:y + fh, x:x + fw] = face
                box = (x, y, x + fw, y + fh)
            truth.append(box)
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return truth


def assert_face_replaced_wherever_shown(source: Path, out: Path, truth: list) -> None:
    protect_video(source, out, MAGENTA_OPTIONS)
    frames = decode_frames(out)
    assert len(frames) == len(truth)
    shares = {i: magenta_share(rgb, box) for i, (rgb, box) in enumerate(zip(frames, truth)) if box is not None}
    assert shares, "the clip shows no face"
    left = {i: round(s, 2) for i, s in shares.items() if s < 0.95}
    assert not left, f"face core not replaced in frames (index: share replaced) {left}"


# Frames relative to the full searches at 0, 3, 6, 9, ...: right after one, just before the next, both.
BRIEF = [(EVERY * 2 + 1,), (EVERY * 3 - 1,), (1,), (EVERY * 2 + 1, EVERY * 2 + 2), (EVERY * 3 + 1, EVERY * 3 + 2),
         (EVERY - 2, EVERY - 1)]


@pytest.mark.parametrize("shown", BRIEF, ids=lambda s: "frames-" + "-".join(map(str, s)))
@pytest.mark.parametrize("face", ["astronaut", "lfw36"])
def test_face_shown_for_one_or_two_frames(tmp_path, shown, face):
    frames = EVERY * 4 + 4
    truth = make_clip(tmp_path / "brief.mp4", frames, {i: (150, 90) for i in shown}, FACES[face])
    assert_face_replaced_wherever_shown(tmp_path / "brief.mp4", tmp_path / "out.mp4", truth)


@pytest.mark.parametrize("frames", [2, 4, 5, 7, 8, 11])
@pytest.mark.parametrize("where", ["first", "last"])
def test_face_in_first_or_last_frame_only(tmp_path, frames, where):
    index = 0 if where == "first" else frames - 1
    face = FACES["lfw15" if frames % 2 else "astronaut"]
    truth = make_clip(tmp_path / "edge.mp4", frames, {index: (40 + 20 * frames, 60)}, face)
    assert_face_replaced_wherever_shown(tmp_path / "edge.mp4", tmp_path / "out.mp4", truth)


def test_face_in_last_two_frames(tmp_path):
    frames = 14  # the last full search is at 12: the face shows in 12 and 13, the last one moved
    truth = make_clip(tmp_path / "end.mp4", frames, {12: (60, 50), 13: (200, 140)}, FACES["lfw46"])
    assert_face_replaced_wherever_shown(tmp_path / "end.mp4", tmp_path / "out.mp4", truth)


def zigzag(frames: int, speed: int, size: tuple[int, int], face: np.ndarray, turn_every: int = 3) -> dict:
    """Places of a face moving `speed` px a frame, turning by 90-180 degrees every `turn_every` frames and
    bouncing off the frame's edges."""
    width, height = size
    fh, fw = face.shape[:2]
    rng = np.random.default_rng(7)
    x, y, angle = width / 2, height / 2, 0.0
    places = {}
    for i in range(frames):
        if i % turn_every == 0:
            angle += rng.uniform(np.pi / 2, np.pi)
        x, y = x + speed * np.cos(angle), y + speed * np.sin(angle)
        if not 0 <= x <= width - fw:
            angle, x = np.pi - angle, min(max(x, 0), width - fw)
        if not 0 <= y <= height - fh:
            angle, y = -angle, min(max(y, 0), height - fh)
        places[i] = (int(x), int(y))
    return places


@pytest.mark.parametrize("face", ["astronaut", "lfw46"])
def test_fast_face_changing_direction(tmp_path, face):
    size = (640, 360)
    places = zigzag(24, 90, size, FACES[face])
    truth = make_clip(tmp_path / "fast.mp4", 24, places, FACES[face], size=size, pan=0)
    assert_face_replaced_wherever_shown(tmp_path / "fast.mp4", tmp_path / "out.mp4", truth)


def test_small_face_flashing_in_a_large_frame(tmp_path):
    """A 36 px face on a 1280x720 panning frame for one frame, between two full searches: too small for the
    glimpse's scale (0.3x), found by searching what changed."""
    face = cv2.resize(FACES["astronaut"], (28, 36), interpolation=cv2.INTER_AREA)
    truth = make_clip(tmp_path / "small.mp4", 10, {EVERY + 1: (900, 400)}, face, size=(1280, 720), pan=3)
    assert_face_replaced_wherever_shown(tmp_path / "small.mp4", tmp_path / "out.mp4", truth)
