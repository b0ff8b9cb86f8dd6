"""Check image bytes and turn them into what models and OCR read: upright JPEG or PNG, bounded.

Only raster formats a photo can arrive in are opened, a file is refused before decoding
when it has too many pixels, and only a few images decode at once.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import cast

from PIL import ExifTags, Image, ImageOps

from helpline.images.errors import ImageError

DEFAULT_MAX_PIXELS = 60_000_000
"""Larger than an A4 page scanned at 600 dpi (4961×7016), far below a decompression bomb."""

SUPPORTED_FORMATS = "JPEG, PNG, WebP, GIF, BMP or TIFF"
"""The accepted formats as refusals name them."""

DECODE_CONCURRENCY = 2
"""Images decoded at once in this process: a small file can decode to hundreds of MB."""
_decode_slots = threading.BoundedSemaphore(DECODE_CONCURRENCY)

Image.init()
# Only raster formats a photo can arrive in; never the plugins that shell out (EPS) or parse
# exotic containers.
_READABLE_FORMATS = tuple(
    name
    for name in ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
    if name in Image.OPEN
)


@dataclass(frozen=True)
class NormalizedImage:
    """An image ready for a model or OCR: JPEG or PNG, upright, longest side within bounds."""

    data: bytes
    mime: str
    width: int
    height: int


def check_image(data: bytes, what: str) -> None:
    """Refuse bytes that are not a complete image in an accepted format."""
    with _open(data, what) as image:
        try:
            image.verify()
        except Exception as exc:  # Pillow's plugins raise assorted types for corrupt files
            raise _damaged(what) from exc


def normalize_image(
    data: bytes, *, max_side: int = 2048, max_pixels: int = DEFAULT_MAX_PIXELS
) -> NormalizedImage:
    """Turn any accepted image into an upright JPEG or PNG whose longest side is ≤ `max_side`.

    JPEG and PNG that need no change are returned byte for byte (after a full decode, so a
    truncated file is caught here). Other formats become JPEG, or PNG when they have
    transparency; a PNG stays PNG so receipt text keeps its sharp edges. At most
    `DECODE_CONCURRENCY` images decode at once, across threads; the others wait their turn.
    """
    what = "That file"
    with _open(data, what) as image:
        width, height = image.size
        if width * height > max_pixels:
            raise _too_many_pixels(what)
        with _decode_slots:
            try:
                return _normalized(image, data, max_side)
            except MemoryError:
                raise
            except Exception as exc:  # Pillow's plugins raise assorted types for corrupt files
                raise _damaged(what) from exc


def _normalized(image: Image.Image, data: bytes, max_side: int) -> NormalizedImage:
    """Decode the opened `image` (whose bytes are `data`) and bring it within bounds."""
    width, height = image.size
    source_format = "JPEG" if image.format == "MPO" else image.format
    upright = image.getexif().get(ExifTags.Base.Orientation, 1) == 1
    scale = min(1.0, max_side / max(width, height))
    # CMYK JPEG is valid but many viewers and vision models render it wrongly.
    unchanged = (
        source_format in ("JPEG", "PNG") and upright and scale == 1.0 and image.mode != "CMYK"
    )
    if scale < 1.0:
        # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: much faster on big scans.
        image.draft(None, (round(width * scale), round(height * scale)))
    image.load()
    if unchanged:
        return NormalizedImage(data, f"image/{str(source_format).lower()}", width, height)
    fixed = ImageOps.exif_transpose(image)
    if fixed.mode not in ("RGB", "RGBA", "L", "LA"):  # palette, CMYK, 1-bit, 16-bit …
        fixed = fixed.convert("RGBA" if _has_transparency(fixed) else "RGB")
    if scale < 1.0:
        fixed.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if source_format == "PNG" or _has_transparency(fixed):
        return _encode(fixed, "PNG")
    return _encode(fixed.convert("L" if fixed.mode in ("L", "LA") else "RGB"), "JPEG")


def _open(data: bytes, what: str) -> Image.Image:
    """Open (lazily) image bytes in one of the accepted formats, or explain why not."""
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftyphevc", b"ftypmif1", b"ftypmsf1"):
        raise ImageError(
            f"{what} is a HEIC photo (the iPhone default), which Helpline cannot read. Share it as "
            "JPEG (on iPhone: Settings › Camera › Formats › Most Compatible) or send a screenshot "
            "of it."
        )
    try:
        return Image.open(io.BytesIO(data), formats=_READABLE_FORMATS)
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(what) from exc
    except Exception as exc:  # UnidentifiedImageError, or a plugin tripping over a bad header
        raise ImageError(
            f"{what} is not an image Helpline can read. Share a {SUPPORTED_FORMATS} photo of the "
            "receipt."
        ) from exc


def _too_many_pixels(what: str) -> ImageError:
    return ImageError(
        f"{what} has too many pixels to process safely. Share a smaller photo or a screenshot."
    )


def _damaged(what: str) -> ImageError:
    return ImageError(
        f"{what} could not be read: it is damaged or incomplete (an upload cut off part-way "
        "does this). Send the photo again."
    )


def _has_transparency(image: Image.Image) -> bool:
    """Whether any pixel is actually see-through (many WebP photos carry an opaque alpha)."""
    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return False
    lowest_alpha, _ = cast(tuple[int, int], image.convert("RGBA").getchannel("A").getextrema())
    return lowest_alpha < 255


def _encode(image: Image.Image, image_format: str) -> NormalizedImage:
    buffer = io.BytesIO()
    if image_format == "JPEG":
        image.save(buffer, "JPEG", quality=90)
    else:
        image.save(buffer, "PNG")
    return NormalizedImage(
        buffer.getvalue(), f"image/{image_format.lower()}", image.width, image.height
    )
