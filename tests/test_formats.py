"""Formats, orientation, metadata and hostile input, through protect() with real photos."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from photos import (ASTRONAUT_FACE, SECRET, astronaut, core, decode, encode, jpeg_markers, jpeg_with_metadata,
                    oriented_jpeg, outside_heads, png_chunk_types, png_with_metadata, webp_chunk_types)
from shield_server import formats
from shield_server.errors import TooLarge, UndecodableImage, UnsupportedImage
from shield_server.pipeline import ProtectOptions, protect

MAGENTA = (255, 0, 255)
PNG_MAGENTA = ProtectOptions(color=MAGENTA, format="png")


def near_magenta(pixels: np.ndarray) -> np.ndarray:
    r, g, b = (pixels[..., i].astype(int) for i in range(3))
    return (r > 200) & (b > 200) & (g < 60)


def face_covered(out: np.ndarray, box=ASTRONAUT_FACE, exact=True) -> float:
    region = out[core(box)]
    return float((region[..., :3] == MAGENTA).all(-1).mean() if exact else near_magenta(region).mean())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_redaction_covers_the_face_as_displayed(orientation):
    displayed = astronaut()[:384]  # not square, so a wrong rotation cannot go unnoticed
    data = oriented_jpeg(displayed, orientation)
    assert np.abs(np.array(ImageOps.exif_transpose(Image.open(io.BytesIO(data)))).astype(int)
                  - displayed).mean() < 8  # the test photo really displays upright
    result = protect(data, PNG_MAGENTA)
    out = decode(result.data)
    assert out.shape == displayed.shape
    assert face_covered(out) == 1.0
    assert (result.width, result.height) == (512, 384)


def test_jpeg_metadata_is_gone_from_the_output_bytes():
    result = protect(jpeg_with_metadata(astronaut(), orientation=1))
    assert result.mime_type == "image/jpeg"
    assert SECRET not in result.data and b"Exif" not in result.data and b"http://ns.adobe.com" not in result.data
    assert b"Photoshop" not in result.data
    assert result.data.count(b"\xff\xd8\xff") == 1  # no embedded thumbnail JPEG
    assert set(jpeg_markers(result.data)) <= {0xE0, 0xDB, 0xC0, 0xC2, 0xC4, 0xDD, 0xDA}  # no APPn but JFIF, no COM


def test_png_metadata_is_gone_from_the_output_bytes():
    result = protect(png_with_metadata(astronaut()))
    assert result.mime_type == "image/png"
    assert SECRET not in result.data
    assert set(png_chunk_types(result.data)) <= {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"}


def test_webp_output_has_no_metadata_chunks():
    result = protect(jpeg_with_metadata(astronaut()), ProtectOptions(format="webp"))
    assert result.mime_type == "image/webp" and SECRET not in result.data
    assert set(webp_chunk_types(result.data)) <= {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}


def test_icc_profile_is_applied_then_dropped():
    from PIL import ImageCms
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    result = protect(encode(astronaut(), "PNG", icc_profile=srgb), ProtectOptions(format="png"))
    assert b"iCCP" not in result.data
    keep = outside_heads((512, 512), [f.box for f in result.faces])
    assert np.abs(decode(result.data)[keep].astype(int) - astronaut()[keep]).max() <= 2


# input format -> (Pillow writer, expected output MIME)
ROUND_TRIPS = {
    "png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp"),
    "gif": ("GIF", "image/gif"), "bmp": ("BMP", "image/jpeg"), "tiff": ("TIFF", "image/jpeg"),
    "heif": ("HEIF", "image/jpeg"), "avif": ("AVIF", "image/jpeg"),
}


@pytest.mark.parametrize("fmt", ROUND_TRIPS)
def test_every_format_round_trips_protected(fmt):
    writer, mime = ROUND_TRIPS[fmt]
    data = encode(astronaut(), writer)
    assert formats.sniff(data) == fmt
    result = protect(data, ProtectOptions(color=MAGENTA))
    assert result.mime_type == mime
    assert formats.sniff(result.data) == mime.split("/")[1]
    out = decode(result.data)
    assert out.shape[:2] == (512, 512)
    assert face_covered(out, exact=False) > 0.97


def test_transparent_images_stay_png_and_redacted_pixels_become_opaque():
    photo = np.dstack([astronaut(), np.full((512, 512), 255, np.uint8)])
    photo[..., 3][core(ASTRONAUT_FACE)] = 0  # transparent, but the face is still in the RGB values
    photo[..., 3][:40, :40] = 0  # a transparent corner away from the face stays transparent
    for fmt, writer in (("png", "PNG"), ("tiff", "TIFF"), ("webp", "WEBP")):
        result = protect(encode(photo, writer, **({"lossless": True, "exact": True} if writer == "WEBP" else {})),
                         ProtectOptions(color=MAGENTA))
        out = decode(result.data)
        assert result.mime_type in ("image/png", "image/webp"), fmt
        assert out.shape[2] == 4, fmt
        face = out[core(ASTRONAUT_FACE)]
        assert (face[..., 3] == 255).all(), fmt
        assert near_magenta(face).mean() > 0.99, fmt
        assert (out[:40, :40, 3] == 0).all(), fmt


@pytest.mark.parametrize("mode,writer", [("L", "PNG"), ("LA", "PNG"), ("P", "PNG"), ("CMYK", "JPEG"),
                                         ("I;16", "PNG")])
def test_unusual_pixel_modes_are_protected(mode, writer):
    photo = Image.fromarray(astronaut())
    if mode == "I;16":
        data = encode(np.asarray(photo.convert("L"), dtype=np.uint16) * 257, writer)
    else:
        out = io.BytesIO()
        photo.convert(mode).save(out, writer)
        data = out.getvalue()
    assert Image.open(io.BytesIO(data)).mode.startswith(mode[0])
    result = protect(data, ProtectOptions(color=MAGENTA, format="png"))
    assert face_covered(decode(result.data)) == 1.0


def test_animated_gif_every_frame_is_protected():
    frames = [Image.fromarray(np.roll(astronaut(), shift, axis=1)) for shift in (0, 30, 60)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=120, loop=0)
    result = protect(out.getvalue(), ProtectOptions(color=MAGENTA))
    assert result.mime_type == "image/gif" and result.frames == 3
    animation = Image.open(io.BytesIO(result.data))
    assert animation.n_frames == 3
    for index, shift in enumerate((0, 30, 60)):
        animation.seek(index)
        x0, y0, x1, y1 = ASTRONAUT_FACE
        frame = np.array(animation.convert("RGB"))
        assert face_covered(frame, (x0 + shift, y0, x1 + shift, y1), exact=False) > 0.97, f"frame {index}"


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares width x height RGB pixels but carries almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + png_chunk(b"IEND", b""))


BAD_INPUTS = {
    "empty": (b"", UndecodableImage),
    "text": (b"hello, this is not a photo\n" * 10, UnsupportedImage),
    "svg": (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
            UnsupportedImage),
    "truncated_jpeg": (encode(astronaut(), "JPEG")[:3000], UndecodableImage),
    "png_header_40000x40000": (png_header(40000, 40000), TooLarge),
    "jpeg_magic_then_garbage": (b"\xff\xd8\xff" + b"\x00" * 500, UndecodableImage),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_gets_a_clear_error(name):
    data, error = BAD_INPUTS[name]
    with pytest.raises(error) as caught:
        protect(data)
    assert len(caught.value.message) > 10


def test_decompression_bomb_is_refused_before_decoding():
    out = io.BytesIO()
    Image.new("L", (10000, 6000)).save(out, "PNG")  # 60 MP in a few dozen kilobytes
    assert len(out.getvalue()) < 200_000
    with pytest.raises(TooLarge, match="MP"):
        protect(out.getvalue())


def test_byte_limit_is_enforced_before_anything_else():
    with pytest.raises(TooLarge):
        protect(b"\xff\xd8\xff" + bytes(2_000_000), ProtectOptions(max_bytes=1_000_000))
