"""Grad-CAM, Score-CAM and Ablation-CAM through pytorch-grad-cam (the full methods)."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from pytorch_grad_cam import AblationCAM, GradCAM, ScoreCAM
from pytorch_grad_cam.ablation_layer import AblationLayer
from pytorch_grad_cam.activations_and_gradients import ActivationsAndGradients
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from ..detector import Detector
from ..models import resolve_layers
from .base import Explainer, ProgressFn

ABLATION_OFFSET = 1e7  # pytorch-grad-cam's AblationLayer: how far below the minimum an ablated channel goes
# Images per forward pass for the perturbation methods: on a 2-core CPU, batches of 8 run about twice as
# fast per image as batches of 32 or 64 (EfficientNet-Lite0 at 224 px: ~25 vs ~45-70 ms), the cache, not the
# cores, being the limit.
BATCH_SIZE = 8


class PytorchGradCamExplainer(Explainer):
    """Holds one pytorch-grad-cam object, built once; its hooks live only during ``compute``.

    Hooks left on a shared model would fire on every other forward pass (other
    explainers, predictions) and hold their activations, so they are attached
    for each call and released right after it.
    """

    cam_class: type = GradCAM

    def __init__(self, detector: Detector, target_layers: list[str] | str = "last") -> None:
        super().__init__(detector, target_layers)
        self.layers = resolve_layers(detector.model, self.layer_paths)
        self.cam = self.make_cam(self.layers)
        self.cam.activations_and_grads.release()

    def make_cam(self, layers: list[torch.nn.Module]):
        return self.cam_class(model=self.detector.model, target_layers=layers)

    def compute(self, batch: torch.Tensor, square: Image.Image, target: int, progress: ProgressFn) -> np.ndarray:
        if progress:
            progress(0.0, f"{self.title}: running")
        self.cam.activations_and_grads = ActivationsAndGradients(self.detector.model, self.layers, None, self.cam.detach)
        try:
            with torch.enable_grad():
                return self.cam(input_tensor=batch, targets=[ClassifierOutputTarget(target)])[0]
        finally:
            self.cam.activations_and_grads.release()
            self.cam.activations_and_grads.activations, self.cam.activations_and_grads.gradients = [], []


class GradCamExplainer(PytorchGradCamExplainer):
    key = "grad_cam"
    cam_class = GradCAM


class ScoreCamExplainer(PytorchGradCamExplainer):
    key = "score_cam"
    cam_class = ScoreCAM

    def make_cam(self, layers: list[torch.nn.Module]):
        cam = ScoreCAM(model=self.detector.model, target_layers=layers)
        cam.batch_size = BATCH_SIZE
        return cam


class PerImageAblationLayer(AblationLayer):
    """pytorch-grad-cam's ablation rule with one value per image: 0 if the map's minimum is 0, else min - 1e7.

    The library's own layer re-reads the minimum after every ablated copy in a
    batch, so the value it writes drifts by -1e7 per batch position; computing
    it once keeps the result independent of the batch size (and equal to the
    library's with ``batch_size=1``).
    """

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        output = self.activations
        value = ablation_value(output)
        for i in range(output.size(0)):
            output[i, self.indices[i], :] = value
        return output


def ablation_value(activations: torch.Tensor) -> float:
    """The value an ablated channel takes: 0 if the smallest activation is 0, else that minimum - 1e7."""
    low = float(activations.min())
    return 0.0 if low == 0 else low - ABLATION_OFFSET


class AblationCamExplainer(PytorchGradCamExplainer):
    key = "ablation_cam"

    def make_cam(self, layers: list[torch.nn.Module]):
        return AblationCAM(model=self.detector.model, target_layers=layers,
                           ablation_layer=PerImageAblationLayer(), batch_size=32)
