"""The starter content kept in the repository (quiz_data/images/) and the command that writes it (``vendor``)."""
from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest
from PIL import Image

from conftest import make_checkpoint
from gauntlet.service import ModelCatalog
from gauntlet.settings import REPO_ROOT
from gauntlet.teaching.classroom import ClassroomStore
from gauntlet.teaching.decks import (EXAMPLES_DIR, IMAGES_DIR, LICENSED_COLLECTIONS, load_decks, main, raw_items,
                                     starter_examples)
from gauntlet.teaching.quiz import Quiz
from gauntlet.teaching.reveal_cache import RevealCache
from quiz_helpers import demo_deck, make_data_root, write_deck

DECKS = REPO_ROOT / "quiz_data"
IMAGES = DECKS / IMAGES_DIR
MAX_BYTES = 5_000_000
STARTER_DECKS = {"faces", "many_generators"}


def deck_images() -> set[str]:
    return {item["image"] for path in DECKS.glob("*.json") for item in raw_items(json.loads(path.read_text()))}


def test_a_fresh_clone_has_two_playable_decks_without_the_data_folder():
    decks = {deck.id: deck for deck in load_decks(DECKS, None, hub_offline=True)}
    playable = {deck_id for deck_id, deck in decks.items() if deck.available}
    assert playable >= STARTER_DECKS, {deck_id: decks[deck_id].problem for deck_id in STARTER_DECKS}
    assert all(str(decks[d].items[0].ref.path).startswith(str(IMAGES)) for d in STARTER_DECKS)
    for deck in decks.values():
        assert deck.available or "GAUNTLET_DATA_DIR" in deck.problem


def test_starter_images_are_small_licensed_and_carry_no_metadata():
    files = [path for path in IMAGES.rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in files) <= MAX_BYTES
    notice = (IMAGES / "NOTICE").read_text()
    assert "MIT" in notice and "faces_logvisionn_ood" in notice and "ml72_playground" in notice
    for path in files:
        if path.name == "NOTICE":
            continue
        relative = path.relative_to(IMAGES).parts
        collection = relative[1] if relative[0] == EXAMPLES_DIR else relative[0]
        assert collection in LICENSED_COLLECTIONS, f"{path}: only MIT-licensed collections may be committed"
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert not {"exif", "icc_profile", "comment", "xmp"} & set(image.info), f"{path} carries metadata"


def test_detector_examples_are_in_no_deck():
    examples = starter_examples(DECKS)
    assert 4 <= len(examples) <= 6
    as_deck_paths = {"/".join(path.relative_to(IMAGES / EXAMPLES_DIR).parts) for path in examples}
    assert not as_deck_paths & deck_images()
    assert {path.relative_to(IMAGES / EXAMPLES_DIR).parts[1] for path in examples} == {"REAL", "FAKE"}


def _jpeg_with_metadata(seed: int) -> bytes:
    image = Image.effect_noise((48, 40), 40 + seed).convert("RGB")
    exif = Image.Exif()
    exif[0x0131] = "SecretGenerator v1"  # Software: what would name the generator
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


@pytest.fixture
def licensed_data(tmp_path):
    """A data root with a small ``faces/`` collection (JPEGs with EXIF) and a deck over it."""
    root = tmp_path / "data"
    for label in ("REAL", "FAKE"):
        (root / "faces" / label).mkdir(parents=True)
        for index in range(3):
            (root / "faces" / label / f"{label.lower()}_{index}.jpg").write_bytes(_jpeg_with_metadata(index))
    deck = demo_deck()
    images = [f"faces/{label}/{label.lower()}_{index}.jpg" for label in ("FAKE", "REAL") for index in range(3)]
    deck["items"] = [{**item, "image": image} for item, image in zip(deck["items"], images)]
    deck.pop("test_pools")  # pools of the licensed collections are vendored with the real decks
    return root, write_deck(tmp_path / "decks", deck)


def test_vendor_copies_a_deck_so_it_plays_without_the_data_folder(licensed_data, capsys):
    root, deck_file = licensed_data
    args = ["vendor", str(deck_file), "--examples", "faces/REAL/real_2.jpg", "--data-root", str(root)]
    assert main(args) == 2 and "is in a deck" in capsys.readouterr().err
    (root / "faces" / "REAL" / "real_9.jpg").write_bytes(_jpeg_with_metadata(9))
    assert main([*args[:3], "faces/REAL/real_9.jpg", *args[4:]]) == 0
    assert "Wrote 7 images" in capsys.readouterr().out
    copy = deck_file.parent / IMAGES_DIR / "faces" / "FAKE" / "fake_0.jpg"
    assert b"SecretGenerator" not in copy.read_bytes()
    examples = deck_file.parent / IMAGES_DIR / EXAMPLES_DIR
    assert starter_examples(deck_file.parent) == [examples / "faces" / "REAL" / "real_9.jpg"]
    assert "MIT" in (deck_file.parent / IMAGES_DIR / "NOTICE").read_text()
    (deck, ) = load_decks(deck_file.parent, None)
    assert deck.available and deck.items[0].ref.path == copy.resolve()


def test_vendor_refuses_collections_whose_licence_does_not_allow_it(tmp_path, capsys):
    root = make_data_root(tmp_path / "data")
    deck_file = write_deck(tmp_path / "decks", demo_deck())
    assert main(["vendor", str(deck_file), "--data-root", str(root)]) == 2
    assert "only images of faces, photos_mixed may be copied" in capsys.readouterr().err
    assert not (tmp_path / "decks" / IMAGES_DIR).exists()


def test_vendor_wants_deck_files_from_one_folder(licensed_data, tmp_path, capsys):
    root, deck_file = licensed_data
    other = write_deck(tmp_path / "elsewhere", json.loads(deck_file.read_text()))
    assert main(["vendor", str(deck_file), str(other), "--data-root", str(root)]) == 2
    assert "from one folder" in capsys.readouterr().err


def test_a_classroom_plays_a_starter_deck_without_the_data_folder(tmp_path):
    """A teacher opens a room on Faces and a student plays it through, from the repository's images only."""
    make_checkpoint(tmp_path / "checkpoints" / "tiny", "baseline_cnn")
    catalog = ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path / "checkpoints")
    quiz = Quiz(catalog, load_decks(DECKS, None, hub_offline=True), RevealCache(catalog, tmp_path / "cache"),
                ClassroomStore(tmp_path / "classroom.sqlite3"))
    code, key = quiz.create_room("faces", "tiny", test_items=4)  # the test pools' images are here too
    progress = quiz.join(code, "Ada")
    for _ in range(4 + 20 + 4):  # pre-test, lesson, post-test
        step = quiz.room_step(progress)
        assert Image.open(step.shown.image_file).size[0] > 0
        progress, _ = quiz.room_guess(replace(progress, showing=step.item_id), "REAL")
    assert quiz.leaderboard(code) == [("Ada", 14, 28)]  # half of every balanced phase is real
    assert len(quiz.teacher_report(code, key).items) == 20


def test_vendor_refuses_a_deck_pinned_by_hashes(licensed_data, capsys):
    root, deck_file = licensed_data
    data = json.loads(deck_file.read_text())
    data["items"][0]["sha256"] = "0" * 64
    deck_file.write_text(json.dumps(data))
    assert main(["vendor", str(deck_file), "--data-root", str(root)]) == 2
    assert "pinned by its sha256" in capsys.readouterr().err
