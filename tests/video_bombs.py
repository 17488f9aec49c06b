"""Tiny hostile clips, written here (MP4 boxes by hand, MKV with PyAV), for the limits tests:

    index_bomb(path)              # 1.4 kB MP4 whose sample table declares 89 million samples
    size_bomb(path, 8192, 4608)   # MP4 (H.264) whose header says 64x36 and whose third frame is 8192x4608
    mjpeg_bomb(path, 8192, 4608)  # MKV (MJPEG, a codec outside the list) whose header says 64x36, the same
    tiny_clip(path, 1, 1, frames) # a clip of width x height pixels (1x1, a single frame, ...)
    empty_clip(path)              # an MP4 whose video track has no frame
"""

import io
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def _box(kind: bytes, *payload: bytes) -> bytes:
    data = b"".join(payload)
    return struct.pack(">I4s", 8 + len(data), kind) + data


def _full_box(kind: bytes, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", flags), *payload)  # version 0


def _child(data: bytes, path: list[bytes]) -> bytes:
    """The whole box at `path` (e.g. [b"moov", b"trak"]) inside the boxes of `data`."""
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if kind == path[0]:
            box = data[offset:offset + size]
            if len(path) == 1:
                return box
            inner = box[8:]
            if kind == b"stsd":
                inner = inner[8:]
            return _child(inner, path[1:])
        offset += size
    raise KeyError(path)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _mp4(path: Path, stsd: bytes, samples: list[bytes], declared: int | None = None) -> None:
    """An MP4 of one video track (the sample description stsd) at 12 frames per second whose samples are
    `samples`, in one chunk; declared: the sample count its tables claim instead (each sample 1 byte)."""
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41")
    count = declared or len(samples)
    sizes = (struct.pack(">II", 1, declared) if declared
             else struct.pack(f">II{len(samples)}I", 0, len(samples), *map(len, samples)))
    duration = len(samples) * 1000 // 12
    stbl = _box(b"stbl", stsd,
                _full_box(b"stts", 0, struct.pack(">III", 1, count, 1)),
                _full_box(b"stsc", 0, struct.pack(">IIII", 1, 1, count, 1)),
                _full_box(b"stsz", 0, sizes),
                _full_box(b"stco", 0, struct.pack(">II", 1, len(ftyp) + 8)))
    minf = _box(b"minf", _full_box(b"vmhd", 1, b"\x00" * 8),
                _box(b"dinf", _full_box(b"dref", 0, struct.pack(">I", 1), _full_box(b"url ", 1))), stbl)
    mdia = _box(b"mdia", _full_box(b"mdhd", 0, struct.pack(">IIIIHH", 0, 0, 12, len(samples), 0x55C4, 0)),
                _full_box(b"hdlr", 0, b"\x00" * 4, b"vide", b"\x00" * 12, b"VideoHandler\x00"), minf)
    tkhd = _full_box(b"tkhd", 3, struct.pack(">IIIIIQhhhH", 0, 0, 1, 0, duration, 0, 0, 0, 0, 0), _MATRIX,
                     struct.pack(">II", 64 << 16, 36 << 16))
    mvhd = _full_box(b"mvhd", 0, struct.pack(">IIIIIH10s", 0, 0, 1000, duration, 0x10000, 0x100, b""),
                     _MATRIX, b"\x00" * 24, struct.pack(">I", 2))
    mdat = _box(b"mdat", *samples)
    Path(path).write_bytes(ftyp + mdat + _box(b"moov", mvhd, _box(b"trak", tkhd, mdia)))


def _small_h264() -> tuple[bytes, list[bytes]]:
    """(sample description, samples) of a real 2-frame 64x36 H.264 clip."""
    real = io.BytesIO()
    tiny_clip(real, 64, 36, 2, container="mp4")
    stsd = _child(real.getvalue(), [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
    real.seek(0)
    with av.open(real) as clip:
        samples = [bytes(packet) for packet in clip.demux(video=0) if packet.size]
    return stsd, samples


def empty_clip(path: Path) -> None:
    """An MP4 whose H.264 track (64x36) has no sample at all."""
    stsd, _ = _small_h264()
    _mp4(path, stsd, [])


def index_bomb(path: Path, samples: int = 89_000_000) -> None:
    """A real H.264 sample description (64x36) with a sample table of `samples` 1-byte samples: the file
    stays small (each table holds one entry) while the demuxer's index for it needs gigabytes."""
    stsd, real = _small_h264()
    _mp4(path, stsd, real[:1], declared=samples)


def _encoded(codec: str, width: int, height: int, frames: int, options: dict | None = None) -> list:
    """The packets of `frames` flat grey pictures encoded at width x height."""
    context = av.CodecContext.create(codec, "w")
    context.width, context.height = width, height
    context.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    context.time_base = Fraction(1, 12)
    context.options = options or {}
    picture = np.full((height, width, 3), 120, np.uint8)
    packets = []
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format=context.pix_fmt)
        frame.pts = i
        packets += context.encode(frame)
    packets += context.encode(None)
    return packets


def _mux(path: Path, codec: str, container: str, payloads: list[bytes]) -> None:
    """The payloads as the frames of one stream whose header says 64x36, 12 frames per second."""
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=12)
        stream.width, stream.height = 64, 36
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        for i, payload in enumerate(payloads):
            packet = av.Packet(payload)
            packet.stream = stream
            packet.pts = packet.dts = i
            packet.time_base = Fraction(1, 12)
            packet.is_keyframe = True
            out.mux(packet)


def size_bomb(path: Path, width: int, height: int) -> None:
    """MP4, H.264 (a codec on the list): two 64x36 frames, as the header says, then a keyframe of width x
    height that carries its own sequence header (in-band SPS/PPS: a stream may change size)."""
    stsd, small = _small_h264()
    big = bytes(_encoded("libx264", width, height, 1, {"preset": "ultrafast", "repeat-headers": "1"})[0])
    units = [u.lstrip(b"\x00") for u in big.split(b"\x00\x00\x01") if u.strip(b"\x00")]  # Annex B
    _mp4(path, stsd, small + [b"".join(struct.pack(">I", len(u)) + u for u in units)])  # to 4-byte lengths


def mjpeg_bomb(path: Path, width: int, height: int) -> None:
    """MKV, MJPEG (a codec outside the list): two 64x36 pictures, then one of width x height."""
    payloads = [bytes(p) for p in _encoded("mjpeg", 64, 36, 2) + _encoded("mjpeg", width, height, 1)]
    _mux(path, "mjpeg", "matroska", payloads)


def tiny_clip(path, width: int, height: int, frames: int, container: str = "mp4") -> None:
    """A clip of `frames` grey frames of width x height."""
    target = path if isinstance(path, io.IOBase) else str(path)
    with av.open(target, "w", format=container) as out:
        stream = out.add_stream("libx264", rate=12)
        odd = width % 2 or height % 2
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p" if odd else "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 120, np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
