"""Score an ensemble: the mean FAKE probability of several checkpoints, each with its own preprocessing.

    python -m training.ensemble --checkpoints lite0-mixed /work/runs/ck/lite0-broad --data generators_real_val faces

Averaging the verdicts of models trained differently is the other half of "weight averages / ensembles" (issue 17;
``training.soup`` averages weights instead, which needs one architecture and input size). Every checkpoint sees
the images as the app would show them to it; the ensemble's verdict is FAKE above a mean probability of 0.5. It
prints, per set, each member's accuracy and the ensemble's, so a gain is visible against the best member.
"""
from __future__ import annotations

import argparse

import numpy as np

from gauntlet.checkpoint import load_checkpoint
from gauntlet.detector import Detector
from gauntlet.settings import get_settings
from training import data
from training.evaluate import confusion_metrics, predict_items, report, select_items


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Accuracy of the mean FAKE probability of several checkpoints.")
    parser.add_argument("--checkpoints", nargs="+", required=True, help="two or more checkpoints (name or folder)")
    parser.add_argument("--data", nargs="+", required=True, help="benchmark names or REAL/FAKE folders")
    parser.add_argument("--data-dir", default=None, help="data directory for benchmark names (default: settings)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", default=None, help="write {SET: {member: accuracy, ..., 'ensemble': {...}}} here ('-' = stdout)")
    return parser


def ensemble_scores(detectors: dict[str, Detector], items: list[data.Item], batch_size: int = 64) -> dict:
    """Each member's accuracy and the ensemble's metrics on ``items`` (images every member could read)."""
    probabilities = {}
    for name, detector in detectors.items():
        done, probs, _ = predict_items(detector, items, batch_size, desc=name)
        probabilities[name] = dict(zip(done, probs))
    kept = [item for item in items if all(item in p for p in probabilities.values())]
    labels = data.labels_of(kept)
    member = {name: np.array([p[item] for item in kept]) for name, p in probabilities.items()}
    scores = {name: confusion_metrics(labels, probs > 0.5)["accuracy"] for name, probs in member.items()}
    return {**scores, "ensemble": confusion_metrics(labels, np.mean(list(member.values()), axis=0) > 0.5)}


def main(args: argparse.Namespace) -> dict:
    folder = get_settings().checkpoints_dir
    detectors = {name: Detector(load_checkpoint(name, folder)) for name in args.checkpoints}
    results = {source: ensemble_scores(detectors, select_items(source, args.data_dir), args.batch_size)
               for source in args.data}
    report("\n".join(f"{source}: ensemble {scores['ensemble']['accuracy']:.2%} (n={scores['ensemble']['n']}); "
                     "members: " + ", ".join(f"{name} {scores[name]:.2%}" for name in args.checkpoints)
                     for source, scores in results.items()), results, args.json)
    return results


if __name__ == "__main__":
    main(get_args_parser().parse_args())
