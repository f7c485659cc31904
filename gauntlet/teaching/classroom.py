"""Classroom rooms in SQLite: join codes, students, answers, leaderboard and the teacher's statistics.

A teacher creates a room for a deck and receives a short join code (for the class) and a
private teacher key (only its SHA-256 is stored). Students join with the code and a nickname
and get a random student token; each answer is stored once (the first one counts). The
database uses WAL mode and a busy timeout with ``BEGIN IMMEDIATE`` writes, so a whole class
answering at the same moment loses nothing, and it survives restarts of the app.

A room is self-paced (each student plays their own random order) or teacher-paced (the
teacher moves the whole class to the next item and reveals it; answers are taken only for
the current item before its reveal). Each student's or room's sequence of (item, phase) is
stored with it; phases are ``pre``, ``lesson`` and ``post``. Rooms expire after a set time
(no joins or answers; results stay readable until the teacher deletes the room). Databases
made by older versions are migrated in place (``PRAGMA user_version``).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
import time
import unicodedata
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from better_profanity import profanity

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
# Each entry brings a database from version ``index`` to ``index + 1`` (version 0: the first SCHEMA above).
MIGRATIONS = [
    ["ALTER TABLE rooms ADD COLUMN pacing TEXT NOT NULL DEFAULT 'self'",
     "ALTER TABLE rooms ADD COLUMN sequence TEXT NOT NULL DEFAULT '[]'",
     "ALTER TABLE rooms ADD COLUMN position INTEGER NOT NULL DEFAULT 0",
     "ALTER TABLE rooms ADD COLUMN revealed INTEGER NOT NULL DEFAULT 0",
     "ALTER TABLE rooms ADD COLUMN test_items INTEGER NOT NULL DEFAULT 0",
     "ALTER TABLE rooms ADD COLUMN expires REAL",
     "ALTER TABLE students ADD COLUMN sequence TEXT NOT NULL DEFAULT '[]'",
     "ALTER TABLE answers ADD COLUMN phase TEXT NOT NULL DEFAULT 'lesson'"],
]
PACINGS = ("self", "teacher")
PHASES = ("pre", "lesson", "post")
Sequence = list[tuple[str, str]]  # (item id, phase) in the order shown


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
    pacing: str = "self"
    test_items: int = 0
    position: int = 0
    revealed: bool = False
    expires: float | None = None
    sequence: tuple[tuple[str, str], ...] = ()

    @property
    def paced(self) -> bool:
        return self.pacing == "teacher"

    @property
    def expired(self) -> bool:
        return self.expires is not None and time.time() >= self.expires

    @property
    def current(self) -> tuple[str, str] | None:
        """A paced room's current (item, phase); ``None`` after the last item and in self-paced rooms."""
        return self.sequence[self.position] if self.paced and self.position < len(self.sequence) else None

    def refuse_answers(self) -> None:
        """:class:`RoomError` when the room takes no answers (closed or expired)."""
        if self.closed:
            raise RoomError("This room is closed: the teacher is not taking answers any more.")
        if self.expired:
            raise RoomError("This room has expired: ask your teacher for a new code.")


@dataclass(frozen=True)
class ItemStat:
    """How the class did on one item."""

    item: str
    answered: int
    fooled: int
    said_fake: int = 0

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
    if profanity.contains_profanity(name):  # shown on the projector: swear words and their leetspeak spellings
        raise RoomError("Please choose another nickname: this one will be on the class's screen.")
    return name


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class JoinLimiter:
    """Failed join attempts per client (its address) in a sliding window; over the limit, joining waits.

    Six-character codes from 32 symbols make guessing hopeless at this pace, while a class behind one
    school address still has room for typos. Kept in memory: a restart forgets it, which is harmless.
    """

    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures, self.window_s = max_failures, window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def check(self, client: str) -> None:
        """:class:`RoomError` saying how long to wait when ``client`` failed too often recently."""
        if self.max_failures <= 0:
            return
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            if len(times) >= self.max_failures:
                wait = max(1, round(times[0] + self.window_s - now))
                raise RoomError(f"Too many wrong room codes from this computer: wait {wait} seconds, then check "
                                "the code on the board and try again.")

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client, time.monotonic()).append(time.monotonic())


class ClassroomStore:
    """All rooms of one app, in one SQLite file (a connection per call: safe from any thread)."""

    def __init__(self, path: Path, room_ttl_s: float = 0.0) -> None:
        """``room_ttl_s``: rooms stop taking joins and answers this long after creation (0: never)."""
        self.path = Path(path)
        self.room_ttl_s = room_ttl_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            self._migrate(db)
        finally:
            db.close()

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Bring an older database up to date, one version at a time, each in its own transaction."""
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
            db.execute("BEGIN IMMEDIATE")
            if db.execute("PRAGMA user_version").fetchone()[0] >= number:  # another process got there first
                db.execute("ROLLBACK")
                continue
            for statement in statements:
                db.execute(statement)
            db.execute(f"PRAGMA user_version={number}")
            db.execute("COMMIT")

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

    def create_room(self, deck: str, model: str, pacing: str = "self", test_items: int = 0,
                    sequence: Sequence | None = None) -> tuple[str, str]:
        """A new open room; returns (join code, teacher key). The key is shown once and stored hashed.
        A teacher-paced room needs the class's ``sequence``; self-paced rooms give each student their own."""
        if pacing not in PACINGS:
            raise ValueError(f"pacing is one of {', '.join(PACINGS)}")
        key, now = secrets.token_urlsafe(18), time.time()
        expires = now + self.room_ttl_s if self.room_ttl_s > 0 else None
        with self._write() as db:
            while True:
                code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
                if not db.execute("SELECT 1 FROM rooms WHERE code = ?", (code,)).fetchone():
                    break
            db.execute("INSERT INTO rooms (code, deck, model, teacher_hash, created, closed, pacing, sequence, "
                       "test_items, expires) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
                       (code, deck, model, hash_key(key), now, pacing, json.dumps(sequence or []), test_items,
                        expires))
        return code, key

    def room(self, code: str) -> Room:
        """The room behind a join code, or :class:`RoomError`."""
        db = self._connect()
        try:
            return self._load_room(db, code)
        finally:
            db.close()

    @staticmethod
    def _load_room(db: sqlite3.Connection, code: str) -> Room:
        row = db.execute("SELECT code, deck, model, closed, pacing, test_items, position, revealed, expires, "
                         "sequence FROM rooms WHERE code = ?", (normalise_code(code),)).fetchone()
        if row is None:
            raise RoomError("No room has this code. Check the code on the board (letters and digits).")
        code, deck, model, closed, pacing, test_items, position, revealed, expires, sequence = row
        return Room(code, deck, model, bool(closed), pacing, test_items, position, bool(revealed), expires,
                    tuple((str(item), str(phase)) for item, phase in json.loads(sequence)))

    def check_teacher(self, code: str, key: str) -> Room:
        """The room, if ``key`` is its teacher key; otherwise :class:`TeacherKeyError` (same message either way)."""
        rows = self._read("SELECT teacher_hash FROM rooms WHERE code = ?", normalise_code(code))
        if not rows or not hmac.compare_digest(rows[0][0], hash_key(str(key or "").strip())):
            raise TeacherKeyError("This room code and teacher key do not match.")
        return self.room(code)

    def join(self, code: str, nickname: str, sequence: Sequence | None = None) -> tuple[Room, str]:
        """Add a student with their own ``sequence`` of (item, phase); returns the room and their private token."""
        room, name = self.room(code), clean_nickname(nickname)
        room.refuse_answers()
        token = secrets.token_urlsafe(12)
        with self._write() as db:
            taken = db.execute("SELECT 1 FROM students WHERE room = ? AND nickname = ? COLLATE NOCASE",
                               (room.code, name)).fetchone()
            if taken:
                raise RoomError(f"Someone in this room is already called {name!r}: choose another nickname.")
            db.execute("INSERT INTO students (room, token, nickname, joined, sequence) VALUES (?, ?, ?, ?, ?)",
                       (room.code, token, name, time.time(), json.dumps(sequence or [])))
        return room, token

    def nickname(self, code: str, token: str) -> str:
        """The nickname of a student, or :class:`RoomError` for a token that is not in this room."""
        return self._student(code, token)[0]

    def _student(self, code: str, token: str) -> tuple[str, str]:
        rows = self._read("SELECT nickname, sequence FROM students WHERE room = ? AND token = ?",
                          normalise_code(code), str(token or ""))
        if not rows:
            raise RoomError("You are not in this room any more: join again with the code.")
        return rows[0]

    def sequence(self, code: str, token: str) -> Sequence:
        """The student's own (item, phase) order (empty for students who joined before sequences existed)."""
        return [(str(item), str(phase)) for item, phase in json.loads(self._student(code, token)[1])]

    def student_answers(self, code: str, token: str) -> dict[str, str]:
        """The student's stored guesses by item: the server's record, whatever the browser holds."""
        self.nickname(code, token)
        return dict(self._read("SELECT item, guess FROM answers WHERE room = ? AND token = ?",
                               normalise_code(code), token))

    def record(self, code: str, token: str, item: str, guess: str, correct: bool,
               phase: str = "lesson") -> tuple[str, bool]:
        """Store a student's answer; the first answer per item counts. Returns the stored (guess, correct).
        In a teacher-paced room only the current item takes answers, and only until it is revealed."""
        self.nickname(code, token)
        with self._write() as db:  # the room is read inside the write lock: a reveal cannot slip in between
            room = self._load_room(db, code)
            room.refuse_answers()
            if room.paced and room.current != (item, phase):
                raise RoomError("The teacher has not opened this image for answers: wait for the next one.")
            if room.paced and room.revealed:
                raise RoomError("The answer to this image has been revealed: wait for the next one.")
            db.execute("INSERT OR IGNORE INTO answers (room, token, item, guess, correct, answered, phase) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (room.code, token, item, guess, int(correct), time.time(), phase))
            stored = db.execute("SELECT guess, correct FROM answers WHERE room = ? AND token = ? AND item = ?",
                                (room.code, token, item)).fetchone()
        return stored[0], bool(stored[1])

    def counts(self, code: str) -> tuple[int, int]:
        """(students joined, answers stored) in a room: the presenter view's live numbers."""
        code = normalise_code(code)
        students = self._read("SELECT COUNT(*) FROM students WHERE room = ?", code)[0][0]
        return students, self._read("SELECT COUNT(*) FROM answers WHERE room = ?", code)[0][0]

    def distribution(self, code: str, item: str) -> dict[str, int]:
        """How many said REAL and FAKE on one item (callers show it only after the reveal)."""
        rows = self._read("SELECT guess, COUNT(*) FROM answers WHERE room = ? AND item = ? GROUP BY guess",
                          normalise_code(code), item)
        return {"REAL": 0, "FAKE": 0, **dict(rows)}

    def advance(self, code: str, key: str) -> Room:
        """Teacher-paced: move the whole class to the next item (teacher key required)."""
        room = self._paced(code, key)
        with self._write() as db:
            db.execute("UPDATE rooms SET position = MIN(position + 1, ?), revealed = 0 WHERE code = ?",
                       (len(room.sequence), room.code))
        return self.room(room.code)

    def reveal(self, code: str, key: str) -> Room:
        """Teacher-paced: reveal the current item to the class; answers for it stop (teacher key required)."""
        room = self._paced(code, key)
        if room.current is None:
            raise RoomError("There is no image to reveal: the round is over.")
        with self._write() as db:
            db.execute("UPDATE rooms SET revealed = 1 WHERE code = ? AND position = ?", (room.code, room.position))
        return self.room(room.code)

    def _paced(self, code: str, key: str) -> Room:
        room = self.check_teacher(code, key)
        if not room.paced:
            raise RoomError("This room is self-paced: every student moves on by themselves.")
        return room

    def leaderboard(self, code: str) -> list[tuple[str, int, int]]:
        """(nickname, right, answered) for every student, best first (ties: fewer answers, then name)."""
        return self._read(
            "SELECT s.nickname, COALESCE(SUM(a.correct), 0), COUNT(a.item) FROM students s "
            "LEFT JOIN answers a ON a.room = s.room AND a.token = s.token WHERE s.room = ? "
            "GROUP BY s.token ORDER BY 2 DESC, 3 ASC, 1 COLLATE NOCASE", normalise_code(code))

    def answers(self, code: str, key: str) -> list[tuple[str, str, str, bool, float, str]]:
        """Every answer (nickname, item, guess, correct, unix time, phase), oldest first (teacher key required)."""
        room = self.check_teacher(code, key)
        rows = self._read("SELECT s.nickname, a.item, a.guess, a.correct, a.answered, a.phase FROM answers a "
                          "JOIN students s ON s.room = a.room AND s.token = a.token WHERE a.room = ? "
                          "ORDER BY a.answered, s.nickname", room.code)
        return [(name, item, guess, bool(correct), when, phase) for name, item, guess, correct, when, phase in rows]

    def close_room(self, code: str, key: str) -> None:
        """Stop taking answers (teacher key required); the results stay readable."""
        room = self.check_teacher(code, key)
        with self._write() as db:
            db.execute("UPDATE rooms SET closed = 1 WHERE code = ?", (room.code,))

    def delete_room(self, code: str, key: str) -> None:
        """Remove the room, its students and every answer (teacher key required); the code stops working."""
        room = self.check_teacher(code, key)
        with self._write() as db:
            for table, column in (("answers", "room"), ("students", "room"), ("rooms", "code")):
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", (room.code,))
