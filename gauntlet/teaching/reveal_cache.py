"""Model verdicts and heatmaps for quiz items, computed ahead and kept on disk outside the repository.

The quiz reveals the model's verdict and heatmap the moment a player guesses, so they
are computed beforehand: by ``python -m gauntlet.quiz precompute``, or, for an item not
cached yet, in a background thread while the player is still looking at the image.
Entries live under ``<cache_dir>/quiz/<model fingerprint>/``; the fingerprint hashes the
weights and every config field that changes verdicts (preprocessing, explained layers, test-time flip,
calibration),
so retraining a model or ``python -m training.flip`` never serves stale verdicts.
"""
from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..detector import Prediction
from ..explain import available_variants
from ..files import atomic_write
from ..service import ModelCatalog
from .decks import DeckError, DeckItem, display_image, item_image

PREFERRED_VARIANT = "fast"

SERVED_FORMAT = {"format": "WEBP", "quality": 90}  # pictures and heatmaps as players download them


def variant_for(method: str) -> str:
    """The fast variant of a method where one exists (the quiz needs seconds, not minutes), else the full one."""
    return PREFERRED_VARIANT if PREFERRED_VARIANT in available_variants(method) else "full"


class RevealCache:
    """Verdicts and heatmap overlays per (model, item, method); thread-safe, shared by all sessions."""

    def __init__(self, catalog: ModelCatalog, cache_dir: Path) -> None:
        self.catalog = catalog
        self.root = Path(cache_dir) / "quiz"
        self._fingerprints: dict[str, str] = {}
        self._pending: dict[Path, Future] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="quiz-reveal")

    def fingerprint(self, model_key: str) -> str:
        """A hash of the model's weights and the config fields that change verdicts (computed once per model)."""
        with self._lock:
            known = self._fingerprints.get(model_key)
        if known:
            return known
        detector = self.catalog.detector(model_key)
        digest = hashlib.sha256(json.dumps(detector.config.verdict_part(), sort_keys=True).encode())
        for name, tensor in sorted(detector.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(tensor.detach().cpu().numpy()).tobytes())
        with self._lock:
            return self._fingerprints.setdefault(model_key, digest.hexdigest()[:24])

    def _item_key(self, item: DeckItem) -> str:
        if item.ref is None:
            raise DeckError(f"The image of {item.id!r} is not available.")
        stat = item.ref.path.stat()
        return hashlib.sha256(f"{item.image}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:32]

    def _paths(self, model_key: str, item: DeckItem, method: str | None) -> tuple[Path, Path | None]:
        folder = self.root / self.fingerprint(model_key)
        key = self._item_key(item)
        heatmap = folder / f"{key}.{method}-{variant_for(method)}.webp" if method else None
        return folder / f"{key}.json", heatmap

    def cached(self, model_key: str, item: DeckItem, method: str | None = None) -> bool:
        """True when the verdict (and the heatmap of ``method``, if given) are on disk."""
        return all(path is None or path.is_file() for path in self._paths(model_key, item, method))

    def _compute(self, model_key: str, item: DeckItem, method: str | None, background: bool = False) -> bool:
        """Compute and store what is missing; False when everything was on disk already."""
        if self.cached(model_key, item, method):
            return False
        verdict_path, heatmap_path = self._paths(model_key, item, method)
        image = item_image(item)
        analysis = self.catalog.analyse(image, model_key, [method] if method else [], variant=PREFERRED_VARIANT,
                                        background=background)
        prediction = analysis.prediction
        verdict = {"probabilities": prediction.probabilities, "predicted_index": prediction.predicted_index,
                   "predicted_label": prediction.predicted_label, "sure": prediction.sure}
        atomic_write(verdict_path, lambda tmp: Path(tmp).write_text(json.dumps(verdict)))
        if heatmap_path is not None:
            atomic_write(heatmap_path, lambda tmp: analysis.results[0].overlay.save(tmp, **SERVED_FORMAT))
        return True

    def prefetch(self, model_key: str, item: DeckItem, method: str | None = None) -> Future:
        """Start computing what is missing in the background (one job per entry); returns its future."""
        verdict_path, heatmap_path = self._paths(model_key, item, method)
        job = heatmap_path or verdict_path
        with self._lock:
            future = self._pending.get(job)
            if future is None or future.done():
                future = self._executor.submit(self._compute, model_key, item, method)
                self._pending[job] = future
                future.add_done_callback(lambda done: self._forget(job, done))
        return future

    def fill(self, model_key: str, item: DeckItem, method: str | None = None) -> bool:
        """Compute what is missing on the calling thread, as background work (see ``ModelCatalog.explaining``):
        warming the cache up never takes the explanation worker from a visitor or a player, nor the players' reveal
        thread. Returns whether anything was computed."""
        return self._compute(model_key, item, method, background=True)

    def _forget(self, job: Path, future: Future) -> None:
        with self._lock:
            if self._pending.get(job) is future:
                del self._pending[job]

    def verdict(self, model_key: str, item: DeckItem) -> Prediction:
        """The model's verdict on an item (from disk; computed first if missing)."""
        path = self._paths(model_key, item, None)[0]
        if not path.is_file():
            self.prefetch(model_key, item).result()
        data = json.loads(path.read_text())
        return Prediction(data["probabilities"], data["predicted_index"], data["predicted_label"], data.get("sure", True))

    def heatmap_file(self, model_key: str, item: DeckItem, method: str) -> str:
        """The file of ``method``'s heatmap over the item, for the model's verdict (computed first if missing).

        Players get files written once, never images: gradio re-encodes a returned image into the same cache
        file for every visitor, which can truncate a download another visitor of the same item is making."""
        path = self._paths(model_key, item, method)[1]
        if not path.is_file():
            self.prefetch(model_key, item, method).result()
        return str(path)

    def display_file(self, item: DeckItem) -> str:
        """The picture players see (see :func:`display_image`), as a WebP file written once per item; its name is
        a hash, so neither it nor the file's contents (pixels only) say whether the item is AI."""
        name = hashlib.sha256(f"{self._item_key(item)}|{item.display_size}".encode()).hexdigest()[:32]
        path = self.root / "display" / f"{name}.webp"
        if not path.is_file():
            picture = display_image(item_image(item), item)
            atomic_write(path, lambda tmp: picture.save(tmp, **SERVED_FORMAT))
        return str(path)
