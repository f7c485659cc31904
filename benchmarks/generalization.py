"""Generalization: every bundled checkpoint on every collection it never trained on, and how the
default model's verdicts hold up after an image is re-shared.

    python -m benchmarks.generalization --json docs/benchmarks/generalization.json --update-docs
    python -m benchmarks.generalization --json OUT [--extra NAME=FOLDER ...] [--max-images N]

Collections: ``faces``, ``photos_mixed``, the ``generators`` and ``real_photos`` test splits together
(``generators_real_photos_test``) and each ``--extra`` folder with ``REAL/`` and ``FAKE/`` subfolders. A
checkpoint is scored only on those it did not train on (:func:`gauntlet.training_sets.never_trained_on`);
``unseen_mean`` is the plain mean of those accuracies, one vote per collection. Robustness: the default
model (:func:`gauntlet.service.default_bundled_model`) on RVAA test + ``faces`` as they are (``none``) and
after each re-sharing transform of :func:`gauntlet.transforms.resharing_transforms`.

Every number comes from :func:`training.evaluate.evaluate_benchmarks`, so each cell can be re-measured with
``python -m training.evaluate --checkpoint NAME --data SET`` (``--limit N`` for a ``--max-images`` run).
``--update-docs`` also regenerates MODEL_CARD.md and README.md's table from the JSON written.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import date
from pathlib import Path
from typing import Any

import torch

from gauntlet.checkpoint import bundled_names, load_folder
from gauntlet.detector import Detector
from gauntlet.model_card import GENERALIZATION
from gauntlet.training_sets import collection_name, never_trained_on
from gauntlet.service import default_bundled_model
from gauntlet.settings import REPO_ROOT, get_settings
from gauntlet.transforms import resharing_transforms
from training import data
from training.evaluate import evaluate_benchmarks

UNSEEN_SETS = {"faces": {"faces"}, "photos_mixed": {"photos_mixed"},
               "generators_real_photos_test": {"generators", "real_photos"}}
"""Benchmark name of :data:`training.data.BENCHMARKS` -> the collections its images come from."""
ROBUSTNESS_SETS = ("rvaa_test", "faces")
REFERENCE = "none"  # the robustness key of the untransformed images
JPEG_QUALITY = 75
SET_KEYS = ("accuracy", "n", "accuracy_ci95", "coverage", "accuracy_when_sure")
DEFAULT_JSON = GENERALIZATION
README = REPO_ROOT / "README.md"
README_BEGIN, README_END = "<!-- generalization:begin -->", "<!-- generalization:end -->"


def parse_extra(spec: str) -> tuple[str, Path]:
    """``NAME=FOLDER`` -> (name, folder); anything else is a usage error argparse shows in words."""
    name, sep, folder = spec.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise argparse.ArgumentTypeError(f"{spec!r} is not NAME=FOLDER (e.g. --extra gan=/data/gan_images)")
    return name.strip(), Path(folder.strip())


def collection_sets(data_dir: str | None, extras: list[tuple[str, Path]],
                    max_images: int | None) -> dict[str, tuple[set[str], list[data.Item]]]:
    """Every candidate set: name -> (the collections it comes from, its items, cut by the ``--limit`` rule)."""
    sets = {name: (collections, data.benchmark_items(name, data_dir)) for name, collections in UNSEEN_SETS.items()}
    for name, folder in extras:
        if name in sets:
            raise SystemExit(f"--extra {name}=...: {name!r} is already a collection; choose another name.")
        try:
            sets[name] = ({name.lower(), collection_name(str(folder))}, data.list_folder(folder))
        except FileNotFoundError as err:
            raise SystemExit(f"--extra {name}={folder}: {err}") from None
    return {name: (collections, data.interleave(items, max_images)) for name, (collections, items) in sets.items()}


def set_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The keys this benchmark reports per set (see :data:`SET_KEYS`)."""
    return {key: metrics[key] for key in SET_KEYS}


def checkpoint_result(detector: Detector, sets: dict[str, tuple[set[str], list[data.Item]]],
                      batch_size: int) -> dict[str, Any]:
    """One checkpoint on the sets it never trained on: per-set metrics and their plain mean accuracy."""
    unseen = {name: items for name, (collections, items) in sets.items()
              if never_trained_on(detector.config, collections)}
    measured = evaluate_benchmarks(detector, unseen, batch_size, desc=detector.config.name) if unseen else {}
    results = {name: set_summary(metrics) for name, metrics in measured.items()}
    accuracies = [r["accuracy"] for r in results.values()]
    return {"sets": results, "unseen_mean": sum(accuracies) / len(accuracies) if accuracies else None}


def robustness(detector: Detector, items: list[data.Item], batch_size: int,
               jpeg_quality: int = JPEG_QUALITY) -> dict[str, float]:
    """Accuracy on ``items`` as they are (``none``) and after each re-sharing transform."""
    transforms = {REFERENCE: None, **resharing_transforms(jpeg_quality)}
    return {name: evaluate_benchmarks(detector, {name: items}, batch_size, desc=f"robustness {name}",
                                      transform=transform)[name]["accuracy"]
            for name, transform in transforms.items()}


def run(data_dir: str | None, extras: list[tuple[str, Path]], max_images: int | None,
        batch_size: int, checkpoints_dir: Path | None = None) -> dict[str, Any]:
    """The whole benchmark as the JSON object ``--json`` writes."""
    root = checkpoints_dir or get_settings().checkpoints_dir
    names = bundled_names(root)
    if not names:
        raise SystemExit(f"No bundled checkpoints under {root}.")
    sets = collection_sets(data_dir, extras, max_images)
    detectors = {name: Detector(load_folder(root / name, source=name)) for name in names}
    default = default_bundled_model(root)
    robust_sets = {name: data.interleave(data.benchmark_items(name, data_dir), max_images) for name in ROBUSTNESS_SETS}
    robust_items = list(dict.fromkeys(item for items in robust_sets.values() for item in items))
    return {
        "default": default,
        "checkpoints": {name: checkpoint_result(detector, sets, batch_size) for name, detector in detectors.items()},
        "robustness": robustness(detectors[default], robust_items, batch_size),
        "robustness_sets": {name: len(items) for name, items in robust_sets.items()},
        "max_images": max_images,
        "date": date.today().isoformat(),
        "command": shlex.join(["python", "-m", "benchmarks.generalization", *sys.argv[1:]]),
    }


def update_readme(result: dict[str, Any], readme: Path = README) -> bool:
    """Replace README's table between the generalization markers; False when the markers are missing."""
    from training.model_card import generalization_table

    text = readme.read_text()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        return False
    block = f"{README_BEGIN}\n{generalization_table(result)}{README_END}"
    readme.write_text(text[:begin] + block + text[end + len(README_END):])
    return True


def update_docs(result: dict[str, Any]) -> None:
    """Regenerate MODEL_CARD.md (which reads :data:`DEFAULT_JSON`) and README's table."""
    from training import model_card

    model_card.main(model_card.get_args_parser().parse_args([]))
    if not update_readme(result):
        print(f"README.md has no {README_BEGIN} ... {README_END} block: its table was not updated.", file=sys.stderr)


def summary(result: dict[str, Any]) -> str:
    """A few readable lines: per checkpoint its accuracy on each unseen set, then the robustness row."""
    lines = []
    for name, checkpoint in result["checkpoints"].items():
        cells = ", ".join(f"{s} {m['accuracy']:.1%} (n={m['n']}, coverage {m['coverage']:.0%})"
                          for s, m in checkpoint["sets"].items())
        mean = checkpoint["unseen_mean"]
        lines.append(f"{name:18s} unseen mean {'-' if mean is None else f'{mean:.1%}'}: {cells or 'no unseen set'}")
    lines.append(f"robustness of {result['default']}: "
                 + ", ".join(f"{k} {v:.1%}" for k, v in result["robustness"].items()))
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Every bundled checkpoint on the collections it never trained on, "
                                                 "and the default model's robustness to re-sharing.")
    parser.add_argument("--json", required=True, help="write the results here")
    parser.add_argument("--extra", action="append", type=parse_extra, default=[],
                        help="NAME=FOLDER: one more collection, a folder with REAL/ and FAKE/ (repeatable)")
    parser.add_argument("--max-images", type=int, default=None,
                        help="cut each set to N images by the --limit rule (alternately REAL and FAKE): a quick run")
    parser.add_argument("--data-dir", default=None, help="data directory (default: settings)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--update-docs", action="store_true",
                        help="also regenerate MODEL_CARD.md and README.md's table (with --json at the default path)")
    return parser


def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.update_docs and Path(args.json).resolve() != DEFAULT_JSON.resolve():
        raise SystemExit(f"--update-docs renders {DEFAULT_JSON.relative_to(REPO_ROOT)}: pass that as --json.")
    torch.set_num_threads(args.threads)
    result = run(args.data_dir, args.extra, args.max_images, args.batch_size)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(summary(result))
    if args.update_docs:
        update_docs(result)
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
