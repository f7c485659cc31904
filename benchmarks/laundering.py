"""How often re-sharing flips the default model's verdict: the laundering lab's four transforms over test images.

    python -m benchmarks.laundering --json docs/benchmarks/laundering.json

For every image of RVAA's test split and of ``faces`` (never trained on), it classifies the image and its four
laundered copies (:data:`gauntlet.forensics.laundering.LAUNDERINGS`) with the model the app shows first
(:func:`gauntlet.service.default_bundled_model`) and reports, per transform, the share of verdicts that change
(``{"flip_rate": {TRANSFORM: x}, "n": N}``), overall and per data set, with the accuracy before and after.
One torch thread (the CPU is shared); verdicts only, no heatmaps: the lab's own latency is measured by
``python -m benchmarks.forensics_latency``.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from typing import Any

import torch

from benchmarks import write_result
from gauntlet.checkpoint import load_checkpoint
from gauntlet.detector import Detector
from gauntlet.forensics.laundering import LAUNDERINGS, laundered_copies
from gauntlet.images import load_image
from gauntlet.service import default_bundled_model
from training.data import benchmark_items

DATA_SETS = ("rvaa_test", "faces")
TRANSFORM_NAMES = [name for _, name, _ in LAUNDERINGS]  # gauntlet.transforms names: the keys of "flip_rate"


def verdicts(detector: Detector, path: str) -> dict[str, int]:
    """Predicted class of the image ("original") and of each laundered copy, by transform name."""
    image = load_image(path)
    copies = zip(TRANSFORM_NAMES, laundered_copies(image))
    return {"original": detector.predict(image).predicted_index,
            **{name: detector.predict(copy).predicted_index for name, (_, copy) in copies}}


def summarise(rows: list[tuple[int, dict[str, int]]]) -> dict[str, Any]:
    """Flip rate per transform, and accuracy of the original and of each copy, over (label, verdicts) rows."""
    n = len(rows)
    return {"n": n,
            "flip_rate": {t: round(sum(v[t] != v["original"] for _, v in rows) / n, 4) for t in TRANSFORM_NAMES},
            "accuracy": {t: round(sum(v[t] == label for label, v in rows) / n, 4)
                         for t in ["original", *TRANSFORM_NAMES]}}


def main(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    name = args.checkpoint or default_bundled_model()
    if name is None:
        raise SystemExit("No bundled checkpoint: pass --checkpoint (a folder or hf://owner/name).")
    detector = Detector(load_checkpoint(name))
    per_set = {}
    all_rows = []
    for data in DATA_SETS:
        rows = [(item.label, verdicts(detector, item.path)) for item in benchmark_items(data)[:args.limit]]
        per_set[data] = summarise(rows)
        all_rows += rows
        print(f"{data}: {per_set[data]}", flush=True)
    result = {**summarise(all_rows), "per_data_set": per_set, "checkpoint": name,
              "transforms": {name: {"title": title, **params} for title, name, params in LAUNDERINGS},
              "command": shlex.join(["python", "-m", "benchmarks.laundering", *sys.argv[1:]]),
              "threads": args.threads, "machine": f"{os.cpu_count()} CPUs"}
    return write_result(result, args.json)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Share of verdicts each laundering transform flips.")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--checkpoint", default=None, help="default: the app's default bundled model")
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per data set")
    parser.add_argument("--threads", type=int, default=1)
    return parser


if __name__ == "__main__":
    print(json.dumps(main(get_args_parser().parse_args()), indent=2))
