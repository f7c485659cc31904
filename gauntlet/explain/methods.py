"""The method registry: one row per explanation method, read by every place that lists, names or describes one.

The detector's and the quiz's choice lists, the methods run by default, the captions under each heatmap, the
quiz's default heatmap and the explanation benchmark all come from :data:`METHODS`. Adding a method is one
:class:`~gauntlet.explain.base.Explainer` subclass per variant and one :func:`register` call below.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..detector import Detector
from ..errors import UserError
from .base import Explainer
from .cam import AblationCamExplainer, GradCamExplainer, ScoreCamExplainer
from .fast_cam import FastAblationCamExplainer, FastScoreCamExplainer, GradCamPreviewExplainer
from .fast_lime import FastLimeExplainer
from .lime_explainer import LimeExplainer

ExplainerFactory = Callable[..., Explainer]  # (detector, target layers, **options) -> Explainer
FULL, FAST = "full", "fast"  # the original method; the same kind of map with less work (see fast_cam, fast_lime)


@dataclass(frozen=True)
class Method:
    """One explanation method: its name for people, its variants and what each shows."""

    key: str
    title: str
    variants: dict[str, ExplainerFactory]
    captions: dict[str, str]  # per variant: what it does and what its colours mean (FULL's when a variant has none)
    default_on: bool = False  # ticked in the detector, run by the warm-up and the benchmarks
    note: str = ""  # after the title in the detector's choice list, e.g. "instant"

    @property
    def choice_label(self) -> str:
        return f"{self.title} ({self.note})" if self.note else self.title

    def caption(self, variant: str) -> str:
        return self.captions.get(variant) or self.captions[FULL]


METHODS: dict[str, Method] = {}  # in the order the choice lists show them


def register(method: Method) -> Method:
    """Add (or replace) a row of the registry."""
    METHODS[method.key] = method
    return method


def method_title(key: str) -> str:
    """The method's name for people (the key itself for an unknown one)."""
    return METHODS[key].title if key in METHODS else key


def method_choices(with_notes: bool = True) -> list[tuple[str, str]]:
    """(label, key) pairs for a choice list, in registry order."""
    return [(m.choice_label if with_notes else m.title, m.key) for m in METHODS.values()]


def default_methods() -> list[str]:
    """The methods a visitor sees unless they choose others."""
    return [m.key for m in METHODS.values() if m.default_on]


def default_method() -> str:
    """The one method shown where only one heatmap fits (the quiz's reveal): the first default one."""
    return default_methods()[0]


def available_variants(key: str) -> list[str]:
    """Variants registered for a method (e.g. ``["fast", "full"]``); [] for an unknown one."""
    return sorted(METHODS[key].variants) if key in METHODS else []


def explainer_factory(key: str, variant: str = FULL) -> ExplainerFactory:
    """The class (or factory) that builds ``key``'s ``variant``; ValueError names the known ones."""
    factory = METHODS[key].variants.get(variant) if key in METHODS else None
    if factory is None:
        known = ", ".join(f"{m}/{v}" for m in METHODS for v in available_variants(m))
        raise UserError(f"Unknown explanation method {key!r} ({variant}); known: {known}.")
    return factory


def build_explainer(key: str, detector: Detector, target_layers: list[str] | str = "last",
                    variant: str = FULL) -> Explainer:
    """Construct one explainer; prefer :class:`gauntlet.explain.ExplainerSet` to reuse them."""
    return explainer_factory(key, variant)(detector, target_layers)


SCORE_CAM = ("Score-CAM masks the image with each feature map and measures how much the model's confidence in its "
             "verdict rises. Red = regions that alone convince the model, blue = regions that do not.")
register(Method(
    "grad_cam", "Grad-CAM", {FULL: GradCamExplainer, FAST: GradCamPreviewExplainer},
    {FULL: "Grad-CAM weighs each feature map by the gradient of the verdict: the instant preview. "
           "Red = regions that pushed the model towards its verdict, blue = regions that did not."},
    note="instant"))
register(Method(
    "score_cam", "Score-CAM", {FULL: ScoreCamExplainer, FAST: FastScoreCamExplainer},
    {FULL: SCORE_CAM, FAST: SCORE_CAM.replace("with each feature map", "with each of its most active feature maps")},
    default_on=True))
register(Method(
    "ablation_cam", "Ablation-CAM", {FULL: AblationCamExplainer, FAST: FastAblationCamExplainer},
    {FULL: "Ablation-CAM switches off one feature map at a time and measures how much the verdict drops. "
           "Red = regions the verdict depends on, blue = regions it can do without."},
    default_on=True))
register(Method(
    "lime", "LIME", {FULL: LimeExplainer, FAST: FastLimeExplainer},
    {FULL: "LIME hides random groups of superpixels, watches how the verdict changes and fits a simple model to "
           "it. Red = superpixels that support the verdict, blue = superpixels that argue against it."},
    default_on=True))
