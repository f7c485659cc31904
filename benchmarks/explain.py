"""Full vs fast explanations: median latency, speed-up and faithfulness, on real images, in one process.

    python -m benchmarks.explain --memory 200 --json docs/benchmarks/explain_lite0-mixed.json

For each method the app runs by default (Score-CAM, Ablation-CAM and LIME) it explains the same RVAA test images
(half REAL, half FAKE) with the full and the fast variant and reports the
median wall time of ``Explainer.explain`` (what a visitor waits for), the
speed-up, and the mean deletion / insertion AUC (:mod:`gauntlet.explain.faithfulness`)
of both, over the images both were run on. ``--memory N`` then explains N
images in a row with their fast explainers and reports the growth of the
process's resident memory. Runs on 2 CPU threads, like the app's host.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from gauntlet.detector import Detector
from gauntlet.explain import FAST, FULL, METHODS, Explainer, Explanation, default_methods, explainer_factory
from gauntlet.explain.fast_cam import DEFAULT_K
from gauntlet.explain.fast_lime import DEFAULT_SEGMENTS, DEFAULT_SAMPLES
from gauntlet.explain.faithfulness import DEFAULT_STEPS, explanation_faithfulness
from gauntlet.images import load_image
from gauntlet.service import default_bundled_model
from gauntlet.settings import get_settings


def default_checkpoint() -> str:
    """The model the app shows first (:func:`gauntlet.service.default_bundled_model`)."""
    name = default_bundled_model(get_settings().checkpoints_dir)
    if name is None:
        raise SystemExit("No bundled checkpoint: pass --checkpoint (a folder or hf://owner/name).")
    return name


def rvaa_test_images(count: int) -> list[tuple[str, Image.Image]]:
    """``count`` RVAA test-split images, alternating REAL and FAKE, in manifest order."""
    data_dir = get_settings().data_dir
    if data_dir is None:
        raise SystemExit("No data directory: set GAUNTLET_DATA_DIR (see README, Configuration).")
    folder = Path(data_dir) / "rvaa"
    with open(folder / "manifest.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"]
    by_label = {label: [r["file"] for r in rows if r["label"] == label] for label in ("REAL", "FAKE")}
    files = [f for pair in zip(by_label["REAL"], by_label["FAKE"]) for f in pair][:count]
    return [(name, load_image(folder / name)) for name in files]


def rss_mb() -> float:
    """Resident memory of this process (Linux), in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def timed(explainer: Explainer, image: Image.Image) -> tuple[Explanation, float, float]:
    """The explanation, its wall time and the CPU time this process spent on it (robust to other load)."""
    wall, cpu = time.perf_counter(), time.process_time()
    explanation = explainer.explain(image)
    return explanation, time.perf_counter() - wall, time.process_time() - cpu


def fast_options(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Constructor arguments of the fast explainers, from the command line."""
    return {"score_cam": {"k": args.k}, "lime": {"num_samples": args.samples, "n_segments": args.segments}}


def measure_method(detector: Detector, method: str, images: list[tuple[str, Image.Image]], full_images: int,
                   options: dict[str, Any], steps: int) -> tuple[dict[str, Any], list[float]]:
    """One method, both variants: latencies, faithfulness, and the fast time per image."""
    runs: dict[str, list[tuple[float, ...]]] = {"fast": [], "full": []}
    with explainer_factory(method, FAST)(detector, "last", **options) as fast, \
            explainer_factory(method, FULL)(detector, "last") as full:
        timed(fast, images[0][1])  # warm-up: first-call allocations are not what a visitor waits for
        for index, (name, image) in enumerate(images):
            for variant, explainer in (("fast", fast), ("full", full)):
                if variant == "full" and index >= full_images:
                    continue
                explanation, seconds, cpu = timed(explainer, image)
                scores = explanation_faithfulness(detector, explanation, steps)
                runs[variant].append((seconds, *scores, cpu))
                print(f"  {method:12s} {variant:4s} {name:24s} {seconds:8.2f} s (cpu {cpu:7.2f} s)  "
                      f"deletion {scores[0]:.3f}  insertion {scores[1]:.3f}", flush=True)
    paired = runs["fast"][:full_images]
    result = {
        "full_s": statistics.median(r[0] for r in runs["full"]),
        "fast_s": statistics.median(r[0] for r in runs["fast"]),
        "full_deletion_auc": float(np.mean([r[1] for r in runs["full"]])),
        "fast_deletion_auc": float(np.mean([r[1] for r in paired])),
        "full_insertion_auc": float(np.mean([r[2] for r in runs["full"]])),
        "fast_insertion_auc": float(np.mean([r[2] for r in paired])),
        "full_cpu_s": statistics.median(r[3] for r in runs["full"]),
        "fast_cpu_s": statistics.median(r[3] for r in runs["fast"]),
        "n_full_images": len(runs["full"]), "n_fast_images": len(runs["fast"]), "fast_options": options,
    }
    result["speedup"] = result["full_s"] / result["fast_s"]
    return result, [r[0] for r in runs["fast"]]


def measure_memory(detector: Detector, images: list[tuple[str, Image.Image]], count: int, methods: list[str],
                   options: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Explain ``count`` images in a row with the fast explainers; RSS after a warm-up and at the end."""
    explainers = [explainer_factory(method, FAST)(detector, "last", **options.get(method, {})) for method in methods]
    warmup, start = min(10, count // 2), 0.0
    for index in range(count):
        if index == warmup:
            start = rss_mb()
        image = images[index % len(images)][1]
        for explainer in explainers:
            explainer.explain(image)
    end = rss_mb()
    for explainer in explainers:
        explainer.close()
    return {"explanations": count * len(explainers), "rss_after_warmup_mb": start, "rss_end_mb": end,
            "rss_growth_mb": end - start}


def markdown_table(result: dict[str, Any]) -> str:
    """The README table: one row per method."""
    lines = ["| method | full (s) | fast (s) | speed-up | deletion AUC full / fast (lower is better) "
             "| insertion AUC full / fast (higher is better) |", "|---|---:|---:|---:|---|---|"]
    for method, r in result["methods"].items():
        lines.append(f"| {method} | {r['full_s']:.2f} | {r['fast_s']:.3f} | {r['speedup']:.0f}x "
                     f"| {r['full_deletion_auc']:.3f} / {r['fast_deletion_auc']:.3f} "
                     f"| {r['full_insertion_auc']:.3f} / {r['fast_insertion_auc']:.3f} |")
    lines.append(f"\nAll {len(result['methods'])} fast explanations of one image together: "
                 f"{result['all_fast_s']:.2f} s (median). {result['checkpoint']}, {result['n_images']} RVAA test "
                 f"images ({result['n_full_images']} for the full methods), {result['threads']} threads, "
                 f"load average {result['load_average_at_start']:.1f} at the start.")
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="bundled name, folder or hf:// (default: the app's model)")
    parser.add_argument("--images", type=int, default=8, help="RVAA test images, half REAL, half FAKE")
    parser.add_argument("--full-images", type=int, default=None, help="run the (slow) full methods on only the "
                        "first M images (default: all)")
    parser.add_argument("--k", type=int, default=DEFAULT_K, help="fast Score-CAM: channels scored")
    parser.add_argument("--segments", type=int, default=DEFAULT_SEGMENTS, help="fast LIME: SLIC superpixels (about)")
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="fast LIME: perturbed samples")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="deletion/insertion steps")
    parser.add_argument("--methods", nargs="+", default=default_methods(), choices=list(METHODS),
                        help="default: the methods the app runs by default (gauntlet.explain.methods)")
    parser.add_argument("--memory", type=int, default=0, help="then explain N images in a row and report RSS")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="write the results here")
    return parser


def main(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or default_checkpoint()
    detector = Detector.from_source(checkpoint, get_settings().checkpoints_dir)
    images = rvaa_test_images(args.images)
    full_images = len(images) if args.full_images is None else min(args.full_images, len(images))
    options = fast_options(args)
    result: dict[str, Any] = {"checkpoint": checkpoint, "n_images": len(images), "n_full_images": full_images,
                              "threads": args.threads, "steps": args.steps, "methods": {},
                              "load_average_at_start": os.getloadavg()[0],
                              "command": shlex.join(["python", "-m", "benchmarks.explain", *sys.argv[1:]])}
    fast_times = []
    for method in args.methods:
        print(f"{method}:", flush=True)
        result["methods"][method], times = measure_method(detector, method, images, full_images,
                                                          options.get(method, {}), args.steps)
        fast_times.append(times)
    result["load_average_at_end"] = os.getloadavg()[0]
    result["all_fast_s"] = statistics.median(map(sum, zip(*fast_times)))
    if args.memory:
        result["memory"] = measure_memory(detector, images, args.memory, args.methods, options)
    print(markdown_table(result))
    if "memory" in result:
        print(f"Memory: {result['memory']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(get_args_parser().parse_args())
