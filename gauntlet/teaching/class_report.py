"""What a room's answers say: each student's sequence, tallies by phase and artifact kind, the class's report.

Self-paced students each get their own random order; with a pre/post test, each student's
pre-test comes from one of the deck's two test pools and their post-test from the other,
chosen at random per student (so a harder pool does not pass for learning), both balanced
between real and AI images. The class's gain is the mean of each student's post-test minus
pre-test accuracy, with a paired t 95 % interval (:func:`gauntlet.stats.paired_mean_interval`).
"""
from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field

from ..detector import Prediction
from ..errors import UserError
from ..stats import paired_mean_interval
from .classroom import ItemStat, Room, Sequence
from .decks import Deck, DeckItem

PHASE_WORDS = {"pre": "pre-test", "lesson": "lesson", "post": "post-test"}


def balanced_sample(pool: tuple[DeckItem, ...], n: int, rng: random.Random) -> list[DeckItem]:
    """``n`` items of ``pool`` in random order, half real and half AI where the pool allows it."""
    by_truth = {truth: [item for item in pool if item.truth == truth] for truth in ("REAL", "FAKE")}
    want_real = min(len(by_truth["REAL"]), max(n - len(by_truth["FAKE"]), n // 2 + (n % 2) * rng.randint(0, 1)))
    picked = rng.sample(by_truth["REAL"], want_real) + rng.sample(by_truth["FAKE"], n - want_real)
    rng.shuffle(picked)
    return picked


def plan_sequence(deck: Deck, test_items: int, rng: random.Random) -> Sequence:
    """A random order of the deck's items, with ``test_items`` pre- and post-test items from disjoint pools."""
    if test_items and not deck.test_pools:
        raise UserError(f"The deck {deck.title!r} has no test pools: choose 0 pre/post-test images or another deck.")
    if test_items and deck.pools_problem:
        raise UserError(f"The test images of {deck.title!r} are unavailable: {deck.pools_problem}.")
    if test_items > deck.pool_size:
        raise UserError(f"The deck {deck.title!r} has {deck.pool_size} test images per phase; ask for at most that "
                         "many pre/post-test items.")
    lesson = list(deck.items)
    rng.shuffle(lesson)
    sequence = [(item.id, "lesson") for item in lesson]
    if not test_items:
        return sequence
    pre_pool, post_pool = rng.sample(list(deck.test_pools), 2)
    return ([(item.id, "pre") for item in balanced_sample(pre_pool, test_items, rng)] + sequence
            + [(item.id, "post") for item in balanced_sample(post_pool, test_items, rng)])


@dataclass
class Tally:
    """Answers on a set of items: right, false alarms on real images, missed AI images, and what fooled."""

    right: int = 0
    answered: int = 0
    real_answered: int = 0
    false_alarms: int = 0  # real images called AI
    fake_answered: int = 0
    misses: int = 0  # AI images called real
    fooled_by: Counter = field(default_factory=Counter)  # artifact kind -> AI images of that kind called real

    def add(self, item: DeckItem, guess: str) -> None:
        correct = guess == item.truth
        self.right += correct
        self.answered += 1
        if item.truth == "REAL":
            self.real_answered += 1
            self.false_alarms += not correct
        else:
            self.fake_answered += 1
            self.misses += not correct
            if not correct:
                self.fooled_by.update(item.artifact_kinds)

    @property
    def accuracy(self) -> float:
        return self.right / self.answered if self.answered else math.nan


def tally(deck: Deck, answers: list[tuple[str, str]]) -> Tally:
    """The tally of (item id, guess) pairs."""
    result = Tally()
    for item_id, guess in answers:
        result.add(deck.item(item_id), guess)
    return result


@dataclass
class ItemReport:
    """One row of the teacher's view: how the class did next to how the model did."""

    item: DeckItem
    stat: ItemStat
    prediction: Prediction

    @property
    def model_right(self) -> bool:
        return self.prediction.predicted_label == self.item.truth


@dataclass
class StudentReport:
    """One student's tallies per phase (``pre``, ``lesson``, ``post``)."""

    nickname: str
    phases: dict[str, Tally]

    @property
    def gain(self) -> float | None:
        """Post-test minus pre-test accuracy; ``None`` until the student has answered in both."""
        pre, post = self.phases.get("pre"), self.phases.get("post")
        return post.accuracy - pre.accuracy if pre and post and pre.answered and post.answered else None


@dataclass
class Gain:
    """The class's mean pre-to-post gain with its paired 95 % interval, over ``n`` students with both tests."""

    mean: float
    low: float
    high: float
    n: int


@dataclass
class ClassReport:
    """Everything the teacher view shows about a room."""

    room: Room
    items: list[ItemReport]
    students: list[StudentReport]
    lesson: Tally
    model_right_answers: int  # lesson answers on items the model gets right: the model on the same images
    followed_wrong_model: int  # answers that agreed with the model where the model was wrong
    answers_on_wrong_model: int
    kinds: dict[str, tuple[int, int]]  # artifact kind -> (answers on AI images of that kind, fooled)
    gain: Gain | None


def _kinds(deck: Deck, lesson_answers: list[tuple[str, str]]) -> dict[str, tuple[int, int]]:
    answered, fooled = Counter(), Counter()
    for item_id, guess in lesson_answers:
        item = deck.item(item_id)
        answered.update(item.artifact_kinds)
        if guess != item.truth:
            fooled.update(item.artifact_kinds)
    return {kind: (answered[kind], fooled[kind]) for kind in answered}


def _item_stats(lesson_answers: list[tuple[str, str]], deck: Deck) -> dict[str, ItemStat]:
    counts: dict[str, list[int]] = {}
    for item_id, guess in lesson_answers:
        answered, fooled, fake = counts.setdefault(item_id, [0, 0, 0])
        counts[item_id] = [answered + 1, fooled + (guess != deck.item(item_id).truth), fake + (guess == "FAKE")]
    return {item_id: ItemStat(item_id, *numbers) for item_id, numbers in counts.items()}


def class_report(room: Room, deck: Deck, answers: list[tuple[str, str, str, str]], nicknames: list[str],
                 verdicts: dict[str, Prediction]) -> ClassReport:
    """The teacher's report. ``answers``: (nickname, item id, guess, phase) rows; ``nicknames``: every student,
    answered or not; ``verdicts``: the model's verdict on each lesson item."""
    lesson_answers = [(item_id, guess) for _, item_id, guess, phase in answers if phase == "lesson"]
    stats = _item_stats(lesson_answers, deck)
    items = [ItemReport(item, stats.get(item.id, ItemStat(item.id, 0, 0)), verdicts[item.id]) for item in deck.items]
    students = {name: StudentReport(name, {}) for name in nicknames}
    for name, item_id, guess, phase in answers:
        students[name].phases.setdefault(phase, Tally()).add(deck.item(item_id), guess)
    model_label = {item_id: verdict.predicted_label for item_id, verdict in verdicts.items()}
    on_wrong = [(item_id, guess) for item_id, guess in lesson_answers
                if model_label[item_id] != deck.item(item_id).truth]
    gains = [student.gain for student in students.values() if student.gain is not None]
    return ClassReport(room, items, list(students.values()), tally(deck, lesson_answers),
                       sum(model_label[item_id] == deck.item(item_id).truth for item_id, _ in lesson_answers),
                       sum(guess == model_label[item_id] for item_id, guess in on_wrong), len(on_wrong),
                       _kinds(deck, lesson_answers), Gain(*paired_mean_interval(gains), len(gains)) if gains else None)
