"""Classroom tab: students join a room with its code and play; the teacher runs the room and sees the class.

Students' progress (room code, their token) is in their own browser; what they see next comes from the
server's record, so a refresh loses nothing. The teacher key is returned only to the teacher who created
the room and is kept for the live view in server-side ``gr.State``, never in the browser's storage (school
computers are shared). A presenter view shows the join code, a join link (``?room=CODE`` opens this tab
with the code filled in) and its QR code. Live views refresh with ``gr.Timer``; a student's board is only
redrawn when the room has moved on. Handlers return ``{component: value}`` dicts.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import gradio as gr

from gauntlet.teaching.classroom import NICKNAME_MAX, RoomError, normalise_code
from gauntlet.errors import UserError
from gauntlet.explain import default_method
from gauntlet.teaching.quiz import Progress, Quiz, RoomStep
from gauntlet.teaching.quiz_present import (fooled_chart, item_caption, join_qr, leaderboard_markdown,
                                            presenter_markdown, reveal_markdown, room_status, teacher_markdown)
from .common import human_errors
from .game_board import PlayerHandlers, Updates, build_player

JOIN_TEXT = "Type the **room code** from the board and a **nickname**, then press **Join**."
STUDENT_REFRESH_S = 3.0
TEACHER_REFRESH_S = 5.0
TAB_ID = "classroom"
PACING_CHOICES = [("Self-paced: every student moves on by themselves", "self"),
                  ("Teacher-paced: you move the whole class and reveal each image", "teacher")]


def request_origin(request: gr.Request | None) -> str:
    """The app's address as the browser sees it (behind a proxy: its forwarded host and scheme)."""
    headers = {key.lower(): value for key, value in dict(getattr(request, "headers", None) or {}).items()}
    host = (headers.get("x-forwarded-host") or headers.get("host") or "localhost").split(",")[0].strip()
    scheme = headers.get("x-forwarded-proto", "http").split(",")[0].strip()
    return f"{scheme}://{host}"


def request_client(request: gr.Request | None) -> str:
    """Who is joining, for the failed-join limit: the address the nearest proxy saw, else the socket's."""
    headers = {key.lower(): value for key, value in dict(getattr(request, "headers", None) or {}).items()}
    forwarded = [part.strip() for part in headers.get("x-forwarded-for", "").split(",") if part.strip()]
    client = getattr(request, "client", None)
    return forwarded[-1] if forwarded else str(getattr(client, "host", "") or "")


class RoomPlayerHandlers(PlayerHandlers):
    """The game board in a room: each view is the server's current step for this student. ``seen`` (server-side
    state) holds the (item, state) the board shows, so the live refresh redraws it only when the room moved on."""

    def __init__(self, quiz: Quiz, welcome: str) -> None:
        super().__init__(quiz, welcome)
        self.seen = gr.State(None)

    @property
    def view_outputs(self) -> list[gr.components.Component]:
        return [*self.player.board_outputs, self.seen]

    @property
    def guess_outputs(self) -> list[gr.components.Component]:
        return self.view_outputs

    def view(self, saved: dict | None, method: str) -> Updates:
        progress = Progress.from_dict(saved)
        p = self.player
        if progress is None or not progress.room:
            return {p.status: self.welcome, **self.panels(), p.summary: "", p.review: []}
        try:
            step = self.quiz.room_step(progress, method or default_method())
        except RoomError as err:  # the room was deleted, or the student's token is gone
            return {p.status: str(err), **self.panels()}
        return self.step_view(progress, step)

    def step_view(self, progress: Progress, step: RoomStep, note: str = "") -> Updates:
        """The board for one step: an image to answer, waiting for the teacher, a reveal, or the summary."""
        p = self.player
        progress = replace(progress, showing=step.item_id)
        base = {p.progress: progress.to_dict(), p.status: note + room_status(step), self.seen: step.key}
        if step.state == "done":
            return {**base, **self.panels(ended=True), **self.ending(self.quiz.room_summary(progress))}
        if step.state == "revealed":
            return {**base, **self.panels(step.shown.image_file, revealed=True), p.heatmap: step.outcome.heatmap_file,
                    p.result: reveal_markdown(step.outcome, step.distribution),
                    p.next: gr.update(visible=step.distribution is None)}  # teacher-paced: the teacher moves on
        return {**base, **self.panels(step.shown.image_file, guessing=step.state == "guess"), p.summary: "", p.review: []}

    def guess(self, saved: dict | None, guess: str, method: str) -> Updates:
        progress = Progress.from_dict(saved)
        if progress is None or not progress.room:
            raise UserError("Join a room first.")
        try:
            progress, step = self.quiz.room_guess(progress, guess, method or default_method())
        except RoomError as err:
            if "no longer open" not in str(err):
                raise
            gr.Warning(str(err))
            return self.view(saved, method)
        return self.step_view(progress, step, "✔ Answer recorded. " if step.state == "guess" else "")

    def heatmap(self, saved: dict | None, method: str) -> Updates:
        progress = Progress.from_dict(saved)
        if progress is None or not progress.room:
            return gr.skip()  # nothing to change (an empty dict is not allowed)
        step = self.quiz.room_step(progress, method)
        if step.state == "revealed":
            return {self.player.heatmap: step.outcome.heatmap_file}
        return super().heatmap(saved, method)


@dataclass
class TeacherPanel:
    """The teacher's components: presenter view, pace controls, the class report."""

    creds: gr.State
    presenter: gr.HTML
    qr: gr.Image
    pace: gr.Row
    report: gr.Markdown
    thumbnails: gr.Gallery
    chart: gr.Image
    board: gr.Markdown
    timer: gr.Timer

    @property
    def outputs(self) -> list[gr.components.Component]:
        return [self.creds, self.presenter, self.qr, self.pace, self.report, self.thumbnails, self.chart, self.board,
                self.timer]


class ClassroomHandlers:
    """Event handlers for students (join, leave, live board) and teachers (create, run, view, export, close)."""

    def __init__(self, quiz: Quiz) -> None:
        self.quiz = quiz
        self.player = RoomPlayerHandlers(quiz, JOIN_TEXT)
        self.board: gr.Markdown | None = None
        self.student_timer: gr.Timer | None = None
        self.created: gr.Markdown | None = None
        self.teacher_code: gr.Textbox | None = None
        self.teacher_key: gr.Textbox | None = None
        self.teacher_panel: TeacherPanel | None = None

    def join(self, code: str, nickname: str, method: str, request: gr.Request) -> Updates:
        saved = self.quiz.join(code, nickname, request_client(request)).to_dict()
        return {**self.player.view(saved, method), self.board: self.leaderboard(saved),
                self.student_timer: gr.Timer(active=True)}

    def leave(self, method: str) -> Updates:
        return {self.player.player.progress: None, **self.player.view(None, method), self.board: "",
                self.student_timer: gr.Timer(active=False)}

    def restore(self, saved: dict | None, method: str) -> Updates:
        progress = Progress.from_dict(saved)
        return {**self.player.view(saved, method), self.board: self.leaderboard(saved),
                self.student_timer: gr.Timer(active=bool(progress and progress.room))}

    def tick(self, saved: dict | None, method: str, seen: list | None) -> Updates:
        """The live leaderboard; in a teacher-paced room also the game board, once the teacher moved on or
        revealed (self-paced students move by themselves, so their board is left alone)."""
        updates = {self.board: self.leaderboard(saved)}
        progress = Progress.from_dict(saved)
        if progress is None or not progress.room:
            return updates
        try:
            place = self.quiz.room_place(progress)
            if not place.room.paced or place.key == seen:
                return updates
            return {**updates, **self.player.step_view(progress, self.quiz.room_step(progress, method))}
        except RoomError:
            return updates

    def leaderboard(self, saved: dict | None) -> str:
        """The student's room leaderboard (a message instead when the room is gone)."""
        progress = Progress.from_dict(saved)
        if progress is None or not progress.room:
            return ""
        try:
            room = self.quiz.room(progress.room)
        except RoomError as err:
            return str(err)
        return leaderboard_markdown(self.quiz.leaderboard(room.code), room)

    def create(self, deck_id: str, model_key: str, pacing: str, test_items: float | None,
               request: gr.Request) -> Updates:
        code, key = self.quiz.create_room(deck_id, model_key, pacing or "self", int(test_items or 0))
        message = (f"Room **{code}** is open. Students join in this tab with that code, the link or the QR code.\n\n"
                   f"Your teacher key, shown only once (write it down, keep it private): `{key}`")
        return {self.created: message, self.teacher_code: code, self.teacher_key: key,
                **self.teacher(code, key, request)}

    def teacher(self, code: str, key: str, request: gr.Request) -> Updates:
        """The presenter view and the class report: who was fooled by what, next to the model."""
        report = self.quiz.teacher_report(code, key)
        room, t = report.room, self.teacher_panel
        students, answers = self.quiz.store.counts(room.code)
        link = f"{request_origin(request)}/?room={room.code}"
        deck = self.quiz.deck(room.deck)
        thumbnails = [(self.quiz.thumbnail(deck.id, item.item), item_caption(item)) for item in report.items]
        return {t.creds: {"code": room.code, "key": key}, t.qr: join_qr(link),
                t.presenter: presenter_markdown(room, link, students, answers), t.pace: gr.update(visible=room.paced), t.report: teacher_markdown(report),
                t.thumbnails: thumbnails, t.chart: fooled_chart(report.items),
                t.board: leaderboard_markdown(self.quiz.leaderboard(room.code), room), t.timer: gr.Timer(active=True)}

    def refresh(self, creds: dict | None, request: gr.Request) -> Updates:
        return self.teacher(creds["code"], creds["key"], request) if creds else gr.skip()

    def advance(self, code: str, key: str, request: gr.Request) -> Updates:
        self.quiz.store.advance(code, key)
        return self.teacher(code, key, request)

    def reveal(self, code: str, key: str, request: gr.Request) -> Updates:
        room = self.quiz.store.check_teacher(code, key)
        if room.current and room.current[1] != "lesson":
            raise RoomError("Pre- and post-test images are not revealed: press Next image for everyone.")
        self.quiz.store.reveal(code, key)
        return self.teacher(code, key, request)

    def export(self, code: str, key: str) -> str:
        return str(self.quiz.export_csv(code, key))

    def close(self, code: str, key: str, request: gr.Request) -> Updates:
        self.quiz.close_room(code, key)
        return self.teacher(code, key, request)

    def delete(self, code: str, key: str) -> Updates:
        self.quiz.store.delete_room(code, key)
        t = self.teacher_panel
        return {t.creds: None, t.presenter: "", t.qr: None, t.pace: gr.update(visible=False),
                t.report: f"Room {normalise_code(code)} and all its answers are deleted.", t.thumbnails: [],
                t.chart: None, t.board: "", t.timer: gr.Timer(active=False)}


@dataclass
class ClassroomTab:
    """What the app wires from outside the tab: the room code box (filled from a join link)."""

    code: gr.Textbox


def build_classroom_tab(demo: gr.Blocks, quiz: Quiz, model_choices: list[tuple[str, str]],
                        default_model: str | None, progress: gr.BrowserState) -> ClassroomTab:
    """Students: join and play with a live leaderboard. Teachers: create a room, present, pace, watch, export."""
    handlers = ClassroomHandlers(quiz)
    with gr.Row(equal_height=True):
        code = gr.Textbox(label="Room code", max_lines=1, max_length=12, scale=2)
        nickname = gr.Textbox(label="Nickname", max_lines=1, max_length=NICKNAME_MAX, scale=2)
        join = gr.Button("Join", variant="primary", scale=1)
        leave = gr.Button("Leave room", scale=1)
    player = build_player(handlers.player, progress, "room")
    handlers.board = gr.Markdown()
    handlers.student_timer = gr.Timer(STUDENT_REFRESH_S, active=False)

    with gr.Accordion("For teachers: create a room, present it and follow the class", open=False):
        decks = quiz.deck_choices()
        with gr.Row():
            deck = gr.Dropdown(decks, value=decks[0][1] if decks else None, label="Deck")
            model = gr.Dropdown(model_choices, value=default_model, label="Model the class is compared with")
        with gr.Row():
            pacing = gr.Radio(PACING_CHOICES, value="self", label="Pace")
            test_items = gr.Number(0, precision=0, minimum=0, maximum=20, label="Pre- and post-test images "
                                   "(0: none; decks with test pools only)")
            create = gr.Button("Create a room", variant="primary")
        handlers.created = gr.Markdown()
        with gr.Row(equal_height=True):
            handlers.teacher_code = gr.Textbox(label="Room code", max_lines=1, max_length=12)
            handlers.teacher_key = gr.Textbox(label="Teacher key", type="password", max_lines=1, max_length=64)
            open_view = gr.Button("Open teacher view")
        with gr.Row(equal_height=True):
            presenter = gr.HTML()
            qr = gr.Image(type="pil", interactive=False, label="Scan to join", height=260, buttons=[])
        with gr.Row(visible=False) as pace:
            reveal = gr.Button("Reveal the answer", variant="primary")
            advance = gr.Button("Next image for everyone ➜")
        with gr.Accordion("Class results (keep them off the projector)", open=True):
            report = gr.Markdown()
            thumbnails = gr.Gallery(label="Each image with the class's numbers", columns=5, height="auto",
                                    object_fit="contain")
            chart = gr.Image(type="pil", interactive=False, label="Share of the class fooled, per image", buttons=[])
            teacher_board = gr.Markdown()
        with gr.Row():
            export = gr.Button("Export all answers (CSV)")
            close = gr.Button("Close the room (no more answers)", variant="stop")
            delete = gr.Button("Delete the room and its answers", variant="stop")
        csv_file = gr.File(label="Answers", interactive=False)
        handlers.teacher_panel = TeacherPanel(gr.State(None), presenter, qr, pace, report, thumbnails, chart,
                                              teacher_board, gr.Timer(TEACHER_REFRESH_S, active=False))

    _wire(demo, handlers, player, code, nickname, join, leave, deck, model, pacing, test_items, create, open_view,
          reveal, advance, export, close, delete, csv_file)
    return ClassroomTab(code)


def _wire(demo, handlers: ClassroomHandlers, player, code, nickname, join, leave, deck, model, pacing, test_items,
          create, open_view, reveal, advance, export, close, delete, csv_file) -> None:
    """Connect the tab's events (endpoints ``/room_...``)."""
    student_outputs = [*handlers.player.view_outputs, handlers.board, handlers.student_timer]
    teacher = handlers.teacher_panel.outputs
    creds = [handlers.teacher_code, handlers.teacher_key]
    join.click(human_errors("joining the room")(handlers.join), [code, nickname, player.method], student_outputs,
               api_name="room_join", concurrency_limit=None)
    leave.click(handlers.leave, [player.method], student_outputs, api_visibility="private", concurrency_limit=None)
    handlers.student_timer.tick(human_errors("refreshing the room")(handlers.tick),
                                [player.progress, player.method, handlers.player.seen],
                                [*handlers.player.view_outputs, handlers.board], api_name="room_tick",
                                show_progress="hidden", concurrency_limit=None)
    create.click(human_errors("creating the room")(handlers.create), [deck, model, pacing, test_items],
                 [handlers.created, *creds, *teacher], api_name="room_create", concurrency_limit=None)
    open_view.click(human_errors("opening the teacher view")(handlers.teacher), creds, teacher,
                    api_name="room_teacher", concurrency_limit=None)
    handlers.teacher_panel.timer.tick(human_errors("refreshing the teacher view")(handlers.refresh),
                                      handlers.teacher_panel.creds, teacher, api_visibility="private",
                                      show_progress="hidden", concurrency_limit=None)
    reveal.click(human_errors("revealing the answer")(handlers.reveal), creds, teacher, api_name="room_reveal",
                 concurrency_limit=None)
    advance.click(human_errors("moving the class on")(handlers.advance), creds, teacher, api_name="room_next",
                  concurrency_limit=None)
    export.click(human_errors("exporting the answers")(handlers.export), creds, csv_file, api_name="room_export",
                 concurrency_limit=None)
    close.click(human_errors("closing the room")(handlers.close), creds, teacher, api_name="room_close",
                concurrency_limit=None)
    delete.click(human_errors("deleting the room")(handlers.delete), creds, teacher, api_name="room_delete",
                 concurrency_limit=None)
    demo.load(human_errors("restoring your room")(handlers.restore), [player.progress, player.method],
              student_outputs, api_visibility="private", queue=False)


def wire_join_link(demo: gr.Blocks, tabs: gr.Tabs, tab: ClassroomTab) -> None:
    """A page opened with ``?room=CODE`` shows the Classroom tab with the code filled in."""

    def from_link(request: gr.Request) -> Updates:
        room = normalise_code(dict(getattr(request, "query_params", None) or {}).get("room", ""))[:12]
        return {tabs: gr.Tabs(selected=TAB_ID), tab.code: room} if room else gr.skip()

    demo.load(from_link, None, [tabs, tab.code], api_visibility="private", queue=False)
