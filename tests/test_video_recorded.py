"""A clip recorded by a browser's MediaRecorder (WebM written live: no duration, and in Chromium no frame
rate either) is protected like any other: its timing is read from the packets' timestamps."""

import av
import numpy as np

from camera import camera_frame
from shield_server.video import VideoOptions, protect_video
from videos import decode_frames, magenta_share


def write_live_webm(path, frames: int = 20):
    """The astronaut in a VP8 WebM written as a live stream: no duration, no cues (as MediaRecorder writes)."""
    picture, face = camera_frame()
    rgb = np.asarray(picture)
    with av.open(str(path), "w", format="webm", options={"live": "1"}) as out:
        stream = out.add_stream("libvpx", rate=30)
        stream.width, stream.height, stream.pix_fmt = picture.width, picture.height, "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return face


def test_live_webm_without_duration_is_protected(tmp_path):
    source, target = tmp_path / "recorded.webm", tmp_path / "protected.mp4"
    face = write_live_webm(source)
    with av.open(str(source)) as clip:  # the fixture really lacks what the server used to need
        assert clip.duration is None and clip.streams.video[0].duration is None
    result = protect_video(source, target, VideoOptions(color=(255, 0, 255)))
    frames = decode_frames(target)
    assert result.frames == len(frames) == 20
    assert min(magenta_share(rgb, face) for rgb in frames) >= 0.95
