"""Every explainer, full and fast, on every tiny architecture: the contract the app relies on."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import TINY_SIZES
from gauntlet.analysis import MethodResult
from gauntlet.explain import METHODS, Explanation, available_variants, build_explainer, display_size
from gauntlet.present import explanation_notes

# Full Score-CAM, Ablation-CAM and LIME make one forward pass per channel or sample: thousands on ResNet-50.
EXPENSIVE = {("score_cam", "full"), ("ablation_cam", "full"), ("lime", "full")}
# Fast Ablation-CAM on ResNet's layer2 and layer3 still runs the rest of ResNet once per channel (1,536 times).
SLOW_FAST = {("ablation_cam", "resnet50", "last3")}


def cases():
    for arch in TINY_SIZES:  # one tiny random-weight detector per kind of network (Lite2 = Lite0's modules, deeper)
        for layers in ("last", "last3"):
            for method in METHODS:
                if method == "lime" and layers != "last":
                    continue  # LIME perturbs the input: it has no layers to choose
                for variant in ("fast", "full"):
                    slow = ((method, variant) in EXPENSIVE and arch != "baseline_cnn"
                            or variant == "fast" and (method, arch, layers) in SLOW_FAST)
                    yield pytest.param(method, variant, arch, layers, marks=[pytest.mark.slow] * slow,
                                       id=f"{method}-{variant}-{arch}-{layers}")


def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(m._backward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("method,variant,arch,layers", cases())
def test_explainer_contract(tiny_detectors, rgb_image, method, variant, arch, layers):
    detector = tiny_detectors[arch]
    before = hook_count(detector.model)
    with build_explainer(method, detector, layers, variant) as explainer:
        first = explainer.explain(rgb_image, target=1)
        # The expensive full methods are deterministic by construction; repeat them on the baseline only.
        repeat = (method, variant) not in EXPENSIVE or arch == "baseline_cnn"
        second = explainer.explain(rgb_image, target=1) if repeat else first
    assert hook_count(detector.model) == before, "closing the explainer must remove its hooks"
    width, height = display_size(rgb_image.size)
    assert first.heatmap.shape == (height, width) == first.image.size[::-1]
    assert first.heatmap.dtype == np.float32
    assert 0.0 <= first.heatmap.min() <= first.heatmap.max() <= 1.0
    np.testing.assert_allclose(first.heatmap, second.heatmap, atol=1e-6)
    assert (first.method, first.variant, first.target_index) == (method, variant, 1)
    assert first.seconds >= 0.0


def test_every_method_has_a_fast_and_a_full_variant():
    for method in METHODS:
        assert available_variants(method) == ["fast", "full"]


def test_each_variant_is_described_by_its_own_caption():
    fast = Explanation("score_cam", "fast", np.zeros((4, 4), np.float32), Image.new("RGB", (4, 4)), 1, "FAKE", 0.1)
    full = Explanation("score_cam", "full", np.zeros((4, 4), np.float32), Image.new("RGB", (4, 4)), 1, "FAKE", 9.0)
    assert "most active feature maps" in explanation_notes([MethodResult(fast, fast.image)])
    assert "most active feature maps" not in explanation_notes([MethodResult(full, full.image)])


def test_perturbed_arrays_go_through_the_verdicts_resize(tiny_detectors):
    """LIME scores uint8 arrays: they must be resized exactly as the image behind the verdict is."""
    detector = tiny_detectors["efficientnet_lite0"]
    square = np.random.RandomState(1).randint(0, 255, (100, 100, 3), dtype=np.uint8)
    torch.testing.assert_close(detector.to_tensor(square[None]), detector.to_tensor([Image.fromarray(square)]))
