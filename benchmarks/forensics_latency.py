"""How long the forensics lab makes a visitor wait: laundering lab, frequency view, provenance, agreement.

    python -m benchmarks.forensics_latency --threads 2 --json docs/benchmarks/forensics_latency.json

On RVAA test images (alternately REAL and FAKE) and the model the app shows first, it reports the median wall
time of each panel as the app runs it (:class:`gauntlet.forensics.lab.ForensicsLab`, the upload's path in):
the laundering lab (five verdicts and five Grad-CAMs; target 1.5 s on 2 cores), the frequency view (target
0.3 s), the provenance reading, and the agreement line over three heatmaps. The 1-minute load average is
recorded too: on a shared CPU other processes inflate these times (the CPU time this process spent, also
reported, much less so).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from benchmarks import write_result
from benchmarks.explain import rvaa_test_images
from gauntlet.forensics.agreement import agreement_text
from gauntlet.forensics.lab import ForensicsLab
from gauntlet.service import ModelCatalog
from gauntlet.settings import get_settings

TARGETS_S = {"laundering": 1.5, "frequency": 0.3}


def median_s(action: Callable[[str], object], paths: list[str]) -> tuple[float, float]:
    """Median wall time and median CPU time of this process for ``action(path)`` over ``paths``, after a warm-up.

    CPU time hardly grows when other processes share the CPU; wall time does (a lot, with 2 threads).
    """
    action(paths[0])
    wall, cpu = [], []
    for path in paths:
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        action(path)
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return round(statistics.median(wall), 4), round(statistics.median(cpu), 4)


def main(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    settings = get_settings()
    catalog = ModelCatalog(extra_sources=())
    key = catalog.default_key
    lab = ForensicsLab(catalog, settings.max_pixels, int(settings.max_upload_mb * 1024 * 1024))
    folder = Path(settings.data_dir) / "rvaa"
    paths = [str(folder / name) for name, _ in rvaa_test_images(args.images)]
    heatmaps = {path: [(r.method, r.explanation.heatmap) for r in catalog.analyse(
        path, key, ["grad_cam", "score_cam", "ablation_cam"]).results] for path in paths}
    load = os.getloadavg()[0]
    timed = {"laundering": median_s(lambda path: lab.launder(path, key), paths),
             "frequency": median_s(lab.frequency, paths),
             "provenance": median_s(lab.provenance, paths),
             "agreement": median_s(lambda path: agreement_text(heatmaps[path]), paths)}
    medians = {name: wall for name, (wall, _) in timed.items()}
    result = {"median_seconds": medians, "median_cpu_seconds": {name: cpu for name, (_, cpu) in timed.items()},
              "targets_seconds": TARGETS_S,
              "within_target": {name: medians[name] <= target for name, target in TARGETS_S.items()},
              "model": key, "images": len(paths), "threads": args.threads, "machine": f"{os.cpu_count()} CPUs",
              "load_average_at_start": round(load, 2),
              "command": shlex.join(["python", "-m", "benchmarks.forensics_latency", *sys.argv[1:]])}
    return write_result(result, args.json)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Median latency of the forensics lab's panels.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--json", default=None, help="write the results here")
    return parser


if __name__ == "__main__":
    print(json.dumps(main(get_args_parser().parse_args()), indent=2))
