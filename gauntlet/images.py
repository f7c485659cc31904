"""Safe image loading for anything a user can upload.

Every path into the detector goes through :func:`load_image`, which turns any
decodable file into a plain RGB ``PIL.Image`` (EXIF orientation applied,
transparency composited over white, first frame of animations, 16-bit and
1-bit modes converted) and turns everything else into an :class:`ImageError`
whose message can be shown to a person as it is.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 50_000_000
ImageSource = Union[str, os.PathLike, bytes, BinaryIO, Image.Image, np.ndarray]


class ImageError(ValueError):
    """A user-facing problem with an uploaded image; ``str(err)`` is the message."""


def _open(source: ImageSource) -> Image.Image:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"No file was found at {path.name!r}.")
        if path.stat().st_size == 0:
            raise ImageError("The file is empty (0 bytes). Please upload an image file.")
        return Image.open(path)
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageError("The file is empty (0 bytes). Please upload an image file.")
        return Image.open(io.BytesIO(source))
    return Image.open(source)


def _check_size(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError("The image has no pixels.")
    if width * height > max_pixels:
        raise ImageError(
            f"The image is too large ({width}x{height} = {width * height / 1e6:.0f} megapixels; "
            f"the limit is {max_pixels / 1e6:.0f}). Please upload a smaller version."
        )


def _high_bit_to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit integer and float images to 8 bits instead of clipping them."""
    array = np.asarray(image, dtype=np.float64)
    low, high = float(array.min()), float(array.max())
    if image.mode.startswith("I;16") or (image.mode == "I" and high <= 65535 and low >= 0):
        scaled = array / 257.0 if high > 255 else array
    else:
        scaled = (array - low) / (high - low) * 255.0 if high > low else np.zeros_like(array)
    return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), mode="L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB; transparency is composited over white."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _high_bit_to_8bit(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("LA", "PA", "La"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    if image.mode == "CMYK" or image.mode != "RGB":
        return image.convert("RGB")
    return image


def load_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``source`` into an RGB image, or raise :class:`ImageError` with a human message.

    The pixel count is checked from the header, before the full decode, so a
    small file that declares a huge canvas (a decompression bomb) is refused
    without allocating it.
    """
    if isinstance(source, np.ndarray):
        source = Image.fromarray(source)
    if isinstance(source, Image.Image):
        _check_size(source, max_pixels)
        return to_rgb(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = _open(source)
            _check_size(image, max_pixels)
            image.seek(0)
            image = ImageOps.exif_transpose(image)
            image.load()
            return to_rgb(image)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("The image declares an enormous size and was refused as unsafe to open.")
    except UnidentifiedImageError:
        raise ImageError(
            "This file is not an image we can read. Please upload a JPEG, PNG, WebP, GIF, BMP or TIFF file."
        )
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageError(f"The image file is damaged or incomplete and could not be decoded ({_short(err)}).")
    except Exception as err:  # noqa: BLE001 - a decoder bug must still become a human message
        raise ImageError(f"The image could not be decoded ({_short(err)}).")


def _short(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."

