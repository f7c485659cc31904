"""Is one checkpoint really better than another? A paired comparison on the same images.

    python -m training.compare --checkpoints lite0-rvaa /work/runs/ck/candidate --data rvaa_val

Both checkpoints classify every image exactly as the app does (each with its own
test-time flip choice). The command prints each accuracy with its Wilson 95 %
interval, how often the two disagree and in whose favour, and the exact McNemar
p-value: the chance of a split at least this lopsided if both were equally good.
On a few hundred images, differences of a handful of images are usually chance.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from gauntlet.checkpoint import load_checkpoint
from gauntlet.detector import Detector
from gauntlet.stats import interval_text, mcnemar_exact, wilson_interval
from gauntlet.settings import BUNDLED_CHECKPOINTS, get_settings
from training import data
from training.evaluate import predict_items, report, select_items

SIGNIFICANCE = 0.05


def correct_by_item(source: str, items: list[data.Item], batch_size: int,
                    checkpoints_dir: Path = BUNDLED_CHECKPOINTS) -> dict[data.Item, bool]:
    """Whether ``source`` classifies each readable item correctly (FAKE above 0.5, as the app's verdict)."""
    done, probs, _ = predict_items(Detector(load_checkpoint(source, checkpoints_dir)), items, batch_size, desc=source)
    return {item: bool((p > 0.5) == item.label) for item, p in zip(done, probs)}


def paired_comparison(first: dict[data.Item, bool], second: dict[data.Item, bool]) -> dict[str, Any]:
    """Counts, accuracies with 95 % intervals and the McNemar p-value over the items both could read."""
    shared = [item for item in first if item in second]
    a = np.array([first[i] for i in shared], dtype=bool)
    b = np.array([second[i] for i in shared], dtype=bool)
    n = len(shared)
    counts = {"both_right": int(np.sum(a & b)), "only_first_right": int(np.sum(a & ~b)),
              "only_second_right": int(np.sum(~a & b)), "both_wrong": int(np.sum(~a & ~b))}
    p_value = mcnemar_exact(counts["only_first_right"], counts["only_second_right"])
    return {"n": n, **counts,
            "accuracy": [float(a.mean()) if n else 0.0, float(b.mean()) if n else 0.0],
            "accuracy_ci95": [list(wilson_interval(int(a.sum()), n)), list(wilson_interval(int(b.sum()), n))],
            "mcnemar_p": p_value, "significant": p_value < SIGNIFICANCE}


def _p_text(p_value: float) -> str:
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


def summary(result: dict[str, Any]) -> str:
    """Readable lines: both accuracies, the disagreements and what they mean."""
    first, second = result["checkpoints"]
    lines = [f"{result['n']} images of {result['data']}"]
    for name, acc, interval in zip((first, second), result["accuracy"], result["accuracy_ci95"]):
        lines.append(f"  {name}: {acc:.2%} ({interval_text(*interval)})")
    lines += [f"  they disagree on {result['only_first_right'] + result['only_second_right']} images: "
              f"{result['only_first_right']} only {first} gets right, {result['only_second_right']} only {second}",
              f"  exact McNemar {_p_text(result['mcnemar_p'])}: " +
              ("a real difference (p < 0.05)" if result["significant"]
               else "no evidence that either is better (p >= 0.05); the gap is within chance")]
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Compare two GAUNTLET checkpoints on the same labelled images.")
    parser.add_argument("--checkpoints", nargs=2, required=True, metavar=("FIRST", "SECOND"),
                        help="bundled names, folders or hf://owner/name[@rev]")
    parser.add_argument("--data", required=True,
                        help=f"REAL/FAKE folder, .zip, or one of: {', '.join(data.BENCHMARKS)}")
    parser.add_argument("--data-dir", default=None, help="data directory for benchmark names (default: settings)")
    parser.add_argument("--limit", type=int, default=None,
                        help="first N images, alternately REAL and FAKE in sorted name order")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", default=None, help="write the result as one JSON object here ('-' = stdout)")
    return parser


def main(args: argparse.Namespace) -> dict[str, Any]:
    items = select_items(args.data, args.data_dir, limit=args.limit)
    checkpoints_dir = get_settings().checkpoints_dir
    first, second = (correct_by_item(source, items, args.batch_size, checkpoints_dir) for source in args.checkpoints)
    result = {"checkpoints": list(args.checkpoints), "data": args.data, "limit": args.limit,
              **paired_comparison(first, second)}
    report(summary(result), result, args.json)
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
