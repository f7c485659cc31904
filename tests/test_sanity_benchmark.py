"""benchmarks.sanity: the lab's randomisation check over several images, counted per method."""
from __future__ import annotations

from PIL import Image

from benchmarks.sanity import method_sanity
from gauntlet.forensics.agreement import SANITY_SIMILAR_AT


def test_each_map_is_checked_and_passes_are_counted_against_the_lab_threshold(tiny_detectors, rgb_image):
    images = [("first", rgb_image), ("second", rgb_image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))]
    result = method_sanity(tiny_detectors["efficientnet_lite0"], "grad_cam", "fast", images)
    assert result["n"] == len(result["rhos"]) == 2
    assert result["passed"] == sum(rho < SANITY_SIMILAR_AT for rho in result["rhos"])
    assert min(result["rhos"]) <= result["median_rho"] <= max(result["rhos"])
