"""Find test images that are near-duplicates of training or validation images (a leak the test would reward).

    python -m training.dedup --data rvaa --out training/rvaa_test_near_duplicates.txt

RVAA was scraped from the web: the same picture often appears twice, resized or
re-encoded, and the fixed split put some of these copies on both sides. Each image
gets a difference hash (a 16x16 grid of "is this pixel brighter than its right-hand
neighbour", on a grayscale 17x16 thumbnail), which survives resizing and JPEG
re-encoding; a test image whose hash differs from a training or validation image's
in at most ``--max-distance`` of its 256 bits is listed, one ``LABEL/file`` per line,
in the format ``training.evaluate --exclude-list`` and the ``*_dedup`` benchmarks read.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from training import data

HASH_SIDE = 16
CHUNK = 64
DEFAULT_MAX_DISTANCE = 12  # RVAA: the listed pairs are at most 8 bits apart, every other test image 42+ bits away


def difference_hash(image: Image.Image, side: int = HASH_SIDE) -> np.ndarray:
    """``side * side`` booleans: whether each pixel of a small grayscale copy is brighter than its right neighbour."""
    small = np.asarray(image.convert("L").resize((side + 1, side), Image.BILINEAR), dtype=np.int16)
    return (small[:, 1:] > small[:, :-1]).ravel()


def hashes(items: list[data.Item]) -> np.ndarray:
    """One difference hash per item (rows), decoded as the app decodes images."""
    return np.array([difference_hash(data.read_item(item)) for item in items])


def nearest_seen(seen: list[data.Item], test: list[data.Item]) -> list[tuple[data.Item, data.Item, int]]:
    """(test item, the most similar seen item, Hamming distance between their hashes) for every test item."""
    seen_hashes, test_hashes = hashes(seen), hashes(test)
    nearest = []
    for start in range(0, len(test), CHUNK):  # a chunk of test rows at a time keeps memory small
        distances = (test_hashes[start:start + CHUNK, None, :] != seen_hashes[None, :, :]).sum(-1)
        for row, j in enumerate(distances.argmin(axis=1)):
            nearest.append((test[start + row], seen[j], int(distances[row, j])))
    return nearest


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="List test images that near-duplicate training or validation images.")
    parser.add_argument("--data", default="rvaa", help="a named dataset (rvaa, cifake, mixed) or a REAL/FAKE folder")
    parser.add_argument("--data-dir", default=None, help="data directory (default: settings)")
    parser.add_argument("--max-distance", type=int, default=DEFAULT_MAX_DISTANCE,
                        help=f"largest Hamming distance (of {HASH_SIDE * HASH_SIDE} bits) counted as the same picture")
    parser.add_argument("--out", required=True, help="text file to write, one LABEL/file per line")
    return parser


def main(args: argparse.Namespace) -> list[tuple[data.Item, data.Item, int]]:
    seen = [i for split in ("train", "val") for i in data.dataset_items(args.data, args.data_dir, split)]
    test = data.dataset_items(args.data, args.data_dir, "test")
    nearest = nearest_seen(seen, test)
    leaked = [entry for entry in nearest if entry[2] <= args.max_distance]
    margin = min((distance for _, _, distance in nearest if distance > args.max_distance), default=None)
    header = [f"# {len(leaked)} of {len(test)} {args.data} test images near-duplicate a training or validation image",
              f"# (difference hash, at most {args.max_distance} of {HASH_SIDE * HASH_SIDE} bits apart; every other test "
              f"image is at least {margin} bits from every training and validation image):",
              f"# python -m training.dedup --data {args.data} --max-distance {args.max_distance} --out {args.out}"]
    lines = [f"{item.name}  # {other.name}, {distance} bits" for item, other, distance in leaked]
    Path(args.out).write_text("\n".join(header + lines) + "\n")
    for line in header + lines:
        print(line)
    return leaked


if __name__ == "__main__":
    main(get_args_parser().parse_args())
