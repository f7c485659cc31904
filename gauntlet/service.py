"""What the app does, as plain functions over a shared model catalogue (no gradio here).

A :class:`ModelCatalog` is the process-wide, read-only resource: detectors and
their explainers are loaded on first use and reused by every visitor. Per-user
state never lives here; the UI keeps it in ``gr.State``.
"""
from __future__ import annotations

import copy
import csv
import logging
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from PIL import Image

from .checkpoint import CheckpointConfig, bundled_names, load_checkpoint, load_preferring_hub, read_config
from .detector import Detector, Prediction
from .explain import METHOD_TITLES, Explanation, ExplainerSet, ProgressFn, available_variants
from .explain.faithfulness import Faithfulness, explanation_faithfulness
from .images import load_image
from .model_card import unseen_accuracy
from .present import track_record
from .render import overlay
from .settings import get_settings

log = logging.getLogger(__name__)
DEFAULT_METHODS = ("score_cam", "ablation_cam", "lime")


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


TRAINING_SOURCE = re.compile(r"([^:|;,]+): \d+ training and")  # as training.train describes a run


def training_data(trained_on: str) -> str:
    """The data a checkpoint learned from, for the model selector: "rvaa: 670 training and ..." -> "RVAA".

    Weight averages list their ingredients' runs ("greedy soup of 3 candidates, ...; each: mixed: 1870 training
    and ..."): their data sets are named once each. Other text: what comes before its first colon.
    """
    sources = dict.fromkeys(match.strip().upper() for match in TRAINING_SOURCE.findall(trained_on))
    return " + ".join(sources) if sources else trained_on.split(":")[0].strip().upper()


def default_model_order(configs: dict[str, CheckpointConfig]) -> list[str]:
    """Bundled checkpoints, best general-purpose first: MIXED, then RVAA, then the rest; pretrained before baseline."""
    rank = {"mixed": 0, "rvaa": 1}

    def key(name: str) -> tuple[int, bool, str]:
        data = min((r for k, r in rank.items() if k in name), default=2)
        return data, configs[name].architecture == "baseline_cnn", name

    return sorted(configs, key=key)


def default_bundled_model(checkpoints_dir: Path | None = None) -> str | None:
    """The bundled checkpoint the app shows first (None when there is none): what benchmarks measure."""
    root = checkpoints_dir or get_settings().checkpoints_dir
    configs = {name: read_config(root / name) for name in bundled_names(root)}
    return default_model_order(configs)[0] if configs else None


class ModelCatalog:
    """Lazily loaded detectors and explainer sets, shared by all sessions (thread-safe)."""

    def __init__(self, extra_sources: tuple[str, ...] | None = None, checkpoints_dir: Path | None = None,
                 unseen: dict[str, dict[str, tuple[float, int]]] | None = None) -> None:
        settings = get_settings()
        self.checkpoints_dir = checkpoints_dir or settings.checkpoints_dir
        self.entries: dict[str, ModelEntry] = {}
        configs = {name: read_config(self.checkpoints_dir / name) for name in bundled_names(self.checkpoints_dir)}
        for name in default_model_order(configs):
            config = configs[name]
            data = training_data(config.trained_on)
            label = f"{config.title} — trained on {data}" if data else config.title
            self.entries[name] = ModelEntry(name, label, name, True, config)
        for source in extra_sources if extra_sources is not None else settings.default_models:
            self.entries[source] = ModelEntry(source, source, source, False)
        # per bundled name, for the track record under each verdict; the stored cross-dataset results describe
        # the configured checkpoints folder, so a catalog over another folder only has what it is given
        self.unseen = unseen if unseen is not None else unseen_accuracy() if checkpoints_dir is None else {}
        self._detectors: dict[str, Detector] = {}
        self._explainers: dict[str, ExplainerSet] = {}
        self._lock = threading.Lock()
        self._model_locks: dict[str, threading.Lock] = {}

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
                    raise KeyError(f"Unknown model {key!r}.")
                if entry.bundled:
                    checkpoint = load_preferring_hub(entry.source, self.checkpoints_dir)
                else:
                    checkpoint = load_checkpoint(entry.source)
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
        image = load_image(source, max_pixels=get_settings().max_pixels)
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
                progress(index / max(len(methods), 1), f"{METHOD_TITLES[method]} ({chosen})")
            with self._lock_for(key):
                explainers = self.explainers(key)
                explanation = explainers.get(method, chosen, layers).explain(
                    image, target=analysis.prediction.predicted_index, time_limit_s=get_settings().explain_timeout_s)
                if faithfulness:
                    analysis.faithfulness.append(explanation_faithfulness(explainers.detector, explanation))
            analysis.explanations.append(explanation)
            analysis.overlays.append(overlay(explanation.image, explanation.heatmap))
        return analysis

    def warm_up(self, key: str | None = None, methods: tuple[str, ...] = DEFAULT_METHODS) -> None:
        """Load a model (the default one) and run a verdict and its fast explanations on a blank image.

        Called before the app starts serving, so the first visitors after a restart do not wait
        for the checkpoint to load or for the first-call allocations of each explainer.
        """
        key = key or self.default_key
        if key is not None:
            self.analyse(Image.new("RGB", (64, 64), (128, 128, 128)), key, list(methods))
            log.info("Warmed up model %s", key)

    @contextmanager
    def explaining(self, key: str) -> Iterator[ExplainerSet]:
        """The model's explainer set, for one caller at a time (explainers hold hooks on their model copy)."""
        with self._lock_for(key):
            yield self.explainers(key)

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
