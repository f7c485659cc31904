"""Deck manifests: validation messages, refused paths, unavailable decks, zip members and the builder."""
from __future__ import annotations

import copy
import json

import pytest

from gauntlet.teaching.decks import (DeckError, build_deck, display_image, load_deck, load_decks, main, parse_deck,
                            read_image, resolve_image)
from quiz_helpers import demo_deck, make_data_root, write_deck


@pytest.fixture
def data_root(tmp_path):
    return make_data_root(tmp_path / "data")


def test_valid_deck_loads_with_files_and_zip_members(data_root, tmp_path):
    deck = load_deck(write_deck(tmp_path / "decks", demo_deck()), data_root)
    assert deck.available and deck.problem == ""
    assert [item.truth for item in deck.items] == ["FAKE", "REAL", "REAL", "FAKE", "FAKE", "REAL"]
    zipped = deck.items[2]
    assert resolve_image(data_root, zipped.image).member == "REAL/img 1.png"
    image = read_image(data_root, zipped.image)
    assert image.size == (40, 40) and image.mode == "RGB"
    assert display_image(image, zipped).size == (128, 128)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("title"), "missing 'title'"),
    (lambda d: d["items"][0].pop("lesson"), "missing 'lesson'"),
    (lambda d: d["items"][1].update(truth="real"), 'truth must be "REAL" or "FAKE"'),
    (lambda d: d["items"][1].update(id="demo-01"), "'demo-01' is used twice"),
    (lambda d: d["items"][0].update(lessson="typo"), "unknown key(s) 'lessson'"),
    (lambda d: d["items"][0].update(id="demo-fake-1"), "gives the answer away"),
    (lambda d: d["items"][0].update(display_size=5000), "display_size"),
    (lambda d: d.update(items=[]), "non-empty list"),
    (lambda d: d.update(id="other"), "must match the file name"),
    (lambda d: d["items"][0].update(image="../secret.png"), "may not contain '..'"),
    (lambda d: d["items"][0].update(image="/etc/passwd"), "must be relative"),
    (lambda d: d["items"][0].update(image="set\\REAL\\img_0.png"), "must be relative"),
    (lambda d: d["items"][0].update(sha256="abc123"), "sha256 must be 64 lowercase hexadecimal digits"),
    (lambda d: d.update(hub_repo="me/deck"), "'hub_repo' (owner/name) and 'hub_revision' go together"),
    (lambda d: d.update(hub_repo="no-owner", hub_revision="v1"), "hub_repo 'no-owner' must look like owner/name"),
    (lambda d: d.update(hub_repo="me/deck", hub_revision="v1"), "item 'demo-01' has no sha256"),
    (lambda d: d["items"][0].pop("artifacts"), "missing 'artifacts'"),
    (lambda d: d["items"][0].update(artifacts=[]), "non-empty list of categories"),
    (lambda d: d["items"][0].update(artifacts="anatomical"), "non-empty list of categories"),
    (lambda d: d["items"][0].update(artifacts=["hands"]), "unknown artifact category 'hands'"),
    (lambda d: d["items"][0].update(artifacts=["physics", "physics"]), "lists a category twice"),
    (lambda d: d["items"][0].update(artifacts=["none visible", "physics"]), "'none visible' next to another"),
    (lambda d: d["items"][1].update(artifacts=["stylistic"]), "a real image has no generator artifacts"),
    (lambda d: d.update(test_pools=[d["test_pools"][0]]), "'test_pools' must be a list of 2"),
    (lambda d: d["test_pools"][1].append(copy.deepcopy(d["items"][0])), "'demo-01' is used twice"),
    (lambda d: d["test_pools"][1][0].update(image=d["items"][0]["image"]), "also in the deck or the other pool"),
    (lambda d: d["test_pools"][1][0].update(image=d["test_pools"][0][0]["image"]), "also in the deck or the other"),
    (lambda d: d["test_pools"][0][0].update(truth="maybe"), "test pool 1 item 'demo-t1-01': truth"),
])
def test_bad_manifest_gives_a_clear_error(change, message):
    deck = copy.deepcopy(demo_deck())
    change(deck)
    with pytest.raises(DeckError) as err:
        parse_deck(deck, "demo")
    assert message in str(err.value)


def test_link_leading_outside_the_data_root_is_refused(data_root, tmp_path):
    (tmp_path / "outside.png").write_bytes((data_root / "set" / "REAL" / "img_0.png").read_bytes())
    (data_root / "escape").symlink_to(tmp_path)
    with pytest.raises(DeckError, match="outside the data folder"):
        resolve_image(data_root, "escape/outside.png")


def test_missing_images_or_data_make_a_deck_unavailable_not_an_error(data_root, tmp_path):
    broken = demo_deck()
    broken["items"][3]["image"] = "set.zip/FAKE/nope.png"
    folder = tmp_path / "decks"
    write_deck(folder, broken)
    write_deck(folder, {**demo_deck(), "id": "other"}, "other")
    (folder / "garbled.json").write_text("{not json")
    decks = {deck.id: deck for deck in load_decks(folder, data_root)}
    assert not decks["demo"].available and "1 of 6 images are missing" in decks["demo"].problem
    assert decks["other"].available
    assert not decks["garbled"].available and "not valid JSON (line 1" in decks["garbled"].problem
    without_data = load_decks(folder, None)
    assert all("GAUNTLET_DATA_DIR" in deck.problem for deck in without_data if deck.id != "garbled")


def test_builder_samples_a_balanced_valid_deck(data_root):
    deck = build_deck(data_root / "set", data_root, "My deck", n=6, seed=1)
    assert deck["id"] == "my-deck"
    assert sorted(item["truth"] for item in deck["items"]) == ["FAKE"] * 3 + ["REAL"] * 3
    assert all(item["image"].startswith("set/") and item["display_size"] == 256 for item in deck["items"])
    assert all("TODO (teacher)" in item["lesson"] for item in deck["items"])
    assert build_deck(data_root / "set", data_root, "My deck", n=6, seed=1) == deck
    zipped = build_deck(data_root / "set.zip", data_root, "Zip", n=5, seed=0)
    assert len(zipped["items"]) == 5 and zipped["items"][0]["image"].startswith("set.zip/")
    with pytest.raises(DeckError, match="only 4 REAL images"):
        build_deck(data_root / "set", data_root, "Too many", n=10)


def test_build_command_writes_a_deck_that_loads(data_root, tmp_path, capsys):
    out = tmp_path / "decks" / "mine.json"
    args = ["build", str(data_root / "set"), "--title", "Mine", "--n", "4", "--data-root", str(data_root),
            "--out", str(out)]
    assert main(args) == 0
    assert json.loads(out.read_text())["id"] == "mine"
    assert load_deck(out, data_root).available
    assert main(args) == 2 and "exists" in capsys.readouterr().err
    assert main(["check", str(out.parent), "--data-root", str(data_root)]) == 0
    assert "4 items still have placeholder text" in capsys.readouterr().out


def test_items_carry_artifact_kinds_and_decks_their_test_pools(data_root, tmp_path):
    deck = load_deck(write_deck(tmp_path / "decks", demo_deck()), data_root)
    assert deck.item("demo-04").artifacts == ("functional", "physics")
    assert deck.item("demo-02").artifacts == ("none visible",) and deck.item("demo-02").artifact_kinds == ()
    assert [len(pool) for pool in deck.test_pools] == [4, 4] and deck.pool_size == 4
    assert deck.item("demo-t2-03").image == "set.zip/REAL/img 2.png"
    pools_missing = demo_deck()
    pools_missing["test_pools"][0][0]["image"] = "set/REAL/gone.png"
    partial = load_deck(write_deck(tmp_path / "decks", pools_missing), data_root)
    assert partial.available and "missing" in partial.pools_problem and partial.pool_size == 0


def test_builder_writes_artifact_placeholders_and_optional_test_pools(data_root, tmp_path, capsys):
    deck = build_deck(data_root / "set", data_root, "Pools", n=4, seed=3, pool_size=2)
    assert [item["artifacts"] for item in deck["items"] if item["truth"] == "REAL"] == [["none visible"]] * 2
    assert all(item["artifacts"][0].startswith("TODO (teacher): one or more of anatomical, stylistic")
               for item in deck["items"] if item["truth"] == "FAKE")
    pools = deck["test_pools"]
    images = [item["image"] for item in deck["items"]] + [item["image"] for pool in pools for item in pool]
    assert [len(pool) for pool in pools] == [2, 2] and len(set(images)) == 8
    assert all(sorted(item["truth"] for item in pool) == ["FAKE", "REAL"] for pool in pools)
    write_deck(tmp_path / "decks", deck)
    assert main(["check", str(tmp_path / "decks"), "--data-root", str(data_root)]) == 0
    assert "pools: ok, 4 images; artifacts: none visible 2; test pools 2+2 (8 items still have placeholder text)" \
        in capsys.readouterr().out


def test_bundled_decks_name_an_artifact_kind_for_every_ai_image():
    from gauntlet.settings import REPO_ROOT

    decks = load_decks(REPO_ROOT / "quiz_data", None)
    assert decks and all(not deck.problem.startswith("bad manifest") for deck in decks)
    items = [item for deck in decks for item in (*deck.items, *(i for pool in deck.test_pools for i in pool))]
    assert all(item.artifact_kinds for item in items if item.truth == "FAKE")
    assert {deck.id for deck in decks if deck.test_pools} >= {"faces", "many_generators"}
