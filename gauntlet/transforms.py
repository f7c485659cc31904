"""What happens to an image when people share it: re-compression, downscaling, cropping, screenshots.

Each transform maps an RGB PIL image to a new RGB PIL image, deterministically. They are used to
measure how verdicts hold up after re-sharing (``python -m benchmarks.generalization``,
``python -m benchmarks.laundering``) and to show it (the forensics lab, :mod:`gauntlet.forensics.laundering`).
:data:`TRANSFORMS` is the one registry of them, by name, with their parameters as keywords
(``apply("jpeg", image, quality=70)``); :func:`resharing_transforms` fixes the parameters of the four.
"""
from __future__ import annotations

import io
from typing import Callable

from PIL import Image

Transform = Callable[[Image.Image], Image.Image]

SCREENSHOT_SCALE = 0.8  # a browser fits the picture into the page, then the screen is captured


def _encode_decode(image: Image.Image, format: str, **options) -> Image.Image:
    """Save ``image`` in ``format`` to memory and read it back as RGB (what a re-upload does)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format=format, **options)
    buffer.seek(0)
    with Image.open(buffer) as reread:
        return reread.convert("RGB")


def _resized(image: Image.Image, scale: float, resample: Image.Resampling) -> Image.Image:
    width, height = image.size
    return image.resize((max(1, round(width * scale)), max(1, round(height * scale))), resample)


def jpeg(image: Image.Image, quality: int = 75) -> Image.Image:
    """Re-compress as a JPEG of ``quality`` (1-95; Pillow's default 4:2:0 chroma subsampling), as messengers do."""
    return _encode_decode(image, "JPEG", quality=quality)


def downscale(image: Image.Image, factor: float = 0.5) -> Image.Image:
    """Scale both sides by ``factor`` (bicubic, at least 1 pixel), as sites shrink uploads."""
    return _resized(image, factor, Image.Resampling.BICUBIC)


def centre_crop(image: Image.Image, fraction: float = 0.7) -> Image.Image:
    """Keep the central ``fraction`` of the width and of the height (0.7: 49 % of the area)."""
    width, height = image.size
    crop_w, crop_h = max(1, round(width * fraction)), max(1, round(height * fraction))
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return image.crop((left, top, left + crop_w, top + crop_h))


def screenshot(image: Image.Image, scale: float = SCREENSHOT_SCALE) -> Image.Image:
    """A screenshot of the image on a page: displayed at ``scale`` (bilinear, as browsers draw), saved as PNG."""
    return _encode_decode(_resized(image, scale, Image.Resampling.BILINEAR), "PNG")


TRANSFORMS: dict[str, Callable[..., Image.Image]] = {
    "jpeg": jpeg,
    "downscale": downscale,
    "centre_crop": centre_crop,
    "screenshot": screenshot,
}


def apply(name: str, image: Image.Image, **params: object) -> Image.Image:
    """Run the transform called ``name`` (see :data:`TRANSFORMS`) with ``params`` overriding its defaults."""
    try:
        transform = TRANSFORMS[name]
    except KeyError:
        raise ValueError(f"Unknown transform {name!r}; known: {', '.join(TRANSFORMS)}.") from None
    return transform(image, **params)


def resharing_transforms(jpeg_quality: int = 75) -> dict[str, Transform]:
    """The four re-sharing transforms by name: JPEG at ``jpeg_quality``, half size, 70 % centre crop, screenshot."""
    return {
        f"jpeg_q{jpeg_quality}": lambda image: jpeg(image, jpeg_quality),
        "downscale_half": lambda image: downscale(image, 0.5),
        "centre_crop_70": lambda image: centre_crop(image, 0.7),
        "screenshot_png": screenshot,
    }
