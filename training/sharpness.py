"""How sharp each class of a collection is: a difference in sharpness is a shortcut a detector can learn or trip on.

    python -m training.sharpness --data faces photos_mixed generators_real_photos_test rvaa_test [--json OUT]

Sharpness is a standard focus measure, the log variance of the Laplacian of the grey image resized to 256 x 256
(resized, so that collections of other sizes compare). Issue 17 found every model inverted on ``faces``: this
shows why one cue points the wrong way there (its real faces are far softer than its generated ones, and softer
than any training collection), so that the report can say so with a number instead of a guess.
"""
from __future__ import annotations

import argparse

import numpy as np
from PIL import Image
from tqdm import tqdm

from training import data
from training.evaluate import report, select_items

SIDE = 256
LABELS = ("REAL", "FAKE")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Median sharpness (log Laplacian variance) per class of image sets.")
    parser.add_argument("--data", nargs="+", required=True, help="benchmark names or REAL/FAKE folders")
    parser.add_argument("--data-dir", default=None, help="data directory for benchmark names (default: settings)")
    parser.add_argument("--json", default=None, help="write {SET: {LABEL: {median, q25, q75, n}}} here ('-' = stdout)")
    return parser


def sharpness(image: Image.Image) -> float:
    """Log variance of the 4-neighbour Laplacian of the grey image at :data:`SIDE` px (higher: sharper)."""
    grey = np.asarray(image.convert("L").resize((SIDE, SIDE), Image.BICUBIC), dtype=np.float64)
    laplacian = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(np.log(laplacian.var() + 1e-6))


def class_sharpness(items: list[data.Item], desc: str = "sharpness") -> dict[str, dict[str, float]]:
    """Median and quartiles of :func:`sharpness` per label."""
    values: dict[int, list[float]] = {0: [], 1: []}
    for item in tqdm(items, desc=desc, unit="img"):
        values[item.label].append(sharpness(data.read_item(item)))
    return {LABELS[label]: {"median": float(np.median(v)), "q25": float(np.percentile(v, 25)),
                            "q75": float(np.percentile(v, 75)), "n": len(v)} for label, v in values.items() if v}


def main(args: argparse.Namespace) -> dict:
    results = {source: class_sharpness(select_items(source, args.data_dir), source) for source in args.data}
    report("\n".join(f"{source}: " + "; ".join(f"{label} median {s['median']:.2f} [{s['q25']:.2f}-{s['q75']:.2f}] "
                                               f"(n={s['n']})" for label, s in per_class.items())
                     for source, per_class in results.items()), results, args.json)
    return results


if __name__ == "__main__":
    main(get_args_parser().parse_args())
