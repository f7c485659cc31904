"""What the app does, as plain functions over a shared model catalogue (no gradio here).

A :class:`ModelCatalog` is the process-wide, read-only resource: detectors and
their explainers are loaded on first use and reused by every visitor. Per-user
state never lives here; the UI keeps it in ``gr.State``.
"""
from __future__ import annotations

import copy
import csv
import hashlib
import logging
import os
import queue
import re
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from PIL import Image

from .analysis import Analysis, MethodResult
from .checkpoint import CheckpointConfig, bundled_names, load_checkpoint, load_preferring_hub, read_config
from .detector import Detector, ModelInput
from .explain import METHOD_TITLES, ExplainerSet, ProgressFn, available_variants
from .explain.faithfulness import explanation_faithfulness
from .images import content_key, load_image
from .lru import SharedLRU
from .model_card import unseen_accuracy
from .present import track_record
from .render import overlay
from .settings import get_settings

log = logging.getLogger(__name__)
DEFAULT_METHODS = ("score_cam", "ablation_cam", "lime")
DEFAULT_EXPLANATION_CACHE = 256  # finished explanations kept (GAUNTLET_EXPLANATION_CACHE)
QUICKEST_FIRST = ("grad_cam",)  # streamed before the other methods: one forward and one backward pass


@dataclass
class ModelEntry:
    """A model the user can pick: its label in the selector and where it loads from."""

    key: str
    label: str
    source: str
    bundled: bool
    config: CheckpointConfig | None = None


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
    """Lazily loaded detectors and explainer sets, shared by all sessions (thread-safe).

    Each model gets ``explanation_workers`` explainer sets, each on its own copy of the network, so that
    as many explanations run at once; finished explanations are kept in a bounded LRU of
    ``explanation_cache`` entries, keyed by (pixels, model, method, variant, layers).
    """

    def __init__(self, extra_sources: tuple[str, ...] | None = None, checkpoints_dir: Path | None = None,
                 unseen: dict[str, dict[str, tuple[float, int]]] | None = None,
                 explanation_cache: int = DEFAULT_EXPLANATION_CACHE, explanation_workers: int = 1) -> None:
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
        self.explanation_workers = max(1, explanation_workers)
        self.cache: SharedLRU[MethodResult] = SharedLRU(explanation_cache, on_evict=_forget_overlay_file)
        self._overlay_dir = Path(tempfile.mkdtemp(prefix="gauntlet-overlays-")) if explanation_cache > 0 else None
        self._detectors: dict[str, Detector] = {}
        self._explainers: dict[str, list[ExplainerSet]] = {}
        self._idle: dict[str, queue.SimpleQueue[ExplainerSet]] = {}
        self._lock = threading.Lock()

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
                # Explanations attach hooks and swap layers: each worker gets its own copy of the network,
                # so verdicts for other visitors never wait for them or see their hooks.
                self._explainers[key] = [ExplainerSet(Detector(copy.deepcopy(checkpoint)))
                                         for _ in range(self.explanation_workers)]
                self._idle[key] = queue.SimpleQueue()
                for explainers in self._explainers[key]:
                    self._idle[key].put(explainers)
                log.info("Loaded model %s from %s", key, checkpoint.source)
            return self._detectors[key]

    def explainers(self, key: str) -> ExplainerSet:
        """The first worker's explainer set for ``key`` (its model copy is never the verdict's)."""
        self.detector(key)
        return self._explainers[key][0]

    def predict(self, source, key: str) -> Analysis:
        """Load an upload safely and classify it (no explanations: milliseconds).

        ``source`` may be an image already decoded (e.g. the verdict of another model): it is not decoded again.
        """
        image = load_image(source, max_pixels=get_settings().max_pixels)
        detector = self.detector(key)
        return Analysis(image=image, prediction=detector.predict(image), model_label=self.entries[key].label,
                        track_record=track_record(detector.config, self.unseen.get(key)), model_key=key,
                        content_key=content_key(image))

    def explain_stream(self, verdict: Analysis, methods: list[str], variant: str = "fast", layers: str = "last",
                       progress: ProgressFn = None, faithfulness: bool = False) -> Iterator[Analysis]:
        """Explain ``verdict``'s predicted class with each method, yielding the growing analysis.

        First the verdict with every result already cached, then one more result as each other method
        finishes: Grad-CAM (the quickest) first, then the rest in the order given. The last value holds
        every result. The image is preprocessed at most once, however many methods run. With
        ``faithfulness``, each heatmap's deletion and insertion AUC are measured too
        (``2 * (DEFAULT_STEPS + 1)`` forward passes per method, see :mod:`gauntlet.explain.faithfulness`).
        """
        keys = {method: self._cache_key(verdict, method, variant, layers) for method in methods}
        results = [result for result in (self._cached(keys[m], faithfulness) for m in methods) if result]
        yield replace(verdict, results=list(results))
        missing = sorted((m for m in methods if m not in {r.method for r in results}),
                         key=lambda m: m not in QUICKEST_FIRST)
        prepared: ModelInput | None = None
        for method in missing:
            if progress:
                progress(len(results) / len(methods), f"{METHOD_TITLES[method]} ({keys[method][3]})")
            prepared = prepared or self.detector(verdict.model_key).prepare(verdict.image)
            result = self._explain(verdict, prepared, keys[method], faithfulness, self.cache.get(keys[method]))
            self.cache.put(keys[method], result)
            results.append(result)
            yield replace(verdict, results=list(results))

    def _cached(self, key: tuple[str, str, str, str, str], faithfulness: bool) -> MethodResult | None:
        """The finished result under ``key`` if it has all that is asked (faithfulness shown only when asked)."""
        result = self.cache.get(key)
        if result is None or (faithfulness and result.faithfulness is None):
            return None
        return result if faithfulness or result.faithfulness is None else replace(result, faithfulness=None)

    def analyse(self, source, key: str, methods: list[str], variant: str = "fast", layers: str = "last",
                progress: ProgressFn = None, faithfulness: bool = False) -> Analysis:
        """Load an upload safely, classify it and explain the predicted class with each method (all at once)."""
        for analysis in self.explain_stream(self.predict(source, key), methods, variant, layers, progress,
                                            faithfulness):
            pass
        return analysis

    def warm_up(self, key: str | None = None, methods: tuple[str, ...] = DEFAULT_METHODS) -> None:
        """Load a model (the default one) and run a verdict and its fast explanations on a blank image.

        Called before the app starts serving, so the first visitors after a restart do not wait
        for the checkpoint to load or for the first-call allocations of each worker's explainers.
        """
        key = key or self.default_key
        if key is None:
            return
        verdict = self.predict(Image.new("RGB", (64, 64), (128, 128, 128)), key)
        prepared = self.detector(key).prepare(verdict.image)
        for explainers in self._explainers[key]:
            for method in methods:
                explainers.get(method, "fast").explain(prepared, target=verdict.prediction.predicted_index)
        log.info("Warmed up model %s", key)

    @staticmethod
    def _cache_key(verdict: Analysis, method: str, variant: str, layers: str) -> tuple[str, str, str, str, str]:
        """(pixels, model, method, variant actually run, layers): what a finished explanation depends on."""
        chosen = variant if variant in available_variants(method) else "full"
        return verdict.content_key or content_key(verdict.image), verdict.model_key, method, chosen, layers

    def _explain(self, verdict: Analysis, prepared: ModelInput, key: tuple[str, str, str, str, str],
                 faithfulness: bool, done: MethodResult | None) -> MethodResult:
        """Run one method on an idle worker's model copy (and measure its faithfulness when asked)."""
        _, model_key, method, variant, layers = key
        with self._worker(model_key) as explainers:
            if done is None:
                explanation = explainers.get(method, variant, layers).explain(
                    prepared, target=verdict.prediction.predicted_index,
                    time_limit_s=get_settings().explain_timeout_s)
                shown = overlay(explanation.image, explanation.heatmap)
                done = MethodResult(explanation, shown, overlay_file=self._overlay_file(shown, key))
            if faithfulness:
                done = replace(done, faithfulness=explanation_faithfulness(
                    explainers.detector, done.explanation, prepared=prepared))
        return done

    def _overlay_file(self, image: Image.Image, key: tuple[str, str, str, str, str]) -> str | None:
        """``image`` saved (WebP) under a name made from the cache key; written to a temporary name and
        renamed into place, so a visitor reading the file never sees it half written. None without a cache."""
        if self._overlay_dir is None:
            return None
        path = self._overlay_dir / f"{hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest()}.webp"
        with tempfile.NamedTemporaryFile(dir=self._overlay_dir, suffix=".part", delete=False) as handle:
            image.save(handle, format="WEBP")
        os.replace(handle.name, path)
        return str(path)

    @contextmanager
    def _worker(self, key: str) -> Iterator[ExplainerSet]:
        """An idle explainer set of model ``key`` (waits for one): explainers hold hooks on their model copy."""
        self.detector(key)
        explainers = self._idle[key].get()
        try:
            yield explainers
        finally:
            self._idle[key].put(explainers)


def _forget_overlay_file(result: MethodResult) -> None:
    """A result left the cache: its overlay file goes too (gradio keeps its own copy of what it served)."""
    if result.overlay_file:
        Path(result.overlay_file).unlink(missing_ok=True)


def example_images(data_dir: Path | None, per_class: int = 2) -> list[str]:
    """A few example paths for the detector tab: RVAA validation images (never used by quiz decks)."""
    manifest = data_dir / "rvaa" / "manifest.csv" if data_dir else None
    if manifest is None or not manifest.is_file():
        return []
    with manifest.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "val"]
    picks = [r for label in ("REAL", "FAKE") for r in [r for r in rows if r["label"] == label][:per_class]]
    return [str(data_dir / "rvaa" / row["file"]) for row in picks if (data_dir / "rvaa" / row["file"]).is_file()]
