"""'Spot the fake': quiz sessions over decks, solo or in a classroom room (no gradio here).

A player's :class:`Progress` is plain JSON that the app keeps in the browser so a refresh
loses nothing; it holds the deck, the model and the guesses already revealed, never a
truth. The truth of an item is looked up on the server only when the guess arrives, and
in a room the first answer stored in SQLite is the one that counts. The model's verdict
and heatmap come from the :class:`~gauntlet.teaching.reveal_cache.RevealCache`:
``python -m gauntlet.quiz precompute`` fills it ahead, so the reveal is instant.
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
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
from .classroom import ClassroomStore, ItemStat, Room
from .decks import Deck, DeckItem, display_image, item_image, load_decks
from .reveal_cache import RevealCache

GUESSES = ("REAL", "FAKE")
DEFAULT_METHOD = default_method()  # the method registry's first default one


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
                       str(data.get("student", "")))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class Shown:
    """What the player may see before guessing: the picture and where they are in the deck."""

    image: Image.Image | None
    position: int
    total: int
    deck_title: str

    @property
    def done(self) -> bool:
        return self.image is None


@dataclass
class Outcome:
    """Everything revealed after a guess."""

    item: DeckItem
    guess: str
    correct: bool
    prediction: Prediction
    heatmap: Image.Image
    method: str


@dataclass
class Summary:
    """End of a deck: the player against the model on the same items, and the items the player missed."""

    total: int
    player_right: int
    model_right: int  # by the model's predicted class, also where it was not sure (its lean)
    missed: list[tuple[DeckItem, str]]
    model_not_sure: int = 0  # items where the model gave no confident verdict


@dataclass
class ItemReport:
    """One row of the teacher's view: how the class did next to how the model did."""

    item: DeckItem
    stat: ItemStat
    prediction: Prediction

    @property
    def model_right(self) -> bool:
        return self.prediction.predicted_label == self.item.truth


def next_item(deck: Deck, progress: Progress) -> DeckItem | None:
    """The item to show next, after checking the saved answers follow the deck; ``None`` at the end."""
    answered = [item_id for item_id, _ in progress.answers]
    if answered != [item.id for item in deck.items[:len(answered)]]:
        raise UserError("Your saved progress does not match this deck (it may have changed): press Start again.")
    return deck.items[len(answered)] if len(answered) < len(deck.items) else None


def score(deck: Deck, progress: Progress, verdicts: dict[str, Prediction]) -> Summary:
    """The player's and the model's number right over the answered items, and what the player missed."""
    player_right, model_right, not_sure, missed = 0, 0, 0, []
    for item_id, guess in progress.answers:
        item = deck.item(item_id)
        player_right += guess == item.truth
        model_right += verdicts[item_id].predicted_label == item.truth
        not_sure += not verdicts[item_id].sure
        if guess != item.truth:
            missed.append((item, guess))
    return Summary(len(progress.answers), player_right, model_right, missed, not_sure)


class Quiz:
    """Decks, the reveal cache and the classroom store, behind the calls the quiz and classroom tabs make."""

    def __init__(self, catalog: ModelCatalog, decks: list[Deck], cache: RevealCache,
                 store: ClassroomStore) -> None:
        self.catalog, self.cache, self.store = catalog, cache, store
        self.decks = {deck.id: deck for deck in decks}

    @classmethod
    def from_settings(cls, catalog: ModelCatalog, settings: Settings, decks_dir: Path | None = None) -> "Quiz":
        """The quiz as configured: decks from ``decks_dir`` (default ``settings.quiz_dir``), the rest from settings."""
        decks = load_decks(decks_dir or settings.quiz_dir, settings.data_dir, settings.hub_offline)
        return cls(catalog, decks, RevealCache(catalog, settings.cache_dir), ClassroomStore(settings.classroom_db))

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
        image = display_image(item_image(item), item)
        return Shown(image, position + 1, len(deck.items), deck.title)

    def guess(self, progress: Progress, guess: str, method: str = DEFAULT_METHOD) -> tuple[Progress, Outcome]:
        """Record a guess on the current item and reveal it (in a room, the first stored answer counts)."""
        guess = check_guess(guess)
        item = next_item(self.deck(progress.deck), progress)
        if item is None:
            raise UserError("This deck is finished: press Start to play again.")
        correct = guess == item.truth
        if progress.room:
            if self.store.room(progress.room).deck != progress.deck:
                raise UserError("This game does not belong to your room: join the room again.")
            guess, correct = self.store.record(progress.room, progress.student, item.id, guess, correct)
        progress = Progress(progress.deck, progress.model, progress.answers + [[item.id, guess]],
                            progress.room, progress.student)
        return progress, self.outcome(progress, method)

    def outcome(self, progress: Progress, method: str = DEFAULT_METHOD) -> Outcome:
        """The reveal of the last answered item (also used to switch the heatmap's method)."""
        if not progress.answers:
            raise UserError("Guess first: the answer is revealed after your guess.")
        item_id, guess = progress.answers[-1]
        item = self.deck(progress.deck).item(item_id)
        return Outcome(item, guess, guess == item.truth, self.cache.verdict(progress.model, item),
                       self.cache.heatmap(progress.model, item, method), method)

    def summary(self, progress: Progress) -> Summary:
        deck = self.deck(progress.deck)
        next_item(deck, progress)  # refuses answers that do not follow the deck
        verdicts = {item_id: self.cache.verdict(progress.model, deck.item(item_id)) for item_id, _ in progress.answers}
        return score(deck, progress, verdicts)

    def review_images(self, summary: Summary) -> list[tuple[Image.Image, DeckItem, str]]:
        """The pictures the player missed, with the item and their guess, for the end-of-deck review."""
        return [(display_image(item_image(item), item), item, guess)
                for item, guess in summary.missed]

    def create_room(self, deck_id: str, model_key: str | None) -> tuple[str, str]:
        """A classroom room for a deck: (join code for the class, private teacher key)."""
        return self.store.create_room(self.start(deck_id, model_key).deck, model_key)

    def join(self, code: str, nickname: str) -> Progress:
        """A student's progress in a room (their token stays in their own browser)."""
        self.deck(self.store.room(code).deck)
        room, token = self.store.join(code, nickname)
        return Progress(room.deck, room.model, [], room.code, token)

    def room(self, code: str) -> Room:
        return self.store.room(code)

    def leaderboard(self, code: str) -> list[tuple[str, int, int]]:
        return self.store.leaderboard(code)

    def teacher_report(self, code: str, key: str) -> tuple[Room, list[ItemReport]]:
        """Per item of the room's deck: the class's answers and the model's verdict (teacher key required)."""
        stats = self.store.item_stats(code, key)
        room = self.store.room(code)
        deck = self.deck(room.deck)
        return room, [ItemReport(item, stats.get(item.id, ItemStat(item.id, 0, 0)),
                                 self.cache.verdict(room.model, item)) for item in deck.items]

    def export_csv(self, code: str, key: str) -> Path:
        """Every answer of a room as CSV in a fresh temporary folder (teacher key required)."""
        room, reports = self.teacher_report(code, key)
        by_id = {report.item.id: report for report in reports}
        path = Path(tempfile.mkdtemp(prefix="gauntlet-room-")) / f"room-{room.code}-answers.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["nickname", "item", "guess", "truth", "correct", "model_verdict", "answered_utc"])
            for name, item_id, guess, correct, when in self.store.answers(code, key):
                report = by_id.get(item_id)
                writer.writerow([name, item_id, guess, report.item.truth if report else "", int(correct),
                                 report.prediction.predicted_label if report else "",
                                 datetime.fromtimestamp(when, timezone.utc).isoformat(timespec="seconds")])
        return path

    def close_room(self, code: str, key: str) -> None:
        self.store.close_room(code, key)


def precompute(quiz: Quiz, deck_ids: list[str], model_keys: list[str], methods: list[str]) -> int:
    """Fill the reveal cache for every (deck item, model, method); returns how many entries were computed."""
    jobs = [(model, item, method) for deck_id in deck_ids for item in quiz.deck(deck_id).items
            for model in model_keys for method in methods]
    computed = 0
    for model, item, method in tqdm(jobs, desc="quiz reveals", unit="item"):
        if not quiz.cache.cached(model, item, method):
            quiz.cache.prefetch(model, item, method).result()
            computed += 1
    return computed


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
