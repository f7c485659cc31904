"""Detector: image -> probabilities of REAL and FAKE, with the checkpoint's own preprocessing."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .calibration import NOT_SURE, Calibration
from .checkpoint import Checkpoint, load_checkpoint
from .settings import BUNDLED_CHECKPOINTS

FAKE_INDEX = 1


def pad_to_square(image: Image.Image, fill: tuple[int, int, int] = (0, 0, 0)) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Pad ``image`` centred on a square canvas, as the study did; returns it and the pasted box."""
    width, height = image.size
    side = max(width, height)
    if width == height:
        return image, (0, 0, width, height)
    canvas = Image.new("RGB", (side, side), fill)
    left, top = (side - width) // 2, (side - height) // 2
    canvas.paste(image, (left, top))
    return canvas, (left, top, left + width, top + height)


@dataclass(frozen=True)
class ModelInput:
    """One image as the network sees it, prepared once per analysis and shared by every explainer.

    ``square`` is the padded square before resizing and ``box`` where ``image`` lies in it (to lay
    heatmaps back over the image); ``batch`` is the normalised 1x3xSxS tensor.
    """

    image: Image.Image
    square: Image.Image
    box: tuple[int, int, int, int]
    batch: torch.Tensor


@dataclass
class Prediction:
    """A verdict: probability per label (calibrated), the predicted class (the argmax) and whether it is sure.

    ``predicted_index``/``predicted_label`` are always the more probable class (what explanations explain);
    ``sure`` is False when the FAKE probability lies in the checkpoint's "not sure" band
    (:mod:`gauntlet.calibration`), and ``verdict_label`` is then ``NOT SURE``.
    """

    probabilities: dict[str, float]
    predicted_index: int
    predicted_label: str
    sure: bool = True

    @property
    def fake_probability(self) -> float:
        return list(self.probabilities.values())[FAKE_INDEX]

    @property
    def verdict_label(self) -> str:
        """The three-way verdict: the predicted label when sure, else ``NOT SURE``."""
        return self.predicted_label if self.sure else NOT_SURE


class Detector:
    """Wraps a checkpoint: preprocessing, batched inference and labels.

    ``square_input`` maps an RGB image to the padded square the network sees
    (before resizing); explainers use it to lay heatmaps back over the image.
    """

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self.model = checkpoint.model.eval()
        self.config = checkpoint.config
        self.labels = list(self.config.labels)
        self.calibration = Calibration.from_config(self.config.calibration)
        self._mean = torch.tensor(self.config.mean).view(1, 3, 1, 1)
        self._std = torch.tensor(self.config.std).view(1, 3, 1, 1)

    @classmethod
    def from_source(cls, source: str, checkpoints_dir: Path = BUNDLED_CHECKPOINTS) -> "Detector":
        return cls(load_checkpoint(source, checkpoints_dir))

    @property
    def input_size(self) -> int:
        return int(self.config.input_size)

    def square_input(self, image: Image.Image) -> tuple[Image.Image, tuple[int, int, int, int]]:
        if self.config.resize == "pad_square":
            return pad_to_square(image)
        return image, (0, 0, *image.size)

    def to_tensor(self, images: list[Image.Image] | np.ndarray) -> torch.Tensor:
        """Resize square RGB images (PIL or uint8 NHWC array) and normalise them into a batch.

        Arrays (LIME's perturbed copies) go through the same bicubic PIL resize as the image behind the
        verdict (and as training.data's arrays), so every path scores exactly the pixels the model was given.
        """
        if isinstance(images, np.ndarray):
            images = [Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)) for array in images]
        size = self.input_size
        arrays = [np.asarray(im.resize((size, size), Image.BICUBIC), dtype=np.uint8) for im in images]
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0
        return (batch - self._mean) / self._std

    def prepare(self, image: Image.Image) -> ModelInput:
        """One RGB image -> its padded square and normalised batch, for the verdict and every explainer."""
        square, box = self.square_input(image)
        return ModelInput(image, square, box, self.to_tensor([square]))

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """One RGB image -> a normalised 1x3xSxS tensor (padded to a square, then resized)."""
        return self.prepare(image).batch

    @torch.no_grad()
    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """The network's softmax probabilities for a preprocessed batch (what explanations explain)."""
        return torch.softmax(self.model(batch), dim=1)

    @torch.no_grad()
    def verdict_probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """Probabilities behind a verdict: the network's, averaged with those of the left-right mirror image when
        the checkpoint's ``test_time_flip`` says so (chosen on validation data), at its calibrated temperature."""
        probs = self.probabilities(batch)
        if self.config.test_time_flip:
            probs = (probs + self.probabilities(batch.flip(3))) / 2
        return self.calibration.rescale(probs)

    def predict(self, image: Image.Image) -> Prediction:
        """Classify one RGB image: calibrated probabilities, the argmax class, and whether the verdict is sure."""
        probs = self.verdict_probabilities(self.preprocess(image))[0].tolist()
        index = int(np.argmax(probs))
        return Prediction({label: float(p) for label, p in zip(self.labels, probs)}, index, self.labels[index],
                          self.calibration.is_sure(probs[FAKE_INDEX]))
