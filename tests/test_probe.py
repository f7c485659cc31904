"""Issue 17: many-source training, the pooled-stages probe architecture, training.probe and training.calibrate."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_checkpoint, shared_data_or_skip
from gauntlet.checkpoint import load_checkpoint, read_config
from gauntlet.detector import Detector
from gauntlet.models import NPRResidual, build_model
from tests.test_training import _synthetic_set
from training import augment, calibrate, data, probe, train


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAUNTLET_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("sources")
    return [_synthetic_set(root / "alpha", 20), _synthetic_set(root / "beta", 10)]


def test_generators_and_real_photos_are_single_class_with_their_sources():
    root = shared_data_or_skip()
    fake = data.generators_items(root, "train")
    real = data.real_photos_items(root, "train")
    assert {i.label for i in fake} == {1} and {i.label for i in real} == {0}
    assert len(fake) == 644 and len({i.source for i in fake}) == 11
    assert len({i.source for i in real}) == 6
    paired = data.benchmark_items("generators_real_photos_test", root)
    assert len(paired) == 181 + sum(1 for i in data.real_photos_items(root, "test"))


def test_source_weights_give_each_collection_its_share_and_balance_classes():
    collections = ["a"] * 6 + ["b"] * 2
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    plain = data.source_weights(collections, labels)
    assert np.allclose(plain, 1.0)
    shared = data.source_weights(collections, labels, {"a": 1, "b": 3})
    assert np.isclose(shared[:6].sum() / shared.sum(), 0.25) and np.isclose(shared.mean(), 1.0)
    balanced = data.source_weights(collections, labels, balance=True)
    assert np.isclose(balanced[labels == 0].sum(), balanced[labels == 1].sum())
    with pytest.raises(ValueError, match="No sampling weight for b"):
        data.source_weights(collections, labels, {"a": 1})


def test_weighted_epoch_draw_follows_the_weights_and_is_seeded():
    args = train.get_args_parser().parse_args(["--out", "x", "--epoch-size", "4000"])
    weights = np.array([1.0, 1.0, 2.0, 0.0])
    first = train.epoch_order(args, 0, 4, weights)
    assert np.array_equal(first, train.epoch_order(args, 0, 4, weights))
    counts = np.bincount(first, minlength=4) / len(first)
    assert counts[3] == 0 and abs(counts[2] - 0.5) < 0.05


def test_a_run_on_two_collections_records_them_in_its_config(two_sources, tmp_path):
    alpha, beta = map(str, two_sources)
    args = train.get_args_parser().parse_args([
        "--data", alpha, beta, "--weights", f"{alpha}=1", f"{beta}=3", "--balance", "--epochs", "1",
        "--batch-size", "8", "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "out")])
    config = read_config(train.main(args))
    assert config.datasets == [two_sources[0].name, two_sources[1].name]
    assert [d["name"] for d in config.sources] == [alpha, beta]
    assert [d["weight"] for d in config.sources] == [1.0, 3.0]
    assert config.sources[0]["train"] + config.sources[1]["train"] == len(train._items(args, "train"))
    assert config.class_balance and "classes balanced" in config.trained_on
    assert f"--data {alpha} {beta}" in config.command and "--balance" in config.command
    assert set(config.metrics) == {"validation", "test"}


def test_pooled_stages_head_reads_every_stage_pooled_and_survives_a_round_trip(tmp_path):
    folder = make_checkpoint(tmp_path / "pooled", "lite0_pooled", input_size=64)
    model = load_checkpoint(str(folder)).model
    x = torch.randn(2, 3, 64, 64)
    features = model.features
    with torch.no_grad():
        pooled = features(x).mean(dim=(2, 3))
        h, maps = features.stem(x), []
        for stage in features.stages:
            h = stage(h)
            maps.append(h.mean(dim=(2, 3)))
        maps.append(features.head_conv(h).mean(dim=(2, 3)))
        assert torch.allclose(pooled, torch.cat(maps, 1), atol=1e-5)
        assert torch.equal(model(x), load_checkpoint(str(folder)).model(x))
    assert load_checkpoint(str(folder)).config.target_layers["last"] == ["features"]


def test_npr_residual_removes_what_the_coarse_copy_keeps():
    flat = torch.ones(1, 3, 8, 8)
    assert torch.equal(NPRResidual()(flat), torch.zeros_like(flat))
    assert build_model("lite0_npr_pooled", 64)(torch.randn(1, 3, 64, 64)).shape == (1, 2)


def test_probe_scores_each_source_held_out_and_saves_its_head(two_sources, tmp_path):
    alpha, beta = map(str, two_sources)
    out = tmp_path / "probe"
    args = probe.get_args_parser().parse_args([
        "--data", alpha, beta, "--input-size", "64", "--balance", "--augment-copies", "1", "--c", "0.5",
        "--stages", "5", "6", "7", "--out", str(out), "--json", str(tmp_path / "scores.json")])
    summary = probe.main(args)
    assert set(summary["loso"]) == {alpha, beta}, "a folder without sources is one held-out source"
    assert 0.0 <= summary["loso_mean"] <= 1.0 and json.loads((tmp_path / "scores.json").read_text())
    config = read_config(out)
    assert config.architecture == "lite0_pooled" and config.metrics["loso"]["mean"] == summary["loso_mean"]
    assert config.command.startswith("python -m training.probe --arch lite0_pooled")
    assert f"--data {alpha} {beta}" in config.command and "--stages 5 6 7" in config.command
    assert config.class_balance and [d["name"] for d in config.sources] == [alpha, beta]
    assert "test" in config.metrics
    # The checkpoint's own forward pass gives the fitted regression's verdicts on the validation images.
    detector, fitted, _ = probe.run_probe(probe.get_args_parser().parse_args(
        ["--data", alpha, beta, "--input-size", "64", "--balance", "--augment-copies", "1", "--c", "0.5",
         "--stages", "5", "6", "7", "--no-loso"]))
    val = probe.split_features(args, detector, "val")
    saved = Detector(load_checkpoint(str(out)))
    arrays = data.decode_arrays(train._items(args, "val"), 64, "check")
    with torch.no_grad():
        logits = saved.model(saved.to_tensor(arrays)).numpy()
    expected = fitted.logits(val.values)
    assert np.allclose(logits[:, 1] - logits[:, 0], expected[:, 1] - expected[:, 0], atol=1e-3)


def test_probe_refuses_the_quiz_collections(tmp_path):
    args = probe.get_args_parser().parse_args(["--data", "rvaa", "faces"])
    with pytest.raises(SystemExit, match="never train on it"):
        probe.main(args)


def test_temperature_and_band_are_fitted_as_documented():
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 2, 4000)
    true_logits = rng.normal(0, 2, 4000) + np.where(labels == 1, 1.5, -1.5)
    labels = (rng.rand(4000) < 1 / (1 + np.exp(-true_logits))).astype(int)
    assert abs(calibrate.fit_temperature(3 * true_logits, labels) - 3) < 0.4
    p = 1 / (1 + np.exp(-true_logits))
    low, high = calibrate.choose_band(p, labels, 0.9)
    metrics = calibrate.band_metrics(p, labels, low, high)
    assert low <= 0.5 <= high and metrics["accuracy_when_sure"] >= 0.9 and 0.3 < metrics["coverage"] < 1
    wider = calibrate.band_metrics(p, labels, low - 0.05, high + 0.05)
    assert wider["coverage"] <= metrics["coverage"]


def test_calibrate_writes_the_keys_the_app_reads(two_sources, tmp_path):
    alpha, beta = map(str, two_sources)
    folder = make_checkpoint(tmp_path / "tiny", "baseline_cnn")
    args = calibrate.get_args_parser().parse_args(
        ["--checkpoint", str(folder), "--val", alpha, "--held-out", beta, "--write", "--report", beta])
    result = calibrate.main(args)
    stored = read_config(folder).calibration
    assert stored == json.loads(json.dumps({k: v for k, v in result.items() if k != "report"}))
    assert result["report"][beta]["n"] == 20 and 0 <= result["report"][beta]["coverage"] <= 1
    assert {"temperature", "not_sure", "fitted_on", "command"} <= set(stored)
    low, high = stored["not_sure"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0 and stored["temperature"] > 0
    assert stored["command"].startswith("python -m training.calibrate --checkpoint")


def test_reframe_gives_square_images_bars_and_takes_them_from_the_others():
    import random

    square = augment.reframe(Image.new("RGB", (100, 100)), random.Random(0))
    assert sorted(square.size) == [75, 100]
    wide = augment.reframe(Image.new("RGB", (120, 80)), random.Random(0))
    assert wide.size == (80, 80)
