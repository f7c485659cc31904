"""'Spot the fake': quiz sessions over decks, solo or in a classroom room (no gradio here).

A player's :class:`Progress` is plain JSON that the app keeps in the browser so a refresh
loses nothing; it holds the deck, the model and the guesses already revealed, never a
truth. The truth of an item is looked up on the server only when the guess arrives, and
in a room the first answer stored in SQLite is the one that counts. The model's verdict
and heatmap come from the :class:`~gauntlet.teaching.reveal_cache.RevealCache`:
``python -m gauntlet.quiz precompute`` fills it ahead, so the reveal is instant.

In a room the server's record decides what a student sees (:meth:`Quiz.room_step`): the next
item of their own sequence (self-paced) or the room's current item (teacher-paced, revealed
only when the teacher says so); pre- and post-test answers are recorded without a reveal.
"""
from __future__ import annotations

import argparse
import csv
import logging
import random
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from ..detector import Prediction
from ..errors import UserError
from ..explain import METHODS, default_method
from ..service import ModelCatalog
from ..settings import Settings, get_settings
from .class_report import ClassReport, Tally, class_report, plan_sequence, tally
from .classroom import ClassroomStore, JoinLimiter, Room, RoomError
from .decks import Deck, DeckItem, display_image, item_image, load_decks
from .reveal_cache import RevealCache

GUESSES = ("REAL", "FAKE")
log = logging.getLogger(__name__)
DEFAULT_METHOD = default_method()  # the method registry's first default one
THUMBNAIL_SIDE = 96


def check_guess(guess: str) -> str:
    if guess not in GUESSES:
        raise UserError("A guess is REAL or FAKE.")
    return guess


@dataclass
class Progress:
    """Where a player is; safe to show them (it lives in their browser)."""

    deck: str
    model: str
    answers: list[list[str]] = field(default_factory=list)  # [item id, guess] of revealed items, in order
    room: str = ""
    student: str = ""
    showing: str = ""  # in a room: the item on the student's screen, so a guess never lands on another one

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> "Progress | None":
        """Rebuild progress saved in the browser; ``None`` for anything malformed (the player starts over)."""
        if not isinstance(data, dict):
            return None
        try:
            answers = [[str(item), check_guess(guess)] for item, guess in data.get("answers", [])]
            return cls(str(data["deck"]), str(data["model"]), answers, str(data.get("room", "")),
                       str(data.get("student", "")), str(data.get("showing", "")))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class Shown:
    """What the player may see before guessing: the picture and where they are in the deck."""

    image_file: str | None  # the picture, a file written once per item (see RevealCache.display_file)
    position: int
    total: int
    deck_title: str

    @property
    def done(self) -> bool:
        return self.image_file is None


@dataclass
class Outcome:
    """Everything revealed after a guess (``guess`` is '' for a student who did not answer before the reveal)."""

    item: DeckItem
    guess: str
    correct: bool
    prediction: Prediction
    heatmap_file: str
    method: str


@dataclass
class Summary:
    """End of a deck: the player against the model on the same items, the items the player missed, their
    false alarms and misses by artifact kind, and (in a pre/post room) the test tallies by phase."""

    total: int
    player_right: int
    model_right: int  # by the model's predicted class, also where it was not sure (its lean)
    missed: list[tuple[DeckItem, str]]
    model_not_sure: int = 0  # items where the model gave no confident verdict
    lesson: Tally = field(default_factory=Tally)
    tests: dict[str, Tally] = field(default_factory=dict)


def screen_key(item_id: str, state: str) -> list[str]:
    """What a student's screen shows, in two words (live views redraw only when it changes)."""
    return [item_id, state]


@dataclass
class RoomPlace:
    """Where a student is in a room: the ``index`` of ``total`` in their sequence, the item and its phase, and
    the state (guess, waiting for the teacher, revealed, done)."""

    room: Room
    deck: Deck
    index: int
    total: int
    item_id: str
    phase: str
    state: str
    guess: str = ""

    @property
    def key(self) -> list[str]:
        return screen_key(self.item_id, self.state)


@dataclass
class RoomStep:
    """What a student in a room sees now: ``state`` is guess, waiting (for the teacher), revealed or done."""

    shown: Shown
    item_id: str
    phase: str
    state: str
    outcome: Outcome | None = None
    distribution: dict[str, int] | None = None  # the class's answers, shown with a teacher-paced reveal
    paced: bool = False

    @property
    def key(self) -> list[str]:
        return screen_key(self.item_id, self.state)


def next_item(deck: Deck, progress: Progress) -> DeckItem | None:
    """The item to show next, after checking the saved answers follow the deck; ``None`` at the end."""
    answered = [item_id for item_id, _ in progress.answers]
    if answered != [item.id for item in deck.items[:len(answered)]]:
        raise UserError("Your saved progress does not match this deck (it may have changed): press Start again.")
    return deck.items[len(answered)] if len(answered) < len(deck.items) else None


def score(deck: Deck, answers: list[list[str]] | list[tuple[str, str]], verdicts: dict[str, Prediction],
          tests: dict[str, Tally] | None = None) -> Summary:
    """The player's and the model's number right over the answered (item id, guess) pairs, and what the
    player missed."""
    model_right, not_sure, missed = 0, 0, []
    for item_id, guess in answers:
        item = deck.item(item_id)
        model_right += verdicts[item_id].predicted_label == item.truth
        not_sure += not verdicts[item_id].sure
        if guess != item.truth:
            missed.append((item, guess))
    lesson = tally(deck, [(item_id, guess) for item_id, guess in answers])
    return Summary(lesson.answered, lesson.right, model_right, missed, not_sure, lesson, tests or {})


class Quiz:
    """Decks, the reveal cache and the classroom store, behind the calls the quiz and classroom tabs make."""

    def __init__(self, catalog: ModelCatalog, decks: list[Deck], cache: RevealCache,
                 store: ClassroomStore, limiter: JoinLimiter | None = None) -> None:
        self.catalog, self.cache, self.store = catalog, cache, store
        self.decks = {deck.id: deck for deck in decks}
        self.limiter = limiter or JoinLimiter(0, 0.0)
        self.rng = random.SystemRandom()  # orders students cannot predict from the solo quiz or each other
        self._thumbnails: dict[tuple[str, str], Image.Image] = {}

    @classmethod
    def from_settings(cls, catalog: ModelCatalog, settings: Settings, decks_dir: Path | None = None) -> "Quiz":
        """The quiz as configured: decks from ``decks_dir`` (default ``settings.quiz_dir``), the rest from settings."""
        decks = load_decks(decks_dir or settings.quiz_dir, settings.data_dir, settings.hub_offline)
        return cls(catalog, decks, RevealCache(catalog, settings.cache_dir),
                   ClassroomStore(settings.classroom_db, settings.room_ttl_hours * 3600),
                   JoinLimiter(settings.join_max_failures, settings.join_window_s))

    def deck_choices(self) -> list[tuple[str, str]]:
        """(label, id) of the decks that can be played."""
        return [(f"{d.title} ({len(d.items)} images)", d.id) for d in self.decks.values() if d.available]

    def unavailable(self) -> list[Deck]:
        return [deck for deck in self.decks.values() if not deck.available]

    def deck(self, deck_id: str) -> Deck:
        deck = self.decks.get(deck_id)
        if deck is None:
            raise UserError("Choose a quiz deck first.")
        if not deck.available:
            raise UserError(f"The deck {deck.title!r} is unavailable: {deck.problem}.")
        return deck

    def start(self, deck_id: str, model_key: str | None) -> Progress:
        """Fresh progress for a solo game."""
        if not model_key or model_key not in self.catalog.entries:
            raise UserError("No model is available for the quiz: add a checkpoint under checkpoints/.")
        return Progress(self.deck(deck_id).id, model_key)

    def show(self, progress: Progress, method: str = DEFAULT_METHOD) -> Shown:
        """The next picture (re-encoded, so no file name or metadata travels with it), reveal prepared ahead."""
        deck = self.deck(progress.deck)
        item = next_item(deck, progress)
        position = len(progress.answers)
        if item is None:
            return Shown(None, position, len(deck.items), deck.title)
        for upcoming in deck.items[position:position + 2]:
            self.cache.prefetch(progress.model, upcoming, method)
        return self._shown(deck, item, position + 1, len(deck.items))

    def _shown(self, deck: Deck, item: DeckItem, position: int, total: int) -> Shown:
        return Shown(self.cache.display_file(item), position, total, deck.title)

    def guess(self, progress: Progress, guess: str, method: str = DEFAULT_METHOD) -> tuple[Progress, Outcome]:
        """Record a solo guess on the current item and reveal it."""
        guess = check_guess(guess)
        if progress.room:
            raise UserError("This game belongs to a classroom room: answer in the Classroom tab.")
        item = next_item(self.deck(progress.deck), progress)
        if item is None:
            raise UserError("This deck is finished: press Start to play again.")
        progress = Progress(progress.deck, progress.model, progress.answers + [[item.id, guess]])
        return progress, self.outcome(progress, method)

    def outcome(self, progress: Progress, method: str = DEFAULT_METHOD) -> Outcome:
        """The reveal of the last answered item (also used to switch the heatmap's method)."""
        if not progress.answers:
            raise UserError("Guess first: the answer is revealed after your guess.")
        item_id, guess = progress.answers[-1]
        item = self.deck(progress.deck).item(item_id)
        return Outcome(item, guess, guess == item.truth, self.cache.verdict(progress.model, item),
                       self.cache.heatmap_file(progress.model, item, method), method)

    def summary(self, progress: Progress) -> Summary:
        deck = self.deck(progress.deck)
        next_item(deck, progress)  # refuses answers that do not follow the deck
        return self._score(deck, progress.model, progress.answers)

    def _score(self, deck: Deck, model: str, answers: list, tests: dict[str, Tally] | None = None) -> Summary:
        verdicts = {item_id: self.cache.verdict(model, deck.item(item_id)) for item_id, _ in answers}
        return score(deck, answers, verdicts, tests)

    def review_images(self, summary: Summary) -> list[tuple[str, DeckItem, str]]:
        """The pictures the player missed (files), with the item and their guess, for the end-of-deck review."""
        return [(self.cache.display_file(item), item, guess)
                for item, guess in summary.missed]

    def create_room(self, deck_id: str, model_key: str | None, pacing: str = "self",
                    test_items: int = 0) -> tuple[str, str]:
        """A classroom room for a deck: (join code for the class, private teacher key). ``pacing``: ``self`` or
        ``teacher``; ``test_items``: pre- and post-test items per student (0: no tests)."""
        deck = self.deck(self.start(deck_id, model_key).deck)
        test_items = int(test_items or 0)
        if test_items < 0:
            raise UserError("The number of pre/post-test images cannot be negative.")
        sequence = plan_sequence(deck, test_items, self.rng)  # checks the pools; the class's order when paced
        return self.store.create_room(deck.id, model_key, pacing, test_items, sequence)

    def join(self, code: str, nickname: str, client: str = "") -> Progress:
        """A student's progress in a room (their token stays in their own browser). Failed codes count against
        ``client`` (the caller's address): too many in a short time and joining waits."""
        self.limiter.check(client)
        try:
            room = self.store.room(code)
        except RoomError:
            self.limiter.failed(client)
            raise
        deck = self.deck(room.deck)
        room, token = self.store.join(code, nickname, [] if room.paced else plan_sequence(deck, room.test_items,
                                                                                          self.rng))
        return Progress(room.deck, room.model, [], room.code, token)

    def room(self, code: str) -> Room:
        return self.store.room(code)

    def leaderboard(self, code: str) -> list[tuple[str, int, int]]:
        return self.store.leaderboard(code)

    def _room_sequence(self, room: Room, deck: Deck, token: str) -> list[tuple[str, str]]:
        if room.paced:
            return list(room.sequence)
        return self.store.sequence(room.code, token) or [(item.id, "lesson") for item in deck.items]

    def room_place(self, progress: Progress) -> RoomPlace:
        """Where the student is, from the server's record (a refresh or a stale browser changes nothing); cheap
        (no image is read), so live views can check it often."""
        room = self.store.room(progress.room)
        deck = self.deck(room.deck)
        answers = self.store.student_answers(room.code, progress.student)
        sequence = self._room_sequence(room, deck, progress.student)
        if room.paced:
            index = room.position
        else:
            index = next((k for k, (item_id, _) in enumerate(sequence) if item_id not in answers), len(sequence))
        if index >= len(sequence):
            return RoomPlace(room, deck, index, len(sequence), "", "", "done")
        item_id, phase = sequence[index]
        guess = answers.get(item_id, "")
        state = "revealed" if room.paced and room.revealed else "waiting" if guess else "guess"
        return RoomPlace(room, deck, index, len(sequence), item_id, phase, state, guess)

    def room_step(self, progress: Progress, method: str = DEFAULT_METHOD) -> RoomStep:
        """What the student sees now: the image, and after a teacher's reveal the truth and the class's answers."""
        place = self.room_place(progress)
        room, deck = place.room, place.deck
        if place.state == "done":
            return RoomStep(Shown(None, place.total, place.total, deck.title), "", "", "done", paced=room.paced)
        item = deck.item(place.item_id)
        if place.phase == "lesson":
            self.cache.prefetch(room.model, item, method)
        shown = self._shown(deck, item, place.index + 1, place.total)
        if place.state != "revealed":
            return RoomStep(shown, item.id, place.phase, place.state, paced=room.paced)
        outcome = Outcome(item, place.guess, place.guess == item.truth, self.cache.verdict(room.model, item),
                          self.cache.heatmap_file(room.model, item, method), method)
        return RoomStep(shown, item.id, place.phase, "revealed", outcome, self.store.distribution(room.code, item.id),
                        paced=True)

    def room_guess(self, progress: Progress, guess: str, method: str = DEFAULT_METHOD) -> tuple[Progress, RoomStep]:
        """Record a student's answer on the item on their screen; lesson items of self-paced rooms are revealed
        at once, test items never, teacher-paced items when the teacher reveals them."""
        guess = check_guess(guess)
        room = self.store.room(progress.room)
        room.refuse_answers()
        step = self.room_step(progress, method)
        if step.state != "guess" or (progress.showing and progress.showing != step.item_id):
            raise RoomError("This image is no longer open for answers: here is where the room is now.")
        item = self.deck(room.deck).item(step.item_id)
        guess, correct = self.store.record(room.code, progress.student, item.id, guess, guess == item.truth,
                                           step.phase)
        progress = Progress(progress.deck, progress.model, progress.answers + [[item.id, guess]], progress.room,
                            progress.student, item.id)
        if step.phase == "lesson" and not room.paced:
            outcome = Outcome(item, guess, correct, self.cache.verdict(room.model, item),
                              self.cache.heatmap_file(room.model, item, method), method)
            return progress, RoomStep(step.shown, item.id, step.phase, "revealed", outcome)
        return progress, self.room_step(progress, method)

    def room_summary(self, progress: Progress) -> Summary:
        """The student's end-of-round summary: the lesson against the model, and their pre/post tests."""
        room = self.store.room(progress.room)
        deck = self.deck(room.deck)
        answers = self.store.student_answers(room.code, progress.student)
        sequence = [(item_id, phase) for item_id, phase in self._room_sequence(room, deck, progress.student)
                    if item_id in answers]
        tests = {phase: tally(deck, [(item_id, answers[item_id]) for item_id, p in sequence if p == phase])
                 for phase in ("pre", "post") if room.test_items}
        return self._score(deck, room.model, [(i, answers[i]) for i, p in sequence if p == "lesson"], tests)

    def teacher_report(self, code: str, key: str) -> ClassReport:
        """The class's answers per item, per student and per artifact kind, next to the model (teacher key)."""
        room = self.store.check_teacher(code, key)
        deck = self.deck(room.deck)
        known = {item.id for item in deck.items} | {item.id for pool in deck.test_pools for item in pool}
        answers = [(name, item_id, guess, phase) for name, item_id, guess, _, _, phase in self.store.answers(code, key)
                   if item_id in known]
        verdicts = {item.id: self.cache.verdict(room.model, item) for item in deck.items}
        nicknames = [name for name, _, _ in self.store.leaderboard(room.code)]
        return class_report(room, deck, answers, nicknames, verdicts)

    def thumbnail(self, deck_id: str, item: DeckItem) -> Image.Image:
        """A small picture of an item for the teacher's view (kept in memory once made)."""
        key = (deck_id, item.id)
        if key not in self._thumbnails:
            image = display_image(item_image(item), item)
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            self._thumbnails[key] = image
        return self._thumbnails[key]

    def export_csv(self, code: str, key: str) -> Path:
        """Every answer of a room, with its phase, as CSV in a fresh temporary folder (teacher key required)."""
        room = self.store.check_teacher(code, key)
        deck = self.deck(room.deck)
        path = Path(tempfile.mkdtemp(prefix="gauntlet-room-")) / f"room-{room.code}-answers.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["nickname", "item", "phase", "guess", "truth", "correct", "model_verdict", "artifacts",
                             "answered_utc"])
            for name, item_id, guess, correct, when, phase in self.store.answers(code, key):
                item = self._known_item(deck, item_id)
                writer.writerow([name, item_id, phase, guess, item.truth if item else "", int(correct),
                                 self.cache.verdict(room.model, item).predicted_label if item else "",
                                 ";".join(item.artifacts) if item else "",
                                 datetime.fromtimestamp(when, timezone.utc).isoformat(timespec="seconds")])
        return path

    @staticmethod
    def _known_item(deck: Deck, item_id: str) -> DeckItem | None:
        try:
            return deck.item(item_id)
        except KeyError:
            return None

    def close_room(self, code: str, key: str) -> None:
        self.store.close_room(code, key)


def precompute(quiz: Quiz, deck_ids: list[str], model_keys: list[str], methods: list[str],
               progress: bool = True) -> int:
    """Fill the reveal cache for every (deck item, model, method) and the verdict of every test-pool item (pre-
    and post-tests show no heatmap, but the teacher's report compares the class with the model); returns how many
    entries were computed. They are computed as background work (:meth:`RevealCache.fill`), so they wait for
    visitors' explanations and players' reveals rather than the other way round."""
    jobs = []
    for deck in map(quiz.deck, deck_ids):
        wanted = [*((item, method) for item in deck.items for method in methods),
                  *((item, None) for item in deck.pooled_items())]
        jobs += [(model, item, method) for model in model_keys for item, method in wanted]
    # gradio wraps tqdm for its progress bars; the app's warm-up (progress=False) must not create one off a request
    return sum(quiz.cache.fill(model, item, method)
               for model, item, method in (tqdm(jobs, desc="quiz reveals", unit="item") if progress else jobs))


def precompute_in_background(quiz: Quiz, model_keys: list[str], methods: list[str]) -> threading.Thread:
    """Start :func:`precompute` for every playable deck on a daemon thread (the app calls this at start-up, so
    the first players of a deck find its reveals ready); a failure is logged, never raised."""
    def run() -> None:
        try:
            count = precompute(quiz, [deck_id for _, deck_id in quiz.deck_choices()], model_keys, methods, False)
            log.info("Quiz reveals ready (%d computed now)", count)
        except Exception:  # noqa: BLE001 - a background warm-up must never take the app down
            log.exception("Precomputing quiz reveals failed; reveals are computed when players need them")

    thread = threading.Thread(target=run, name="quiz-precompute", daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    """``precompute``: model verdicts and heatmaps for the quiz decks, so reveals are instant."""
    parser = argparse.ArgumentParser(prog="python -m gauntlet.quiz", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    pre = commands.add_parser("precompute", help="compute verdicts and heatmaps for deck items ahead")
    pre.add_argument("--deck", action="append", help="deck id (repeatable; default: every available deck)")
    pre.add_argument("--model", action="append", help="model key (repeatable; default: the app's default model)")
    pre.add_argument("--method", action="append", choices=list(METHODS),
                     help=f"heatmap method (repeatable; default: {DEFAULT_METHOD})")
    pre.add_argument("--decks-dir", type=Path, default=None, help="default: GAUNTLET_QUIZ_DIR or quiz_data/")
    args = parser.parse_args(argv)
    settings = get_settings()
    catalog = ModelCatalog.from_settings(settings)
    quiz = Quiz.from_settings(catalog, settings, args.decks_dir)
    for deck in quiz.unavailable():
        print(f"skipping deck {deck.id}: {deck.problem}", file=sys.stderr)
    models = args.model or ([catalog.default_key] if catalog.default_key else [])
    if not models:
        print("error: no model: add a checkpoint under checkpoints/ or pass --model", file=sys.stderr)
        return 2
    decks = args.deck or [choice[1] for choice in quiz.deck_choices()]
    count = precompute(quiz, decks, models, args.method or [DEFAULT_METHOD])
    print(f"{count} reveals computed into {quiz.cache.root}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
