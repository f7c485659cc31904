"""Turn heatmaps into pictures people can read."""
from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from PIL import Image


def colorize(heatmap: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """[0, 1] heatmap -> uint8 RGB array (blue = low, red = high)."""
    rgb = colormaps[colormap](np.clip(heatmap, 0.0, 1.0))[..., :3]
    return (rgb * 255).astype(np.uint8)


def overlay(image: Image.Image, heatmap: np.ndarray, alpha: float = 0.45, colormap: str = "jet") -> Image.Image:
    """Blend a colourised heatmap over ``image`` (resized to the heatmap's size if needed)."""
    height, width = heatmap.shape
    base = np.asarray(image.convert("RGB").resize((width, height), Image.BICUBIC), dtype=np.float32)
    blended = (1 - alpha) * base + alpha * colorize(heatmap, colormap).astype(np.float32)
    return Image.fromarray(np.clip(blended, 0, 255).astype(np.uint8))
