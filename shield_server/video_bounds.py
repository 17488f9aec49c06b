"""Bounds on what a clip may cost, whatever the file says: which codecs are read, the size of every
decoded picture (not only the header's), how many frames an index may list, and what the protected
output may take on disk (docs/VIDEO.md, "Limits" and "Output size"). The memory ceiling of the process
that decodes is in video_sandbox.py.

Output: x264 at a constant quality (crf) spends what the pictures need, and noise fill over a large face,
or a source of pure noise, needs ~100 Mbit/s at 720p (a 140 kB, 10 s clip gave 115 MB). A bitrate
ceiling derived from the frame size (VBV: the rate over any BUFFER_S seconds stays under it) keeps every
clip's output under MAX_BITS_PER_PIXEL bits per pixel per frame at up to MAX_RATE_FPS frames per second;
ordinary clips stay under it and are encoded at the same quality as before.
"""

from shield_server.errors import TooLarge, UndecodableVideo, UnsupportedImage

ALLOWED_CODECS = {"h264": "H.264", "hevc": "HEVC", "vp8": "VP8", "vp9": "VP9", "av1": "AV1"}
MIN_SIDE = 16  # 1x1 or 2x2 pictures are no video a person shoots; the detector needs some pixels
MAX_BITS_PER_PIXEL = 0.2  # x264 at crf 20 spends ~0.05-0.15 on camera footage
MAX_RATE_FPS = 60  # clips at a higher frame rate share the bitrate of 60 frames per second
BUFFER_S = 2


def check_stream(stream, options, max_fps: float, measured_seconds: float | None = None) -> None:
    """The header's codec, size and index, before a picture is decoded. measured_seconds: the length read
    from the packets' timestamps where the header states none (a browser's MediaRecorder WebM)."""
    codec = stream.codec_context.codec.canonical_name  # "av1" whichever decoder (dav1d) reads it
    if codec not in ALLOWED_CODECS:
        raise UnsupportedImage(f"The video's pictures are {codec.upper()}; Photo Shield reads "
                               f"{', '.join(ALLOWED_CODECS.values())}.")
    width, height = stream.codec_context.width, stream.codec_context.height
    if width > 0 and height > 0:
        check_picture(width, height, None, options.max_pixels)
    if not stream.frames and not stream.duration and not stream.container.duration and not measured_seconds:
        raise UndecodableVideo("The video has no frame: its index lists none and it lasts 0 s.")
    if stream.frames > options.max_seconds * max_fps:
        raise TooLarge(f"The video's index lists {stream.frames} frames; the limit is "
                       f"{options.max_seconds / 60:.0f} minutes at {max_fps} frames per second.")


def check_picture(width: int, height: int, first: tuple[int, int] | None, max_pixels: int) -> None:
    """Every decoded picture: within the limits, and the size of the first one (the encoder's)."""
    if width * height > max_pixels:
        raise TooLarge(f"The video has frames of {width}x{height}; the limit is {max_pixels / 1e6:.1f} megapixels.")
    if min(width, height) < MIN_SIDE:
        raise UndecodableVideo(f"The video is {width}x{height} pixels; Photo Shield protects clips of at least "
                               f"{MIN_SIDE}x{MIN_SIDE}.")
    if first is not None and (width, height) != first:
        raise UndecodableVideo(f"The video changes its frame size from {first[0]}x{first[1]} to {width}x{height}; "
                               "Photo Shield protects clips of one size.")


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
