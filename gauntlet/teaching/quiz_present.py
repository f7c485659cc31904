"""Words and charts for the quiz and the classroom: reveals, scores, leaderboards, the teacher's view.

Text typed by students (nicknames) is escaped before it reaches Markdown, so it can
never become a link, an image or HTML; deck text (lessons) is the teacher's Markdown.
"""
from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from ..detector import Prediction
from ..explain import method_title
from ..present import verdict_sentence, verdict_short
from .classroom import Room
from .decks import Deck, DeckItem
from .quiz import ItemReport, Outcome, Shown, Summary

TRUTH_WORDS = {"REAL": "real (a photo or human-made)", "FAKE": "AI-generated"}
GUESS_WORDS = {"REAL": "Real", "FAKE": "AI"}
MARKDOWN_SPECIALS = set("\\`*_{}[]()#+-.!|~")
HTML_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def escape_markdown(text: str) -> str:
    """Show ``text`` literally in Markdown: punctuation backslash-escaped, HTML characters as entities."""
    return "".join(HTML_ENTITIES.get(c) or (f"\\{c}" if c in MARKDOWN_SPECIALS else c) for c in str(text))


def position_text(shown: Shown) -> str:
    if shown.done:
        return f"**{shown.deck_title}**: finished! Here is how you did."
    return (f"**{shown.deck_title}** · image {shown.position} of {shown.total}. "
            "Is it a real photo (or human-made), or made by AI?")


def reveal_markdown(outcome: Outcome) -> str:
    """Right or wrong, the truth and its source, the model's verdict, and the lesson."""
    item = outcome.item
    head = "✅ **Right!**" if outcome.correct else "❌ **Fooled!**"
    method = method_title(outcome.method)
    return (f"{head} You said *{GUESS_WORDS[outcome.guess]}*; this image is **{TRUTH_WORDS[item.truth]}** "
            f"(source: {item.source}).\n\n"
            f"{verdict_sentence(outcome.prediction)} {model_outcome(outcome.prediction, item.truth)} "
            f"The {method} heatmap shows where it looked.\n\n**What to look for:** {item.lesson}")


def model_outcome(prediction: Prediction, truth: str) -> str:
    """Whether the model was right; for a "not sure" verdict, that it gave none and where its lean pointed."""
    lean = "right" if prediction.predicted_label == truth else "wrong"
    if not prediction.sure:
        return f"The model gave **no verdict** (its lean was {lean})."
    return f"The model was **{lean}**."


def summary_markdown(summary: Summary) -> str:
    """The player's score against the model's on the same images."""
    if not summary.total:
        return "You have not answered any image yet."
    you, model = summary.player_right, summary.model_right
    verdict = "You beat the model!" if you > model else "A tie with the model." if you == model else \
        "The model did better this time: the heatmaps show what it picks up on."
    lines = [f"### You: {you} / {summary.total} right · the model: {model} / {summary.total}", verdict]
    if summary.model_not_sure:
        lines.append(f"The model was **not sure** on {summary.model_not_sure} of these images: there its score "
                     "counts by the side it leaned towards.")
    if summary.missed:
        lines.append(f"Below: the {len(summary.missed)} image(s) that fooled you, with what to look for.")
    return "\n\n".join(lines)


def review_caption(item: DeckItem, guess: str) -> str:
    return f"You said {GUESS_WORDS[guess]}; it is {TRUTH_WORDS[item.truth]}. {item.lesson}"


def unavailable_markdown(decks: list[Deck]) -> str:
    """Why some decks cannot be played (empty when all can)."""
    return "\n".join(f"- **{deck.title}** is unavailable: {deck.problem}" for deck in decks)


def leaderboard_markdown(rows: list[tuple[str, int, int]], room: Room) -> str:
    """The room's ranking (nicknames escaped)."""
    state = " (closed)" if room.closed else ""
    if not rows:
        return f"**Room {room.code}{state}**: nobody has joined yet."
    lines = [f"**Room {room.code}{state}: leaderboard**", "", "| # | Nickname | Right | Answered |",
             "|---:|---|---:|---:|"]
    lines += [f"| {rank} | {escape_markdown(name)} | {right} | {answered} |"
              for rank, (name, right, answered) in enumerate(rows, start=1)]
    return "\n".join(lines)


def teacher_markdown(room: Room, reports: list[ItemReport]) -> str:
    """Per item: how many were fooled next to the model's verdict, the starting point for discussion."""
    lines = ["| Item | Truth | Answers | Fooled | Model says | Model |", "|---|---|---:|---:|---|---|"]
    for report in reports:
        right = "right" if report.model_right else "wrong"
        lines.append(f"| {report.item.id} | {report.item.truth} | {report.stat.answered} | "
                     f"{report.stat.fooled_share:.0%} | {verdict_short(report.prediction)} | "
                     f"{right if report.prediction.sure else f'no verdict (lean {right})'} |")
    state = "closed: no more answers" if room.closed else "open"
    return f"**Room {room.code}** · deck `{room.deck}` · {state}\n\n" + "\n".join(lines)


def fooled_chart(reports: list[ItemReport]) -> Image.Image:
    """Bars: share of the class fooled per item; solid green where the model was right, hatched red where not."""
    figure = Figure(figsize=(7, 0.35 * len(reports) + 1.4), dpi=100)
    axes = figure.add_subplot()
    rows = list(reversed(reports))
    for right, style in ((True, {"color": "#2e7d32", "label": "model right"}),
                         (False, {"color": "#c62828", "hatch": "//", "label": "model wrong"})):
        chosen = [(y, r) for y, r in enumerate(rows) if r.model_right == right]
        axes.barh([y for y, _ in chosen], [100 * r.stat.fooled_share for _, r in chosen], **style)
    axes.set_yticks(range(len(rows)), [r.item.id for r in rows])
    axes.set_xlim(0, 100)
    axes.set_xlabel("% of the class fooled")
    axes.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    figure.tight_layout()
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
