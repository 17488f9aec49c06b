"""Real test photos, from scikit-image's bundled data: the astronaut portrait and LFW face crops."""

import functools
import io
import os
import struct

import numpy as np
import skimage
from PIL import Image, PngImagePlugin

DATA = os.path.join(os.path.dirname(skimage.__file__), "data")

# The astronaut's face (brow to chin, cheek to cheek) in the 512x512 photo, checked by eye.
ASTRONAUT_FACE = (180, 75, 270, 170)


@functools.cache
def _astronaut() -> np.ndarray:
    return np.array(Image.open(os.path.join(DATA, "astronaut.png")).convert("RGB"))


def astronaut() -> np.ndarray:
    return _astronaut().copy()


@functools.cache
def _lfw_faces() -> np.ndarray:
    return np.load(os.path.join(DATA, "lfw_subset.npy"))  # 200 x 25 x 25 floats: 100 faces, 100 non-faces


def lfw_face(index: int, size: int) -> np.ndarray:
    """One LFW face crop (grayscale, tightly cropped), as RGB at size x size pixels."""
    gray = (np.clip(_lfw_faces()[index], 0, 1) * 255).astype(np.uint8)
    return np.array(Image.fromarray(gray).resize((size, size), Image.BICUBIC).convert("RGB"))


def core(box: tuple[int, int, int, int]) -> tuple[slice, slice]:
    """The eyes-to-mouth part of a face box (the reference scorer's definition): rows, columns."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    return slice(int(y0 + 0.15 * h), int(y0 + 0.85 * h)), slice(int(x0 + 0.2 * w), int(x0 + 0.8 * w))


def outside_heads(shape, boxes, margin=None) -> np.ndarray:
    """True where no reported face's grown head box reaches: pixels protect() must leave untouched."""
    from shield_server import redact

    margin = redact.DEFAULT_MARGIN if margin is None else margin
    keep = np.ones(shape[:2], bool)
    for box in boxes:
        x0, y0, x1, y1 = redact.head_box(box, margin, shape[1], shape[0])
        keep[y0:y1, x0:x1] = False
    return keep


def encode(pixels: np.ndarray, fmt: str, **save_args) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt, **save_args)
    return out.getvalue()


def decode(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    return np.array(image.convert("RGBA" if image.mode in ("RGBA", "LA", "PA") else "RGB"))


def composed_scene(sizes=(48, 80, 128), canvas=(480, 900)) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """LFW faces of known sizes pasted at known places on a gently textured background."""
    rng = np.random.default_rng(7)
    height, width = canvas
    scene = np.full((height, width, 3), 150, np.uint8)
    scene += rng.integers(0, 12, scene.shape, dtype=np.uint8)
    boxes, x = [], 40
    for i, size in enumerate(sizes):
        y = 60 + (i % 2) * 140
        scene[y:y + size, x:x + size] = lfw_face(i * 7, size)
        boxes.append((x, y, x + size, y + size))
        x += size + 140
    return scene, boxes


SECRET = b"SECRET-48.8584N-2.2945E"  # planted in every kind of metadata; must never reach an output


def _tiff_exif(orientation: int, thumbnail: bytes) -> bytes:
    """A little-endian EXIF block: IFD0 (orientation, GPS pointer) -> IFD1 (an embedded JPEG thumbnail),
    and a GPS IFD with a latitude. Built by hand because Pillow cannot write EXIF thumbnails."""
    def ifd(entries, next_offset):
        body = struct.pack("<H", len(entries))
        for tag, kind, count, value in entries:
            body += struct.pack("<HHI", tag, kind, count) + value
        return body + struct.pack("<I", next_offset)

    gps_at, latitude_at, ifd1_at = 38, 68, 92
    thumb_at = ifd1_at + 30
    return (b"II*\x00" + struct.pack("<I", 8)
            + ifd([(0x0112, 3, 1, struct.pack("<HH", orientation, 0)), (0x8825, 4, 1, struct.pack("<I", gps_at))],
                  ifd1_at)
            + ifd([(1, 2, 2, b"N\x00\x00\x00"), (2, 5, 3, struct.pack("<I", latitude_at))], 0)
            + struct.pack("<6I", 48, 1, 51, 1, 2400, 100)
            + ifd([(0x0201, 4, 1, struct.pack("<I", thumb_at)), (0x0202, 4, 1, struct.pack("<I", len(thumbnail)))], 0)
            + thumbnail)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg_with_metadata(pixels: np.ndarray, orientation: int = 1) -> bytes:
    """A JPEG carrying EXIF (orientation, GPS, thumbnail of the photo), XMP, IPTC and a comment."""
    thumbnail = encode(np.array(Image.fromarray(pixels).resize((96, 96))), "JPEG", quality=80)
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><rdf:Description>" + SECRET + b"</rdf:Description></x:xmpmeta>"
    iptc = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00" + struct.pack(">H", len(SECRET) + 5) + b"\x1c\x02\x5c" + \
        struct.pack(">H", len(SECRET)) + SECRET
    extra = (_segment(0xE1, b"Exif\x00\x00" + _tiff_exif(orientation, thumbnail)) + _segment(0xE1, xmp)
             + _segment(0xED, iptc) + _segment(0xFE, b"comment " + SECRET))
    plain = encode(pixels, "JPEG", quality=95)
    return plain[:2] + extra + plain[2:]


# For each EXIF orientation, the transposition that stores an upright photo so that it displays upright.
STORE_TRANSPOSE = {1: None, 2: Image.FLIP_LEFT_RIGHT, 3: Image.ROTATE_180, 4: Image.FLIP_TOP_BOTTOM,
                   5: Image.TRANSPOSE, 6: Image.ROTATE_90, 7: Image.TRANSVERSE, 8: Image.ROTATE_270}


def oriented_jpeg(displayed: np.ndarray, orientation: int) -> bytes:
    """A JPEG (with metadata) whose stored pixels, turned by its EXIF orientation, show `displayed`."""
    stored = Image.fromarray(displayed)
    if STORE_TRANSPOSE[orientation] is not None:
        stored = stored.transpose(STORE_TRANSPOSE[orientation])
    return jpeg_with_metadata(np.array(stored), orientation)


def png_with_metadata(pixels: np.ndarray) -> bytes:
    """A PNG carrying text chunks (tEXt, zTXt, iTXt with XMP) and an eXIf chunk."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SECRET.decode())
    info.add_text("Location", SECRET.decode(), zip=True)
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>" + SECRET.decode() + "</x:xmpmeta>")
    exif = Image.Exif()
    exif[0x010E] = SECRET.decode()  # ImageDescription
    return encode(pixels, "PNG", pnginfo=info, exif=exif.tobytes())


def png_chunk_types(data: bytes) -> list[bytes]:
    types, at = [], 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        types.append(kind)
        at += 12 + length
    return types


def jpeg_markers(data: bytes) -> list[int]:
    """The markers before the image data (start of scan): where metadata segments would be."""
    markers, at = [], 2
    while at < len(data):
        marker = data[at + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        at += 2 + struct.unpack(">H", data[at + 2:at + 4])[0]
    return markers


def webp_chunk_types(data: bytes) -> list[bytes]:
    types, at = [], 12
    while at + 8 <= len(data):
        kind, length = struct.unpack("<4sI", data[at:at + 8])
        types.append(kind)
        at += 8 + length + (length & 1)
    return types


def multi_image_still(writer: str, primary: np.ndarray, second: np.ndarray, orientation: int = 1) -> bytes:
    """A still with a second picture (MPO/MPF JPEG, two-page TIFF, HEIC with two images), written by Pillow /
    pillow-heif; `orientation` goes into the EXIF of every picture (for HEIC: into its irot box, which is what
    HEIF viewers apply)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif[0x0112] = orientation
    pictures = [Image.fromarray(primary), Image.fromarray(second)]
    for picture in pictures:
        picture.info["exif"] = exif.tobytes()  # pillow-heif turns this into the picture's rotation box
    out = io.BytesIO()
    pictures[0].save(out, writer, save_all=True, append_images=pictures[1:], exif=exif.tobytes())
    return out.getvalue()


# Hostile files built from headers: they declare far more pixels than they carry, so they stay small.

def gif_declaring(later_frames: list[tuple[int, int]]) -> bytes:
    """A real 64x64 GIF (the astronaut) followed by frames that declare the given sizes and carry one pixel of
    LZW data each (Pillow grows the canvas to hold a frame bigger than the first)."""
    out = encode(np.array(Image.fromarray(astronaut()).resize((64, 64))), "GIF")
    assert out.endswith(b";")
    out = out[:-1]
    for width, height in later_frames:
        out += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: 100 ms
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"  # clear, 0, end
    return out + b";"


def tiff_declaring(pages: list[tuple[int, int]]) -> bytes:
    """A little-endian grayscale TIFF with one uncompressed strip per page: the first page is real (a grey
    ramp), the others declare their size and carry 16 bytes."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    link = 4  # where the offset of the next IFD goes
    for index, (width, height) in enumerate(pages):
        pixels = bytes(i % 256 for i in range(width * height)) if index == 0 else bytes(16)
        strip_at = len(out)
        out += pixels
        if len(out) % 2:
            out += b"\x00"
        ifd_at = len(out)
        struct.pack_into("<I", out, link, ifd_at)
        entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, strip_at),
                   (277, 3, 1), (278, 4, height), (279, 4, len(pixels))]
        out += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            out += struct.pack("<HHI", tag, kind, 1) + struct.pack("<I" if kind == 4 else "<HH", value,
                                                                     *([] if kind == 4 else [0]))
        link = len(out)
        out += b"\x00\x00\x00\x00"
    return bytes(out)


def heic_declaring_second_image(width: int, height: int) -> bytes:
    """A real two-image HEIC (the astronaut, then a small grey picture) whose second image's `ispe` box is
    rewritten to declare width x height."""
    second = np.full((64, 80, 3), 128, np.uint8)
    data = bytearray(multi_image_still("HEIF", astronaut()[::4, ::4], second))
    at = data.find(b"ispe" + bytes(4) + struct.pack(">II", 80, 64))
    assert at > 0, "the second image's ispe box was not found"
    struct.pack_into(">II", data, at + 8, width, height)
    return bytes(data)


def mpo_declaring_second_picture(width: int, height: int) -> bytes:
    """A real MPO (the astronaut, then a small grey picture) whose second picture's frame header is rewritten
    to declare width x height."""
    data = bytearray(multi_image_still("MPO", astronaut()[::4, ::4], np.full((64, 80, 3), 128, np.uint8)))
    sof = b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 64, 80)
    at = data.find(sof)
    assert at > 0 and data.count(sof) == 1, "the second picture's frame header was not found"
    struct.pack_into(">HH", data, at + 5, height, width)
    return bytes(data)
def missed_face_scene() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The astronaut (a face the detector finds) beside a second copy of his face, 100 px wide, with eyes, nose
    and mouth painted over in skin colour: a face the shipped detector misses. Returns (800x512 RGB, its box)."""
    crop = Image.fromarray(_astronaut()[50:185, 165:285]).resize((100, 112))
    face = np.array(crop)
    skin = face[22, 50].copy()
    face[28:95, 10:90] = skin
    scene = np.full((512, 800, 3), (90, 140, 90), np.uint8)
    scene[:, :512] = _astronaut()
    scene[300:412, 620:720] = face
    return scene, (620, 300, 720, 412)


def small_face_scene(width: int, height: int, astronaut_at: int, small_face: tuple[int, int, int, int]) -> np.ndarray:
    """A large photo: a gradient, the astronaut at (astronaut_at, astronaut_at) (a face the detector finds) and a
    copy of his face shrunk to `small_face` (a few pixels: one the detector misses at this photo size)."""
    scene = np.empty((height, width, 3), np.uint8)
    scene[..., 0] = np.linspace(60, 200, width, dtype=np.uint8)[None, :]
    scene[..., 1] = np.linspace(90, 170, height, dtype=np.uint8)[:, None]
    scene[..., 2] = 120
    scene[astronaut_at:astronaut_at + 512, astronaut_at:astronaut_at + 512] = _astronaut()
    x0, y0, x1, y1 = small_face
    scene[y0:y1, x0:x1] = np.array(Image.fromarray(_astronaut()[50:185, 165:285]).resize((x1 - x0, y1 - y0)))
    return scene
