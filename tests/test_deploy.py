"""Deploying as a Hugging Face Space: the variables a Space sets, persistent storage, the README front matter."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from gauntlet import settings as settings_module
from gauntlet.checkpoint import bundled_names, read_config
from gauntlet.settings import REPO_ROOT, get_settings, persistent_dir

PORT_VARIABLES = ("GAUNTLET_PORT", "GRADIO_SERVER_PORT", "PORT")


@pytest.mark.parametrize("environment, port", [
    ({}, 7860),
    ({"PORT": "8080"}, 8080),
    ({"PORT": "8080", "GRADIO_SERVER_PORT": "7861"}, 7861),
    ({"PORT": "8080", "GRADIO_SERVER_PORT": "7861", "GAUNTLET_PORT": "9000"}, 9000),
])
def test_the_port_a_space_sets_is_honoured(monkeypatch, environment, port):
    for name in PORT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert get_settings().port == port


def test_the_host_a_space_sets_is_honoured(monkeypatch):
    monkeypatch.delenv("GAUNTLET_HOST", raising=False)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    assert get_settings().host == "0.0.0.0"


def test_the_classroom_database_goes_to_persistent_storage_when_mounted(tmp_path, monkeypatch):
    storage, home = tmp_path / "data", tmp_path / "home"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    monkeypatch.delenv("GAUNTLET_CLASSROOM_DB", raising=False)
    monkeypatch.setattr(settings_module, "SPACE_STORAGE", storage)
    assert persistent_dir(storage) == home / "gauntlet"
    assert get_settings().classroom_db == home / "gauntlet" / "classroom.sqlite3", "no /data: the user data folder"
    storage.mkdir()
    assert get_settings().classroom_db == storage / "gauntlet" / "classroom.sqlite3", "/data mounted: it goes there"
    monkeypatch.setenv("GAUNTLET_CLASSROOM_DB", str(tmp_path / "mine.sqlite3"))
    assert get_settings().classroom_db == tmp_path / "mine.sqlite3", "an explicit setting always wins"


def front_matter() -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", (REPO_ROOT / "README.md").read_text(), re.S)
    assert match, "README.md must start with the Space's front matter"
    return yaml.safe_load(match.group(1))


def test_the_front_matter_lists_every_hub_model_and_dataset_the_space_uses():
    meta = front_matter()
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    bundled = REPO_ROOT / "checkpoints"
    models = {read_config(bundled / name).hub_repo for name in bundled_names(bundled)}
    datasets = {json.loads(path.read_text()).get("hub_repo") for path in (REPO_ROOT / "quiz_data").glob("*.json")}
    assert isinstance(meta["models"], list) and isinstance(meta["datasets"], list)
    assert models - {""} <= set(meta["models"]), "publish a model, then list it under models:"
    assert datasets - {None} <= set(meta["datasets"]), "publish a deck, then list its dataset under datasets:"


def test_the_readme_keeps_its_two_commands_and_says_how_to_deploy():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "```bash\npip install -r requirements.txt && python app.py\n```" in readme
    assert "```bash\nbash scripts/setup-tests.sh && python -m pytest\n```" in readme
    deploy = readme.split("## Deploy", 1)[1].split("\n## ", 1)[0]
    for needed in ("/data", "GAUNTLET_", "python -m training.push_to_hub --all --owner",
                   "python -m gauntlet.decks publish"):
        assert needed in deploy
