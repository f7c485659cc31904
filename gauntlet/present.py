"""Words for people: captions and summaries shown next to verdicts and heatmaps."""
from __future__ import annotations

from .analysis import MethodResult
from .checkpoint import CheckpointConfig
from .detector import Prediction
from .explain import METHODS, Explanation, method_title
from .explain.faithfulness import Faithfulness
from .model_card import BENCHMARK_TITLES
from .stats import accuracy_interval, interval_text

COLOUR_LEGEND = ("**How to read the heatmaps:** red and yellow mark the regions that most support the verdict, "
                 "blue the regions that matter least. A heatmap shows where the model looked, not proof that "
                 "a region is fake.")


KIND_WORDS = {"FAKE": "made by a generative model (AI)", "REAL": "a real photo or artwork"}
LEAN_WORDS = {"FAKE": "AI-generated", "REAL": "real"}


def verdict_sentence(prediction: Prediction) -> str:
    """One plain sentence: the verdict and how sure the model is (or that it is not sure at all)."""
    confidence = prediction.probabilities[prediction.predicted_label]
    if not prediction.sure:
        return (f"The model is **not sure** about this image: it leans towards {LEAN_WORDS[prediction.predicted_label]} "
                f"({confidence:.0%}), but on scores like this its verdicts were too often wrong on images unlike its "
                "training data, so it gives no verdict.")
    strength = "very confident" if confidence >= 0.9 else "fairly confident" if confidence >= 0.7 else "a narrow call"
    return f"The model thinks this image is **{KIND_WORDS[prediction.predicted_label]}** ({confidence:.0%}, {strength})."


def verdict_short(prediction: Prediction) -> str:
    """The verdict in a table cell: ``FAKE (93%)``, or ``not sure (leans FAKE, 61%)``."""
    confidence = prediction.probabilities[prediction.predicted_label]
    if not prediction.sure:
        return f"not sure (leans {prediction.predicted_label}, {confidence:.0%})"
    return f"{prediction.predicted_label} ({confidence:.0%})"


def track_record(config: CheckpointConfig, unseen: dict[str, tuple[float, int]] | None = None) -> str:
    """How often the model was right on its own test set, and on sources it never saw: what one verdict is worth.

    ``unseen``: (accuracy, images) per never-trained-on benchmark (see :func:`gauntlet.model_card.unseen_accuracy`).
    Empty for checkpoints that carry no test metrics (e.g. ones loaded from elsewhere).
    """
    tests = [(name, m) for name, m in config.metrics.items() if "confusion_matrix" in m and m.get("n")]
    if not tests:
        return ""
    name, metrics = tests[0]
    text = (f"On its own test set, {BENCHMARK_TITLES.get(name, name)} with {metrics['n']:,} images, this model was "
            f"right {metrics['accuracy']:.1%} of the time ({_interval(metrics['accuracy'], metrics['n'])}).")
    if not unseen:
        return text + " On images unlike its training data it is wrong far more often (see the Model card tab)."
    parts = [f"on {acc:.1%} of {BENCHMARK_TITLES.get(b, b)} ({_interval(acc, n)})" for b, (acc, n) in unseen.items()]
    coin = all(low <= 0.5 <= high for low, high in (accuracy_interval(acc, n) for acc, n in unseen.values()))
    return (f"{text} On collections it never trained on, it was right {' and '.join(parts)}"
            + (" — no better than a coin toss." if coin else "."))


def _interval(accuracy: float, n: int) -> str:
    return interval_text(*accuracy_interval(accuracy, n))


def method_caption(explanation: Explanation) -> str:
    """Short caption for a gallery tile (it must fit under the picture): method, variant, time taken."""
    return f"{method_title(explanation.method)} ({explanation.variant}) · {explanation.seconds:.1f} s"


def method_description(method: str, variant: str) -> str:
    """What this variant of the method does and what its colours mean (the registry's caption)."""
    return METHODS[method].caption(variant) if method in METHODS else ""


def explanation_notes(results: list[MethodResult], pending: list[str] | tuple[str, ...] = ()) -> str:
    """Markdown under the gallery: one paragraph per method with its timing (and faithfulness), then the legend.

    ``pending``: methods still running (the gallery fills in as each one finishes).
    """
    lines = []
    for result in results:
        explanation = result.explanation
        line = (f"- **{method_title(explanation.method)}** ({explanation.variant}, {explanation.seconds:.2f} s, "
                f"explains {explanation.target_label}): {method_description(explanation.method, explanation.variant)}")
        if result.faithfulness is not None:
            line += " " + faithfulness_sentence(explanation, result.faithfulness)
        lines.append(line)
    if pending:
        lines.append(f"- *Still working on: {', '.join(method_title(m) for m in pending)}…*")
    return "\n".join(lines + ["", COLOUR_LEGEND]) if lines else "Choose at least one explanation method."


def faithfulness_sentence(explanation: Explanation, scores: Faithfulness) -> str:
    """Deletion and insertion AUC in words: how much the verdict hangs on the highlighted pixels."""
    label = explanation.target_label
    return (f"*Faithfulness:* blacking out the most highlighted pixels first, the {label} score averages "
            f"{scores.deletion_auc:.0%} along the way (deletion AUC {scores.deletion_auc:.2f}: lower = the heatmap "
            f"found what the verdict needs); revealing them first on a blurred copy, it averages "
            f"{scores.insertion_auc:.0%} (insertion AUC {scores.insertion_auc:.2f}: higher = better).")
