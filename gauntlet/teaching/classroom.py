"""Classroom rooms in SQLite: join codes, students, answers, leaderboard and the teacher's statistics.

A teacher creates a room for a deck and receives a short join code (for the class) and a
private teacher key (only its SHA-256 is stored). Students join with the code and a nickname
and get a random student token; each answer is stored once (the first one counts). The
database uses WAL mode and a busy timeout with ``BEGIN IMMEDIATE`` writes, so a whole class
answering at the same moment loses nothing, and it survives restarts of the app.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import UserError

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: easy to read off a projector
CODE_LENGTH = 6
NICKNAME_MAX = 20
NICKNAME_PATTERN = re.compile(r"^[\w][\w .'-]*$")
BUSY_TIMEOUT_S = 30.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    code TEXT PRIMARY KEY, deck TEXT NOT NULL, model TEXT NOT NULL, teacher_hash TEXT NOT NULL,
    created REAL NOT NULL, closed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS students (
    room TEXT NOT NULL REFERENCES rooms(code), token TEXT NOT NULL, nickname TEXT NOT NULL, joined REAL NOT NULL,
    PRIMARY KEY (room, token), UNIQUE (room, nickname));
CREATE TABLE IF NOT EXISTS answers (
    room TEXT NOT NULL, token TEXT NOT NULL, item TEXT NOT NULL, guess TEXT NOT NULL, correct INTEGER NOT NULL,
    answered REAL NOT NULL, PRIMARY KEY (room, token, item), FOREIGN KEY (room, token) REFERENCES students);
"""


class RoomError(UserError):
    """A problem a student or teacher can fix (unknown code, closed room, nickname taken); shown as is."""


class TeacherKeyError(RoomError, PermissionError):
    """The teacher key does not open this room."""


@dataclass(frozen=True)
class Room:
    """What anyone holding the join code may know about a room (never the teacher key)."""

    code: str
    deck: str
    model: str
    closed: bool


@dataclass(frozen=True)
class ItemStat:
    """How the class did on one item."""

    item: str
    answered: int
    fooled: int

    @property
    def fooled_share(self) -> float:
        return self.fooled / self.answered if self.answered else 0.0


def normalise_code(code: str) -> str:
    """Codes are typed by hand: ignore case, spaces and dashes."""
    return re.sub(r"[\s-]", "", str(code or "")).upper()


def clean_nickname(nickname: str) -> str:
    """A short, plain nickname; raises :class:`RoomError` with what is allowed."""
    name = " ".join(unicodedata.normalize("NFKC", str(nickname or "")).split())
    if not 1 <= len(name) <= NICKNAME_MAX or not NICKNAME_PATTERN.match(name):
        raise RoomError(f"Choose a nickname of 1 to {NICKNAME_MAX} characters: letters, digits, spaces, "
                        "and . ' - _")
    return name


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ClassroomStore:
    """All rooms of one app, in one SQLite file (a connection per call: safe from any thread)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
        finally:
            db.close()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=NORMAL")  # with WAL: safe across app crashes, one fsync per checkpoint
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the lock up front, so concurrent writers queue instead of failing."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def _read(self, sql: str, *args: object) -> list[tuple]:
        db = self._connect()
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def create_room(self, deck: str, model: str) -> tuple[str, str]:
        """A new open room; returns (join code, teacher key). The key is shown once and stored hashed."""
        key = secrets.token_urlsafe(18)
        with self._write() as db:
            while True:
                code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
                if not db.execute("SELECT 1 FROM rooms WHERE code = ?", (code,)).fetchone():
                    break
            db.execute("INSERT INTO rooms VALUES (?, ?, ?, ?, ?, 0)", (code, deck, model, hash_key(key), time.time()))
        return code, key

    def room(self, code: str) -> Room:
        """The room behind a join code, or :class:`RoomError`."""
        rows = self._read("SELECT code, deck, model, closed FROM rooms WHERE code = ?", normalise_code(code))
        if not rows:
            raise RoomError("No room has this code. Check the code on the board (letters and digits).")
        code, deck, model, closed = rows[0]
        return Room(code, deck, model, bool(closed))

    def check_teacher(self, code: str, key: str) -> Room:
        """The room, if ``key`` is its teacher key; otherwise :class:`TeacherKeyError` (same message either way)."""
        rows = self._read("SELECT teacher_hash FROM rooms WHERE code = ?", normalise_code(code))
        if not rows or not hmac.compare_digest(rows[0][0], hash_key(str(key or "").strip())):
            raise TeacherKeyError("This room code and teacher key do not match.")
        return self.room(code)

    def join(self, code: str, nickname: str) -> tuple[Room, str]:
        """Add a student; returns the room and the student's private token."""
        room, name = self.room(code), clean_nickname(nickname)
        if room.closed:
            raise RoomError("This room is closed: the teacher is not taking answers any more.")
        token = secrets.token_urlsafe(12)
        with self._write() as db:
            taken = db.execute("SELECT 1 FROM students WHERE room = ? AND nickname = ? COLLATE NOCASE",
                               (room.code, name)).fetchone()
            if taken:
                raise RoomError(f"Someone in this room is already called {name!r}: choose another nickname.")
            db.execute("INSERT INTO students VALUES (?, ?, ?, ?)", (room.code, token, name, time.time()))
        return room, token

    def nickname(self, code: str, token: str) -> str:
        """The nickname of a student, or :class:`RoomError` for a token that is not in this room."""
        rows = self._read("SELECT nickname FROM students WHERE room = ? AND token = ?", normalise_code(code), token)
        if not rows:
            raise RoomError("You are not in this room any more: join again with the code.")
        return rows[0][0]

    def record(self, code: str, token: str, item: str, guess: str, correct: bool) -> tuple[str, bool]:
        """Store a student's answer; the first answer per item counts. Returns the stored (guess, correct)."""
        self.nickname(code, token)
        with self._write() as db:
            closed = db.execute("SELECT closed FROM rooms WHERE code = ?", (normalise_code(code),)).fetchone()
            if closed is None or closed[0]:
                raise RoomError("This room is closed: the teacher is not taking answers any more.")
            db.execute("INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
                       (normalise_code(code), token, item, guess, int(correct), time.time()))
            stored = db.execute("SELECT guess, correct FROM answers WHERE room = ? AND token = ? AND item = ?",
                                (normalise_code(code), token, item)).fetchone()
        return stored[0], bool(stored[1])

    def leaderboard(self, code: str) -> list[tuple[str, int, int]]:
        """(nickname, right, answered) for every student, best first (ties: fewer answers, then name)."""
        return self._read(
            "SELECT s.nickname, COALESCE(SUM(a.correct), 0), COUNT(a.item) FROM students s "
            "LEFT JOIN answers a ON a.room = s.room AND a.token = s.token WHERE s.room = ? "
            "GROUP BY s.token ORDER BY 2 DESC, 3 ASC, 1 COLLATE NOCASE", normalise_code(code))

    def item_stats(self, code: str, key: str) -> dict[str, ItemStat]:
        """Per item: how many answered and how many were fooled (teacher key required)."""
        room = self.check_teacher(code, key)
        rows = self._read("SELECT item, COUNT(*), SUM(1 - correct) FROM answers WHERE room = ? GROUP BY item",
                          room.code)
        return {item: ItemStat(item, answered, fooled) for item, answered, fooled in rows}

    def answers(self, code: str, key: str) -> list[tuple[str, str, str, bool, float]]:
        """Every answer (nickname, item, guess, correct, unix time), oldest first (teacher key required)."""
        room = self.check_teacher(code, key)
        rows = self._read("SELECT s.nickname, a.item, a.guess, a.correct, a.answered FROM answers a "
                          "JOIN students s ON s.room = a.room AND s.token = a.token WHERE a.room = ? "
                          "ORDER BY a.answered, s.nickname", room.code)
        return [(name, item, guess, bool(correct), when) for name, item, guess, correct, when in rows]

    def close_room(self, code: str, key: str) -> None:
        """Stop taking answers (teacher key required); the results stay readable."""
        room = self.check_teacher(code, key)
        with self._write() as db:
            db.execute("UPDATE rooms SET closed = 1 WHERE code = ?", (room.code,))
