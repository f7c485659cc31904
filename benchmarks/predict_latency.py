"""Median single-image prediction latency of every bundled checkpoint (CPU, fixed thread count).

    python benchmarks/predict_latency.py --threads 2 --json docs/model_card/latency.json

Times ``Detector.predict`` (preprocessing included) on a synthetic 400x300 RGB
image, the size of a typical RVAA picture, after a few warm-up calls. The
1-minute load average at the start is recorded too: on shared CPUs other
processes inflate these times (with 2 threads, by up to 100x when oversubscribed).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from gauntlet.checkpoint import bundled_names  # noqa: E402
from gauntlet.detector import Detector  # noqa: E402
from gauntlet.settings import get_settings  # noqa: E402


def median_ms(detector: Detector, image: Image.Image, repeats: int, warmup: int = 3) -> float:
    """Median wall time of ``detector.predict(image)`` in milliseconds."""
    for _ in range(warmup):
        detector.predict(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        detector.predict(image)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Measure per-image prediction latency of the bundled checkpoints.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--checkpoints", nargs="*", default=None, help="default: every bundled checkpoint")
    parser.add_argument("--json", default=None, help="also write the results here")
    return parser


def main(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    image = Image.fromarray(np.random.RandomState(0).randint(0, 255, (300, 400, 3), dtype=np.uint8))
    checkpoints_dir = get_settings().checkpoints_dir
    names = args.checkpoints or bundled_names(checkpoints_dir)
    result = {"threads": args.threads, "repeats": args.repeats,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "load_average": round(os.getloadavg()[0], 2),
              "command": shlex.join(["python", "benchmarks/predict_latency.py", *sys.argv[1:]]),
              "median_ms": {name: round(median_ms(Detector.from_source(name, checkpoints_dir), image, args.repeats), 2) for name in names}}
    for name, ms in result["median_ms"].items():
        print(f"{name:30s} {ms:8.1f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
