"""Every image format in one place: sniff by content, refuse bombs before decoding, decode to what a viewer
sees (EXIF orientation applied, sRGB, 8-bit), and encode with no metadata at all.

Decoded frames are numpy arrays: HxWx3 (RGB) or HxWx4 (RGBA) uint8.

A file with several images is either an animation (GIF, APNG, animated WebP, AVIF sequence: every frame is
kept) or a still with extra pictures (MPO/MPF JPEG, multi-page TIFF, HEIC with several images): only its
primary image is decoded and written; the others are counted in `DecodedImage.dropped`.
"""

import io
import re
import struct
from dataclasses import dataclass, field

import numpy as np
import pillow_heif
from PIL import Image, ImageCms, ImageOps, ImageSequence

from shield_server.errors import BadOptions, ShieldError, TooLarge, UndecodableImage, UnsupportedImage

pillow_heif.register_heif_opener()

DEFAULT_MAX_BYTES = 40_000_000
DEFAULT_MAX_PIXELS = 50_000_000
MAX_FRAMES = 500
BAND_BYTES = 1 << 20  # rows copied at a time from a decoded picture into its array

# check_limits() refuses oversized images from their headers, with the caller's limit and a clear message,
# before any pixel is decoded. Pillow's own guard (Image.MAX_IMAGE_PIXELS, left at its default) stays on
# as a second line: it refuses images over twice that (~179 MP) wherever Pillow meets one.
ANIMATION_FORMATS = {"gif", "png", "webp", "avif"}  # several frames are an animation; elsewhere, extra pictures

HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
AVIF_BRANDS = {b"avif", b"avis"}

# format name -> (Pillow format id, MIME type, file extension)
OUTPUT_FORMATS = {
    "jpeg": ("JPEG", "image/jpeg", "jpg"),
    "png": ("PNG", "image/png", "png"),
    "webp": ("WEBP", "image/webp", "webp"),
    "gif": ("GIF", "image/gif", "gif"),
}
# Formats browsers display are kept; the others become JPEG, or PNG when they carry transparency.
KEPT_FORMATS = {"jpeg", "png", "webp", "gif"}
ANIMATED_OUTPUTS = {"gif", "webp", "png"}  # PNG as APNG


@dataclass
class DecodedImage:
    frames: list[np.ndarray]
    source_format: str
    durations: list[int] = field(default_factory=list)
    loop: int = 0
    dropped: int = 0  # images of the file that are not in `frames` (a still's extra pictures or pages)

    @property
    def width(self) -> int:
        return self.frames[0].shape[1]

    @property
    def height(self) -> int:
        return self.frames[0].shape[0]

    @property
    def has_alpha(self) -> bool:
        return self.frames[0].shape[2] == 4


def sniff(data: bytes) -> str:
    """Name the image format from its magic bytes; never trust a file name or declared type."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[4:8] == b"ftyp":
        box_size = int.from_bytes(data[:4], "big")
        brands = {data[8:12]} | {data[i:i + 4] for i in range(16, min(box_size, 64), 4)}
        if brands & AVIF_BRANDS:
            return "avif"
        if brands & HEIF_BRANDS:
            return "heif"
    raise UnsupportedImage(
        "Not a supported image. Photo Shield reads JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF and AVIF.")


VIDEO_CONTAINERS = ("mp4", "matroska")


def sniff_video(head: bytes) -> str | None:
    """'mp4' (MP4/MOV/M4V/3GP), 'matroska' (MKV/WebM) or None, from a file's first 64 bytes. HEIF and AVIF
    photos share the MP4 box layout; their brands make them photos, not videos."""
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head[4:8] == b"ftyp":
        try:
            sniff(head)
            return None  # an ftyp a photo format claims
        except UnsupportedImage:
            return "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):  # QuickTime files without ftyp
        return "mp4"
    return None


PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "bmp": "BMP",
                  "tiff": "TIFF", "heif": "HEIF", "avif": "AVIF"}


def _reason(exc: Exception) -> str:
    """An exception's text without object reprs such as <_io.BytesIO object at 0x7f...>."""
    if isinstance(exc, Image.UnidentifiedImageError):
        return "it is not a valid image of that format"
    text = re.sub(r"\s*<[^<>]*\bat 0x[0-9a-fA-F]+>", "", str(exc)).strip(" :")
    return text or type(exc).__name__


def _open(data: bytes, fmt: str) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=[PILLOW_FORMATS[fmt]])
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"The image is too large to protect: {_reason(exc)}") from None
    except Exception as exc:
        raise UndecodableImage(f"The {fmt.upper()} file could not be read: {_reason(exc)}.") from None


def image_sizes(image: Image.Image, data: bytes, fmt: str) -> list[tuple[int, int]]:
    """(width, height) of every frame, page or picture the file holds, read from headers only: no pixel is
    decoded. At most MAX_FRAMES + 1 are listed."""
    if fmt == "gif":
        return _gif_canvas_sizes(data, MAX_FRAMES + 1)
    if fmt == "heif":
        return [picture.size for picture in pillow_heif.open_heif(io.BytesIO(data))][:MAX_FRAMES + 1]
    if fmt in ("tiff", "jpeg"):  # TIFF pages, MPF pictures: each has its own header, read by seeking
        sizes = []
        try:
            while len(sizes) <= MAX_FRAMES:
                image.seek(len(sizes))
                sizes.append(image.size)
        except EOFError:
            pass
        image.seek(0)
        return sizes
    # APNG, animated WebP and AVIF sequences: their readers refuse a frame that reaches past the canvas.
    return [image.size] * min(getattr(image, "n_frames", 1), MAX_FRAMES + 1)


def _gif_canvas_sizes(data: bytes, limit: int) -> list[tuple[int, int]]:
    """The canvas each GIF frame is decoded onto. Pillow grows the canvas to hold a frame that reaches past
    it, so frame 2 may be far bigger than the screen size in the file's header: every frame descriptor is
    read (as Pillow reads them, unknown bytes skipped one by one)."""
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    at = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    sizes = []
    while at < len(data) and len(sizes) < limit:
        kind, at = data[at], at + 1
        if kind == 0x3B:  # trailer
            break
        if kind == 0x21:  # extension: label, then sub-blocks
            at = _after_sub_blocks(data, at + 1)
        elif kind == 0x2C and at + 9 <= len(data):  # image descriptor: x, y, w, h, flags
            x, y, w, h, flags = struct.unpack_from("<HHHHB", data, at)
            width, height = max(width, x + w), max(height, y + h)
            sizes.append((width, height))
            at += 9 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1  # colour table, LZW code size
            at = _after_sub_blocks(data, at)
    return sizes


def _after_sub_blocks(data: bytes, at: int) -> int:
    while at < len(data) and data[at]:
        at += 1 + data[at]
    return at + 1


def check_limits(sizes: list[tuple[int, int]], animated: bool, max_pixels: int) -> None:
    """Refuse a file whose images, measured from their headers, are too big to decode: every image on its
    own, and an animation's frames together (each is decoded in full)."""
    if not sizes or any(w <= 0 or h <= 0 for w, h in sizes):
        raise UndecodableImage("The image declares no pixels.")
    for index, (width, height) in enumerate(sizes):
        if width * height > max_pixels:
            which = "The image" if index == 0 else f"{'Frame' if animated else 'Image'} {index + 1} in the file"
            raise TooLarge(f"{which} is {width}x{height} ({width * height / 1e6:.0f} MP); "
                           f"the limit is {max_pixels / 1e6:.0f} MP.")
    if len(sizes) > MAX_FRAMES:
        raise TooLarge(f"The file holds more than {MAX_FRAMES} images: too many to protect.")
    total = sum(w * h for w, h in sizes)
    if animated and total > max_pixels:
        width, height = max(sizes, key=lambda size: size[0] * size[1])
        raise TooLarge(f"The animation has {len(sizes)} frames of up to {width}x{height} ({total / 1e6:.0f} MP "
                       f"in all): too many pixels to protect; the limit is {max_pixels / 1e6:.0f} MP.")


def _to_srgb(frame: Image.Image, in_place: bool = False) -> Image.Image:
    """Convert any mode to 8-bit RGB or RGBA, through the embedded ICC profile when there is one. A frame
    already in sRGB is returned as it is; in_place: an RGB frame's profile is applied to its own pixels."""
    icc = frame.info.get("icc_profile")
    if frame.mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(frame, dtype=np.float64)
        top = 65535.0 if wide.max() > 255 else 255.0
        frame = Image.fromarray(np.clip(wide * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), "L")
    elif frame.mode == "F":
        frame = Image.fromarray(np.clip(np.asarray(frame), 0, 255).astype(np.uint8), "L")
    has_alpha = frame.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        frame.mode == "P" and "transparency" in frame.info)
    target = "RGBA" if has_alpha else "RGB"
    if icc and frame.mode in ("RGB", "RGBA", "CMYK", "L"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            if in_place and frame.mode == "RGB":
                ImageCms.profileToProfile(frame, source, srgb, outputMode="RGB", inPlace=True)
                return frame
            base = frame.convert("RGB") if frame.mode == "RGBA" else frame
            converted = ImageCms.profileToProfile(base, source, srgb, outputMode="RGB")
            if frame.mode == "RGBA":
                converted.putalpha(frame.getchannel("A"))
            return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile is ignored: the pixels are still protected, colours may be off
    return frame if frame.mode == target else frame.convert(target)


def _pixels(picture: Image.Image) -> np.ndarray:
    """A new, writable HxWxC array of an 8-bit RGB or RGBA picture, filled a band of rows at a time: numpy's
    own conversion of a whole picture passes through two more full-size copies (Pillow's tobytes() pieces
    and their join), ~2.5x the array's size at once on a 12 MP photo."""
    width, height = picture.size
    pixels = np.empty((height, width, len(picture.getbands())), np.uint8)
    rows = max(1, BAND_BYTES // (width * pixels.shape[2]))
    for top in range(0, height, rows):
        pixels[top:top + rows] = np.asarray(picture.crop((0, top, width, min(top + rows, height))))
    return pixels


def decode(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    if len(data) == 0:
        raise UndecodableImage("The file is empty.")
    if len(data) > max_bytes:
        raise TooLarge(f"The file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB.")
    fmt = sniff(data)
    image = _open(data, fmt)
    try:
        sizes = image_sizes(image, data, fmt)
        animated = fmt in ANIMATION_FORMATS and len(sizes) > 1
        check_limits(sizes, animated, max_pixels)
        # A still's primary image is the one open now (HEIC names it; TIFF and MPF put it first).
        pictures = ImageSequence.Iterator(image) if animated else [image]
        frames, durations, decoded = [], [], 0
        for frame in pictures:
            decoded += frame.size[0] * frame.size[1]
            if decoded > max_pixels or len(frames) == len(sizes):  # headers and decoder disagree: stop
                raise TooLarge("The image holds more pixels than its headers declare: too many to protect.")
            # Orientation per image: the pixels become what a viewer sees before faces are searched. A still's
            # one picture is turned and converted in place (an animation's frame is the file's own decoder
            # state, which the next frame may build on).
            if animated:
                frames.append(_pixels(_to_srgb(ImageOps.exif_transpose(frame))))
            else:
                ImageOps.exif_transpose(frame, in_place=True)
                frames.append(_pixels(_to_srgb(frame, in_place=True)))
            durations.append(int(frame.info.get("duration", 100)))
    except ShieldError:
        raise
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"The image is too large to protect: {_reason(exc)}") from None
    except Exception as exc:
        raise UndecodableImage(f"The {fmt.upper()} file is damaged or truncated: {_reason(exc)}.") from None
    if len({f.shape for f in frames}) != 1:
        frames = [_match_frame(f, frames[0].shape) for f in frames]
    return DecodedImage(frames, fmt, durations, int(image.info.get("loop", 0)), dropped=len(sizes) - len(frames))


def _match_frame(frame: np.ndarray, shape: tuple) -> np.ndarray:
    """Bring an animation frame to the first frame's size and channels (rare; seen in malformed GIFs)."""
    mode = "RGBA" if shape[2] == 4 else "RGB"
    img = Image.fromarray(frame).convert(mode)
    if img.size != (shape[1], shape[0]):
        img = img.resize((shape[1], shape[0]))
    return np.array(img)


def output_format(source_format: str, requested: str, has_alpha: bool, animated: bool = False) -> str:
    if requested == "same":
        if source_format in KEPT_FORMATS:
            return source_format
        if animated:  # an AVIF sequence: WebP keeps every frame (and transparency)
            return "webp"
        return "png" if has_alpha else "jpeg"
    if requested not in OUTPUT_FORMATS:
        raise BadOptions(f"Unknown output format {requested!r}: use same, png, jpeg or webp.")
    return requested


def keep_what_fits(image: DecodedImage, fmt: str) -> None:
    """An animation written as JPEG keeps its first frame only (counted as dropped)."""
    if fmt not in ANIMATED_OUTPUTS and len(image.frames) > 1:
        image.dropped += len(image.frames) - 1
        del image.frames[1:], image.durations[1:]


def encode(image: DecodedImage, fmt: str) -> bytes:
    """Write fresh images built from pixels alone, so no EXIF, XMP, IPTC, ICC or text chunk can survive."""
    pillow_format = OUTPUT_FORMATS[fmt][0]
    pictures = [_for_format(Image.fromarray(f), fmt) for f in image.frames]
    out = io.BytesIO()
    if len(pictures) > 1:
        if fmt not in ANIMATED_OUTPUTS:
            raise ValueError(f"{fmt} cannot hold an animation")  # keep_what_fits() was not called: a bug
        pictures[0].save(out, pillow_format, save_all=True, append_images=pictures[1:],
                         duration=image.durations, loop=image.loop, **_quality(fmt))
    else:
        pictures[0].save(out, pillow_format, **_quality(fmt))
    return out.getvalue()


def _for_format(picture: Image.Image, fmt: str) -> Image.Image:
    if fmt == "jpeg" and picture.mode == "RGBA":
        white = Image.new("RGB", picture.size, (255, 255, 255))
        white.paste(picture, mask=picture.getchannel("A"))
        return white
    return picture


def _quality(fmt: str) -> dict:
    # PNG level 1: about 4x faster than the default 6 for files ~5% larger (measured at 1 MP: 56 vs 207 ms).
    return {"jpeg": {"quality": 92, "subsampling": 0}, "webp": {"quality": 92, "method": 4},
            "png": {"compress_level": 1}, "gif": {"optimize": False}}[fmt]


def mime_type(fmt: str) -> str:
    return OUTPUT_FORMATS[fmt][1]


def extension(fmt: str) -> str:
    return OUTPUT_FORMATS[fmt][2]
