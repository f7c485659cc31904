"""Quiz sessions: scoring, progress that carries no truth, instant reveals from the cache, classroom play."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import make_checkpoint
from gauntlet.checkpoint import read_config, write_config
from gauntlet.teaching.classroom import ClassroomStore, RoomError
from gauntlet.teaching.decks import load_decks
from gauntlet.detector import Prediction
from gauntlet.teaching.quiz import Progress, Quiz, next_item, precompute, precompute_in_background, score
from gauntlet.teaching.quiz_present import fooled_chart, reveal_markdown, summary_markdown, teacher_markdown
from gauntlet.teaching.reveal_cache import RevealCache
from gauntlet.service import ModelCatalog
from quiz_helpers import TRUTH_OF, demo_deck, make_data_root, write_deck

MODEL = "tiny"


@pytest.fixture(scope="module")
def quiz(tmp_path_factory) -> Quiz:
    root = tmp_path_factory.mktemp("quiz")
    make_checkpoint(root / "checkpoints" / MODEL, "baseline_cnn")
    data_root = make_data_root(root / "data")
    write_deck(root / "decks", demo_deck())
    write_deck(root / "decks", {**demo_deck(), "id": "second"})
    catalog = ModelCatalog(extra_sources=(), checkpoints_dir=root / "checkpoints")
    return Quiz(catalog, load_decks(root / "decks", data_root), RevealCache(catalog, root / "cache"),
                ClassroomStore(root / "classroom.sqlite3"))


def verdict(label: str) -> Prediction:
    return Prediction({"REAL": 0.2, "FAKE": 0.8} if label == "FAKE" else {"REAL": 0.7, "FAKE": 0.3},
                      int(label == "FAKE"), label)


def test_score_counts_player_and_model_on_the_same_items(quiz):
    deck = quiz.deck("demo")
    progress = Progress("demo", MODEL, [["demo-01", "FAKE"], ["demo-02", "FAKE"], ["demo-03", "REAL"]])
    summary = score(deck, progress.answers, {"demo-01": verdict("REAL"), "demo-02": verdict("REAL"),
                                             "demo-03": verdict("FAKE")})
    assert (summary.total, summary.player_right, summary.model_right) == (3, 2, 1)
    assert [(item.id, guess) for item, guess in summary.missed] == [("demo-02", "FAKE")]
    text = summary_markdown(summary)
    assert "You: 2 / 3 right · the model: 1 / 3" in text
    assert "1 of 2 real image(s) called AI (false alarms); 0 of 1 AI image(s) called real (missed)." in text


def test_misses_are_reported_by_artifact_kind_apart_from_false_alarms(quiz):
    deck = quiz.deck("demo")
    answers = [["demo-01", "REAL"], ["demo-04", "REAL"], ["demo-05", "REAL"], ["demo-06", "FAKE"]]
    summary = score(deck, answers, {item_id: verdict("REAL") for item_id, _ in answers})
    assert (summary.lesson.misses, summary.lesson.false_alarms) == (3, 1)
    assert dict(summary.lesson.fooled_by) == {"anatomical": 2, "functional": 1, "physics": 1}
    assert "by artifact kind: anatomical 2, functional 1, physics 1" in summary_markdown(summary)


def test_saved_progress_is_checked_against_the_deck(quiz):
    deck = quiz.deck("demo")
    assert Progress.from_dict("garbage") is None and Progress.from_dict({"deck": "demo"}) is None
    assert Progress.from_dict({"deck": "demo", "model": MODEL, "answers": [["demo-01", "MAYBE"]]}) is None
    assert next_item(deck, Progress("demo", MODEL)).id == "demo-01"
    with pytest.raises(ValueError, match="does not match"):
        next_item(deck, Progress("demo", MODEL, [["demo-02", "REAL"]]))
    with pytest.raises(ValueError, match="REAL or FAKE"):
        quiz.guess(Progress("demo", MODEL), "MAYBE")
    with pytest.raises(ValueError, match="Choose a quiz deck"):
        quiz.start("nope", MODEL)


def test_a_solo_round_reveals_only_after_the_guess(quiz):
    progress = quiz.start("demo", MODEL)
    guesses = ["FAKE", "FAKE", "REAL", "REAL", "FAKE", "REAL"]
    for position, guess in enumerate(guesses, start=1):
        shown = quiz.show(progress)
        assert (shown.position, shown.total, shown.done) == (position, 6, False)
        with Image.open(shown.image_file) as picture:  # a file written once, its name a hash
            assert picture.mode == "RGB" and not {"exif", "xmp", "icc_profile"} & set(picture.info), "pixels only"
        assert shown.image_file == quiz.show(progress).image_file, "the same file for every visitor"
        assert not any(word in Path(shown.image_file).name.lower() for word in ("real", "fake"))
        progress, outcome = quiz.guess(progress, guess)
        assert progress.answers[-1] == [outcome.item.id, guess]
        assert outcome.correct == (guess == TRUTH_OF[outcome.item.id])
        assert Image.open(outcome.heatmap_file).size[0] >= 256 and "What to look for" in reveal_markdown(outcome)
    assert quiz.show(progress).done
    summary = quiz.summary(progress)
    assert summary.player_right == sum(g == t for g, t in zip(guesses, TRUTH_OF.values()))
    model_right = sum(quiz.cache.verdict(MODEL, quiz.deck("demo").item(i)).predicted_label == t
                      for i, t in TRUTH_OF.items())
    assert summary.model_right == model_right
    assert [Image.open(file).size for file, _, _ in quiz.review_images(summary)] == [(40, 40)] * len(summary.missed)
    with pytest.raises(ValueError, match="finished"):
        quiz.guess(progress, "REAL")


def test_progress_never_holds_a_truth(quiz):
    progress = quiz.start("demo", MODEL)
    quiz.show(progress)
    saved = progress.to_dict()
    assert saved == {"deck": "demo", "model": MODEL, "answers": [], "room": "", "student": "", "showing": ""}
    progress, _ = quiz.guess(progress, "REAL")
    assert progress.to_dict()["answers"] == [["demo-01", "REAL"]]  # the player's guess, not the truth (FAKE)


def test_show_prepares_the_reveal_before_the_guess_and_the_reveal_makes_no_model_call(quiz, tmp_path,
                                                                                     monkeypatch):
    first, second = quiz.deck("demo").items[:2]
    fresh = RevealCache(quiz.catalog, tmp_path / "cache")
    quiz_fresh = Quiz(quiz.catalog, list(quiz.decks.values()), fresh, quiz.store)
    assert not fresh.cached(MODEL, first, "score_cam")
    analysed = []
    analyse = quiz.catalog.analyse
    monkeypatch.setattr(quiz.catalog, "analyse", lambda *a, **k: analysed.append(1) or analyse(*a, **k))
    quiz_fresh.show(quiz_fresh.start("demo", MODEL))  # starts background jobs: this item, then the next
    fresh.prefetch(MODEL, second, "score_cam").result()  # the job show() started (one worker: the first is done)
    assert fresh.cached(MODEL, first, "score_cam") and len(analysed) == 2, "show() did not prepare the reveals"
    pooled = quiz.deck("demo").pooled_items()
    assert precompute(quiz_fresh, ["demo"], [MODEL], ["score_cam"]) == 4 + len(pooled)  # pools: verdicts only
    assert all(fresh.cached(MODEL, item) and not fresh.cached(MODEL, item, "score_cam") for item in pooled)
    assert precompute(quiz_fresh, ["demo"], [MODEL], ["score_cam"]) == 0
    for name in ("analyse", "predict", "detector"):  # precomputed: a reveal must not touch the model
        monkeypatch.setattr(quiz.catalog, name, lambda *a, **k: pytest.fail("the reveal called the model"))
    _, outcome = quiz_fresh.guess(quiz_fresh.start("demo", MODEL), "FAKE")
    assert Path(outcome.heatmap_file).is_file() and outcome.prediction.predicted_label in ("REAL", "FAKE")


def test_the_start_up_warm_up_fills_every_playable_deck_and_logs_failures(quiz, tmp_path, caplog):
    fresh = RevealCache(quiz.catalog, tmp_path / "cache")
    quiz_fresh = Quiz(quiz.catalog, list(quiz.decks.values()), fresh, quiz.store)
    with caplog.at_level("INFO", logger="gauntlet.teaching.quiz"):
        precompute_in_background(quiz_fresh, [MODEL], ["grad_cam"]).join(timeout=120)
    assert "Quiz reveals ready" in caplog.text
    assert all(fresh.cached(MODEL, item, "grad_cam") for deck in ("demo", "second")
               for item in quiz.deck(deck).items)
    with caplog.at_level("INFO", logger="gauntlet.teaching.quiz"):
        precompute_in_background(quiz_fresh, ["no-such-model"], ["grad_cam"]).join(timeout=120)
    assert "Precomputing quiz reveals failed" in caplog.text  # logged on its thread, never raised


def test_classroom_play_records_first_answers_and_feeds_the_teacher(quiz):
    code, key = quiz.create_room("demo", MODEL)
    ada = quiz.join(code, "Ada")
    bob = quiz.join(code.lower(), "Bob")
    assert ada.room == code and ada.student and "REAL" not in json.dumps(ada.to_dict())
    first = quiz.room_step(ada)
    assert first.state == "guess" and first.phase == "lesson"
    after, step = quiz.room_guess(ada, TRUTH_OF[first.item_id])
    assert step.state == "revealed" and step.outcome.correct and after.showing == first.item_id
    with pytest.raises(RoomError, match="no longer open"):  # replaying the old progress on the same image
        quiz.room_guess(Progress("demo", MODEL, [], code, ada.student, first.item_id), "REAL")
    bob_first = quiz.room_step(bob).item_id
    quiz.room_guess(bob, "REAL")
    with pytest.raises(ValueError, match="classroom room"):
        quiz.guess(ada, "REAL")
    report = quiz.teacher_report(code, key)
    stats = {item.item.id: item.stat for item in report.items}
    assert sum(stat.answered for stat in stats.values()) == 2
    markdown = teacher_markdown(report)
    assert "The class:" in markdown and "| Ada |" in markdown and "| Bob |" in markdown
    assert fooled_chart(report.items).size[0] > 100
    with pytest.raises(PermissionError):
        quiz.teacher_report(code, "wrong key")
    with open(quiz.export_csv(code, key), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["nickname"], r["item"], r["phase"], r["truth"]) for r in rows] == [
        ("Ada", first.item_id, "lesson", TRUTH_OF[first.item_id]), ("Bob", bob_first, "lesson", TRUTH_OF[bob_first])]
    quiz.close_room(code, key)
    with pytest.raises(RoomError, match="closed"):
        quiz.room_guess(after, "REAL")


def test_cached_reveals_are_keyed_by_weights_and_explained_layers(tmp_path):
    def fingerprint(folder: str, **config) -> str:
        make_checkpoint(tmp_path / folder / "m", "baseline_cnn", **config)
        catalog = ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path / folder)
        return RevealCache(catalog, tmp_path / "cache").fingerprint("m")

    same = fingerprint("a"), fingerprint("b")
    assert same[0] == same[1]
    assert fingerprint("c", seed=1) != same[0]
    assert fingerprint("d", target_layers={"last": ["features.1"], "last3": ["features.1"]}) != same[0]


def test_cached_reveals_follow_a_flip_decision(tmp_path):
    """training.flip rewrites only config.json, and test_time_flip changes verdicts: the cache must not serve old ones."""
    folder = make_checkpoint(tmp_path / "checkpoints" / "m", "baseline_cnn")

    def fingerprint() -> str:
        catalog = ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path / "checkpoints")
        return RevealCache(catalog, tmp_path / "cache").fingerprint("m")

    before = fingerprint()
    config = read_config(folder)
    config.test_time_flip = True  # what python -m training.flip writes (the weights stay as they are)
    write_config(config, folder)
    assert fingerprint() != before
