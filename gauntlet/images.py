"""Safe image loading for anything a user can upload.

Every path into the detector goes through :func:`load_image`, which turns any
decodable file into a plain RGB ``PIL.Image`` (EXIF orientation applied,
transparency composited over white, first frame of animations, 16-bit, float
and 1-bit modes converted, very large images reduced to a working size) and
turns everything else into an :class:`ImageError` whose message can be shown
to a person as it is: a plain sentence, never a Python error text.

Only the formats the app advertises are decoded (``ALLOWED_FORMATS``): Pillow
would otherwise also try EPS (which runs Ghostscript), PSD, ICO, TGA and a
dozen rarely used decoders on whatever bytes a visitor sends.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import UserError

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 50_000_000
# Longest side kept after decoding: the networks see at most a few hundred pixels and heatmaps are
# shown at <= 512, while the padded square and its float heatmap grow with the side squared.
MAX_SIDE = 2048
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
SUPPORTED = "Please upload a JPEG, PNG, WebP, GIF, BMP or TIFF file."
ImageSource = Union[str, os.PathLike, bytes, BinaryIO, Image.Image, np.ndarray]
Image.init()  # registers every plugin, so that ``formats=ALLOWED_FORMATS`` can name WEBP and TIFF (JPEG covers MPO)

# What a file we refuse seems to be, judged from its first bytes (lower-cased, leading blanks removed).
_KNOWN_NOT_IMAGES = (
    (lambda s: s.startswith(b"%pdf"),
     "This is a PDF document, not an image. Please take a screenshot or export the page as PNG or JPEG."),
    (lambda s: b"<svg" in s,
     "This looks like an SVG drawing (vector graphics), which the detector cannot read. Please export it as PNG."),
    (lambda s: s.startswith(b"<") and b"html" in s,
     "This file is a web page (HTML), not an image. Please save the image itself (right-click, 'Save image as')."),
    (lambda s: s.startswith(b"pk\x03\x04"),
     "This is a ZIP archive, not an image. Please unpack it and upload one image."),
    (lambda s: s.startswith(b"%!ps"),
     "This is a PostScript/EPS file, which is not accepted for safety reasons. " + SUPPORTED),
)
_FTYP_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"avif": "AVIF"}


class ImageError(UserError):
    """A user-facing problem with an uploaded image; ``str(err)`` is the message."""


def _read_head(source: ImageSource) -> bytes:
    """The first bytes of the file, to name a file type we refuse; empty if they cannot be read."""
    try:
        if isinstance(source, (bytes, bytearray)):
            return bytes(source[:512])
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as handle:
                return handle.read(512)
        source.seek(0)
        return source.read(512)
    except (OSError, AttributeError):
        return b""


def describe_unreadable(head: bytes) -> str:
    """A sentence saying what an unreadable file seems to be, and what to do instead."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for matches, message in _KNOWN_NOT_IMAGES:
        if matches(start):
            return message
    if head[4:8] == b"ftyp" and head[8:12] in _FTYP_BRANDS:
        return (f"This is a {_FTYP_BRANDS[head[8:12]]} photo, a format the detector does not read yet. "
                "Please convert it to JPEG or PNG (most phones can share photos as JPEG).")
    if head and _is_text(head):
        return "This file contains text, not an image. " + SUPPORTED
    return "This file is not an image we can read. " + SUPPORTED


def _is_text(head: bytes) -> bool:
    """Mostly printable UTF-8 (a few undecodable bytes allowed: the head may cut a character)."""
    text = head.decode("utf-8", errors="replace")
    return text.count("\ufffd") <= 2 and all(c.isprintable() or c.isspace() for c in text)


def _open(source: ImageSource) -> Image.Image:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageError("The uploaded file could not be found on the server. Please upload it again.")
        if path.stat().st_size == 0:
            raise ImageError("The file is empty (0 bytes). Please upload an image file.")
        return Image.open(path, formats=ALLOWED_FORMATS)
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageError("The file is empty (0 bytes). Please upload an image file.")
        return Image.open(io.BytesIO(source), formats=ALLOWED_FORMATS)
    return Image.open(source, formats=ALLOWED_FORMATS)


def _check_size(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError("The image has no pixels (its width or height is zero).")
    if width * height > max_pixels:
        raise ImageError(
            f"The image is too large ({width} x {height} pixels = {width * height / 1e6:,.0f} megapixels; "
            f"the limit is {max_pixels / 1e6:,.0f}). Please upload a smaller version."
        )


def _high_bit_to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit integer and float images to 8 bits instead of clipping them.

    Floats in [0, 1] and integers up to 65535 keep their meaning (x255, /257);
    anything else (negative, HDR) is min-max stretched. NaN and infinities become 0.
    """
    array = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(array.min()), float(array.max())
    if image.mode == "F" and low >= 0 and high <= 1:
        scaled = array * 255.0
    elif low >= 0 and high <= 255:
        scaled = array
    elif low >= 0 and high <= 65535:
        scaled = array / 257.0
    else:
        scaled = (array - low) / (high - low) * 255.0
    return Image.fromarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8), mode="L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB; transparency is composited over white."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _high_bit_to_8bit(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def _working_size(image: Image.Image, max_side: int | None) -> Image.Image:
    """A copy whose longest side is at most ``max_side`` (aspect ratio kept, at least 1 px); else ``image``."""
    width, height = image.size
    if not max_side or max(width, height) <= max_side:
        return image
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.LANCZOS, reducing_gap=2.0)


def load_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS, max_side: int | None = MAX_SIDE) -> Image.Image:
    """Decode ``source`` into an RGB image, or raise :class:`ImageError` with a human message.

    The pixel count is checked from the header, before the full decode, so a
    small file that declares a huge canvas (a decompression bomb) is refused
    without allocating it. The result's longest side is at most ``max_side``
    (``None`` keeps the decoded size).
    """
    if isinstance(source, np.ndarray):
        source = _from_array(source)
    if isinstance(source, Image.Image):
        _check_size(source, max_pixels)
        return _working_size(to_rgb(source), max_side)
    try:
        return _working_size(to_rgb(_decode(source, max_pixels)), max_side)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError("The image is too large: its header declares an enormous size, so it was refused "
                         "without opening it. Please upload a smaller version.") from None
    except UnidentifiedImageError:
        raise ImageError(describe_unreadable(_read_head(source))) from None
    except MemoryError:
        raise ImageError("The image needs more memory to decode than the server can spare. "
                         "Please upload a smaller version.") from None
    except Exception as err:  # noqa: BLE001 - any decoder failure must become a human message
        log.info("Could not decode an upload: %s: %s", type(err).__name__, err)
        raise ImageError(_damaged_message(err)) from None


def content_key(image: Image.Image) -> str:
    """A short hash of an image's pixels: equal pixels, equal key, whatever file or format they came in."""
    digest = hashlib.blake2b(f"{image.mode} {image.size}".encode(), digest_size=16)
    digest.update(image.tobytes())
    return digest.hexdigest()


def _decode(source: ImageSource, max_pixels: int) -> Image.Image:
    """Check the size the header declares, then decode the first frame upright; the file is closed after."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # _check_size decides
        with _open(source) as image:
            _check_size(image, max_pixels)
            image.seek(0)
            return ImageOps.exif_transpose(image)  # a decoded copy: it outlives the file


def _from_array(array: np.ndarray) -> Image.Image:
    try:
        return Image.fromarray(array)
    except (TypeError, ValueError):
        raise ImageError(f"An array of shape {array.shape} and type {array.dtype} is not an image.") from None


def _damaged_message(err: BaseException) -> str:
    """Say what went wrong in words (the decoder's own text stays in the log)."""
    if "truncated" in str(err).lower() or isinstance(err, EOFError):
        return ("The image file is incomplete: it seems to have been cut off during download or upload. "
                "Please download it again and upload the whole file.")
    return ("The image file is damaged or uses a feature the decoder does not support, so it could not be "
            "opened. Please try another copy, or re-save it as PNG or JPEG.")
