"""Do the heatmaps agree? Rank correlations between methods, and a model-randomisation sanity check.

* :func:`pairwise_agreement` / :func:`agreement_text`: Spearman's rank correlation between each pair of
  heatmaps shown for one image. Methods that find the same evidence rank the same pixels high, whatever
  their scales; when they do not, no single map should be read literally.
* :func:`sanity_check`: after Adebayo et al. (2018), "Sanity Checks for Saliency Maps": explain the same
  image and class with a copy of the model whose classifier head is re-initialised at random. A map that
  hardly changes depends on the image (its edges, its bright parts) more than on what the model learned.

Pure functions over ``(title, heatmap)`` pairs and a :class:`~gauntlet.detector.Detector`; no gradio.
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from scipy.stats import spearmanr

from ..detector import Detector
from ..explain import Explanation, build_explainer, method_title

COMPARE_SIDE = 64  # heatmaps are smooth: 64 x 64 keeps their ranking and makes the correlation instant
AGREE_AT = 0.5  # Spearman's rho from which two maps count as agreeing (a "strong" correlation)
DISAGREE_BELOW = 0.2  # below this the maps share little more than chance
SANITY_SIMILAR_AT = 0.5  # Adebayo et al. flag maps whose rank correlation with the randomised model's stays high
AGREE = "the methods agree on where the evidence is"
PARTLY = "they only partly agree: trust the regions they share, not the details"
DISAGREE = "they disagree: read none of them literally"
Heatmaps = list[tuple[str, np.ndarray]]


@dataclass
class PairAgreement:
    """Spearman's rank correlation between two methods' heatmaps (-1 .. 1; 0 when a map is blank)."""

    first: str
    second: str
    rho: float


@dataclass
class SanityCheck:
    """A method's heatmap against the same method's on a copy of the model with a random head."""

    method: str
    rho: float
    passed: bool
    sentence: str


def _comparable(heatmap: np.ndarray, side: int = COMPARE_SIDE) -> np.ndarray:
    """The map resized to ``side`` x ``side`` (bilinear), flattened: maps of any sizes become comparable."""
    image = Image.fromarray(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), mode="F")
    return np.asarray(image.resize((side, side), Image.BILINEAR), dtype=np.float64).ravel()


def rank_correlation(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman's rho between two heatmaps (resized to a common grid); 0.0 when either is constant."""
    a, b = _comparable(first), _comparable(second)
    if np.ptp(a) < 1e-12 or np.ptp(b) < 1e-12:
        return 0.0
    return float(spearmanr(a, b).statistic)


def pairwise_agreement(heatmaps: Heatmaps) -> list[PairAgreement]:
    """The rank correlation of every pair of ``(title, heatmap)``, in the order given."""
    return [PairAgreement(t1, t2, rank_correlation(h1, h2)) for (t1, h1), (t2, h2) in itertools.combinations(
        heatmaps, 2)]


def verdict_words(pairs: list[PairAgreement]) -> str:
    """AGREE when every pair correlates strongly, DISAGREE when they correlate little on average, else PARTLY."""
    rhos = [pair.rho for pair in pairs]
    if min(rhos) >= AGREE_AT:
        return AGREE
    return DISAGREE if float(np.mean(rhos)) < DISAGREE_BELOW else PARTLY


def agreement_text(heatmaps: Heatmaps) -> str:
    """One line for the UI: the verdict in words, then each pair's rho (empty with fewer than two maps)."""
    if len(heatmaps) < 2:
        return ""
    pairs = pairwise_agreement(heatmaps)
    details = "; ".join(f"{p.first} vs {p.second}: ρ = {p.rho:+.2f}" for p in pairs)
    return f"**Do the heatmaps agree?** In short, {verdict_words(pairs)} (rank correlation {details})."


def with_random_head(detector: Detector, seed: int = 0) -> Detector:
    """A copy of ``detector`` whose classifier head (``model.head``) has fresh random weights."""
    checkpoint = dataclasses.replace(detector.checkpoint, model=copy.deepcopy(detector.model))
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for module in checkpoint.model.head.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    finally:
        torch.random.set_rng_state(generator_state)
    return Detector(checkpoint)


def sanity_check(detector: Detector, explanation: Explanation, original: Image.Image, layers: str = "last",
                 seed: int = 0, randomised: Detector | None = None) -> SanityCheck:
    """Explain ``original`` again, for the same class and with the same method, on a random-head copy.

    ``explanation`` is the heatmap shown for ``original`` by ``detector``; the result's ``rho`` is the rank
    correlation between the two maps. ``randomised``: the random-head copy, when the caller checks many images
    with one (default: ``with_random_head(detector, seed)``, made here).
    """
    randomised = randomised or with_random_head(detector, seed)
    with build_explainer(explanation.method, randomised, layers, explanation.variant) as explainer:
        again = explainer.explain(original, target=explanation.target_index)
    rho = rank_correlation(explanation.heatmap, again.heatmap)
    title = method_title(explanation.method)
    return SanityCheck(explanation.method, rho, rho < SANITY_SIMILAR_AT, sanity_sentence(title, rho))


def sanity_sentence(title: str, rho: float) -> str:
    """What the randomisation test says about one method's map, in a sentence."""
    if rho >= SANITY_SIMILAR_AT:
        return (f"**Sanity check:** with the model's decision layers replaced by random ones, {title} draws almost "
                f"the same map (ρ = {rho:+.2f}): it shows the image more than the model's reasoning.")
    return (f"**Sanity check:** with the model's decision layers replaced by random ones, {title}'s map changes "
            f"(ρ = {rho:+.2f}): it depends on what the model learned, as an explanation should.")
