"""The fast CAM variants compute what pytorch-grad-cam computes (on tiny random-weight models)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import AblationCAM, ScoreCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from gauntlet.explain.cam import ablation_value
from gauntlet.explain.fast_cam import CachedAblationCAM, TopKScoreCAM, pooled_linear, tail_after
from gauntlet.models import Classifier, resolve_layers

TARGETS = [ClassifierOutputTarget(1)]


def run_cam(cam, batch: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        result = cam(input_tensor=batch, targets=TARGETS)
    cam.activations_and_grads.release()
    return result


def input_batch(detector, rgb_image) -> torch.Tensor:
    return detector.preprocess(rgb_image)


@pytest.mark.parametrize("arch,layers", [
    ("baseline_cnn", "last"), ("baseline_cnn", "last3"), ("efficientnet_lite0", "last"), ("lite0_pooled", "last"),
    pytest.param("efficientnet_lite0", "last3", marks=pytest.mark.slow),
    pytest.param("resnet50", "last", marks=pytest.mark.slow),  # the reference re-runs ResNet 2,048 times
])
def test_fast_ablation_equals_pytorch_grad_cam(tiny_detectors, rgb_image, arch, layers):
    detector = tiny_detectors[arch]
    paths = detector.config.target_layers[layers]
    modules = resolve_layers(detector.model, paths)
    batch = input_batch(detector, rgb_image)
    # The library's layer drifts by -1e7 per batch position when a map has negative values;
    # with one ablation per pass it applies its rule exactly (ReLU maps, min 0, are safe in batches).
    batch_size = 32 if arch == "resnet50" else 1
    expected = run_cam(AblationCAM(detector.model, modules, batch_size=batch_size), batch)
    fast = run_cam(CachedAblationCAM(detector.model, modules, paths), batch)
    assert np.abs(fast - expected).max() < 1e-3


def test_ablation_value_follows_pytorch_grad_cam():
    assert ablation_value(torch.tensor([0.0, 2.0])) == 0.0
    assert ablation_value(torch.tensor([-1.0, 2.0])) == -1.0 - 1e7
    assert ablation_value(torch.tensor([0.5, 2.0])) == 0.5 - 1e7


def test_resnet_maps_have_min_zero(tiny_detectors, rgb_image):
    """Precondition of the batched reference above: layer4 ends in a ReLU."""
    detector = tiny_detectors["resnet50"]
    with torch.no_grad():
        maps = detector.model.features(input_batch(detector, rgb_image))
    assert float(maps.min()) == 0.0


def test_closed_form_applies_to_pooled_linear_heads(tiny_detectors):
    for arch in ("efficientnet_lite0", "resnet50"):
        model = tiny_detectors[arch].model
        path = tiny_detectors[arch].config.target_layers["last"][0]
        assert pooled_linear(tail_after(model, path)) is model.head[-1]
    baseline = tiny_detectors["baseline_cnn"].model
    assert tail_after(baseline, "features.1") == [baseline.features[2], baseline.head]
    assert pooled_linear(tail_after(baseline, "features.2")) is None


class Swapped(nn.Module):
    """Children registered in the opposite order to the one ``forward`` calls them in."""

    def __init__(self) -> None:
        super().__init__()
        self.second = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Tanh())
        self.first = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


def test_ablation_falls_back_to_full_method_when_tail_is_not_sequential():
    torch.manual_seed(0)
    model = Classifier(Swapped(), nn.Sequential(nn.Flatten(), nn.Linear(4 * 8 * 8, 2))).eval()
    batch = torch.randn(1, 3, 8, 8)
    layers = [model.features.first]
    expected = run_cam(AblationCAM(model, layers, batch_size=1), batch)
    fast = run_cam(CachedAblationCAM(model, layers, ["features.first"]), batch)
    np.testing.assert_allclose(fast, expected, atol=1e-4)


@pytest.mark.parametrize("arch,layers", [
    ("baseline_cnn", "last"), ("baseline_cnn", "last3"),
    pytest.param("efficientnet_lite0", "last", marks=pytest.mark.slow),  # 1,280 masked passes, twice
])
def test_top_k_score_cam_with_all_channels_is_score_cam(tiny_detectors, rgb_image, arch, layers):
    detector = tiny_detectors[arch]
    modules = resolve_layers(detector.model, detector.config.target_layers[layers])
    batch = input_batch(detector, rgb_image)
    reference = ScoreCAM(detector.model, modules)
    reference.batch_size = 32
    expected = run_cam(reference, batch)
    fast = run_cam(TopKScoreCAM(detector.model, modules, k=100_000), batch)
    assert np.abs(fast - expected).max() < 1e-3


def test_top_k_score_cam_scores_only_k_masks(tiny_detectors, rgb_image):
    detector = tiny_detectors["baseline_cnn"]
    modules = resolve_layers(detector.model, detector.config.target_layers["last"])
    seen = []
    handle = detector.model.register_forward_hook(lambda module, args, out: seen.append(out.shape[0]))
    try:
        run_cam(TopKScoreCAM(detector.model, modules, k=5, batch_size=4), input_batch(detector, rgb_image))
    finally:
        handle.remove()
    assert seen == [1, 4, 1]  # the hooked pass, then 5 masked images in batches of 4
