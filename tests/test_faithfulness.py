"""Deletion / insertion AUC on constructed models whose answer is known in closed form."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gauntlet.checkpoint import Checkpoint, CheckpointConfig
from gauntlet.detector import Detector
from gauntlet.explain import build_explainer
from gauntlet.explain.faithfulness import area_under, blurred, deletion_insertion, explanation_faithfulness

SIDE = 16
FAKE = 1


def brightness(region: torch.Tensor) -> torch.Tensor:
    return region.mean(dim=(1, 2, 3))


def contrast(region: torch.Tensor) -> torch.Tensor:
    """1 for black-and-white stripes, 0 for flat grey: what a blur takes away."""
    return (2 * (region - 0.5).abs()).mean(dim=(1, 2, 3))


class RegionModel(nn.Module):
    """P(FAKE) = ``measure`` of the input's ``rows`` x ``cols``; counts the images it sees."""

    def __init__(self, rows: slice, cols: slice, measure=brightness) -> None:
        super().__init__()
        self.rows, self.cols, self.measure = rows, cols, measure
        self.images_seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images_seen += x.shape[0]
        p = self.measure(x[:, :, self.rows, self.cols]).clamp(1e-6, 1 - 1e-6)
        return torch.stack([torch.log1p(-p), torch.log(p)], dim=1)


def region_detector(rows: slice, cols: slice, measure=brightness, side: int = SIDE) -> Detector:
    """Unnormalised input (mean 0, std 1) so the model sees pixel values in [0, 1]."""
    config = CheckpointConfig(architecture="baseline_cnn", input_size=side, mean=[0.0] * 3, std=[1.0] * 3)
    return Detector(Checkpoint(model=RegionModel(rows, cols, measure), config=config, source="test"))


def left_white_image(side: int = SIDE, stripes: bool = False) -> Image.Image:
    pixels = np.zeros((side, side, 3), dtype=np.uint8)
    pixels[:, : side // 2] = 255
    if stripes:
        pixels[::2] = 0
    return Image.fromarray(pixels)


def left_half_map(value_left: float, side: int = SIDE) -> np.ndarray:
    heatmap = np.full((side, side), 1.0 - value_left, dtype=np.float32)
    heatmap[:, : side // 2] = value_left
    return heatmap


@pytest.mark.parametrize("steps", [4, 8, 16])
def test_known_areas_for_right_and_wrong_heatmaps(steps):
    """The model reads the left half (white). Good map: left first. Wrong map: right first."""
    detector = region_detector(slice(None), slice(0, SIDE // 2))
    image = left_white_image()
    good = deletion_insertion(detector, image, left_half_map(1.0), FAKE, steps=steps, insertion_start="black")
    wrong = deletion_insertion(detector, image, left_half_map(0.0), FAKE, steps=steps, insertion_start="black")
    # Good: deletion p = max(0, 1 - 2f) -> 1/4; insertion p = min(1, 2f) -> 3/4. Wrong: the reverse.
    assert good.deletion_auc == pytest.approx(0.25, abs=1e-4)
    assert good.insertion_auc == pytest.approx(0.75, abs=1e-4)
    assert wrong.deletion_auc == pytest.approx(0.75, abs=1e-4)
    assert wrong.insertion_auc == pytest.approx(0.25, abs=1e-4)


def test_blurred_insertion_on_fine_detail():
    """The model reads the contrast of fine stripes on the left, which the blurred start has lost."""
    side = 64
    detector = region_detector(slice(None), slice(0, side // 2), contrast, side)
    image = left_white_image(side, stripes=True)
    start = blurred(detector.preprocess(image), torch.zeros(side, side))
    c = float(detector.probabilities(start)[0, FAKE])  # what is left of the stripes after the blur
    assert c < 0.2
    good = deletion_insertion(detector, image, left_half_map(1.0, side), FAKE, steps=8)
    wrong = deletion_insertion(detector, image, left_half_map(0.0, side), FAKE, steps=8)
    # Good: c -> 1 over the first half, then 1. Wrong: c over the first half, then c -> 1.
    assert good.insertion_auc == pytest.approx(0.75 + 0.25 * c, abs=1e-3)
    assert wrong.insertion_auc == pytest.approx(0.25 + 0.75 * c, abs=1e-3)


def test_cost_is_two_batched_curves():
    detector = region_detector(slice(None), slice(0, SIDE // 2))
    deletion_insertion(detector, left_white_image(), left_half_map(1.0), FAKE, steps=10, batch_size=8)
    assert detector.model.images_seen == 2 * 11


def test_padding_is_never_perturbed():
    """A wide image is padded above and below; a model reading only the padding sees a constant curve."""
    detector = region_detector(slice(0, 2), slice(None))
    wide = Image.fromarray(np.full((SIDE // 2, SIDE, 3), 200, dtype=np.uint8))
    heatmap = np.random.RandomState(0).rand(SIDE // 2, SIDE).astype(np.float32)
    result = deletion_insertion(detector, wide, heatmap, FAKE)
    expected = float(detector.probabilities(detector.preprocess(wide))[0, FAKE])
    assert result.deletion_auc == pytest.approx(expected, abs=1e-5)
    assert result.insertion_auc == pytest.approx(expected, abs=1e-5)


def test_area_under_is_trapezoidal():
    assert area_under(np.array([1.0, 0.0])) == pytest.approx(0.5)
    assert area_under(np.array([0.0, 1.0, 1.0])) == pytest.approx(0.75)


def test_explanation_faithfulness_on_a_real_explainer(tiny_detectors, rgb_image):
    detector = tiny_detectors["baseline_cnn"]
    with build_explainer("grad_cam", detector, "last", "fast") as explainer:
        explanation = explainer.explain(rgb_image)
    result = explanation_faithfulness(detector, explanation, steps=8)
    assert 0.0 <= result.deletion_auc <= 1.0 and 0.0 <= result.insertion_auc <= 1.0
    same = deletion_insertion(detector, explanation.image, explanation.heatmap, explanation.target_index, steps=8)
    assert same == result


def test_one_prepared_input_serves_the_explainer_and_its_faithfulness(tiny_detectors, rgb_image):
    """What an analysis shares between methods gives what each method would compute from the image itself."""
    detector = tiny_detectors["baseline_cnn"]
    prepared = detector.prepare(rgb_image)
    with build_explainer("score_cam", detector, "last", "fast") as explainer:
        from_image, from_prepared = explainer.explain(rgb_image), explainer.explain(prepared)
    assert np.array_equal(from_image.heatmap, from_prepared.heatmap)
    assert from_prepared.image.size == from_image.image.size
    assert explanation_faithfulness(detector, from_prepared, steps=8, prepared=prepared) == deletion_insertion(
        detector, rgb_image, from_prepared.heatmap, from_prepared.target_index, steps=8)
