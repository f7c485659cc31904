"""Explanation methods behind one interface, built once per detector and reused.

Which methods exist, their names, captions and variants: the registry in :mod:`gauntlet.explain.methods`.
"""
from __future__ import annotations

from ..detector import Detector
from .base import Explainer, Explanation, ProgressFn, display_size, normalise
from .methods import (FAST, FULL, METHODS, Method, available_variants, build_explainer, default_method,
                      default_methods, explainer_factory, method_choices, method_title, register)


class ExplainerSet:
    """Explainers for one detector, built on first use and reused (hooks live as long as the set)."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self._built: dict[tuple[str, str, str], Explainer] = {}

    def get(self, method: str, variant: str = FULL, layers: str = "last") -> Explainer:
        key = (method, variant, layers)
        if key not in self._built:
            self._built[key] = build_explainer(method, self.detector, layers, variant)
        return self._built[key]

    def close(self) -> None:
        for explainer in self._built.values():
            explainer.close()
        self._built.clear()


__all__ = [
    "Explainer", "Explanation", "ExplainerSet", "ProgressFn", "METHODS", "Method", "FAST", "FULL",
    "available_variants", "build_explainer", "default_method", "default_methods", "display_size",
    "explainer_factory", "method_choices", "method_title", "normalise", "register",
]
