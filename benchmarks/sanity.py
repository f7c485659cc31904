"""The randomisation sanity check (Adebayo et al. 2018) of every explanation method, over real images.

    python -m benchmarks.sanity --images 8 --json docs/benchmarks/sanity_lite0-mixed.json

The Detector tab's lab runs this check on one visitor's image; this runs it on ``--images`` RVAA test images
(half REAL, half FAKE) for each method and variant, and reports the median rank correlation between the map of
the trained model and that of a copy whose classifier head is random, and how many maps pass (correlation below
:data:`gauntlet.forensics.agreement.SANITY_SIMILAR_AT`). A method whose maps barely change shows the image, not
the model's reasoning.
"""
from __future__ import annotations

import argparse
import shlex
import statistics
import sys

import torch

from benchmarks import write_result
from benchmarks.explain import default_checkpoint, rvaa_test_images
from gauntlet.detector import Detector
from gauntlet.explain import METHODS, available_variants, build_explainer
from gauntlet.forensics.agreement import SANITY_SIMILAR_AT, sanity_check, with_random_head
from gauntlet.settings import get_settings


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Randomisation sanity check of each explanation method.")
    parser.add_argument("--checkpoint", default=None, help="default: the app's default model")
    parser.add_argument("--images", type=int, default=8, help="RVAA test images (alternating REAL and FAKE)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--variants", nargs="+", default=["fast"], choices=["fast", "full"],
                        help="variants to check (a method without a fast variant is checked in full)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    return parser


def method_sanity(detector: Detector, method: str, variant: str, images: list) -> dict:
    """Median rank correlation with the random-head model's maps, and how many of the maps passed."""
    rhos, randomised = [], with_random_head(detector)
    with build_explainer(method, detector, "last", variant) as explainer:
        for name, image in images:
            explanation = explainer.explain(image)
            rhos.append(sanity_check(detector, explanation, image, randomised=randomised).rho)
            print(f"  {method:12s} {variant:4s} {name:24s} rho {rhos[-1]:+.2f}", flush=True)
    return {"median_rho": statistics.median(rhos), "passed": sum(rho < SANITY_SIMILAR_AT for rho in rhos),
            "n": len(rhos), "rhos": rhos}


def main(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or default_checkpoint()
    detector = Detector.from_source(checkpoint, get_settings().checkpoints_dir)
    images = rvaa_test_images(args.images)
    results = {}
    for method in args.methods:
        for variant in dict.fromkeys(v if v in available_variants(method) else "full" for v in args.variants):
            results[f"{method}/{variant}"] = method_sanity(detector, method, variant, images)
    for key, result in results.items():
        print(f"{key:20s} median rho {result['median_rho']:+.2f}, passed {result['passed']} of {result['n']}")
    return write_result({"checkpoint": checkpoint, "passes_below": SANITY_SIMILAR_AT, "methods": results,
                         "command": shlex.join(["python", "-m", "benchmarks.sanity", *sys.argv[1:]])}, args.json)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
