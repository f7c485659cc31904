"""What if it was re-shared? The verdict again after what messengers, thumbnails, crops and screenshots do.

:func:`launder` classifies the original and four laundered copies (``LAUNDERINGS``, built from
:mod:`gauntlet.transforms`), each with a Grad-CAM when an explainer is given, and calls the verdict
*fragile* when any copy gets the other label. A fragile verdict is weak evidence either way: a copy
found online has usually been through one of these. ``benchmarks/laundering.py`` measures how often
each transform flips the default model's verdicts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from PIL import Image

from ..detector import Detector, Prediction
from ..explain import Explanation
from ..transforms import apply

# (title shown, transform name, its parameters): the lab's four re-sharing steps
LAUNDERINGS: tuple[tuple[str, str, dict], ...] = (
    ("JPEG quality 70", "jpeg", {"quality": 70}),
    ("Downscaled to half", "downscale", {"factor": 0.5}),
    ("70 % centre crop", "centre_crop", {"fraction": 0.7}),
    ("Screenshot (PNG re-save)", "screenshot", {}),
)
ExplainFn = Callable[[Image.Image, int], Explanation]


@dataclass
class Variant:
    """One version of the image with its verdict (and the Grad-CAM of that verdict, when asked for)."""

    title: str
    image: Image.Image
    prediction: Prediction
    explanation: Explanation | None = None


@dataclass
class LaunderingReport:
    """The original and its laundered copies; ``flipped`` names the copies whose verdict changed."""

    original: Variant
    copies: list[Variant]

    @property
    def flipped(self) -> list[str]:
        label = self.original.prediction.predicted_label
        return [copy.title for copy in self.copies if copy.prediction.predicted_label != label]

    @property
    def fragile(self) -> bool:
        return bool(self.flipped)

    @property
    def sentence(self) -> str:
        label = self.original.prediction.predicted_label
        if self.fragile:
            return (f"**Fragile:** the verdict {label} flips after {', '.join(self.flipped).lower()}. A copy of "
                    "this image found online has often been through such steps, so this verdict is weak evidence.")
        return (f"**Stable:** the verdict stays {label} after all {len(self.copies)} re-sharing steps. "
                "Stable is not the same as right: a detector can be consistently wrong.")


def laundered_copies(image: Image.Image) -> list[tuple[str, Image.Image]]:
    """The four re-shared versions of ``image``, with their titles."""
    return [(title, apply(name, image, **params)) for title, name, params in LAUNDERINGS]


def launder(detector: Detector, image: Image.Image, explain: ExplainFn | None = None) -> LaunderingReport:
    """Classify ``image`` and its laundered copies; ``explain(image, class_index)`` adds a heatmap to each."""

    def variant(title: str, version: Image.Image) -> Variant:
        prediction = detector.predict(version)
        heatmap = explain(version, prediction.predicted_index) if explain else None
        return Variant(title, version, prediction, heatmap)

    return LaunderingReport(variant("Original", image), [variant(t, v) for t, v in laundered_copies(image)])
