"""Augmentations: the study's (random flips and rotations of up to 90 degrees), mirroring, CutMix and random crops on
normalised batches; Wang et al. 2020's blur + JPEG and reframing on decoded images."""
from __future__ import annotations

import io
import math
import random

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch.nn import functional as F
from tqdm import tqdm

from training import data


def augment(batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each image left-right and up-down with probability 1/2 each and rotate it by an angle in [-90, 90].

    Works on a normalised NCHW batch in one resampling step; corners uncovered
    by the rotation become 0, i.e. the normalisation mean colour.
    """
    n = batch.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * (math.pi / 2)
    flip_x = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    flip_y = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros(n)
    theta = torch.stack([torch.stack([cos * flip_x, -sin * flip_y, zero], 1),
                         torch.stack([sin * flip_x, cos * flip_y, zero], 1)], 1)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def mirror(batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each image of an NCHW batch left-right with probability 1/2 (a photo's mirror image is still a photo)."""
    flipped = torch.rand(batch.shape[0], generator=generator) < 0.5
    return torch.where(flipped.view(-1, 1, 1, 1), batch.flip(3), batch)


def cutmix(batch: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """CutMix (Yun et al. 2019): paste one random box from a shuffled copy of the batch into every image.

    Returns the mixed batch, the index of the image each box came from, and the
    share of each image left unchanged (the weight of its own label in the loss;
    the rest goes to the pasted image's label). The box's area is uniform in [0, 1].
    """
    n, _, height, width = batch.shape
    partner = torch.randperm(n, generator=generator)
    side = math.sqrt(torch.rand(1, generator=generator).item())
    box_h, box_w = round(height * side), round(width * side)
    top = int(torch.randint(0, height - box_h + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - box_w + 1, (1,), generator=generator))
    mixed = batch.clone()
    mixed[:, :, top:top + box_h, left:left + box_w] = batch[partner, :, top:top + box_h, left:left + box_w]
    return mixed, partner, 1.0 - box_h * box_w / (height * width)


def random_crops(batch: torch.Tensor, side: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """One random ``side`` x ``side`` window of every image of an NCHW batch, at the images' own scale.

    Training on windows and judging the whole image keeps the pixel scale the
    same in both (no resampling), so fine generator traces survive; the
    network pools globally, so it takes the larger image at test time.
    """
    n, _, height, width = batch.shape
    if side > min(height, width):
        raise ValueError(f"a {side} px crop does not fit in {height}x{width} images")
    tops = torch.randint(0, height - side + 1, (n,), generator=generator).tolist()
    lefts = torch.randint(0, width - side + 1, (n,), generator=generator).tolist()
    return torch.stack([image[:, t:t + side, l:l + side] for image, t, l in zip(batch, tops, lefts)])


def degrade(image: Image.Image, rng: random.Random) -> Image.Image:
    """Wang et al. 2020's augmentation: Gaussian blur (sigma 0-3) and JPEG re-compression (quality 30-100),
    each with probability 1/2."""
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 3.0)))
    if rng.random() < 0.5:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=rng.randint(30, 100))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return image


def reframe(image: Image.Image, rng: random.Random) -> Image.Image:
    """A window of another shape: a (nearly) square image -> its central 4:3 or 3:4 part, any other -> its
    central square. ``generators/`` is 92 % square and ``real_photos/`` 97 % not, so once padded to a square
    (as the app does) black bars alone would tell them apart; reframed copies take that cue away."""
    width, height = image.size
    if abs(width - height) <= 0.03 * max(width, height):
        w, h = (width, round(height * 0.75)) if rng.random() < 0.5 else (round(width * 0.75), height)
    else:
        w = h = min(width, height)
    left, top = (width - w) // 2, (height - h) // 2
    return image.crop((left, top, left + w, top + h))


REFRAME_COPY = -1  # the copy number of reframed copies (degraded copies are 1, 2, ...)


def transformed_arrays(items: list[data.Item], size: int, copy: int) -> np.ndarray:
    """Squared, resized arrays of the ``copy``-th degraded copies, or of the reframed ones (``REFRAME_COPY``)."""
    transform = reframe if copy == REFRAME_COPY else degrade
    arrays = []
    for index, item in enumerate(tqdm(items, desc=f"{transform.__name__} copies ({copy})", unit="img")):
        rng = random.Random(f"{copy}:{index}:{item.path}")
        arrays.append(data.square_array(transform(data.read_item(item), rng), size))
    return np.stack(arrays)


def degrade_arrays(arrays: np.ndarray, rng: random.Random, share: float) -> np.ndarray:
    """A copy of a uint8 NHWC batch in which each image, with probability ``share``, went through :func:`degrade`
    (drawn afresh every time an image is drawn, unlike the probe's fixed copies)."""
    out = arrays.copy()
    for index in range(len(out)):
        if rng.random() < share:
            out[index] = np.asarray(degrade(Image.fromarray(out[index]), rng), dtype=np.uint8)
    return out
