"""What the app does, as plain functions over a shared model catalogue (no gradio here).

A :class:`ModelCatalog` is the process-wide, read-only resource: detectors and
their explainers are loaded on first use and reused by every visitor. Per-user
state never lives here; the UI keeps it in ``gr.State``.
"""
from __future__ import annotations

import copy
import csv
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .checkpoint import CheckpointConfig, bundled_names, load_checkpoint, load_preferring_hub, read_config
from .detector import Detector, Prediction
from .errors import UserError
from .explain import Explanation, ExplainerSet, ProgressFn, available_variants, default_methods, method_title
from .explain.base import ExplanationTimeout
from .explain.faithfulness import Faithfulness, explanation_faithfulness
from .images import DEFAULT_MAX_PIXELS, load_image
from .model_card import unseen_accuracy
from .present import track_record
from .render import overlay
from .settings import BUNDLED_CHECKPOINTS, Settings

log = logging.getLogger(__name__)


@dataclass
class ModelEntry:
    """A model the user can pick: its label in the selector and where it loads from."""

    key: str
    label: str
    source: str
    bundled: bool
    config: CheckpointConfig | None = None


@dataclass
class Analysis:
    """A verdict with its explanations, ready to display."""

    image: Image.Image
    prediction: Prediction
    explanations: list[Explanation] = field(default_factory=list)
    overlays: list[Image.Image] = field(default_factory=list)
    model_label: str = ""
    track_record: str = ""  # how often this model was right on its test set (see gauntlet.present.track_record)
    faithfulness: list[Faithfulness] = field(default_factory=list)  # one per explanation, when measured


def selector_label(config: CheckpointConfig) -> str:
    """A model's name in the selector, with the collections it learned from (its config's ``datasets``)."""
    data = " + ".join(name.upper() for name in config.datasets)
    return f"{config.title} — trained on {data}" if data else config.title


def default_model_order(configs: dict[str, CheckpointConfig]) -> list[str]:
    """Bundled checkpoints by their config's ``default_rank`` (lowest first: the app's default), unranked last."""
    return sorted(configs, key=lambda name: (configs[name].default_rank is None, configs[name].default_rank or 0, name))


def default_bundled_model(checkpoints_dir: Path = BUNDLED_CHECKPOINTS) -> str | None:
    """The bundled checkpoint the app shows first (None when there is none): what benchmarks measure."""
    configs = {name: read_config(checkpoints_dir / name) for name in bundled_names(checkpoints_dir)}
    return default_model_order(configs)[0] if configs else None


class ModelCatalog:
    """Lazily loaded detectors and explainer sets, shared by all sessions (thread-safe)."""

    def __init__(self, extra_sources: tuple[str, ...] = (), checkpoints_dir: Path = BUNDLED_CHECKPOINTS,
                 unseen: dict[str, dict[str, tuple[float, int]]] | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                 explain_timeout_s: float | None = None, hub_offline: bool = False) -> None:
        """``unseen``: per bundled name, its accuracy on never-trained-on collections (the track record under
        each verdict; see :func:`gauntlet.model_card.unseen_accuracy`); ``max_pixels``: the upload limit;
        ``explain_timeout_s``: when an explanation is stopped (None: never)."""
        self.checkpoints_dir = checkpoints_dir
        self.max_pixels, self.explain_timeout_s, self.hub_offline = max_pixels, explain_timeout_s, hub_offline
        self.entries: dict[str, ModelEntry] = {}
        configs = {name: read_config(self.checkpoints_dir / name) for name in bundled_names(self.checkpoints_dir)}
        for name in default_model_order(configs):
            self.entries[name] = ModelEntry(name, selector_label(configs[name]), name, True, configs[name])
        for source in extra_sources:
            self.entries[source] = ModelEntry(source, source, source, False)
        self.unseen = unseen or {}
        self._detectors: dict[str, Detector] = {}
        self._explainers: dict[str, ExplainerSet] = {}
        self._lock = threading.Lock()
        self._model_locks: dict[str, threading.Lock] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> "ModelCatalog":
        """The app's catalogue: the configured folder and extra models, limits, and the stored cross-dataset
        results (they describe the bundled checkpoints)."""
        return cls(settings.default_models, settings.checkpoints_dir, unseen_accuracy(), settings.max_pixels,
                   settings.explain_timeout_s, settings.hub_offline)

    def choices(self) -> list[tuple[str, str]]:
        """(label, key) pairs for a model selector."""
        return [(entry.label, key) for key, entry in self.entries.items()]

    @property
    def default_key(self) -> str | None:
        return next(iter(self.entries), None)

    def detector(self, key: str) -> Detector:
        """The detector for ``key``, loaded once (Hub first for bundled models, bundled copy as fallback)."""
        with self._lock:
            if key not in self._detectors:
                entry = self.entries.get(key)
                if entry is None:
                    raise UserError(f"Unknown model {key!r}.")
                if entry.bundled:
                    checkpoint = load_preferring_hub(entry.source, self.checkpoints_dir, self.hub_offline)
                else:
                    checkpoint = load_checkpoint(entry.source, self.checkpoints_dir, self.hub_offline)
                self._detectors[key] = Detector(checkpoint)
                # Explanations attach hooks and swap layers: they get their own copy of the network,
                # so verdicts for other visitors never wait for them or see their hooks.
                self._explainers[key] = ExplainerSet(Detector(copy.deepcopy(checkpoint)))
                log.info("Loaded model %s from %s", key, checkpoint.source)
            return self._detectors[key]

    def explainers(self, key: str) -> ExplainerSet:
        self.detector(key)
        return self._explainers[key]

    def predict(self, source, key: str) -> Analysis:
        """Load an upload safely and classify it (no explanations: milliseconds)."""
        image = load_image(source, max_pixels=self.max_pixels)
        detector = self.detector(key)
        return Analysis(image=image, prediction=detector.predict(image), model_label=self.entries[key].label,
                        track_record=track_record(detector.config, self.unseen.get(key)))

    def analyse(self, source, key: str, methods: list[str], variant: str = "fast", layers: str = "last",
                progress: ProgressFn = None, faithfulness: bool = False) -> Analysis:
        """Load an upload safely, classify it and explain the predicted class with each method.

        With ``faithfulness``, each heatmap's deletion and insertion AUC are measured too
        (``2 * (DEFAULT_STEPS + 1)`` forward passes per method, see :mod:`gauntlet.explain.faithfulness`).
        """
        analysis = self.predict(source, key)
        image = analysis.image
        for index, method in enumerate(methods):
            chosen = variant if variant in available_variants(method) else "full"
            if progress:
                progress(index / max(len(methods), 1), f"{method_title(method)} ({chosen})")
            with self._lock_for(key):
                explainers = self.explainers(key)
                explanation = explainers.get(method, chosen, layers).explain(
                    image, target=analysis.prediction.predicted_index, time_limit_s=self.explain_timeout_s)
                if faithfulness:
                    analysis.faithfulness.append(explanation_faithfulness(explainers.detector, explanation))
            analysis.explanations.append(explanation)
            analysis.overlays.append(overlay(explanation.image, explanation.heatmap))
        return analysis

    def warm_up(self, key: str | None = None, methods: list[str] | None = None) -> None:
        """Load a model (the default one) and run a verdict and its fast explanations on a blank image.

        Called before the app starts serving, so the first visitors after a restart do not wait
        for the checkpoint to load or for the first-call allocations of each explainer.
        """
        key = key or self.default_key
        if key is None:
            return
        try:
            self.analyse(Image.new("RGB", (64, 64), (128, 128, 128)), key, methods or default_methods())
            log.info("Warmed up model %s", key)
        except ExplanationTimeout:  # a busy host: the app still starts, and the model is loaded
            log.warning("Warm-up of model %s stopped at the explanation time limit", key)

    def _lock_for(self, key: str) -> threading.Lock:
        """Explainers hold hooks on their model copy: one explanation per model at a time."""
        with self._lock:
            return self._model_locks.setdefault(key, threading.Lock())


def example_images(data_dir: Path | None, per_class: int = 2) -> list[str]:
    """A few example paths for the detector tab: RVAA validation images (never used by quiz decks)."""
    manifest = data_dir / "rvaa" / "manifest.csv" if data_dir else None
    if manifest is None or not manifest.is_file():
        return []
    with manifest.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "val"]
    picks = [r for label in ("REAL", "FAKE") for r in [r for r in rows if r["label"] == label][:per_class]]
    return [str(data_dir / "rvaa" / row["file"]) for row in picks if (data_dir / "rvaa" / row["file"]).is_file()]
