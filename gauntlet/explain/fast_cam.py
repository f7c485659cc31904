"""Fast Score-CAM and Ablation-CAM: the same weights as pytorch-grad-cam, without the redundant work.

* :class:`TopKScoreCAM` scores only the ``k`` channels with the highest peak
  activation (masked forward passes batched by ``batch_size``) and gives the
  others weight 0; with ``k`` >= the number of channels it *is* Score-CAM.
* :class:`CachedAblationCAM` reuses the activations of the one forward pass
  every CAM makes and re-runs only the part of the network after the target
  layer. When that part is pooling plus a linear layer (the ``head`` of
  ResNet-50 and EfficientNet-Lite0), the ablated scores have a closed form:
  ``score - w[c] * (mean(A_c) - value)``. The weights follow pytorch-grad-cam:
  ``(score - ablated) / score``, ablated value 0 if the map's minimum is 0,
  else that minimum - 1e7.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from pytorch_grad_cam import AblationCAM, ScoreCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from ..detector import Detector
from .cam import (BATCH_SIZE, AblationCamExplainer, GradCamExplainer, PerImageAblationLayer, ScoreCamExplainer,
                  ablation_value)

DEFAULT_K = 16
TAIL_BATCH_SIZE = 32  # ablated copies per pass through the tail: small feature maps, so larger batches pay


class TopKScoreCAM(ScoreCAM):
    """Score-CAM over the ``k`` channels with the highest peak activation.

    Peaked maps make the most selective masks and dominate Score-CAM's weighted
    sum; ranking by the peak kept its deletion and insertion AUC closer to the
    full method's than ranking by the mean (benchmarks/explain.py).
    """

    def __init__(self, model: nn.Module, target_layers: list[nn.Module], k: int = DEFAULT_K,
                 batch_size: int = BATCH_SIZE) -> None:
        super().__init__(model, target_layers)
        self.k = k
        self.batch_size = batch_size

    def get_cam_weights(self, input_tensor: torch.Tensor, target_layer: nn.Module, targets: list[Callable],
                        activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
        activations_t = torch.from_numpy(activations)
        chosen = self.top_channels(activations_t)
        weights = torch.zeros(activations_t.shape[:2])
        with torch.no_grad():
            for i, target in enumerate(targets):
                masks = self.masks(activations_t[i, chosen[i]], input_tensor.shape[-2:])
                scores = self.masked_scores(input_tensor[i], masks, target)
                weights[i, chosen[i]] = torch.softmax(scores, dim=0)
        return weights.numpy()

    def top_channels(self, activations: torch.Tensor) -> torch.Tensor:
        """Per image, the ``k`` channels with the highest peak activation (all of them if ``k`` >= C)."""
        k = min(self.k, activations.shape[1])
        return activations.amax(dim=(2, 3)).topk(k, dim=1).indices

    @staticmethod
    def masks(maps: torch.Tensor, size: torch.Size) -> torch.Tensor:
        """Upsample (bilinear, corners aligned, as Score-CAM does) and min-max scale each map."""
        upsampled = nn.functional.interpolate(maps[None], size=tuple(size), mode="bilinear", align_corners=True)[0]
        flat = upsampled.flatten(1)
        low, high = flat.min(dim=1).values, flat.max(dim=1).values
        return (upsampled - low[:, None, None]) / (high - low + 1e-8)[:, None, None]

    def masked_scores(self, image: torch.Tensor, masks: torch.Tensor, target: Callable) -> torch.Tensor:
        """The target's score for ``image`` masked by each map, in batches."""
        scores = []
        for start in range(0, masks.shape[0], self.batch_size):
            outputs = self.model(image[None] * masks[start:start + self.batch_size, None])
            scores.extend(float(target(output)) for output in outputs)
        return torch.tensor(scores)


def tail_after(model: nn.Module, path: str) -> list[nn.Module]:
    """The modules that run after ``path``, assuming each ancestor calls its children in order.

    The assumption is checked where it is used (:meth:`CachedAblationCAM.tail_scores`):
    a model that breaks it falls back to the full method.
    """
    parts = path.split(".")
    tail: list[nn.Module] = []
    for depth in range(len(parts), 0, -1):
        parent = model.get_submodule(".".join(parts[:depth - 1]))
        names = [name for name, _ in parent.named_children()]
        tail.extend(list(parent.children())[names.index(parts[depth - 1]) + 1:])
    return tail


def pooled_linear(modules: list[nn.Module]) -> nn.Linear | None:
    """The Linear layer if ``modules`` is global average pooling, flatten, dropout(s) and one Linear."""
    layers = [m for module in modules for m in (module if isinstance(module, nn.Sequential) else [module])]
    layers = [m for m in layers if not isinstance(m, (nn.Flatten, nn.Dropout, nn.Identity))]
    if len(layers) == 2 and isinstance(layers[0], nn.AdaptiveAvgPool2d) and isinstance(layers[1], nn.Linear):
        return layers[1] if layers[0].output_size in (1, (1, 1)) else None
    return None


class CachedAblationCAM(AblationCAM):
    """Ablation-CAM from cached activations: closed form, else the network's tail, else the full method."""

    def __init__(self, model: nn.Module, target_layers: list[nn.Module], layer_paths: list[str],
                 batch_size: int = TAIL_BATCH_SIZE) -> None:
        super().__init__(model, target_layers, ablation_layer=PerImageAblationLayer(), batch_size=batch_size)
        self.tails = {id(layer): tail_after(model, path) for layer, path in zip(target_layers, layer_paths)}

    def get_cam_weights(self, input_tensor: torch.Tensor, target_layer: nn.Module, targets: list[Callable],
                        activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
        tail = self.tails[id(target_layer)]
        linear = pooled_linear(tail)
        weights = []
        with torch.no_grad():
            for i, target in enumerate(targets):
                maps = torch.from_numpy(activations[i])
                original = float(target(self.outputs[i]))
                if linear is not None and linear.in_features == maps.shape[0]:  # the head reads this map alone
                    ablated = self.closed_form_scores(maps, linear, target, original)
                else:
                    ablated = self.tail_scores(maps, tail, target, original)
                if ablated is None:  # the tail does not reproduce the model: run the full method
                    return super().get_cam_weights(input_tensor, target_layer, targets, activations, grads)
                weights.append((original - ablated) / original)
        return np.stack(weights).astype(np.float32)

    @staticmethod
    def closed_form_scores(maps: torch.Tensor, linear: nn.Linear, target: ClassifierOutputTarget,
                           original: float) -> np.ndarray:
        """Scores with each channel ablated, for a pooled linear head: one subtraction per channel."""
        drop = linear.weight[target.category] * (maps.mean(dim=(1, 2)) - ablation_value(maps))
        return (original - drop).numpy()

    def tail_scores(self, maps: torch.Tensor, tail: list[nn.Module], target: Callable,
                    original: float) -> np.ndarray | None:
        """Scores with each channel ablated, running only ``tail`` (None if it does not reproduce ``original``,
        e.g. when the head also reads earlier stages, as in ``lite0_pooled``, and so cannot take this map alone)."""
        run = nn.Sequential(*tail)
        try:
            reproduced = float(target(run(maps[None])[0]))
        except RuntimeError:
            return None
        if not np.isclose(reproduced, original, rtol=1e-4, atol=1e-5):
            return None
        value, scores = ablation_value(maps), []
        for start in range(0, maps.shape[0], self.batch_size):
            channels = torch.arange(start, min(start + self.batch_size, maps.shape[0]))
            batch = maps[None].repeat(len(channels), 1, 1, 1)
            batch[torch.arange(len(channels)), channels] = value
            scores.extend(float(target(output)) for output in run(batch))
        return np.float32(scores)


class FastScoreCamExplainer(ScoreCamExplainer):
    """Score-CAM on the top-k channels (``k=16`` by default)."""

    variant = "fast"

    def __init__(self, detector: Detector, target_layers: list[str] | str = "last", k: int = DEFAULT_K) -> None:
        self.k = k
        super().__init__(detector, target_layers)

    def make_cam(self, layers: list[nn.Module]) -> TopKScoreCAM:
        return TopKScoreCAM(self.detector.model, layers, k=self.k)


class FastAblationCamExplainer(AblationCamExplainer):
    """Ablation-CAM re-running only what follows the target layer (closed form for a pooled linear head)."""

    variant = "fast"

    def make_cam(self, layers: list[nn.Module]) -> CachedAblationCAM:
        return CachedAblationCAM(self.detector.model, layers, self.layer_paths)


class GradCamPreviewExplainer(GradCamExplainer):
    """Grad-CAM is already one forward and one backward pass: its fast variant is the method itself."""

    variant = "fast"


__all__ = ["TopKScoreCAM", "CachedAblationCAM", "FastScoreCamExplainer",
           "FastAblationCamExplainer", "GradCamPreviewExplainer", "tail_after", "pooled_linear"]
