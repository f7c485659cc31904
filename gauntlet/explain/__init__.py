"""Explanation methods behind one interface, built once per detector and reused."""
from __future__ import annotations

from typing import Callable

from ..detector import Detector
from .base import Explainer, Explanation, ProgressFn, display_size, normalise
from .cam import AblationCamExplainer, GradCamExplainer, ScoreCamExplainer
from .fast_cam import FastAblationCamExplainer, FastScoreCamExplainer, GradCamPreviewExplainer
from .fast_lime import FastLimeExplainer
from .lime_explainer import LimeExplainer

ExplainerFactory = Callable[[Detector, "list[str] | str"], Explainer]

# (method, variant) -> factory. "fast" computes the same kind of map with less work (see fast_cam, fast_lime).
REGISTRY: dict[tuple[str, str], ExplainerFactory] = {
    ("grad_cam", "full"): GradCamExplainer,
    ("grad_cam", "fast"): GradCamPreviewExplainer,
    ("score_cam", "full"): ScoreCamExplainer,
    ("score_cam", "fast"): FastScoreCamExplainer,
    ("ablation_cam", "full"): AblationCamExplainer,
    ("ablation_cam", "fast"): FastAblationCamExplainer,
    ("lime", "full"): LimeExplainer,
    ("lime", "fast"): FastLimeExplainer,
}
METHOD_TITLES = {"grad_cam": "Grad-CAM", "score_cam": "Score-CAM", "ablation_cam": "Ablation-CAM", "lime": "LIME"}


def available_variants(method: str) -> list[str]:
    """Variants registered for ``method`` (e.g. ``["fast", "full"]``)."""
    return sorted(variant for (name, variant) in REGISTRY if name == method)


def build_explainer(method: str, detector: Detector, target_layers: list[str] | str = "last",
                    variant: str = "full") -> Explainer:
    """Construct one explainer; prefer :class:`ExplainerSet` to reuse them."""
    try:
        factory = REGISTRY[(method, variant)]
    except KeyError:
        known = ", ".join(f"{m}/{v}" for m, v in sorted(REGISTRY))
        raise ValueError(f"Unknown explanation method {method!r} ({variant}); known: {known}.") from None
    return factory(detector, target_layers)


class ExplainerSet:
    """Explainers for one detector, built on first use and reused (hooks live as long as the set)."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self._built: dict[tuple[str, str, str], Explainer] = {}

    def get(self, method: str, variant: str = "full", layers: str = "last") -> Explainer:
        key = (method, variant, layers)
        if key not in self._built:
            self._built[key] = build_explainer(method, self.detector, layers, variant)
        return self._built[key]

    def close(self) -> None:
        for explainer in self._built.values():
            explainer.close()
        self._built.clear()


__all__ = [
    "Explainer", "Explanation", "ExplainerSet", "ProgressFn", "REGISTRY", "METHOD_TITLES", "available_variants",
    "build_explainer", "display_size", "normalise",
]
