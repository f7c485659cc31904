"""Classroom store: codes, teacher keys, nicknames, closed rooms, restarts and 40 simultaneous writers."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from gauntlet.teaching.classroom import CODE_ALPHABET, CODE_LENGTH, ClassroomStore, RoomError, clean_nickname, hash_key
from gauntlet.teaching.quiz_present import escape_markdown, leaderboard_markdown


@pytest.fixture
def store(tmp_path):
    return ClassroomStore(tmp_path / "db" / "classroom.sqlite3")


def test_codes_are_short_random_and_keys_stored_only_hashed(store):
    rooms = [store.create_room("demo", "tiny") for _ in range(30)]
    codes = [code for code, _ in rooms]
    assert len(set(codes)) == 30
    assert all(len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET) for code in codes)
    assert len({code[:3] for code in codes}) > 20  # not sequential
    with sqlite3.connect(store.path) as db:
        stored = db.execute("SELECT teacher_hash FROM rooms").fetchall()
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {row[0] for row in stored} == {hash_key(key) for _, key in rooms}
    assert not any(key in row[0] for (_, key), row in zip(rooms, stored))


def test_teacher_key_is_required_and_bound_to_its_room(store):
    code, key = store.create_room("demo", "tiny")
    other_code, other_key = store.create_room("demo", "tiny")
    assert store.check_teacher(code.lower(), key).code == code
    for bad_code, bad_key in [(code, ""), (code, other_key), (code, key[:-1]), ("ZZZZZZ", key)]:
        with pytest.raises(PermissionError, match="do not match"):
            store.answers(bad_code, bad_key)
        with pytest.raises(PermissionError):
            store.close_room(bad_code, bad_key)
    with pytest.raises(PermissionError):
        store.answers(other_code, key)


def test_nicknames_are_limited_unique_and_escaped(store):
    code, _ = store.create_room("demo", "tiny")
    assert clean_nickname("  Ada   Lovelace ") == "Ada Lovelace"
    for bad in ["", " ", "x" * 21, "<script>", "[a](http://x)", "**bold**", "a\x07b", "![i](x)"]:
        with pytest.raises(RoomError, match="nickname"):
            store.join(code, bad)
    for abusive in ["shit head", "B1tch"]:
        with pytest.raises(RoomError, match="choose another nickname"):
            store.join(code, abusive)
    store.join(code, "Zoë_O'Neil-2")
    with pytest.raises(RoomError, match="already called"):
        store.join(code, "zoë_o'neil-2")
    board = leaderboard_markdown(store.leaderboard(code), store.room(code))
    assert "Zoë\\_O'Neil\\-2" in board
    assert escape_markdown("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert\\(1\\)&gt;"


def test_first_answer_counts_and_closed_room_takes_no_more(store, tmp_path):
    code, key = store.create_room("demo", "tiny")
    _, ada = store.join(code, "Ada")
    _, bob = store.join(code, "Bob")
    assert store.record(code, ada, "demo-01", "FAKE", True) == ("FAKE", True)
    assert store.record(code, ada, "demo-01", "REAL", False) == ("FAKE", True)
    store.record(code, bob, "demo-01", "REAL", False)
    with pytest.raises(RoomError, match="not in this room"):
        store.record(code, "forged-token", "demo-02", "REAL", True)
    assert store.leaderboard(code) == [("Ada", 1, 1), ("Bob", 0, 1)]
    assert store.distribution(code, "demo-01") == {"REAL": 1, "FAKE": 1}
    answers = store.answers(code, key)
    assert [(name, correct, phase) for name, _, _, correct, _, phase in answers] == [
        ("Ada", True, "lesson"), ("Bob", False, "lesson")]
    store.close_room(code, key)
    with pytest.raises(RoomError, match="closed"):
        store.record(code, bob, "demo-02", "REAL", True)
    with pytest.raises(RoomError, match="closed"):
        store.join(code, "Cy")
    reopened = ClassroomStore(store.path)  # an app restart
    assert reopened.room(code).closed and len(reopened.answers(code, key)) == 2


def test_forty_students_answering_at_once_lose_nothing(store):
    code, key = store.create_room("demo", "tiny")
    tokens = [store.join(code, f"student {n}")[1] for n in range(40)]
    items = [f"demo-{i:02d}" for i in range(1, 6)]
    barrier, errors = threading.Barrier(len(tokens)), []

    def answer_all(index: int, token: str) -> None:
        try:
            barrier.wait()
            for item in items:
                store.record(code, token, item, "FAKE", (index + len(item)) % 2 == 0)
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=answer_all, args=(i, t)) for i, t in enumerate(tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.answers(code, key)) == 40 * len(items)
    assert sum(sum(store.distribution(code, item).values()) for item in items) == 200
    assert all(answered == len(items) for _, _, answered in store.leaderboard(code))
