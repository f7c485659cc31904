"""Memory over time: explain many images in a row in one process and watch the resident memory.

    python -m benchmarks.memory [--images 200] [--random efficientnet_lite0] [--json OUT]

Goes through ``ModelCatalog.analyse`` exactly as the app does (file on disk ->
load_image -> verdict -> each explanation, fast variants), over generated
images of varying size and shape. Reports RSS at start (model loaded), after a
warm-up and at the end, and the growth rate after warm-up, which should be
about zero. The allocator's high-water mark rises until the largest image has been seen, so
the leak test is the growth over the second half of the run: a leak (hooks, caches, tensors
kept alive) keeps growing there, a warm allocator does not.
Uses the bundled default model when ``checkpoints/`` has one, else (or with
``--random ARCHITECTURE``) a random-weight model (same compute and memory).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # LIME's progress bar would flood the output

import numpy as np
from PIL import Image

from benchmarks.load import pick_model
from benchmarks.server import rss_bytes
from gauntlet.explain import default_methods
from gauntlet.service import ModelCatalog

WARM_UP = 10


def image_file(folder: Path, index: int) -> Path:
    """Image number ``index``: a random size between 48 and 1200 px per side, noise over a gradient."""
    rng = np.random.RandomState(index)
    width, height = rng.randint(48, 1200, size=2)
    pixels = np.linspace(0, 255, width)[None, :, None] * rng.rand(1, 1, 3) + rng.randint(0, 60, (height, width, 3))
    path = folder / f"memory_{index % 2}.{'png' if index % 3 == 0 else 'jpg'}"
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
    return path


def mib() -> float:
    gc.collect()
    return rss_bytes(os.getpid()) / 2 ** 20


def run(count: int, architecture: str | None, methods: list[str], variant: str) -> dict:
    """Analyse ``count`` images; RSS after each one."""
    with tempfile.TemporaryDirectory(prefix="gauntlet-memory-") as folder:
        work = Path(folder)
        checkpoints, model = pick_model(work, None, architecture)
        catalog = ModelCatalog(extra_sources=(), checkpoints_dir=checkpoints)
        catalog.detector(model)
        start, rss, started = mib(), [], time.perf_counter()
        for index in range(count):
            catalog.analyse(str(image_file(work, index)), model, methods, variant)
            rss.append(mib())
            if (index + 1) % 20 == 0:
                print(f"  {index + 1} images, RSS {rss[-1]:.0f} MiB", flush=True)
    after_warm_up = rss[min(WARM_UP, count) - 1]
    return {"model": model, "methods": methods, "variant": variant, "images": count,
            "seconds": round(time.perf_counter() - started, 1), "rss_start_mib": round(start, 1),
            "rss_after_warm_up_mib": round(after_warm_up, 1), "rss_end_mib": round(rss[-1], 1),
            "rss_peak_mib": round(max(rss), 1), "growth_after_warm_up_mib": round(rss[-1] - after_warm_up, 1),
            "growth_second_half_mib": round(rss[-1] - rss[count // 2], 1), "rss_mib": [round(r, 1) for r in rss]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--random", metavar="ARCHITECTURE", help="use a random-weight model of this architecture")
    parser.add_argument("--methods", default=",".join(default_methods()))
    parser.add_argument("--variant", default="fast", choices=["fast", "full"])
    parser.add_argument("--json", type=Path, help="write the result (with RSS after every image) here")
    args = parser.parse_args()
    result = run(args.images, args.random, [m for m in args.methods.split(",") if m], args.variant)
    print(f"{result['images']} images with model {result['model']}, {result['variant']} "
          f"{', '.join(result['methods']) or 'no explanations'}: {result['seconds']} s")
    print(f"RSS MiB: start {result['rss_start_mib']}, after {WARM_UP} images {result['rss_after_warm_up_mib']}, "
          f"end {result['rss_end_mib']}, peak {result['rss_peak_mib']}")
    print(f"growth after warm-up: {result['growth_after_warm_up_mib']} MiB; "
          f"over the second half: {result['growth_second_half_mib']} MiB")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
