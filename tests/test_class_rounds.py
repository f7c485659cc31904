"""Classroom rounds in the library: teacher-paced rooms, pre/post tests, per-student order, the class report,
room expiry and deletion, failed-join limits, old databases, and a whole class answering at once."""
from __future__ import annotations

import math
import random
import sqlite3
import threading
from collections import Counter

import pytest

from gauntlet.stats import paired_mean_interval
from gauntlet.teaching import classroom
from gauntlet.teaching.class_report import balanced_sample, plan_sequence
from gauntlet.teaching.classroom import ClassroomStore, JoinLimiter, RoomError
from gauntlet.teaching.decks import parse_deck
from gauntlet.teaching.quiz import Progress, Quiz
from gauntlet.teaching.quiz_present import reveal_markdown, summary_markdown, teacher_markdown
from quiz_helpers import POOL_TRUTH_OF, TRUTH_OF, demo_deck, demo_quiz

MODEL = "tiny"
TRUTHS = {**TRUTH_OF, **POOL_TRUTH_OF}
OLD_SCHEMA = """
CREATE TABLE rooms (code TEXT PRIMARY KEY, deck TEXT NOT NULL, model TEXT NOT NULL, teacher_hash TEXT NOT NULL,
    created REAL NOT NULL, closed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE students (room TEXT NOT NULL REFERENCES rooms(code), token TEXT NOT NULL, nickname TEXT NOT NULL,
    joined REAL NOT NULL, PRIMARY KEY (room, token), UNIQUE (room, nickname));
CREATE TABLE answers (room TEXT NOT NULL, token TEXT NOT NULL, item TEXT NOT NULL, guess TEXT NOT NULL,
    correct INTEGER NOT NULL, answered REAL NOT NULL, PRIMARY KEY (room, token, item),
    FOREIGN KEY (room, token) REFERENCES students);
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Quiz:
    return demo_quiz(tmp_path_factory.mktemp("rounds"), MODEL)


@pytest.fixture
def quiz(base, tmp_path) -> Quiz:
    """The demo quiz with a fresh classroom database and a failed-join limit of 5 a minute."""
    return Quiz(base.catalog, list(base.decks.values()), base.cache, ClassroomStore(tmp_path / "classroom.sqlite3"),
                JoinLimiter(5, 60))


def play(quiz: Quiz, progress: Progress, guess_of=lambda item_id: TRUTHS[item_id]) -> Progress:
    """Answer a self-paced room to the end; ``guess_of`` picks each guess."""
    while (step := quiz.room_step(progress)).state == "guess":
        progress, _ = quiz.room_guess(replace_showing(progress, step.item_id), guess_of(step.item_id))
    return progress


def replace_showing(progress: Progress, item_id: str) -> Progress:
    return Progress(progress.deck, progress.model, progress.answers, progress.room, progress.student, item_id)


def test_a_teacher_paced_round_reveals_only_when_the_teacher_says_so(quiz):
    code, key = quiz.create_room("demo", MODEL, pacing="teacher")
    students = [quiz.join(code, name) for name in ("Ada", "Bob", "Cy")]
    first = quiz.room_step(students[0])
    assert first.state == "guess" and first.outcome is None and first.distribution is None
    assert {quiz.room_step(s).item_id for s in students} == {first.item_id}  # the whole class on one image
    quiz.room_guess(students[0], "FAKE")
    quiz.room_guess(students[1], "REAL")
    waiting = quiz.room_step(students[0])
    assert waiting.state == "waiting" and waiting.outcome is None
    with pytest.raises(RoomError, match="teacher has not opened"):  # straight at the store: another item
        quiz.store.record(code, students[2].student, "demo-06" if first.item_id != "demo-06" else "demo-01",
                          "REAL", True)
    quiz.store.reveal(code, key)
    with pytest.raises(RoomError, match="no longer open"):
        quiz.room_guess(students[2], "REAL")
    with pytest.raises(RoomError, match="has been revealed"):
        quiz.store.record(code, students[2].student, first.item_id, "REAL", True)
    revealed = quiz.room_step(students[2])
    assert revealed.state == "revealed" and revealed.outcome.item.truth == TRUTHS[first.item_id]
    assert revealed.distribution == {"REAL": 1, "FAKE": 1}
    text = reveal_markdown(revealed.outcome, revealed.distribution)
    assert "did not answer" in text and "1 said *Real* (50%), 1 said *AI* (50%)" in text
    quiz.store.advance(code, key)
    second = quiz.room_step(students[0])
    assert second.state == "guess" and second.item_id != first.item_id and second.shown.position == 2
    for _ in range(10):
        quiz.store.advance(code, key)
    assert quiz.room_step(students[0]).state == "done"
    right = int(TRUTHS[first.item_id] == "FAKE")
    assert f"You: {right} / 1 right" in summary_markdown(quiz.room_summary(students[0]))


def test_self_paced_rooms_cannot_be_paced_and_paced_test_items_are_never_revealed(quiz):
    code, key = quiz.create_room("demo", MODEL)
    with pytest.raises(RoomError, match="self-paced"):
        quiz.store.advance(code, key)
    code, key = quiz.create_room("demo", MODEL, pacing="teacher", test_items=2)
    ada = quiz.join(code, "Ada")
    step = quiz.room_step(ada)
    assert step.phase == "pre" and step.item_id in POOL_TRUTH_OF
    _, after = quiz.room_guess(ada, "REAL")
    assert after.state == "waiting" and after.outcome is None


def test_each_student_gets_their_own_order_with_pre_and_post_from_disjoint_pools(quiz):
    deck = quiz.deck("demo")
    code, _ = quiz.create_room("demo", MODEL, test_items=2)
    orders = []
    for number in range(12):
        student = quiz.join(code, f"student {number}")
        sequence = quiz.store.sequence(code, student.student)
        phases = [phase for _, phase in sequence]
        assert phases == ["pre"] * 2 + ["lesson"] * 6 + ["post"] * 2
        lesson = [item for item, phase in sequence if phase == "lesson"]
        assert sorted(lesson) == sorted(TRUTH_OF)
        pre = {item for item, phase in sequence if phase == "pre"}
        post = {item for item, phase in sequence if phase == "post"}
        pools = [{item.id for item in pool} for pool in deck.test_pools]
        assert (pre <= pools[0] and post <= pools[1]) or (pre <= pools[1] and post <= pools[0])
        assert sorted(POOL_TRUTH_OF[item] for item in pre) == ["FAKE", "REAL"]  # balanced
        orders.append(tuple(lesson))
    assert len(set(orders)) > 6  # random per student, not the deck's (or the solo quiz's) order
    with pytest.raises(ValueError, match="at most that many"):
        quiz.create_room("demo", MODEL, test_items=5)


def test_balanced_sample_and_plan_follow_the_pools():
    rng = random.Random(0)
    deck = parse_deck(demo_deck(), "demo")
    assert Counter(item.truth for item in balanced_sample(deck.test_pools[0], 4, rng)) == {"REAL": 2, "FAKE": 2}
    assert len(plan_sequence(deck, 0, rng)) == 6
    without_pools = parse_deck({key: value for key, value in demo_deck().items() if key != "test_pools"}, "demo")
    with pytest.raises(ValueError, match="has no test pools"):
        plan_sequence(without_pools, 2, rng)


def test_pre_post_room_reports_the_gain_with_a_paired_interval_and_the_phase_of_every_answer(quiz):
    code, key = quiz.create_room("demo", MODEL, test_items=2)
    wrong = {"REAL": "FAKE", "FAKE": "REAL"}
    plans = {"Ada": (0, 2), "Bob": (1, 2), "Cy": (0, 1)}  # (pre right, post right) out of 2
    for name, (pre_right, post_right) in plans.items():
        student = quiz.join(code, name)
        sequence = quiz.store.sequence(code, student.student)
        right = {item for item, phase in sequence if phase == "pre"}
        right = set(sorted(right)[:pre_right]) | set(
            sorted(item for item, phase in sequence if phase == "post")[:post_right])
        right |= {item for item, phase in sequence if phase == "lesson"}
        play(quiz, student, lambda item: TRUTHS[item] if item in right else wrong[TRUTHS[item]])
    summary = quiz.room_summary(student)  # Cy
    assert (summary.tests["pre"].right, summary.tests["post"].right, summary.total) == (0, 1, 6)
    assert "Pre-test: 0 / 2 right · Post-test: 1 / 2 right" in summary_markdown(summary)
    report = quiz.teacher_report(code, key)
    gains = [1.0, 0.5, 0.5]
    mean, low, high = paired_mean_interval(gains)
    assert report.gain.n == 3 and report.gain.mean == pytest.approx(mean) and report.gain.low == pytest.approx(low)
    text = teacher_markdown(report)
    assert f"{100 * mean:+.0f} points on average (95% interval {100 * low:+.0f} to {100 * high:+.0f} points" in text
    assert "| Ada | 0/2 | 6/6 | 0 | 0 | – | 2/2 | +100 points |" in text
    rows = quiz.store.answers(code, key)
    assert Counter(phase for *_, phase in rows) == {"pre": 6, "lesson": 18, "post": 6}


def test_paired_interval_matches_the_t_formula():
    mean, low, high = paired_mean_interval([0.1, 0.2, 0.3, 0.0])
    half = 3.182446305284263 * math.sqrt(sum((x - 0.15) ** 2 for x in [0.1, 0.2, 0.3, 0.0]) / 3) / 2
    assert (mean, low, high) == pytest.approx((0.15, 0.15 - half, 0.15 + half))
    assert math.isnan(paired_mean_interval([0.5])[1]) and math.isnan(paired_mean_interval([])[0])


def test_the_teacher_sees_what_fooled_whom_and_answers_that_followed_a_wrong_model(quiz):
    code, key = quiz.create_room("demo", MODEL)
    play(quiz, quiz.join(code, "Ada"), lambda item: "REAL")  # every AI image missed, no false alarm
    play(quiz, quiz.join(code, "Bob"), lambda item: "FAKE")  # every real image a false alarm
    report = quiz.teacher_report(code, key)
    assert (report.lesson.misses, report.lesson.false_alarms, report.lesson.answered) == (3, 3, 12)
    assert report.kinds == {"anatomical": (4, 2), "functional": (2, 1), "physics": (2, 1)}
    wrong_items = [item for item in report.items if not item.model_right]
    assert report.answers_on_wrong_model == 2 * len(wrong_items)
    assert report.followed_wrong_model == len(wrong_items)  # one of the two always agrees with the model
    text = teacher_markdown(report)
    assert "| real images called AI (false alarms) | 6 | 3 |" in text
    assert "| AI images called real (missed) | 6 | 3 |" in text
    assert "| Ada | 3/6 | 0 | 3 | anatomical 2, functional 1, physics 1 |" in text
    assert "### The class: 50% right" in text and "the model:" in text


def test_wrong_codes_are_limited_per_client_with_a_clear_message(quiz):
    code, _ = quiz.create_room("demo", MODEL)
    for _ in range(5):
        with pytest.raises(RoomError, match="No room has this code"):
            quiz.join("ZZZZZZ", "Eve", client="10.0.0.9")
    with pytest.raises(RoomError, match=r"Too many wrong room codes from this computer: wait \d+ seconds"):
        quiz.join(code, "Eve", client="10.0.0.9")
    assert quiz.join(code, "Ada", client="10.0.0.1").room == code  # another computer is not held up
    with pytest.raises(RoomError, match="already called"):  # a taken nickname is not a wrong code
        quiz.join(code, "ada", client="10.0.0.1")


def test_expired_rooms_take_nothing_new_but_stay_readable_until_deleted(quiz, tmp_path, monkeypatch):
    store = ClassroomStore(tmp_path / "expiring.sqlite3", room_ttl_s=3600)
    code, key = store.create_room("demo", MODEL)
    _, token = store.join(code, "Ada")
    store.record(code, token, "demo-01", "FAKE", True)
    later = classroom.time.time() + 3601
    monkeypatch.setattr(classroom.time, "time", lambda: later)
    assert store.room(code).expired
    with pytest.raises(RoomError, match="expired"):
        store.join(code, "Bob")
    with pytest.raises(RoomError, match="expired"):
        store.record(code, token, "demo-02", "REAL", True)
    assert len(store.answers(code, key)) == 1  # still exportable
    with pytest.raises(PermissionError):
        store.delete_room(code, "not the key")
    store.delete_room(code, key)
    with pytest.raises(RoomError, match="No room has this code"):
        store.room(code)
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 0


def test_an_answer_for_another_room_or_with_another_rooms_key_is_refused(quiz):
    code, key = quiz.create_room("demo", MODEL)
    other, other_key = quiz.create_room("demo", MODEL)
    ada = quiz.join(code, "Ada")
    with pytest.raises(RoomError, match="not in this room"):
        quiz.room_guess(Progress("demo", MODEL, [], other, ada.student), "REAL")
    with pytest.raises(PermissionError, match="do not match"):
        quiz.store.reveal(code, other_key)


def test_an_old_database_is_migrated_and_keeps_its_rooms(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        db.execute("INSERT INTO rooms VALUES ('ABCDEF', 'demo', 'tiny', ?, 0, 0)", (classroom.hash_key("k"),))
        db.execute("INSERT INTO students VALUES ('ABCDEF', 'tok', 'Ada', 0)")
        db.execute("INSERT INTO answers VALUES ('ABCDEF', 'tok', 'demo-01', 'FAKE', 1, 0)")
    store = ClassroomStore(path)
    room = store.room("abcdef")
    assert (room.pacing, room.test_items, room.expires, room.expired) == ("self", 0, None, False)
    assert store.answers("ABCDEF", "k") == [("Ada", "demo-01", "FAKE", True, 0.0, "lesson")]
    assert store.sequence("ABCDEF", "tok") == []
    store.record("ABCDEF", "tok", "demo-02", "REAL", True, "post")
    ClassroomStore(path)  # opening again changes nothing
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(classroom.MIGRATIONS)


def test_an_old_student_without_a_sequence_plays_the_deck_in_order(quiz):
    code, _ = quiz.create_room("demo", MODEL)
    with sqlite3.connect(quiz.store.path) as db:
        db.execute("INSERT INTO students (room, token, nickname, joined) VALUES (?, 'old', 'Old', 0)", (code,))
    assert quiz.room_step(Progress("demo", MODEL, [], code, "old")).item_id == "demo-01"


def test_forty_students_answering_a_paced_image_as_it_is_revealed_lose_nothing(tmp_path):
    store = ClassroomStore(tmp_path / "busy.sqlite3")
    code, key = store.create_room("demo", MODEL, "teacher", 0, [("demo-01", "lesson"), ("demo-02", "lesson")])
    tokens = [store.join(code, f"student {n}")[1] for n in range(40)]
    barrier, stored, refused, errors = threading.Barrier(len(tokens) + 1), [], [], []

    def answer(token: str) -> None:
        barrier.wait()
        try:
            store.record(code, token, "demo-01", "FAKE", True)
            stored.append(token)
        except RoomError:
            refused.append(token)
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)
        try:  # a double click: the first answer counts, once (or the image is revealed by now)
            if store.record(code, token, "demo-01", "REAL", False) != ("FAKE", True):
                errors.append(f"{token}: the second click replaced the first answer")
        except RoomError:
            pass

    def reveal() -> None:
        barrier.wait()
        store.reveal(code, key)

    threads = [threading.Thread(target=answer, args=(t,)) for t in tokens] + [threading.Thread(target=reveal)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(stored) + len(refused) == 40
    assert store.distribution(code, "demo-01") == {"REAL": 0, "FAKE": len(stored)}  # none lost, none twice
    assert sorted(store.student_answers(code, t) != {} for t in tokens).count(True) == len(stored)
