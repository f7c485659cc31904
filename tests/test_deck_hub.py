"""Decks whose images come from a Hub dataset, for real, against the loopback stand-in server (HF_ENDPOINT):
``python -m gauntlet.decks publish``, fetching and verifying, offline replay, and every bad case in words."""
from __future__ import annotations

import json
import shutil

import pytest

from gauntlet.teaching import decks as decks_module
from gauntlet.teaching.decks import item_image, load_decks, main, raw_items
from hub_server import FakeHub, repo_key
from quiz_helpers import demo_deck, make_data_root, write_deck

REPO = "me/demo-deck"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running fake Hub and a fresh Hugging Face cache."""
    server = FakeHub().start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield server
    server.stop()


@pytest.fixture
def published(hub, tmp_path):
    """The demo deck published to ``REPO``: (deck file, its JSON after publishing)."""
    data_root = make_data_root(tmp_path / "data")
    deck_file = write_deck(tmp_path / "authoring", demo_deck())
    assert main(["publish", str(deck_file), "--repo", REPO, "--data-root", str(data_root)]) == 0
    return deck_file, json.loads(deck_file.read_text())


def deck_folder(tmp_path, *decks: dict):
    """A decks folder holding ``decks`` and, always, a playable deck 'other' whose images are beside it."""
    folder = tmp_path / "decks"
    for deck in decks:
        write_deck(folder, deck)
    make_data_root(folder / "images" / "local")
    other = {**demo_deck(), "id": "other"}
    other["items"] = [{**item, "image": f"local/{item['image']}"} for item in other["items"]]
    write_deck(folder, other)
    return folder


def load(folder, hub_offline: bool = False) -> dict:
    """The decks of ``folder`` with no data folder: images come from beside the decks or from the Hub."""
    decks = {deck.id: deck for deck in load_decks(folder, None, hub_offline)}
    assert decks["other"].available, "a broken Hub deck must not affect the others"
    return decks


def test_publish_pins_repo_revision_and_hashes_one_key_per_line(published, hub):
    deck_file, data = published
    assert data["hub_repo"] == REPO and len(data["hub_revision"]) == 40
    assert list(data) == ["id", "title", "description", "hub_repo", "hub_revision", "items", "test_pools"]
    assert all(len(item["sha256"]) == 64 for item in raw_items(data)) and len(raw_items(data)) > len(data["items"])
    assert f'\n  "hub_repo": "{REPO}",\n' in deck_file.read_text()
    files = hub.repos[repo_key(REPO, "dataset")][data["hub_revision"]]
    assert sorted(files) == sorted(item["image"] for item in raw_items(data)), "the test pools' images go too"


def test_a_published_deck_plays_from_the_hub_then_offline_from_the_cache(published, hub, tmp_path):
    folder = deck_folder(tmp_path, published[1])  # no data folder for this deck, no images/ beside it
    deck = load(folder)["demo"]
    assert deck.available, deck.problem
    assert item_image(deck.items[2]).size == (40, 40)  # a zip member of the data root, a plain file on the Hub
    downloads = sum(1 for method, path in hub.requests if method == "GET" and "/resolve/" in path)
    assert downloads > len(deck.items) and not deck.pools_problem  # the test pools come from the Hub too
    load(folder)
    assert sum(1 for method, path in hub.requests if method == "GET" and "/resolve/" in path) == downloads
    hub.stop()
    assert load(folder, hub_offline=True)["demo"].available


@pytest.mark.parametrize("breakage, message", [
    ("no repo", "the Hub dataset 'me/nope' does not exist"),
    ("no revision", "has no revision 'ffffffffffffffffffffffffffffffffffffffff' (was it moved or deleted?)"),
    ("file gone", "has no such file"),
    ("tampered", "do not match the sha256 in the deck file (first: 'set/FAKE/img_0.png'): changed or tampered with"),
    ("revision moved", "or the Hub revision moved"),
])
def test_bad_hub_decks_are_unavailable_with_the_reason(published, hub, tmp_path, breakage, message):
    data = published[1]
    key = repo_key(REPO, "dataset")
    if breakage == "no repo":
        data["hub_repo"] = "me/nope"
    elif breakage == "no revision":
        data["hub_revision"] = "f" * 40
    elif breakage == "file gone":
        del hub.repos[key][data["hub_revision"]]["set/REAL/img_0.png"]
    elif breakage == "tampered":
        hub.repos[key][data["hub_revision"]]["set/FAKE/img_0.png"] = b"\x89PNG not the image that was published"
    else:  # the deck names a tag, and the tag now points at other content
        files = dict(hub.repos[key][data["hub_revision"]])
        files["set/FAKE/img_0.png"] = (tmp_path / "data" / "set" / "REAL" / "img_3.png").read_bytes()
        hub.repos[key]["v1"] = files
        data["hub_revision"] = "v1"
    deck = load(deck_folder(tmp_path, data))["demo"]
    assert not deck.available and message in deck.problem


def test_an_unreachable_hub_is_probed_once_and_named(published, hub, tmp_path, monkeypatch):
    probes = []
    monkeypatch.setattr(decks_module, "hub_reachable", lambda endpoint: probes.append(endpoint) or False)
    data = published[1]
    folder = deck_folder(tmp_path, data, {**data, "id": "second"})
    decks = load(folder)
    for deck_id in ("demo", "second"):
        assert "could not be fetched from the Hub dataset" in decks[deck_id].problem
        assert "cannot be reached (or HF_HUB_OFFLINE is set)" in decks[deck_id].problem
    assert len(probes) == 1, "start-up waits for one reachability probe, not one per deck or image"
    assert not [path for method, path in hub.requests if "/resolve/" in path]


def test_a_changed_local_image_fails_its_hash(published, tmp_path):
    deck_file, data = published
    shutil.copy(tmp_path / "data" / "set" / "REAL" / "img_1.png", tmp_path / "data" / "set" / "FAKE" / "img_0.png")
    decks = {deck.id: deck for deck in load_decks(deck_file.parent, tmp_path / "data")}
    assert "do not match the sha256" in decks["demo"].problem


@pytest.mark.parametrize("args, message", [
    (["--repo", "not-a-repo"], "must look like owner/name"),
    (["--repo", REPO, "--data-root", "/nonexistent"], "cannot publish deck 'demo'"),
])
def test_publish_refuses_bad_input_in_words(hub, tmp_path, capsys, args, message):
    deck_file = write_deck(tmp_path / "authoring", demo_deck())
    before = deck_file.read_text()
    assert main(["publish", str(deck_file), *args]) == 2
    assert message in capsys.readouterr().err
    assert deck_file.read_text() == before, "a refused publish leaves the deck file as it was"


def test_publish_to_a_hub_that_is_down_says_so(hub, tmp_path, capsys):
    data_root = make_data_root(tmp_path / "data")
    deck_file = write_deck(tmp_path / "authoring", demo_deck())
    hub.stop()
    assert main(["publish", str(deck_file), "--repo", REPO, "--data-root", str(data_root)]) == 2
    assert "could not publish to the Hub dataset me/demo-deck" in capsys.readouterr().err
