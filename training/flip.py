"""Choose, on validation data, whether a checkpoint's verdicts average the image with its mirror image.

    python -m training.flip --checkpoint checkpoints/lite0-cifake --data cifake

Test-time flipping costs a second forward pass per verdict (explanations are
unaffected). It helps some checkpoints and hurts others, so it is decided per
checkpoint on its validation split, never on test data: the flip is kept only
when it is strictly more accurate there. Both validation figures and the choice
go into ``config.json`` (``test_time_flip``, ``metrics.test_time_flip``); when
the choice changes the verdicts, the test metrics of ``--data`` are measured
again on the checkpoint as it now behaves, as ``training.train`` measures them.
"""
from __future__ import annotations

import argparse
import json
import shlex
from typing import Any

from gauntlet.checkpoint import load_folder, write_config
from gauntlet.detector import Detector
from training import data
from training.evaluate import evaluate_benchmarks, evaluate_items


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Decide test-time flipping for a checkpoint folder on validation data.")
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder (its config.json is updated)")
    parser.add_argument("--data", required=True, help="the data it was trained on: cifake, rvaa, mixed or a REAL/FAKE folder")
    parser.add_argument("--data-dir", default=None, help="data directory (default: settings)")
    parser.add_argument("--batch-size", type=int, default=64)
    return parser


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this decision."""
    words = ["python", "-m", "training.flip", "--checkpoint", args.checkpoint, "--data", args.data]
    return shlex.join(words + (["--data-dir", args.data_dir] if args.data_dir else []))


def validation_accuracy(detector: Detector, items: list[data.Item], flip: bool, batch_size: int) -> float:
    """Accuracy on ``items`` with test-time flipping on or off."""
    detector.config.test_time_flip = flip
    desc = "validation, mirror-averaged" if flip else "validation"
    return evaluate_items(detector, items, batch_size, desc)["accuracy"]


def main(args: argparse.Namespace) -> dict[str, Any]:
    checkpoint = load_folder(args.checkpoint)
    detector, config = Detector(checkpoint), checkpoint.config
    before = config.test_time_flip
    items = data.dataset_items(args.data, args.data_dir, "val")
    plain, flipped = (validation_accuracy(detector, items, flip, args.batch_size) for flip in (False, True))
    config.test_time_flip = flipped > plain
    config.metrics["test_time_flip"] = {"validation_plain": plain, "validation_flip": flipped,
                                        "chosen": config.test_time_flip, "command": command_line(args)}
    if config.test_time_flip != before:
        config.metrics.update(evaluate_benchmarks(detector, data.test_sets(args.data, args.data_dir), args.batch_size))
    write_config(config, args.checkpoint)
    print(json.dumps({k: v.get("accuracy", v.get("chosen")) for k, v in config.metrics.items()}))
    return config.metrics


if __name__ == "__main__":
    main(get_args_parser().parse_args())
