"""Deletion and insertion AUC (Petsiuk, Das and Saenko, "RISE", BMVC 2018): is a heatmap faithful?

A faithful heatmap ranks pixels the way the model uses them. *Deletion* blacks
out the most highlighted pixels first, in ``steps`` equal steps, and records
the probability of the explained class: it should fall fast, so a lower area
under that curve is better. *Insertion* starts from a blurred copy and puts the
original pixels back, most highlighted first: the probability should rise fast,
so a higher area is better. Both curves are computed at the model's input
resolution in one batched pass (``2 * (steps + 1)`` images), inside the image's
area of the padded square: the padding never changes.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.functional import gaussian_blur

from ..detector import Detector, ModelInput
from .base import Explanation

DEFAULT_STEPS = 16
BLUR_SIGMA_AT_224 = 5.0  # RISE's insertion canvas: a Gaussian blur with sigma 5 at 224 px


class Faithfulness(NamedTuple):
    """Areas under the deletion (lower is better) and insertion (higher is better) curves, in [0, 1]."""

    deletion_auc: float
    insertion_auc: float


def area_under(curve: np.ndarray) -> float:
    """Trapezoidal area under a curve sampled at equal steps over [0, 1]."""
    return float((curve.sum() - (curve[0] + curve[-1]) / 2) / (len(curve) - 1))


def pixel_rank(heatmap: np.ndarray, box: tuple[int, int, int, int], square_side: int, size: int) -> torch.Tensor:
    """Rank (0 = most highlighted) of every input pixel inside the image's box; +inf on the padding."""
    scale = size / square_side
    left, top, right, bottom = (round(v * scale) for v in box)
    right, bottom = max(right, left + 1), max(bottom, top + 1)
    tensor = torch.from_numpy(np.ascontiguousarray(heatmap, dtype=np.float32))[None, None]
    inside = torch.nn.functional.interpolate(tensor, size=(bottom - top, right - left), mode="bilinear",
                                             align_corners=False)[0, 0].flatten()
    ranks = torch.empty_like(inside)
    ranks[torch.argsort(-inside, stable=True)] = torch.arange(inside.numel(), dtype=torch.float32)
    rank = torch.full((size, size), float("inf"))
    rank[top:bottom, left:right] = ranks.view(bottom - top, right - left)
    return rank


def step_inputs(start: torch.Tensor, end: torch.Tensor, rank: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps + 1`` images: ``start`` with its first 0, 1/steps, ..., all ranked pixels taken from ``end``."""
    count = int(torch.isfinite(rank).sum())
    thresholds = torch.tensor([round(k * count / steps) for k in range(steps + 1)], dtype=torch.float32)
    masks = (rank[None] < thresholds[:, None, None]).float()[:, None]
    return start * (1 - masks) + end * masks


def blurred(batch: torch.Tensor, rank: torch.Tensor) -> torch.Tensor:
    """The input blurred (sigma scaled to the input size), padding left as it is."""
    sigma = BLUR_SIGMA_AT_224 * batch.shape[-1] / 224
    kernel = int(4 * sigma) | 1
    return torch.where(torch.isfinite(rank), gaussian_blur(batch, [kernel, kernel], [sigma, sigma]), batch)


def insertion_canvas(batch: torch.Tensor, black: torch.Tensor, rank: torch.Tensor, start: str) -> torch.Tensor:
    """Where insertion starts: ``"blur"`` (RISE) or ``"black"``; the padding stays as it is."""
    if start == "blur":
        return blurred(batch, rank)
    if start == "black":
        return torch.where(torch.isfinite(rank), black, batch)
    raise ValueError(f"insertion_start must be 'blur' or 'black', not {start!r}.")


def deletion_insertion(detector: Detector, image: Image.Image | ModelInput, heatmap: np.ndarray, target: int,
                       steps: int = DEFAULT_STEPS, insertion_start: str = "blur",
                       batch_size: int = 64) -> Faithfulness:
    """Deletion and insertion AUC of ``heatmap`` (HxW over ``image``, any size) for class ``target``.

    ``image`` may be already prepared (``Detector.prepare``). ``insertion_start`` is ``"blur"``
    (RISE) or ``"black"``. Costs ``2 * (steps + 1)`` forward passes, batched by ``batch_size``.
    """
    prepared = image if isinstance(image, ModelInput) else detector.prepare(image)
    batch = prepared.batch
    size = batch.shape[-1]
    rank = pixel_rank(heatmap, prepared.box, prepared.square.size[0], size)
    black = detector.to_tensor(np.zeros((1, size, size, 3), dtype=np.uint8))
    inputs = torch.cat([step_inputs(batch, black, rank, steps),
                        step_inputs(insertion_canvas(batch, black, rank, insertion_start), batch, rank, steps)])
    probs = torch.cat([detector.probabilities(chunk)[:, target] for chunk in inputs.split(batch_size)]).numpy()
    return Faithfulness(area_under(probs[:steps + 1]), area_under(probs[steps + 1:]))


def explanation_faithfulness(detector: Detector, explanation: Explanation, steps: int = DEFAULT_STEPS,
                             prepared: ModelInput | None = None) -> Faithfulness:
    """Deletion and insertion AUC of an :class:`Explanation` (its heatmap and class).

    Measured on ``prepared`` (the input the explanation was computed from, shared by an analysis)
    when given, else on the explanation's displayed image.
    """
    return deletion_insertion(detector, prepared or explanation.image, explanation.heatmap,
                              explanation.target_index, steps)
