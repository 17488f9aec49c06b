"""Bounds on what a protected clip may cost on disk, whatever is in its pictures.

x264 at a constant quality (crf) spends what the pictures need: noise fill over a large face, or a source
of pure noise, needs ~100 Mbit/s at 720p (a 140 kB, 10 s clip gave 115 MB). A bitrate ceiling derived
from the frame size (VBV: the rate over any BUFFER_S seconds stays under it) keeps every clip's output
under MAX_BITS_PER_PIXEL bits per pixel per frame at up to MAX_RATE_FPS frames per second, whatever
its content; ordinary clips stay well under it and are encoded at the same quality as before.
"""

MAX_BITS_PER_PIXEL = 0.2  # x264 at crf 20 spends ~0.05-0.15 on camera footage
MAX_RATE_FPS = 60  # clips at a higher frame rate share the bitrate of 60 frames per second
BUFFER_S = 2


def max_video_bitrate(width: int, height: int, fps: float) -> int:
    """The encoder's bitrate ceiling in bits per second: 720p at 30 fps -> 5.5 Mbit/s (41 MB a minute)."""
    return int(width * height * min(float(fps), MAX_RATE_FPS) * MAX_BITS_PER_PIXEL)


def encoder_ceiling(width: int, height: int, fps: float) -> dict:
    """libx264 options that hold the video stream to max_video_bitrate (capped crf)."""
    rate = max_video_bitrate(width, height, fps)
    return {"maxrate": str(rate), "bufsize": str(rate * BUFFER_S)}


def max_output_bytes(width: int, height: int, fps: float, seconds: float, audio_bitrate: int) -> int:
    """What a protected clip of this size may take at most: its video at the ceiling (plus one buffer's
    worth at the start), its audio, and the container's header and index (~12 bytes a frame, 16 kB)."""
    video = max_video_bitrate(width, height, fps) * (seconds + BUFFER_S) / 8
    return int(video + audio_bitrate * seconds / 8 + 12 * fps * seconds + 16384)
