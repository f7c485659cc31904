"""The Hub path for real, against a loopback stand-in server (HF_ENDPOINT)."""
from __future__ import annotations

import logging
import shutil
from dataclasses import replace

import pytest

from conftest import make_checkpoint
from gauntlet.checkpoint import CheckpointError, load_checkpoint, load_preferring_hub, read_config, save_checkpoint
from gauntlet.service import ModelCatalog
from gauntlet.settings import REPO_ROOT
from hub_server import FakeHub

REPO = "gauntlet-test/baseline"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running fake Hub serving one checkpoint at revision v1, with a fresh cache."""
    source = make_checkpoint(tmp_path / "published", "baseline_cnn", seed=1, display_name="From the Hub")
    server = FakeHub().start()
    for name in ("config.json", "model.safetensors"):
        server.add_file(REPO, "v1", name, (source / name).read_bytes())
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield server
    server.stop()


def _downloads(server: FakeHub) -> int:
    return sum(1 for method, path in server.requests if method == "GET" and "/resolve/" in path)


def test_download_then_cached_then_offline(hub, monkeypatch):
    first = load_checkpoint(f"hf://{REPO}@v1")
    assert first.config.display_name == "From the Hub"
    assert _downloads(hub) == 2
    load_checkpoint(f"hf://{REPO}@v1")
    assert _downloads(hub) == 2, "the second load must come from the cache"
    hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = load_checkpoint(f"hf://{REPO}@v1")
    assert offline.config.display_name == "From the Hub"


def test_unknown_revision_is_a_clear_error(hub):
    with pytest.raises(CheckpointError, match=f"Could not get {REPO}@v9"):
        load_checkpoint(f"hf://{REPO}@v9")


def _bundled(tmp_path, revision: str = "v1"):
    folder = make_checkpoint(tmp_path / "bundled" / "baseline", "baseline_cnn", seed=2, display_name="Bundled")
    config = read_config(folder)
    config.hub_repo, config.hub_revision = REPO, revision
    save_checkpoint(load_checkpoint(str(folder)).model, config, folder)
    return folder


def test_bundled_checkpoint_prefers_the_hub_copy(hub, tmp_path):
    folder = _bundled(tmp_path)
    checkpoint = load_preferring_hub("baseline", folder.parent)
    assert checkpoint.config.display_name == "From the Hub"
    assert checkpoint.source == f"hf://{REPO}@v1"


def test_falls_back_to_bundled_with_one_log_line_when_hub_is_down(hub, tmp_path, caplog):
    folder = _bundled(tmp_path)
    hub.stop()
    with caplog.at_level(logging.WARNING):
        catalog = ModelCatalog(extra_sources=(), checkpoints_dir=folder.parent)
        detector = catalog.detector("baseline")
    assert detector.config.display_name == "Bundled"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "using the bundled checkpoint 'baseline'" in warnings[0].getMessage()


def test_push_to_hub_then_load_the_pinned_revision(hub, tmp_path, monkeypatch, capsys):
    from training import push_to_hub

    folder = make_checkpoint(tmp_path / "to-publish", "baseline_cnn", seed=5, display_name="Published",
                             metrics={"cifake_test": {"accuracy": 0.5}}, command="python -m training.train ...")
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    args = push_to_hub.get_args_parser().parse_args(["--checkpoint", str(folder), "--repo", "me/gauntlet-test",
                                                      "--tag", "v1"])
    push_to_hub.main(args)
    assert "hf://me/gauntlet-test@v1" in capsys.readouterr().out
    readme = hub.repos["me/gauntlet-test"]["v1"]["README.md"].decode()
    assert "# Published" in readme and "python -m training.train" in readme and '"accuracy": 0.5' in readme
    loaded = load_checkpoint("hf://me/gauntlet-test@v1")
    assert loaded.config.display_name == "Published"
    original = load_checkpoint(str(folder)).model.state_dict()
    assert all((loaded.model.state_dict()[k] == v).all() for k, v in original.items())


def test_push_all_pins_bundled_configs_then_loads_from_the_hub_or_falls_back(hub, tmp_path, capsys, monkeypatch):
    """On copies of the bundled checkpoints: the repository's own configs are never rewritten."""
    from gauntlet.checkpoint import bundled_names
    from training import push_to_hub

    bundled = tmp_path / "checkpoints"
    names = [name for name in bundled_names(REPO_ROOT / "checkpoints") if name.startswith("baseline-")]
    for name in names:
        shutil.copytree(REPO_ROOT / "checkpoints" / name, bundled / name)
    push_to_hub.main(push_to_hub.get_args_parser().parse_args(["--all", "--owner", "me",
                                                               "--checkpoints-dir", str(bundled)]))
    assert capsys.readouterr().out.count("Published baseline-") == len(names) == 3
    for name in names:
        config = read_config(bundled / name)
        original = read_config(REPO_ROOT / "checkpoints" / name)
        assert config.hub_repo == f"me/gauntlet-{name}" and len(config.hub_revision) == 40
        assert replace(original, hub_repo=config.hub_repo, hub_revision=config.hub_revision) == config
        assert load_preferring_hub(name, bundled).source == f"hf://me/gauntlet-{name}@{config.hub_revision}"
    hub.stop()
    pinned = f"hf://me/gauntlet-{names[0]}@{read_config(bundled / names[0]).hub_revision}"
    assert load_preferring_hub(names[0], bundled).source == pinned, "Hub down: the cached Hub copy"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert load_preferring_hub(names[0], bundled).source == names[0], "Hub down, nothing cached: the bundled copy"


def test_push_all_without_an_owner_is_refused():
    from training import push_to_hub

    with pytest.raises(SystemExit, match="--all needs --owner"):
        push_to_hub.main(push_to_hub.get_args_parser().parse_args(["--all"]))
