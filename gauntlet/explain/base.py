"""The small interface every explanation method implements.

An :class:`Explainer` is built once per (detector, target layers) and reused
for many images; it holds hooks, so release it with ``close()`` or ``with``.
``explain`` returns an :class:`Explanation`: a heatmap in [0, 1] at the size
of the display image (small images are enlarged, as the study found native
32x32 heatmaps unreadable), the class explained and the time it took.
"""
from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from PIL import Image

from ..detector import Detector, ModelInput
from ..errors import UserError

ProgressFn = Optional[Callable[[float, str], None]]
MIN_DISPLAY_SIDE = 256
MAX_DISPLAY_SIDE = 512


@dataclass
class Explanation:
    """A heatmap (HxW float32 in [0, 1], same size as ``image``) for one class."""

    method: str
    variant: str
    heatmap: np.ndarray
    image: Image.Image
    target_index: int
    target_label: str
    seconds: float


def display_size(size: tuple[int, int]) -> tuple[int, int]:
    """Enlarge small images to at least 256 px on the long side; shrink huge ones to 512."""
    width, height = size
    long_side = max(width, height)
    target = min(max(long_side, MIN_DISPLAY_SIDE), MAX_DISPLAY_SIDE)
    scale = target / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def normalise(cam: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1]; a constant map becomes all zeros."""
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float32))
    low, high = float(cam.min()), float(cam.max())
    if high - low < 1e-12:
        return np.zeros_like(cam)
    return (cam - low) / (high - low)


def square_map_to_image(cam: np.ndarray, square_side: int, box: tuple[int, int, int, int],
                        size: tuple[int, int]) -> np.ndarray:
    """Map a heatmap over the padded square back onto the original image's area, at ``size``."""
    tensor = torch.from_numpy(np.ascontiguousarray(cam, dtype=np.float32))[None, None]
    square = torch.nn.functional.interpolate(tensor, size=(square_side, square_side), mode="bilinear",
                                             align_corners=False)[0, 0]
    left, top, right, bottom = box
    crop = square[top:bottom, left:right][None, None]
    out = torch.nn.functional.interpolate(crop, size=(size[1], size[0]), mode="bilinear", align_corners=False)
    return normalise(out[0, 0].numpy())


class ExplanationTimeout(UserError, TimeoutError):
    """An explanation ran past its time limit and was stopped (the message is for people)."""


@contextmanager
def time_limit(model: torch.nn.Module, seconds: float | None) -> Iterator[None]:
    """Stop any work on ``model`` once ``seconds`` have passed: the next forward pass raises.

    Every method (CAMs, LIME) works through batched forward passes, so a
    forward pre-hook bounds all of them without threads or signals. Only the
    calling thread is stopped: other visitors' predictions on the model go on.
    """
    if not seconds:
        yield
        return
    deadline, owner = time.monotonic() + seconds, threading.get_ident()

    def check(module: torch.nn.Module, args: object) -> None:
        if time.monotonic() > deadline and threading.get_ident() == owner:
            raise ExplanationTimeout(f"The explanation took longer than {seconds:.0f} s and was stopped. "
                                     "Try the fast variant, or fewer methods at once.")

    handle = model.register_forward_pre_hook(check)
    try:
        yield
    finally:
        handle.remove()


class Explainer(ABC):
    """Base class: subclasses implement :meth:`compute` on the model's input tensor."""

    key: str = ""  # the method's row in the registry (gauntlet.explain.methods), where its title and captions live
    variant: str = "full"

    def __init__(self, detector: Detector, target_layers: list[str] | str = "last") -> None:
        self.detector = detector
        if isinstance(target_layers, str):
            target_layers = detector.config.target_layers[target_layers]
        self.layer_paths = list(target_layers)

    @property
    def title(self) -> str:
        from .methods import method_title  # the registry imports every explainer class

        return method_title(self.key)

    @abstractmethod
    def compute(self, batch: torch.Tensor, square: Image.Image, target: int, progress: ProgressFn) -> np.ndarray:
        """Return a 2-D map over the padded square input (any resolution), larger = more evidence."""

    def explain(self, image: Image.Image | ModelInput, target: int | None = None, progress: ProgressFn = None,
                time_limit_s: float | None = None) -> Explanation:
        """Explain ``target`` (default: the class the model predicts) for an RGB image.

        Pass a :class:`ModelInput` (``Detector.prepare``) to share one preprocessing between
        several explainers. With ``time_limit_s``, raises :class:`ExplanationTimeout` once that
        much time has passed.
        """
        prepared = image if isinstance(image, ModelInput) else self.detector.prepare(image)
        image, square, box, batch = prepared.image, prepared.square, prepared.box, prepared.batch
        if target is None:
            target = int(self.detector.verdict_probabilities(batch)[0].argmax())
        start = time.perf_counter()
        with time_limit(self.detector.model, time_limit_s):
            cam = self.compute(batch, square, target, progress)
        seconds = time.perf_counter() - start
        size = display_size(image.size)
        heatmap = square_map_to_image(cam, square.size[0], box, size)
        shown = image.resize(size, Image.BICUBIC) if size != image.size else image
        return Explanation(self.key, self.variant, heatmap, shown, target, self.detector.labels[target], seconds)

    def close(self) -> None:
        """Release hooks and cached tensors (no-op unless the method holds any)."""

    def __enter__(self) -> "Explainer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
