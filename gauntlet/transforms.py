"""Image transforms that stand for what re-sharing does to a picture, by name.

``TRANSFORMS`` maps a name to ``function(image, **params) -> image`` (RGB in, RGB out, deterministic), so a
caller can list, choose and parameterise them (``apply("jpeg", image, quality=75)``). The defaults are
the four of the laundering lab (:mod:`gauntlet.forensics.laundering`): what a messenger, a thumbnail,
a crop and a screenshot do to an image.
"""
from __future__ import annotations

import io
from typing import Callable

from PIL import Image

Transform = Callable[..., Image.Image]


def jpeg(image: Image.Image, quality: int = 70) -> Image.Image:
    """Re-encode as JPEG at ``quality`` (messengers and social sites re-compress uploads, often at 70-85)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def downscale(image: Image.Image, factor: float = 0.5) -> Image.Image:
    """Shrink both sides by ``factor`` (area-averaging filter, as thumbnails are made); at least 1 pixel."""
    width, height = image.size
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return image.convert("RGB").resize(size, Image.BOX if factor <= 0.5 else Image.BILINEAR)


def centre_crop(image: Image.Image, fraction: float = 0.7) -> Image.Image:
    """Keep the centre ``fraction`` of each side (a re-framed or cropped repost); at least 1 pixel."""
    width, height = image.size
    keep_w, keep_h = max(1, round(width * fraction)), max(1, round(height * fraction))
    left, top = (width - keep_w) // 2, (height - keep_h) // 2
    return image.convert("RGB").crop((left, top, left + keep_w, top + keep_h))


def screenshot(image: Image.Image, scale: float = 0.9) -> Image.Image:
    """A screenshot: the picture as a screen shows it (resampled by ``scale``, bilinear) saved as PNG.

    The PNG itself is lossless; what changes the pixels is the display's resampling, and the file loses all
    metadata and the original encoding's traces.
    """
    width, height = image.size
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    buffer = io.BytesIO()
    image.convert("RGB").resize(size, Image.BILINEAR).save(buffer, "PNG")
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


TRANSFORMS: dict[str, Transform] = {
    "jpeg": jpeg,
    "downscale": downscale,
    "centre_crop": centre_crop,
    "screenshot": screenshot,
}


def apply(name: str, image: Image.Image, **params: object) -> Image.Image:
    """Run the transform called ``name`` (see ``TRANSFORMS``) with ``params`` overriding its defaults."""
    try:
        transform = TRANSFORMS[name]
    except KeyError:
        raise ValueError(f"Unknown transform {name!r}; known: {', '.join(TRANSFORMS)}.") from None
    return transform(image, **params)
