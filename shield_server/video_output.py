"""What leaves: each frame's heads filled (redact.py's fills, checked) and the frames and audio encoded into a
fresh MP4 (H.264 + AAC) that carries none of the source's metadata (docs/VIDEO.md).

    cover(rgb, heads, options)                       # fill the head ellipses in place, then check them
    writer = ClipWriter(output, clip.time_base, clip.rate, clip.audio)  # audio: {"channels", "sample_rate"}
    writer.picture(picture); writer.audio(frame); writer.close()
"""

import av
import numpy as np

from shield_server import redact, video_bounds
from shield_server.errors import ProtectionFailed, UndecodableVideo

VIDEO_CRF = "20"
VIDEO_PRESET = "veryfast"
AUDIO_BITRATE = 128_000
MAX_EARLY_AUDIO_FRAMES = 500


def cover(rgb: np.ndarray, heads: list[tuple], options) -> None:
    """Replace the head ellipse of every face box in the frame, in place; fail closed if any pixel is left."""
    height, width = rgb.shape[:2]
    mask = redact.head_mask(heads, options.margin, width, height)
    values = redact.replacement(mask, options.fill, options.color, options.sticker,
                                [redact.head_ellipse_box(box, options.margin) for box in heads])
    redact.fill_pixels(rgb, mask, values)
    if mask.any() and not (rgb[mask] == values).all():
        raise ProtectionFailed("Redaction check failed: a face region was not fully replaced.")


class ClipWriter:
    """The output container's H.264 stream (opened with the first picture, whose size is known only once it
    is decoded and turned upright) and AAC stream; audio that comes before it waits."""

    def __init__(self, output, time_base, rate, source_audio: dict | None):
        self.output, self.time_base, self.rate, self.source_audio = output, time_base, rate, source_audio
        self.video_out = self.audio_out = self.resampler = None
        self.early_audio = []
        self.written = 0

    def _open(self, width: int, height: int) -> None:
        video_out = self.output.add_stream("libx264", rate=self.rate)
        video_out.width, video_out.height, video_out.pix_fmt = width, height, "yuv420p"
        video_out.time_base = self.time_base
        video_out.codec_context.time_base = self.time_base
        video_out.options = {"crf": VIDEO_CRF, "preset": VIDEO_PRESET,
                             **video_bounds.encoder_ceiling(width, height, self.rate)}
        video_out.thread_type = "AUTO"
        self.video_out = video_out
        if self.source_audio is not None:
            layout = "mono" if self.source_audio["channels"] == 1 else "stereo"
            rate = self.source_audio["sample_rate"]
            self.audio_out = self.output.add_stream("aac", rate=rate, layout=layout)
            self.audio_out.bit_rate = AUDIO_BITRATE
            self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)

    def start(self, width: int, height: int) -> None:
        """Open the output streams for pictures of this size (once, with the first decoded picture)."""
        if self.video_out is None:
            self._open(width, height)

    def picture(self, picture) -> None:
        frame = av.VideoFrame.from_ndarray(picture.rgb, format="rgb24")
        frame.pts, frame.time_base = picture.pts, self.time_base
        self._encode(self.video_out, frame)
        self.written += 1

    def audio(self, frame) -> None:
        if self.audio_out is None:  # the output streams open with the first video frame (its rotation)
            if len(self.early_audio) > MAX_EARLY_AUDIO_FRAMES:
                raise UndecodableVideo("The video's audio runs far ahead of its pictures; try without audio.")
            self.early_audio.append(frame)
            return
        for early in self.early_audio:
            self._encode_audio(early)
        self.early_audio.clear()
        self._encode_audio(frame)

    def _encode_audio(self, frame) -> None:
        for resampled in self.resampler.resample(frame):
            self._encode(self.audio_out, resampled)

    def _encode(self, stream, frame) -> None:
        try:
            for packet in stream.encode(frame):
                self.output.mux(packet)
        except av.error.FFmpegError as exc:
            raise ProtectionFailed(f"The protected video could not be written ({type(exc).__name__}).") from None

    def close(self) -> None:
        """Flush the encoders (audio first, then the pictures x264 still holds)."""
        if self.audio_out is not None:
            for early in self.early_audio:
                self._encode_audio(early)
            self._encode_audio(None)
            self._encode(self.audio_out, None)
        self._encode(self.video_out, None)
