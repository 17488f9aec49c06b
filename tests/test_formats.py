"""Formats, orientation, metadata and hostile input, through protect() with real photos."""

import io
import json
import os
import subprocess
import sys
import struct
import zlib

import numpy as np
import pytest
import pillow_heif
from PIL import Image, ImageFile, ImageOps

from photos import (ASTRONAUT_FACE, SECRET, STORE_TRANSPOSE, astronaut, core, decode, encode, gif_declaring,
                    heic_declaring_second_image, jpeg_markers, jpeg_with_metadata, mpo_declaring_second_picture,
                    multi_image_still, oriented_jpeg, outside_heads, png_chunk_types, png_with_metadata,
                    tiff_declaring, webp_chunk_types)
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


ANIMATION_WRITERS = {"gif": ("GIF", {}), "png": ("PNG", {}), "webp": ("WEBP", {"lossless": True}), "avif": ("AVIF", {})}
KEPT_AS = {"avif": "webp"}  # browsers show the others as they are
SHIFTS = (0, 30, 60, 90, 120)


def animation(writer: str, frames: list[np.ndarray], **save_args) -> bytes:
    pictures = [Image.fromarray(f) for f in frames]
    out = io.BytesIO()
    pictures[0].save(out, writer, save_all=True, append_images=pictures[1:], duration=120, loop=0, **save_args)
    return out.getvalue()


def frames_of(data: bytes) -> list[np.ndarray]:
    image = Image.open(io.BytesIO(data))
    frames = []
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        frames.append(np.array(image.convert("RGB")))
    return frames


def assert_each_frame_protected(frames: list[np.ndarray], shifts=SHIFTS):
    assert len(frames) == len(shifts)
    x0, y0, x1, y1 = ASTRONAUT_FACE
    for index, (frame, shift) in enumerate(zip(frames, shifts)):
        assert face_covered(frame, (x0 + shift, y0, x1 + shift, y1), exact=False) > 0.97, f"frame {index}"


@pytest.mark.parametrize("fmt", ANIMATION_WRITERS)
def test_animation_keeps_and_protects_every_frame(fmt):
    writer, save_args = ANIMATION_WRITERS[fmt]
    data = animation(writer, [np.roll(astronaut(), shift, axis=1) for shift in SHIFTS], **save_args)
    assert len(frames_of(data)) == 5
    result = protect(data, ProtectOptions(color=MAGENTA))
    assert result.mime_type == f"image/{KEPT_AS.get(fmt, fmt)}" and result.frames == 5 and result.dropped == 0
    assert_each_frame_protected(frames_of(result.data))
    as_webp = protect(data, ProtectOptions(color=MAGENTA, format="webp"))
    assert as_webp.mime_type == "image/webp" and as_webp.frames == 5
    assert_each_frame_protected(frames_of(as_webp.data))


def test_animation_written_as_jpeg_keeps_its_first_frame_and_says_so():
    data = animation("PNG", [np.roll(astronaut(), shift, axis=1) for shift in SHIFTS])
    result = protect(data, ProtectOptions(color=MAGENTA, format="jpeg"))
    assert result.mime_type == "image/jpeg" and result.frames == 1
    assert result.dropped == 4 and result.report()["dropped_images"] == 4
    assert_each_frame_protected(frames_of(result.data), SHIFTS[:1])


@pytest.mark.parametrize("fmt", ["webp", "png"])
def test_animation_orientation_is_applied_to_every_frame(fmt):
    displayed = [np.roll(astronaut()[:384], shift, axis=1) for shift in SHIFTS]
    stored = [np.array(Image.fromarray(f).transpose(STORE_TRANSPOSE[6])) for f in displayed]
    exif = Image.Exif()
    exif[0x0112] = 6
    writer, save_args = ANIMATION_WRITERS[fmt]
    data = animation(writer, stored, exif=exif.tobytes(), **save_args)
    assert Image.open(io.BytesIO(data)).getexif().get(0x0112) == 6
    result = protect(data, ProtectOptions(color=MAGENTA))
    frames = frames_of(result.data)
    assert all(frame.shape == (384, 512, 3) for frame in frames)
    assert_each_frame_protected(frames)


# A still with extra pictures: MPO (Pillow's MPF writer), a two-page TIFF, a HEIC with two images, each
# stored sideways with the orientation that turns it upright for the viewer.
STILLS = {"mpo-orientation-6": ("MPO", 6), "mpo-orientation-8": ("MPO", 8), "tiff-orientation-6": ("TIFF", 6),
          "heic-rotated": ("HEIF", 6)}


def still_with_two_faces(name: str) -> bytes:
    writer, orientation = STILLS[name]
    displayed = astronaut()[:384]  # not square: a picture left sideways cannot go unnoticed
    stored = Image.fromarray(displayed)
    if STORE_TRANSPOSE[orientation] is not None:
        stored = stored.transpose(STORE_TRANSPOSE[orientation])
    second = np.array(Image.fromarray(astronaut()).resize((256, 256)))  # a face too, which must not leak
    return multi_image_still(writer, np.array(stored), second, orientation)


@pytest.mark.parametrize("name", STILLS)
def test_still_with_several_pictures_becomes_its_primary_picture_upright_and_protected(name):
    data = still_with_two_faces(name)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    result = protect(data, ProtectOptions(color=MAGENTA))
    assert result.mime_type == "image/jpeg" and result.frames == 1
    assert result.dropped == 1 and result.report()["dropped_images"] == 1
    assert result.data.count(b"\xff\xd8\xff") == 1  # one picture, no MPF second image
    out = decode(result.data)
    assert out.shape == (384, 512, 3)  # upright, as the viewer sees the primary picture
    assert face_covered(out, exact=False) > 0.97


@pytest.mark.parametrize("name", STILLS)
def test_still_with_several_pictures_written_as_webp_is_one_picture(name):
    result = protect(still_with_two_faces(name), ProtectOptions(color=MAGENTA, format="webp"))
    frames = frames_of(result.data)
    assert result.mime_type == "image/webp" and result.frames == 1 and result.dropped == 1
    assert len(frames) == 1 and not Image.open(io.BytesIO(result.data)).is_animated
    assert frames[0].shape == (384, 512, 3)
    assert face_covered(frames[0], exact=False) > 0.97


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


def apng_declaring(width: int, height: int, frames: int) -> bytes:
    """A PNG header whose acTL chunk announces `frames` animation frames of width x height."""
    plain = png_header(width, height)
    return plain[:33] + png_chunk(b"acTL", struct.pack(">II", frames, 0)) + plain[33:]


small_frames = [np.roll(astronaut(), shift, axis=1)[::2, ::2] for shift in (0, 30, 60, 90, 120)]  # 5 x 0.07 MP
# Each file declares more pixels than the limit only in a frame, page or picture after the first.
LATER_BOMBS = {
    "gif_frame_2_of_8000x8000": (lambda: gif_declaring([(8000, 8000)]), {}),
    "gif_frame_2_of_16000x16000": (lambda: gif_declaring([(16000, 16000)]), {}),
    "gif_frames_of_6000x6000_together": (lambda: gif_declaring([(6000, 6000), (6000, 6000)]), {}),
    "tiff_page_2_of_8000x8000": (lambda: tiff_declaring([(64, 48), (8000, 8000)]), {}),
    "tiff_page_2_of_60000x60000": (lambda: tiff_declaring([(64, 48), (60000, 60000)]), {}),
    "heic_second_image_of_64_mp": (lambda: heic_declaring_second_image(8000, 8000), {}),
    "mpo_second_picture_of_64_mp": (lambda: mpo_declaring_second_picture(8000, 8000), {}),
    "apng_frames_together": (lambda: animation("PNG", small_frames), {"max_pixels": 300_000}),
    "apng_announcing_a_million_frames": (lambda: apng_declaring(64, 64, 1_000_000), {}),
    "webp_frames_together": (lambda: animation("WEBP", small_frames), {"max_pixels": 300_000}),
}


@pytest.mark.parametrize("name", LATER_BOMBS)
def test_every_frame_page_and_picture_is_measured_before_any_pixel_is_decoded(name, monkeypatch):
    make, limits = LATER_BOMBS[name]
    data = make()
    assert len(data) < 1_000_000
    first = Image.open(io.BytesIO(data))
    assert first.size[0] * first.size[1] <= limits.get("max_pixels", formats.DEFAULT_MAX_PIXELS)

    def no_decoding(*args, **kwargs):
        raise AssertionError("pixels were decoded before the file was measured")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(pillow_heif.as_plugin.HeifImageFile, "load", no_decoding)
    with pytest.raises(TooLarge) as refused:
        formats.decode(data, **limits)
    assert "limit" in refused.value.message or "too many" in refused.value.message


def test_files_with_small_later_frames_pages_and_pictures_are_accepted():
    # The bombs above, with sizes under the limit: they are refused for their size, not their shape.
    assert len(formats.decode(gif_declaring([(1, 1)])).frames) == 2
    assert formats.decode(tiff_declaring([(64, 48), (8, 8)])).dropped == 1
    assert formats.decode(heic_declaring_second_image(80, 64)).dropped == 1
    assert formats.decode(mpo_declaring_second_picture(80, 64)).dropped == 1
    assert len(formats.decode(animation("PNG", small_frames), max_pixels=400_000).frames) == 5


def test_pillows_own_bomb_guard_stays_on():
    assert Image.MAX_IMAGE_PIXELS is not None
    with pytest.raises(TooLarge):  # past the caller's limit, Pillow refuses what it would have to allocate
        formats.decode(png_header(20000, 20000), max_pixels=10**10)


@pytest.mark.parametrize("data", [b"\xff\xd8\xff" + b"\x00" * 500, b"\x89PNG\r\n\x1a\n" + b"\x00" * 100,
                                  b"GIF89a" + b"\x00" * 20, b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 40,
                                  b"II*\x00" + b"\xff" * 40, encode(astronaut(), "JPEG")[:3000]])
def test_error_messages_name_no_memory_address(data):
    with pytest.raises((UndecodableImage, TooLarge)) as caught:
        protect(data)
    message = caught.value.message
    assert "0x" not in message and " at " not in message and "<" not in message, message
    assert len(message) > 20


# In a fresh process: decode the photo named on the command line, print [peak RSS growth, array bytes].
_DECODE_PEAK = """
import json, sys
from shield_server import formats
data = open(sys.argv[1], "rb").read()
def status(key):
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(key))
open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM) to the current RSS
before = status("VmRSS")
pixels = formats.decode(data).frames[0]
print(json.dumps([status("VmHWM") - before, pixels.nbytes]))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="peak memory is read from Linux's /proc")
@pytest.mark.parametrize("orientation", [1, 6])
def test_a_large_photo_is_decoded_without_extra_full_size_copies(tmp_path, orientation):
    """Decoding holds Pillow's picture (4 bytes a pixel) and the array (3), plus one turned picture for a
    rotated photo: at most 3.2x the array. Orientation, colour conversion and numpy's own conversion used
    to add a whole-photo copy each (4.7x on a 12 MP photo), all of it on top of the server's peak."""
    rng = np.random.default_rng(orientation)
    stored = np.repeat(rng.integers(0, 256, (1000, 750, 3), dtype=np.uint8), 2, axis=1)  # 1500 x 1000 stored
    stored = np.repeat(np.repeat(stored, 2, axis=0), 2, axis=1)  # 3000 x 2000: 6 MP
    photo = tmp_path / "large.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(photo, quality=85, exif=exif.tobytes())
    run = subprocess.run([sys.executable, "-c", _DECODE_PEAK, str(photo)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    growth, array_bytes = json.loads(run.stdout)
    assert array_bytes == 6_000_000 * 3
    assert growth < 3.2 * array_bytes, f"decoding took {growth / array_bytes:.1f}x the array's size"
