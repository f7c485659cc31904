"""Frequency view: two pictures of the fine detail a detector can use and a person cannot see.

* :func:`highpass_spectrum`: the log-magnitude Fourier spectrum of the image minus a blurred copy of itself.
  Generators that enlarge feature maps (transposed convolutions, nearest or bilinear upsampling) leave
  periodic peaks in it: bright dots on a regular grid away from the centre (Durall et al. 2020,
  Frank et al. 2020).
* :func:`npr_residual`: the image minus its down-then-up-sampled copy (neighbouring pixel relationships,
  Tan et al. 2024). Upsampling makes neighbouring pixels alike in a fixed pattern, visible in this residual.

Both work on the centre crop of at most ``CROP`` pixels at full resolution: resizing would destroy exactly
the traces they show (and a crop keeps them fast: well under 0.3 s, see ``benchmarks/frequency.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from ..render import colorize

CROP = 512
SPECTRUM_CAPTION = ("Spectrum of the fine detail (the image minus a blurred copy; centre of the picture = coarse "
                    "patterns, edges = the finest). Bright dots on a regular grid away from the centre are the "
                    "trace of the upsampling layers many generators use. JPEG's 8-pixel blocks and resizing leave "
                    "grids too, so dots suggest, they do not prove.")
NPR_CAPTION = ("NPR residual: the image minus a copy shrunk to half and enlarged again, magnified. Upsampling in "
               "a generator makes 2x2 neighbours alike, which shows as an even, regular texture here; camera "
               "photos usually show edges and noise instead. Compression blurs the difference.")


@dataclass
class FrequencyView:
    """The two pictures (RGB, the crop's size) and their captions."""

    spectrum: Image.Image
    npr: Image.Image
    spectrum_caption: str = SPECTRUM_CAPTION
    npr_caption: str = NPR_CAPTION


def centre_crop_array(image: Image.Image, side: int = CROP) -> np.ndarray:
    """The centre ``side`` x ``side`` (or smaller) pixels as float32 RGB in [0, 1]."""
    width, height = image.size
    crop_w, crop_h = min(width, side), min(height, side)
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    box = image.convert("RGB").crop((left, top, left + crop_w, top + crop_h))
    return np.asarray(box, dtype=np.float32) / 255.0


def highpass_spectrum(image: Image.Image, side: int = CROP, blur_sigma: float = 2.0) -> np.ndarray:
    """log(1 + |FFT|) of the grey crop minus its Gaussian blur, Hann-windowed, centred; HxW float32 in [0, 1]."""
    grey = centre_crop_array(image, side).mean(axis=2)
    detail = grey - gaussian_filter(grey, blur_sigma, mode="reflect")
    window = np.outer(np.hanning(detail.shape[0]), np.hanning(detail.shape[1])).astype(np.float32)
    magnitude = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(detail * window))))
    return _stretch(magnitude)


def npr_residual(image: Image.Image, side: int = CROP) -> np.ndarray:
    """|crop - nearest-up(nearest-down(crop, 2), 2)| averaged over channels; HxW float32 in [0, 1].

    Odd sizes: the last row or column is repeated, as the upsampled copy would be.
    """
    pixels = centre_crop_array(image, side)
    height, width = pixels.shape[:2]
    down = pixels[::2, ::2]
    up = down.repeat(2, axis=0).repeat(2, axis=1)[:height, :width]
    return _stretch(np.abs(pixels - up).mean(axis=2))


def _stretch(values: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.5) -> np.ndarray:
    """Percentile contrast stretch to [0, 1] (a constant array becomes zeros)."""
    low, high = np.percentile(values, [low_pct, high_pct])
    if high - low < 1e-12:
        return np.zeros_like(values, dtype=np.float32)
    return np.clip((values - low) / (high - low), 0, 1).astype(np.float32)


def frequency_view(image: Image.Image, side: int = CROP) -> FrequencyView:
    """Both pictures for an RGB image, ready to show with their captions."""
    return FrequencyView(Image.fromarray(colorize(highpass_spectrum(image, side), "magma")),
                         Image.fromarray(colorize(npr_residual(image, side), "gray")))
