"""Measure a checkpoint on a labelled image set, through the app's own Detector.

    python -m training.evaluate --checkpoint baseline-cifake --data ../shared/data/cifake/test.zip --json out.json

``--checkpoint``: a bundled name, a folder or ``hf://owner/name[@revision]``.
``--data``: a folder with ``REAL/`` and ``FAKE/`` subfolders, a ``.zip`` with
those two top-level folders, or a benchmark name from
:data:`training.data.BENCHMARKS` (e.g. ``rvaa_test``). FAKE is the positive
class. Training records its test metrics with :func:`evaluate_items`, the
function behind this command, so recorded and re-measured numbers agree.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from gauntlet.calibration import Calibration
from gauntlet.checkpoint import load_checkpoint
from gauntlet.detector import FAKE_INDEX, Detector
from gauntlet.images import ImageError
from gauntlet.models import get_architecture
from training import data
from gauntlet.stats import interval_text, wilson_interval
from gauntlet.settings import get_settings

log = logging.getLogger(__name__)


def confusion_metrics(labels: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Accuracy, precision, recall and F1 with FAKE (1) as the positive class, and the 2x2 confusion matrix.

    Rows of ``confusion_matrix`` are the truth (REAL, FAKE), columns the
    prediction. Precision or recall with an empty denominator is 0.
    ``accuracy_ci95`` is the Wilson 95 % interval of the accuracy (see :mod:`gauntlet.stats`).
    """
    labels, predicted = np.asarray(labels, dtype=int), np.asarray(predicted, dtype=int)
    matrix = [[int(np.sum((labels == t) & (predicted == p))) for p in (0, 1)] for t in (0, 1)]
    (tn, fp), (fn, tp) = matrix
    n = len(labels)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": (tp + tn) / n if n else 0.0, "precision": precision, "recall": recall, "f1": f1,
            "confusion_matrix": matrix, "n": n, "accuracy_ci95": list(wilson_interval(tp + tn, n))}


Transform = Callable[[Image.Image], Image.Image]


def verdict_metrics(labels: np.ndarray, fake_probabilities: np.ndarray, calibration: Calibration) -> dict[str, Any]:
    """:func:`confusion_metrics` of the argmax verdicts, plus how often the verdict is confident and then right.

    ``coverage``: the share of images whose FAKE probability lies outside the calibration's "not sure" band
    (1.0 without calibration); ``accuracy_when_sure``: the accuracy on those images (None when there are none),
    with its Wilson interval ``accuracy_when_sure_ci95`` and their number ``n_sure``.
    """
    labels, fake_probabilities = np.asarray(labels, dtype=int), np.asarray(fake_probabilities, dtype=float)
    predicted = (fake_probabilities > 0.5).astype(int)
    metrics = confusion_metrics(labels, predicted)
    sure = np.asarray(calibration.is_sure(fake_probabilities), dtype=bool)
    n_sure, right_when_sure = int(sure.sum()), int((labels == predicted)[sure].sum())
    metrics.update(coverage=n_sure / len(labels) if len(labels) else 0.0, n_sure=n_sure,
                   accuracy_when_sure=right_when_sure / n_sure if n_sure else None,
                   accuracy_when_sure_ci95=list(wilson_interval(right_when_sure, n_sure)))
    return metrics


def _batches(items: list[data.Item], size: int, skipped: list[str], transform: Transform | None = None):
    batch: list = []
    for item in items:
        try:
            image = data.read_item(item)
            batch.append((item, transform(image) if transform else image))
        except ImageError as err:
            log.warning("skipped %s: %s", item.name, err)
            skipped.append(item.name)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@torch.no_grad()
def predict_items(detector: Detector, items: list[data.Item], batch_size: int = 64, desc: str = "evaluating",
                  transform: Transform | None = None) -> tuple[list[data.Item], np.ndarray, list[str]]:
    """FAKE probability of every readable item (decoded and preprocessed exactly as the app does).

    ``transform`` alters each decoded image first (e.g. a re-sharing step of :mod:`gauntlet.transforms`).
    Returns the items that were read, their FAKE probabilities and the names of unreadable ones.
    """
    skipped: list[str] = []
    done, probs = [], []
    with tqdm(total=len(items), desc=desc, unit="img") as progress:
        for batch in _batches(items, batch_size, skipped, transform):
            squares = [detector.square_input(image)[0] for _, image in batch]
            probs.append(detector.verdict_probabilities(detector.to_tensor(squares))[:, FAKE_INDEX].numpy())
            done += [item for item, _ in batch]
            progress.update(len(batch))
    return done, np.concatenate(probs) if probs else np.zeros(0), skipped


def evaluate_benchmarks(detector: Detector, sets: dict[str, list[data.Item]], batch_size: int = 64,
                        desc: str = "evaluating", transform: Transform | None = None) -> dict[str, dict[str, Any]]:
    """Metrics (see :func:`verdict_metrics`) per named list of items; each distinct image is predicted once.

    A prediction is FAKE when its FAKE probability is above 0.5 (as ``Detector.predict``'s argmax); it is
    confident when outside the checkpoint's "not sure" band. ``skipped`` lists the names of unreadable images.
    """
    unique = list(dict.fromkeys(item for items in sets.values() for item in items))
    done, probs, _ = predict_items(detector, unique, batch_size, desc, transform)
    fake_probability = dict(zip(done, probs))
    results = {}
    for name, items in sets.items():
        kept = [item for item in items if item in fake_probability]
        results[name] = verdict_metrics(data.labels_of(kept), np.array([fake_probability[i] for i in kept]),
                                        detector.calibration)
        results[name]["skipped"] = [item.name for item in items if item not in fake_probability]
    return results


def evaluate_items(detector: Detector, items: list[data.Item], batch_size: int = 64,
                   desc: str = "evaluating", transform: Transform | None = None) -> dict[str, Any]:
    """Metrics of ``detector`` on one list of items (see :func:`evaluate_benchmarks`)."""
    return evaluate_benchmarks(detector, {"items": items}, batch_size, desc, transform)["items"]


def select_items(source: str, data_dir: str | None = None, split: str | None = None,
                 limit: int | None = None, exclude_list: str | None = None) -> list[data.Item]:
    """The images ``--data`` names: a benchmark, or a REAL/FAKE folder or zip (optionally one manifest split)."""
    if source in data.BENCHMARKS and not Path(source).exists():
        items = data.benchmark_items(source, data_dir)
    elif split:
        items = data.manifest_items(Path(source), split)
    else:
        items = data.list_folder(source)
    if exclude_list:
        items = data.exclude(items, exclude_list)
    return data.interleave(items, limit) if limit else items


def summary(result: dict[str, Any], title: str) -> str:
    """A few readable lines: the metrics in percent and the confusion matrix."""
    (tn, fp), (fn, tp) = result["confusion_matrix"]
    lines = [
        title,
        f"  images: {result['n']}" + (f" ({len(result['skipped'])} unreadable, skipped)" if result["skipped"] else ""),
        "  accuracy {accuracy:.2%} ({interval})   precision {precision:.2%}   "
        "recall {recall:.2%}   F1 {f1:.2%}".format(**result, interval=interval_text(*result["accuracy_ci95"])),
        f"  confident verdicts on {result['coverage']:.2%} of the images; right on "
        + (f"{result['accuracy_when_sure']:.2%} of those" if result["n_sure"] else "none (no confident verdict)"),
        "  confusion matrix (rows = truth, columns = predicted):",
        f"  {'':>10}{'REAL':>8}{'FAKE':>8}",
        f"  {'REAL':>10}{tn:>8}{fp:>8}",
        f"  {'FAKE':>10}{fn:>8}{tp:>8}",
    ]
    return "\n".join(lines)


def report(text: str, result: dict[str, Any], json_target: str | None) -> None:
    """Print ``text`` for people; write ``result`` as JSON to a file or, with '-', to stdout (text then to stderr)."""
    print(text, file=sys.stderr if json_target == "-" else sys.stdout)
    if json_target == "-":
        print(json.dumps(result))
    elif json_target:
        Path(json_target).write_text(json.dumps(result, indent=2) + "\n")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Evaluate a GAUNTLET checkpoint on labelled images.")
    parser.add_argument("--checkpoint", required=True, help="bundled name, folder, or hf://owner/name[@rev]")
    parser.add_argument("--data", required=True,
                        help=f"REAL/FAKE folder, .zip, or one of: {', '.join(data.BENCHMARKS)}")
    parser.add_argument("--data-dir", default=None, help="data directory for benchmark names (default: settings)")
    parser.add_argument("--split", default=None, help="only this split of the folder's manifest.csv")
    parser.add_argument("--limit", type=int, default=None,
                        help="first N images, alternately REAL and FAKE in sorted name order")
    parser.add_argument("--exclude-list", default=None, help="text file of paths to leave out (matched on LABEL/file)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--flip", choices=["checkpoint", "on", "off"], default="checkpoint",
                        help="average each verdict with the mirror image's: as the checkpoint says (default), or force")
    parser.add_argument("--input-size", type=int, default=None,
                        help="resize images to this side instead of the checkpoint's (to measure what scale buys)")
    parser.add_argument("--json", default=None, help="write the result as one JSON object here ('-' = stdout)")
    return parser


def main(args: argparse.Namespace) -> dict[str, Any]:
    items = select_items(args.data, args.data_dir, args.split, args.limit, args.exclude_list)
    detector = Detector(load_checkpoint(args.checkpoint, get_settings().checkpoints_dir))
    config = detector.config
    if args.flip != "checkpoint":
        config.test_time_flip = args.flip == "on"
    if args.input_size and args.input_size != config.input_size:
        if get_architecture(config.architecture).fixed_input_size:
            raise SystemExit(f"{config.architecture} only takes {config.input_size} px inputs; --input-size "
                             "works for architectures that pool globally (EfficientNet, ResNet).")
        config.input_size = args.input_size
    result = evaluate_items(detector, items, args.batch_size)
    result.update(checkpoint=args.checkpoint, data=args.data, limit=args.limit, exclude_list=args.exclude_list,
                  test_time_flip=config.test_time_flip, input_size=config.input_size, calibration=config.calibration)
    mirror = ", mirror-averaged" if config.test_time_flip else ""
    title = f"{config.title} ({config.architecture}, {config.input_size} px{mirror}) on {args.data}"
    report(summary(result, title), result, args.json)
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
