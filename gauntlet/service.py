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
import queue
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from PIL import Image

from .analysis import Analysis, MethodResult
from .checkpoint import CheckpointConfig, bundled_names, load_checkpoint, load_preferring_hub, read_config
from .detector import Detector, ModelInput
from .errors import UserError
from .explain import ExplainerSet, ProgressFn, available_variants, default_methods, method_title
from .explain.base import ExplanationTimeout
from .explain_worker import Job, ProcessWorker, ThreadWorker
from .files import atomic_write
from .images import DEFAULT_MAX_PIXELS, content_key, load_image
from .lru import SharedLRU
from .model_card import unseen_accuracy
from .present import track_record
from .render import overlay
from .settings import BUNDLED_CHECKPOINTS, Settings

log = logging.getLogger(__name__)
DEFAULT_EXPLANATION_CACHE = 256  # finished explanations kept (GAUNTLET_EXPLANATION_CACHE)
QUICKEST_FIRST = ("grad_cam",)  # streamed before the other methods: one forward and one backward pass
BACKGROUND_POLL_S = 0.2  # how often background work (quiz warm-up) looks for a worker nobody is waiting for


@dataclass
class ModelEntry:
    """A model the user can pick: its label in the selector and where it loads from."""

    key: str
    label: str
    source: str
    bundled: bool
    config: CheckpointConfig | None = None


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
    """Lazily loaded detectors and explainer sets, shared by all sessions (thread-safe).

    Each model gets ``explanation_workers`` explainer sets, each on its own copy of the network, so that
    as many explanations run at once; finished explanations are kept in a bounded LRU of
    ``explanation_cache`` entries, keyed by (pixels, model, method, variant, layers).
    """

    def __init__(self, extra_sources: tuple[str, ...] = (), checkpoints_dir: Path = BUNDLED_CHECKPOINTS,
                 unseen: dict[str, dict[str, tuple[float, int]]] | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                 explain_timeout_s: float | None = None, hub_offline: bool = False,
                 explanation_cache: int = DEFAULT_EXPLANATION_CACHE, explanation_workers: int = 1,
                 explain_processes: bool = False) -> None:
        """``unseen``: per bundled name, its accuracy on never-trained-on collections (the track record under
        each verdict; see :func:`gauntlet.model_card.unseen_accuracy`); ``max_pixels``: the upload limit;
        ``explain_timeout_s``: when an explanation is stopped (None: never); ``explanation_cache``: finished
        explanations kept (0: none); ``explanation_workers``: explanations that may run at once;
        ``explain_processes``: each worker computes in a process of its own instead of a thread (see
        :mod:`gauntlet.explain_worker`)."""
        self.checkpoints_dir = checkpoints_dir
        self.max_pixels, self.explain_timeout_s, self.hub_offline = max_pixels, explain_timeout_s, hub_offline
        self.entries: dict[str, ModelEntry] = {}
        configs = {name: read_config(self.checkpoints_dir / name) for name in bundled_names(self.checkpoints_dir)}
        for name in default_model_order(configs):
            self.entries[name] = ModelEntry(name, selector_label(configs[name]), name, True, configs[name])
        for source in extra_sources:
            self.entries[source] = ModelEntry(source, source, source, False)
        self.unseen = unseen or {}
        self.explanation_workers, self.explain_processes = max(1, explanation_workers), explain_processes
        self.cache: SharedLRU[MethodResult] = SharedLRU(explanation_cache, on_evict=_forget_overlay_file)
        self._overlay_dir = Path(tempfile.mkdtemp(prefix="gauntlet-overlays-")) if explanation_cache > 0 else None
        self.previews: SharedLRU[str] = SharedLRU(explanation_cache, on_evict=_forget_file)
        self._detectors: dict[str, Detector] = {}
        self._explainers: dict[str, list[ExplainerSet]] = {}
        self._idle: dict[str, queue.SimpleQueue[ExplainerSet]] = {}
        self._workers: dict[ExplainerSet, ThreadWorker | ProcessWorker] = {}  # where each set's jobs run
        self._waiting: dict[str, int] = {}  # per model, requests waiting for a worker (background work excepted)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> "ModelCatalog":
        """The app's catalogue: the configured folder and extra models, limits, and the stored cross-dataset
        results (they describe the bundled checkpoints)."""
        return cls(settings.default_models, settings.checkpoints_dir, unseen_accuracy(), settings.max_pixels,
                   settings.explain_timeout_s, settings.hub_offline, settings.explanation_cache,
                   settings.concurrency_limit, settings.explain_processes)

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
                # Explanations attach hooks and swap layers: each worker gets its own copy of the network,
                # so verdicts for other visitors never wait for them or see their hooks.
                self._explainers[key] = [ExplainerSet(Detector(copy.deepcopy(checkpoint)))
                                         for _ in range(self.explanation_workers)]
                self._idle[key] = queue.SimpleQueue()
                for explainers in self._explainers[key]:
                    self._idle[key].put(explainers)
                    self._workers[explainers] = ProcessWorker(checkpoint, key) if self.explain_processes \
                        else ThreadWorker(explainers, f"explain-{key}")
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
        image = load_image(source, max_pixels=self.max_pixels)
        detector = self.detector(key)
        pixels = content_key(image)
        return Analysis(image=image, prediction=detector.predict(image), model_label=self.entries[key].label,
                        track_record=track_record(detector.config, self.unseen.get(key)), model_key=key,
                        content_key=pixels, preview_file=self._preview_file(image, pixels))

    def _preview_file(self, image: Image.Image, pixels: str) -> str | None:
        """The decoded upload as a file, written once per picture (a class uploading the same example shares it)."""
        path = self.previews.get(pixels)
        if path is None or not Path(path).is_file():
            path = self._image_file(image, ("preview", pixels))
            if path:
                self.previews.put(pixels, path)
        return path

    def explain_stream(self, verdict: Analysis, methods: list[str], variant: str = "fast", layers: str = "last",
                       progress: ProgressFn = None, faithfulness: bool = False, *,
                       background: bool = False) -> Iterator[Analysis]:
        """Explain ``verdict``'s predicted class with each method, yielding the growing analysis.

        First the verdict with every result already cached, then one more result as each other method
        finishes: Grad-CAM (the quickest) first, then the rest in the order given. The last value holds
        every result. The image is preprocessed at most once, however many methods run. With
        ``faithfulness``, each heatmap's deletion and insertion AUC are measured too
        (``2 * (DEFAULT_STEPS + 1)`` forward passes per method, see :mod:`gauntlet.explain.faithfulness`).
        One worker is held from the first missing method to the last, across the yields: a caller that stops
        early must close the generator (CPython does when the last reference to it goes), which frees it.
        ``background`` work (the quiz's warm-up) takes a worker only when no request is waiting for one.
        """
        keys = {method: self._cache_key(verdict, method, variant, layers) for method in methods}
        results = [result for result in (self._cached(keys[m], faithfulness) for m in methods) if result]
        yield replace(verdict, results=list(results))
        missing = sorted((m for m in methods if m not in {r.method for r in results}),
                         key=lambda m: m not in QUICKEST_FIRST)
        if not missing:
            return
        prepared = self.detector(verdict.model_key).prepare(verdict.image)
        # One worker serves this request's methods in turn: requests are explained one after another instead of
        # all advancing a method at a time (which would make every visitor wait as long as the slowest).
        with self.explaining(verdict.model_key, background=background) as explainers:
            for method in missing:
                if progress:
                    progress(len(results) / len(methods), f"{method_title(method)} ({keys[method][3]})")
                result = self._explain(explainers, verdict, prepared, keys[method], faithfulness,
                                       self.cache.get(keys[method]))
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
                progress: ProgressFn = None, faithfulness: bool = False, *, background: bool = False) -> Analysis:
        """Load an upload safely, classify it and explain the predicted class with each method (all at once;
        ``background``: see :meth:`explain_stream`)."""
        for analysis in self.explain_stream(self.predict(source, key), methods, variant, layers, progress,
                                            faithfulness, background=background):
            pass
        return analysis

    def warm_up(self, key: str | None = None, methods: list[str] | None = None) -> None:
        """Load a model (the default one) and run a verdict and its fast explanations on a blank image.

        Called before the app starts serving, so the first visitors after a restart do not wait
        for the checkpoint to load or for the first-call allocations of each worker's explainers.
        """
        key = key or self.default_key
        if key is None:
            return
        verdict = self.predict(Image.new("RGB", (64, 64), (128, 128, 128)), key)
        prepared = self.detector(key).prepare(verdict.image)
        try:
            for explainers in self._explainers[key]:
                for method in methods or default_methods():
                    self._workers[explainers].run(Job(method, "fast", "last", prepared,
                                                          verdict.prediction.predicted_index,
                                                          self.explain_timeout_s, False))
            log.info("Warmed up model %s", key)
        except ExplanationTimeout:  # a busy host: the app still starts, and the model is loaded
            log.warning("Warm-up of model %s stopped at the explanation time limit", key)

    @staticmethod
    def _cache_key(verdict: Analysis, method: str, variant: str, layers: str) -> tuple[str, str, str, str, str]:
        """(pixels, model, method, variant actually run, layers): what a finished explanation depends on."""
        chosen = variant if variant in available_variants(method) else "full"
        return verdict.content_key or content_key(verdict.image), verdict.model_key, method, chosen, layers

    def _explain(self, explainers: ExplainerSet, verdict: Analysis, prepared: ModelInput,
                 key: tuple[str, str, str, str, str], faithfulness: bool, done: MethodResult | None) -> MethodResult:
        """Run one method on a worker's model copy (and measure its faithfulness when asked)."""
        if done is not None and not faithfulness:
            return done
        _, _, method, variant, layers = key
        explanation, scores = self._workers[explainers].run(Job(
            method, variant, layers, prepared, verdict.prediction.predicted_index, self.explain_timeout_s,
            faithfulness, done.explanation if done else None))
        if done is None:
            shown = overlay(explanation.image, explanation.heatmap)
            done = MethodResult(explanation, shown, overlay_file=self._image_file(shown, key))
        return replace(done, faithfulness=scores) if faithfulness else done

    def _image_file(self, image: Image.Image, key: tuple[str, ...]) -> str | None:
        """``image`` saved (WebP) under a name made from the cache key; written to a temporary name and
        renamed into place, so a visitor reading the file never sees it half written. None without a cache."""
        if self._overlay_dir is None:
            return None
        path = self._overlay_dir / f"{hashlib.blake2b(repr(key).encode(), digest_size=16).hexdigest()}.webp"
        atomic_write(path, lambda tmp: image.save(tmp, format="WEBP"))
        return str(path)

    @contextmanager
    def explaining(self, key: str, *, background: bool = False) -> Iterator[ExplainerSet]:
        """An idle explainer set of model ``key`` (waits for one): explainers hold hooks on their model copy.

        ``background`` work waits until no other request is waiting, so a warm-up never holds up a visitor or a
        player for more than the one job it started just before they arrived."""
        self.detector(key)
        explainers = self._next_background(key) if background else self._next_foreground(key)
        try:
            yield explainers
        finally:
            self._idle[key].put(explainers)

    def _next_foreground(self, key: str) -> ExplainerSet:
        with self._lock:
            self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            return self._idle[key].get()
        finally:
            with self._lock:
                self._waiting[key] -= 1

    def _next_background(self, key: str) -> ExplainerSet:
        while True:
            with self._lock:
                if not self._waiting.get(key):
                    try:
                        return self._idle[key].get_nowait()
                    except queue.Empty:
                        pass
            time.sleep(BACKGROUND_POLL_S)


def _forget_overlay_file(result: MethodResult) -> None:
    """A result left the cache: its overlay file goes too (gradio keeps its own copy of what it served)."""
    if result.overlay_file:
        _forget_file(result.overlay_file)


def _forget_file(path: str) -> None:
    Path(path).unlink(missing_ok=True)


def example_images(data_dir: Path | None, per_class: int = 2) -> list[str]:
    """A few example paths for the detector tab: RVAA validation images (never used by quiz decks)."""
    manifest = data_dir / "rvaa" / "manifest.csv" if data_dir else None
    if manifest is None or not manifest.is_file():
        return []
    with manifest.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "val"]
    picks = [r for label in ("REAL", "FAKE") for r in [r for r in rows if r["label"] == label][:per_class]]
    return [str(data_dir / "rvaa" / row["file"]) for row in picks if (data_dir / "rvaa" / row["file"]).is_file()]
