"""Checkpoint folders: save/load symmetry, half precision, clear errors."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import make_checkpoint
from gauntlet.settings import get_settings
from gauntlet.checkpoint import (FIELD_GROUPS, CheckpointConfig, CheckpointError, bundled_names, load_checkpoint,
                                 parse_hub_source, read_config, to_half, write_config)


@pytest.mark.parametrize("architecture", ["baseline_cnn", "efficientnet_lite0", "resnet50"])
def test_save_load_roundtrip_keeps_weights_and_config(tmp_path, architecture):
    folder = make_checkpoint(tmp_path / "ck", architecture, trained_on="cifake", metrics={"acc": 0.5})
    loaded = load_checkpoint(str(folder))
    config = json.loads((folder / "config.json").read_text())
    assert config["model"]["architecture"] == architecture and config["labels"]["labels"] == ["REAL", "FAKE"]
    assert config["model"]["target_layers"]["last"] and config["model"]["target_layers"]["last3"]
    assert loaded.config.trained_on == "cifake" and loaded.config.metrics == {"acc": 0.5}
    again = load_checkpoint(str(make_checkpoint(tmp_path / "ck2", architecture)))
    for (name, a), b in zip(loaded.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert not loaded.model.training


def test_half_precision_loads_back_as_float32_with_same_outputs(tmp_path):
    folder = make_checkpoint(tmp_path / "ck", "baseline_cnn")
    x = torch.randn(2, 3, 32, 32)
    before = load_checkpoint(str(folder)).model(x)
    to_half(folder)
    model = load_checkpoint(str(folder)).model
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert torch.allclose(before, model(x), atol=2e-2)


def test_missing_or_broken_checkpoints_say_what_is_wrong(tmp_path):
    with pytest.raises(CheckpointError, match="No checkpoint 'nope'"):
        load_checkpoint("nope")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a valid checkpoint config"):
        read_config(tmp_path)
    with pytest.raises(CheckpointError, match="hf://owner/name"):
        parse_hub_source("hf://just-a-name")


def test_bundled_names_lists_only_checkpoint_folders(tmp_path):
    make_checkpoint(tmp_path / "a", "baseline_cnn")
    (tmp_path / "not-a-checkpoint").mkdir()
    assert bundled_names(tmp_path) == ["a"]
    assert parse_hub_source("hf://owner/name@v2") == ("owner/name", "v2")


def test_config_is_grouped_by_role_and_reads_back_as_written(tmp_path):
    config = CheckpointConfig(architecture="baseline_cnn", input_size=32, datasets=["rvaa", "cifake"], default_rank=0,
                              recipe={"epochs": 4, "lr": 0.001}, test_time_flip=True, metrics={"rvaa_test": {}},
                              hub_repo="me/model", trained_on="rvaa: 670 training and 143 validation images")
    write_config(config, tmp_path)
    grouped = json.loads((tmp_path / "config.json").read_text())
    assert set(grouped) == {"model", "preprocessing", "labels", "verdict", "provenance", "metrics", "hub"}
    assert grouped["provenance"]["datasets"] == ["rvaa", "cifake"] and grouped["hub"]["hub_repo"] == "me/model"
    assert read_config(tmp_path) == config
    assert set(FIELD_GROUPS) == set(CheckpointConfig.__dataclass_fields__), "every field belongs to one group"


def test_old_flat_configs_still_load(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "architecture": "baseline_cnn", "input_size": 32, "labels": ["REAL", "FAKE"], "default_target": "last",
        "trained_on": "cifake: 90000 training and 10000 validation images", "test_time_flip": True}))
    config = read_config(tmp_path)
    assert (config.architecture, config.input_size, config.test_time_flip) == ("baseline_cnn", 32, True)
    assert config.trained_on.startswith("cifake") and config.target_layers["last"] == ["features.2"]


def test_the_verdict_part_follows_fields_that_change_verdicts_only():
    plain = CheckpointConfig(architecture="baseline_cnn", input_size=32)
    assert CheckpointConfig(architecture="baseline_cnn", input_size=32, test_time_flip=True).verdict_part() \
        != plain.verdict_part()
    assert CheckpointConfig(architecture="baseline_cnn", input_size=32, description="retold", metrics={"a": 1},
                            hub_revision="v2").verdict_part() == plain.verdict_part()


def test_bundled_configs_are_grouped_and_read_back_byte_for_byte():
    root = get_settings().checkpoints_dir
    for name in bundled_names(root):
        text = (root / name / "config.json").read_text()
        config = read_config(root / name)
        assert json.dumps(config.to_dict(), indent=2) + "\n" == text, f"{name}: save and load are not symmetric"
        assert config.datasets and config.recipe and config.default_rank is not None, name
