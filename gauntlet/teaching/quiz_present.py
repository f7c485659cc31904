"""Words and charts for the quiz and the classroom: reveals, scores, leaderboards, the teacher's view.

Text typed by students (nicknames) is escaped before it reaches Markdown, so it can
never become a link, an image or HTML; deck text (lessons) is the teacher's Markdown.
"""
from __future__ import annotations

import html
import io
import math

import segno
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from ..detector import Prediction
from ..explain import method_title
from ..present import verdict_sentence, verdict_short
from ..stats import wilson_interval
from .class_report import PHASE_WORDS, ClassReport, ItemReport, StudentReport, Tally
from .classroom import Room
from .decks import Deck, DeckItem
from .quiz import Outcome, RoomStep, Shown, Summary

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


def reveal_markdown(outcome: Outcome, distribution: dict[str, int] | None = None) -> str:
    """Right or wrong, the truth and its source, the model's verdict, the lesson and its artifact kinds, and
    (teacher-paced) how the class answered."""
    item = outcome.item
    if outcome.guess:
        mark = "✅ **Right!**" if outcome.correct else "❌ **Fooled!**"
        head = f"{mark} You said *{GUESS_WORDS[outcome.guess]}*;"
    else:
        head = "⏱ You did not answer this one in time;"
    method = method_title(outcome.method)
    kinds = f" (artifacts: {', '.join(item.artifact_kinds)})" if item.artifact_kinds else ""
    text = (f"{head} this image is **{TRUTH_WORDS[item.truth]}** (source: {item.source}).\n\n"
            f"{verdict_sentence(outcome.prediction)} {model_outcome(outcome.prediction, item.truth)} "
            f"The {method} heatmap shows where it looked.\n\n**What to look for{kinds}:** {item.lesson}")
    return text + (f"\n\n{distribution_text(distribution)}" if distribution is not None else "")


def distribution_text(distribution: dict[str, int]) -> str:
    """The class's answers on one image: how many said real and how many said AI."""
    total = distribution.get("REAL", 0) + distribution.get("FAKE", 0)
    if not total:
        return "**The class:** nobody answered this one."
    return (f"**The class:** {distribution.get('REAL', 0)} said *Real* ({distribution.get('REAL', 0) / total:.0%}), "
            f"{distribution.get('FAKE', 0)} said *AI* ({distribution.get('FAKE', 0) / total:.0%}).")


def room_status(step: RoomStep) -> str:
    """The line above a room's image: where the student is, the phase, and what happens next."""
    if step.state == "done":
        return f"**{step.shown.deck_title}**: finished! Here is how you did."
    where = f"**{step.shown.deck_title}** · {PHASE_WORDS[step.phase]} · image {step.shown.position} of " \
            f"{step.shown.total}."
    if step.state == "waiting":
        then = "reveal it" if step.phase == "lesson" else "move on"
        return f"{where} ✔ Answer recorded: wait for your teacher to {then}."
    if step.state == "revealed":
        return f"{where} Revealed:"
    test = " (a test: no answer is shown, just your best guess)" if step.phase != "lesson" else ""
    return f"{where} Is it a real photo (or human-made), or made by AI?{test}"


def tally_text(tally: Tally) -> str:
    """False alarms on real images apart from missed AI images, and the artifact kinds that fooled."""
    parts = [f"{tally.false_alarms} of {tally.real_answered} real image(s) called AI (false alarms)",
             f"{tally.misses} of {tally.fake_answered} AI image(s) called real (missed)"]
    kinds = ", ".join(f"{kind} {count}" for kind, count in tally.fooled_by.most_common())
    return "; ".join(parts) + (f". Missed AI images by artifact kind: {kinds}." if kinds else ".")


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
    lines = [f"### You: {you} / {summary.total} right · the model: {model} / {summary.total}", verdict,
             tally_text(summary.lesson)]
    if summary.model_not_sure:
        lines.append(f"The model was **not sure** on {summary.model_not_sure} of these images: there its score "
                     "counts by the side it leaned towards.")
    tests = {phase: tally for phase, tally in summary.tests.items() if tally.answered}
    if tests:
        lines.append(" · ".join(f"{PHASE_WORDS[phase].capitalize()}: {tally.right} / {tally.answered} right"
                                for phase, tally in tests.items()))
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


def room_state_text(room: Room) -> str:
    """Open, closed or expired, and how it is paced."""
    state = "closed: no more answers" if room.closed else "expired: no more answers" if room.expired else "open"
    pacing = "teacher-paced" if room.paced else "self-paced"
    tests = f", {room.test_items} pre- and post-test images" if room.test_items else ""
    return f"**Room {room.code}** · deck `{room.deck}` · {pacing}{tests} · {state}"


def headline(report: ClassReport) -> str:
    """The class against the model on the same answers, in one line (with the class's 95 % interval)."""
    lesson = report.lesson
    if not lesson.answered:
        return "No lesson answers yet."
    low, high = wilson_interval(lesson.right, lesson.answered)
    return (f"### The class: {lesson.accuracy:.0%} right (95% interval {low:.0%} to {high:.0%}, "
            f"{lesson.answered} answers) · the model: {report.model_right_answers / lesson.answered:.0%} "
            "on the same images")


def gain_text(report: ClassReport) -> str:
    """The class's pre-to-post gain with its paired interval (or what is still missing)."""
    if not report.room.test_items:
        return ""
    gain = report.gain
    if gain is None:
        return "**Pre/post test:** no student has answered both tests yet."
    interval = ("needs two students for an interval" if math.isnan(gain.low) else
                f"95% interval {100 * gain.low:+.0f} to {100 * gain.high:+.0f} points, paired t")
    return (f"**Gain from pre- to post-test:** {100 * gain.mean:+.0f} points on average ({interval}; "
            f"{gain.n} student(s) with both tests).")


def kinds_table(report: ClassReport) -> str:
    """Which artifact kinds fooled the class, with false alarms on real images reported apart."""
    lesson = report.lesson
    lines = ["| What | Answers | Fooled |", "|---|---:|---:|",
             f"| real images called AI (false alarms) | {lesson.real_answered} | {lesson.false_alarms} |",
             f"| AI images called real (missed) | {lesson.fake_answered} | {lesson.misses} |"]
    lines += [f"| AI images with {kind} artifacts | {answered} | {fooled} |"
              for kind, (answered, fooled) in sorted(report.kinds.items())]
    return "\n".join(lines)


def _phase_cell(student: StudentReport, phase: str) -> str:
    tally = student.phases.get(phase)
    return f"{tally.right}/{tally.answered}" if tally and tally.answered else "–"


def students_table(report: ClassReport) -> str:
    """Per student (nicknames escaped): right per phase, false alarms, misses, what fooled them, gain."""
    tests = bool(report.room.test_items)
    head = "| Student | " + ("Pre | " if tests else "") + "Lesson | False alarms | Missed AI | Fooled by |" + \
        (" Post | Gain |" if tests else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for student in report.students:
        lesson = student.phases.get("lesson", Tally())
        fooled = ", ".join(f"{kind} {count}" for kind, count in lesson.fooled_by.most_common()) or "–"
        cells = [escape_markdown(student.nickname)] + ([_phase_cell(student, "pre")] if tests else [])
        cells += [_phase_cell(student, "lesson"), str(lesson.false_alarms), str(lesson.misses), fooled]
        if tests:
            gain = student.gain
            cells += [_phase_cell(student, "post"), "–" if gain is None else f"{100 * gain:+.0f} points"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def teacher_markdown(report: ClassReport) -> str:
    """The teacher's view: headline, gain, answers that followed a wrong model, the items, kinds and students."""
    lines = ["| Item | Truth | Artifacts | Answers | Fooled | Model says | Model |", "|---|---|---|---:|---:|---|---|"]
    for item_report in report.items:
        prediction = item_report.prediction
        right = "right" if item_report.model_right else "wrong"
        lines.append(f"| {item_report.item.id} | {item_report.item.truth} | {', '.join(item_report.item.artifacts)} | "
                     f"{item_report.stat.answered} | {item_report.stat.fooled_share:.0%} | "
                     f"{verdict_short(prediction)} | {right if prediction.sure else f'no verdict (lean {right})'} |")
    followed = (f"Where the model was wrong, **{report.followed_wrong_model} of {report.answers_on_wrong_model}** "
                "answers agreed with it." if report.answers_on_wrong_model else "")
    parts = [room_state_text(report.room), headline(report), gain_text(report), followed, "\n".join(lines),
             "#### What fooled the class", kinds_table(report), "#### Students", students_table(report)]
    return "\n\n".join(part for part in parts if part)


def item_caption(report: ItemReport) -> str:
    """The numbers beside an item's thumbnail in the teacher's view."""
    model = "model right" if report.model_right else "model WRONG"
    stat = report.stat
    said_ai = f", {stat.said_fake / stat.answered:.0%} said AI" if stat.answered else ""
    return (f"{report.item.id} · {report.item.truth} · {stat.answered} answers{said_ai}, "
            f"{stat.fooled_share:.0%} fooled · {model}")


def presenter_markdown(room: Room, link: str, students: int, answers: int) -> str:
    """The projector's view: the code in large type, the join link and live counts."""
    spaced = " ".join(room.code)
    return (f"<div style='text-align:center'><div style='font-size:1.4em'>Join at <b>{html.escape(link)}</b></div>"
            f"<div style='font-size:5em;font-weight:700;letter-spacing:0.1em;font-family:monospace'>{spaced}</div>"
            f"<div style='font-size:1.6em'>{students} student(s) joined · {answers} answer(s)</div></div>")


def join_qr(link: str) -> Image.Image:
    """The join link as a QR code image (large modules, readable from the back of a classroom)."""
    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind="png", scale=10, border=2)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


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
