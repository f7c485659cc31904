"""Shared fixtures: tiny random-weight checkpoints saved through the real checkpoint code."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np
import pytest
import torch
from PIL import Image

from gauntlet.checkpoint import CheckpointConfig, load_checkpoint, save_checkpoint
from gauntlet.detector import Detector
from gauntlet.models import build_model

torch.set_num_threads(1)  # the test process shares 2 cores with the app processes it starts

TINY_SIZES = {"baseline_cnn": 32, "efficientnet_lite0": 64, "resnet50": 64, "lite0_pooled": 64}
DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def make_checkpoint(folder: Path, architecture: str, seed: int = 0, **config) -> Path:
    """Save a random-weight model of ``architecture`` as a real checkpoint folder."""
    torch.manual_seed(seed)
    size = config.pop("input_size", None) or TINY_SIZES[architecture]
    model = build_model(architecture, size)
    save_checkpoint(model, CheckpointConfig(architecture=architecture, input_size=size, name=folder.name,
                                            **config), folder)
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    return {arch: make_checkpoint(root / arch, arch) for arch in TINY_SIZES}


@pytest.fixture(scope="session")
def tiny_detectors(tiny_checkpoints) -> dict[str, Detector]:
    return {arch: Detector(load_checkpoint(str(path))) for arch, path in tiny_checkpoints.items()}


@pytest.fixture
def rgb_image() -> Image.Image:
    rng = np.random.RandomState(0)
    return Image.fromarray(rng.randint(0, 255, (48, 64, 3), dtype=np.uint8))


def shared_data_or_skip() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"shared data not found at {DATA_DIR}: data-dependent check skipped")
    return DATA_DIR


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for the browser tests (one per test module)."""
    from playwright.sync_api import sync_playwright

    from benchmarks.server import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
