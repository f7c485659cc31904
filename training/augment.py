"""The study's augmentation: random flips and random rotations of up to 90 degrees."""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F


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
