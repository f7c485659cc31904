"""LIME (the ``lime`` package) over superpixels of the enlarged square image."""
from __future__ import annotations

import numpy as np
import torch
from lime import lime_image
from PIL import Image

from ..detector import Detector
from .base import Explainer, ProgressFn
from .cam import BATCH_SIZE

WORK_SIDE = 224  # LIME segments a canvas of at least this size: 32x32 superpixels are meaningless


class LimeExplainer(Explainer):
    """Model-agnostic: perturbs superpixels and fits a local linear model to the verdicts."""

    key = "lime"

    def __init__(self, detector: Detector, target_layers: list[str] | str = "last", num_samples: int = 1000,
                 batch_size: int = BATCH_SIZE, seed: int = 0) -> None:
        super().__init__(detector, target_layers)
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed

    def segment(self, canvas: np.ndarray) -> np.ndarray:
        """LIME's default segmentation (quickshift)."""
        from lime.wrappers.scikit_image import SegmentationAlgorithm

        return SegmentationAlgorithm("quickshift", kernel_size=4, max_dist=200, ratio=0.2,
                                     random_seed=self.seed)(canvas)

    def classify(self, images: np.ndarray) -> np.ndarray:
        """LIME's classifier_fn: uint8 NHWC canvases -> probabilities."""
        with torch.no_grad():
            return self.detector.probabilities(self.detector.to_tensor(images)).numpy()

    def compute(self, batch: torch.Tensor, square: Image.Image, target: int, progress: ProgressFn) -> np.ndarray:
        side = min(max(square.size[0], WORK_SIDE), 2 * WORK_SIDE)
        canvas = np.asarray(square.resize((side, side), Image.BICUBIC), dtype=np.uint8)
        if progress:
            progress(0.0, f"{self.title}: sampling {self.num_samples} perturbations")
        explainer = lime_image.LimeImageExplainer(random_state=self.seed)
        result = explainer.explain_instance(
            canvas, self.classify, labels=(target,), top_labels=None, hide_color=0,
            num_samples=self.num_samples, batch_size=self.batch_size,
            segmentation_fn=self.segment, random_seed=self.seed,
        )
        weights = dict(result.local_exp[target])
        segments = result.segments
        cam = np.zeros(segments.shape, dtype=np.float32)
        for segment_id, weight in weights.items():
            cam[segments == segment_id] = weight
        return cam
