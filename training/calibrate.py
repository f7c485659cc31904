"""Calibrate a checkpoint's confidence: a temperature, and a "not sure" band chosen on held-out sources.

    python -m training.calibrate --checkpoint checkpoints/lite0-many --val generators_real_val rvaa_val \\
        --held-out loso --write
    python -m training.calibrate --checkpoint lite0-mixed --val mixed_val --held-out generators_real_val --write

With ``p = softmax(logits / T)[FAKE]`` a verdict is a confident REAL when ``p <= low``, a confident FAKE when
``p >= high`` and "not sure" in between. ``T`` minimises the negative log-likelihood on ``--val`` (validation
data of the checkpoint's own collections: temperature scaling, Guo et al. 2017). The band ``[low, high]``
is the widest-coverage one whose confident verdicts are right at least ``--target`` of the time on
``--held-out``: images of sources the network never trained on. That is a benchmark the checkpoint never saw,
or ``loso`` for a :mod:`training.probe` checkpoint: its leave-one-source-out predictions (each source scored
by a probe fitted without it). Accuracies there count REAL and FAKE images with equal total weight, so a
band cannot buy accuracy with the more numerous class. ``--write`` stores the result in ``config.json``
under ``calibration``.
"""
from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

import numpy as np

from gauntlet.checkpoint import load_checkpoint, resolve_checkpoint, write_config
from gauntlet.detector import Detector
from training import data
from training.evaluate import predict_items, select_items
from training.train import command_line

TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(20.0), 400))
BAND_STEPS = 200


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Fit a temperature and a 'not sure' band for a checkpoint.")
    parser.add_argument("--checkpoint", required=True, help="bundled name, folder or hf://")
    parser.add_argument("--val", nargs="+", required=True, help="benchmarks (or REAL/FAKE folders) to fit the temperature on: validation data")
    parser.add_argument("--held-out", nargs="+", required=True,
                        help="benchmarks or folders the checkpoint never trained on, or 'loso' (training.probe checkpoints)")
    parser.add_argument("--report", nargs="*", default=[],
                        help="sets to report accuracy, coverage and accuracy when sure on with the fitted calibration "
                             "(printed only: never used to fit, never written into the config)")
    parser.add_argument("--target", type=float, default=0.9, help="accuracy confident verdicts must reach")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--write", action="store_true", help="store the calibration in the checkpoint's config.json")
    parser.add_argument("--json", default=None, help="also write the result here")
    return parser


def logit_of(fake_probability: np.ndarray) -> np.ndarray:
    """The two-class logit difference ``z_FAKE - z_REAL`` behind a FAKE probability."""
    p = np.clip(fake_probability.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature (searched on a log grid, 0.05 to 20) minimising the negative log-likelihood."""
    z = logits[None, :] / TEMPERATURES[:, None]
    signed = np.where(labels[None, :] == 1, z, -z)
    nll = np.logaddexp(0.0, -signed).mean(axis=1)
    return float(TEMPERATURES[int(np.argmin(nll))])


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Weights giving each present class the same total."""
    weights = np.zeros(len(labels))
    for c in np.unique(labels):
        weights[labels == c] = 1.0 / (labels == c).sum()
    return weights / weights.sum()


def band_metrics(p: np.ndarray, labels: np.ndarray, low: float, high: float) -> dict[str, float]:
    """Coverage and accuracy of the confident verdicts (class-balanced), and the plain counts."""
    weights = balanced_weights(labels)
    sure = (p <= low) | (p >= high)
    right = sure & ((p >= high) == (labels == 1))
    covered = float(weights[sure].sum())
    return {"coverage": covered, "accuracy_when_sure": float(weights[right].sum() / covered) if covered else 0.0,
            "n": int(len(labels)), "n_sure": int(sure.sum())}


def choose_band(p: np.ndarray, labels: np.ndarray, target: float) -> tuple[float, float]:
    """The ``[low, high]`` (low <= 0.5 <= high) with the most coverage whose confident verdicts reach ``target``.

    Candidates are quantiles of the probabilities on each side of 0.5. If no band reaches the target, the one
    with the best accuracy when sure is returned (the caller reports how far it is).
    """
    weights = balanced_weights(labels)
    lows = np.unique(np.concatenate([[0.0, 0.5], np.quantile(p[p <= 0.5], np.linspace(0, 1, BAND_STEPS))
                                     if (p <= 0.5).any() else []]))
    highs = np.unique(np.concatenate([[0.5, 1.0], np.quantile(p[p > 0.5], np.linspace(0, 1, BAND_STEPS))
                                      if (p > 0.5).any() else []]))
    real_sure = (p[None, :] <= lows[:, None]) * weights  # lows x n
    fake_sure = (p[None, :] >= highs[:, None]) * weights  # highs x n
    real_right = real_sure @ (labels == 0)
    fake_right = fake_sure @ (labels == 1)
    coverage = real_sure.sum(1)[:, None] + fake_sure.sum(1)[None, :]
    right = real_right[:, None] + fake_right[None, :]
    accuracy = np.divide(right, coverage, out=np.zeros_like(right), where=coverage > 0)
    ok = accuracy >= target
    score = np.where(ok, coverage, -1.0) if ok.any() else accuracy
    i, j = np.unravel_index(int(np.argmax(score)), score.shape)
    return float(lows[i]), float(highs[j])


def benchmark_probabilities(detector: Detector, names: list[str], data_dir: str | None,
                            batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """FAKE probabilities (as the app computes them) and labels of every image of the named benchmarks."""
    items = list(dict.fromkeys(i for name in names for i in select_items(name, data_dir)))
    done, probs, _ = predict_items(detector, items, batch_size, f"predicting {', '.join(names)}")
    return probs, data.labels_of(done)


def loso_logits(command: str) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-source-out logits of the probe recipe that made a checkpoint (its recorded command)."""
    from training import probe

    words = shlex.split(command)
    if words[:3] != ["python", "-m", "training.probe"]:
        raise SystemExit("--held-out loso needs a checkpoint made by training.probe (its config's command).")
    args = probe.get_args_parser().parse_args(words[3:])
    args.out = args.json = None
    _, _, scores = probe.run_probe(args)
    loso = scores["loso"]
    return loso["logits"][:, 1] - loso["logits"][:, 0], loso["labels"]


def verdict_metrics(fake_probability: np.ndarray, labels: np.ndarray, calibration: dict[str, Any]) -> dict[str, Any]:
    """Accuracy (argmax), and coverage / accuracy when sure under ``calibration`` (plain counts, not balanced)."""
    p = 1.0 / (1.0 + np.exp(-logit_of(fake_probability) / calibration["temperature"]))
    low, high = calibration["not_sure"]
    sure = (p <= low) | (p >= high)
    right = (fake_probability > 0.5) == (labels == 1)
    sure_right = sure & ((p >= high) == (labels == 1))
    return {"accuracy": float(right.mean()), "n": int(len(labels)), "coverage": float(sure.mean()),
            "accuracy_when_sure": float(sure_right.sum() / sure.sum()) if sure.any() else None}


def calibrate(args: argparse.Namespace) -> dict[str, Any]:
    """Fit the temperature and the band; returns the ``calibration`` record (with the held-out metrics)."""
    checkpoint = load_checkpoint(args.checkpoint)
    detector = Detector(checkpoint)
    val_p, val_labels = benchmark_probabilities(detector, args.val, args.data_dir, args.batch_size)
    temperature = fit_temperature(logit_of(val_p), val_labels)
    if args.held_out == ["loso"]:
        held_logits, held_labels = loso_logits(checkpoint.config.command)
    else:
        held_p, held_labels = benchmark_probabilities(detector, args.held_out, args.data_dir, args.batch_size)
        held_logits = logit_of(held_p)
    p = 1.0 / (1.0 + np.exp(-held_logits / temperature))
    low, high = choose_band(p, held_labels, args.target)
    held = band_metrics(p, held_labels, low, high)
    return {"temperature": round(temperature, 4), "not_sure": [round(low, 4), round(high, 4)],
            "fitted_on": (f"temperature: {' + '.join(args.val)} (NLL); band: {' + '.join(args.held_out)} "
                          f"(confident verdicts right >= {args.target:.0%}, classes weighted equally)"),
            "command": command_line(get_args_parser(), args, "training.calibrate", {"checkpoint", "val", "held_out"}),
            "held_out": held}


def main(args: argparse.Namespace) -> dict[str, Any]:
    calibration = calibrate(args)
    if args.write:
        folder = resolve_checkpoint(args.checkpoint)
        config = load_checkpoint(args.checkpoint).config
        config.calibration = calibration
        write_config(config, folder)
    result = dict(calibration)
    if args.report:
        detector = Detector(load_checkpoint(args.checkpoint))
        result["report"] = {name: verdict_metrics(*benchmark_probabilities(detector, [name], args.data_dir,
                                                                            args.batch_size), calibration)
                            for name in args.report}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
