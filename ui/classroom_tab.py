"""Classroom tab: students join a room with its code and play the deck; the teacher sees the class.

Students' progress (room code, their token, their guesses) is in their own browser. The
teacher key is returned only to the teacher who created the room and is kept for the
live view in server-side ``gr.State``, never in the browser's storage (school computers
are shared). Leaderboards refresh with ``gr.Timer``.
"""
from __future__ import annotations

import gradio as gr

from gauntlet.teaching.classroom import NICKNAME_MAX, RoomError
from gauntlet.teaching.quiz import Progress, Quiz
from gauntlet.teaching.quiz_present import fooled_chart, leaderboard_markdown, teacher_markdown
from .common import human_errors
from .game_board import PlayerHandlers, build_player

JOIN_TEXT = "Type the **room code** from the board and a **nickname**, then press **Join**."
STUDENT_REFRESH_S = 5.0
TEACHER_REFRESH_S = 10.0


class ClassroomHandlers:
    """Event handlers for students (join, leaderboard) and teachers (create, view, export, close)."""

    def __init__(self, quiz: Quiz) -> None:
        self.quiz = quiz
        self.player = PlayerHandlers(quiz, JOIN_TEXT)

    def join(self, code: str, nickname: str, method: str) -> tuple:
        saved = self.quiz.join(code, nickname).to_dict()
        return (saved, *self.player.view(saved, method), self.board(saved), gr.Timer(active=True))

    def leave(self, method: str) -> tuple:
        return (None, *self.player.view(None, method), "", gr.Timer(active=False))

    def restore(self, saved: dict | None, method: str) -> tuple:
        progress = Progress.from_dict(saved)
        return (*self.player.view(saved, method), self.board(saved), gr.Timer(active=bool(progress and progress.room)))

    def board(self, saved: dict | None) -> str:
        """The student's room leaderboard (a message instead when the room is gone)."""
        progress = Progress.from_dict(saved)
        if progress is None or not progress.room:
            return ""
        try:
            room = self.quiz.room(progress.room)
        except RoomError as err:
            return str(err)
        return leaderboard_markdown(self.quiz.leaderboard(room.code), room)

    def create(self, deck_id: str, model_key: str) -> tuple:
        code, key = self.quiz.create_room(deck_id, model_key)
        message = (f"Room **{code}** is open. Students join in this tab with that code.\n\n"
                   f"Your teacher key, shown only once (write it down, keep it private): `{key}`")
        return message, code, key, *self.teacher(code, key)

    def teacher(self, code: str, key: str) -> tuple:
        """The teacher's view: who was fooled by what next to the model, the chart and the leaderboard."""
        room, reports = self.quiz.teacher_report(code, key)
        return ({"code": room.code, "key": key}, teacher_markdown(room, reports), fooled_chart(reports),
                leaderboard_markdown(self.quiz.leaderboard(room.code), room), gr.Timer(active=True))

    def refresh(self, creds: dict | None) -> tuple:
        return self.teacher(creds["code"], creds["key"]) if creds else tuple(gr.skip() for _ in range(5))

    def export(self, code: str, key: str) -> str:
        return str(self.quiz.export_csv(code, key))

    def close(self, code: str, key: str) -> tuple:
        self.quiz.close_room(code, key)
        return self.teacher(code, key)


def build_classroom_tab(demo: gr.Blocks, quiz: Quiz, model_choices: list[tuple[str, str]],
                        default_model: str | None, progress: gr.BrowserState) -> None:
    """Students: join and play with a live leaderboard. Teachers: create a room, watch, export, close."""
    handlers = ClassroomHandlers(quiz)
    with gr.Row(equal_height=True):
        code = gr.Textbox(label="Room code", max_lines=1, max_length=12, scale=2)
        nickname = gr.Textbox(label="Nickname", max_lines=1, max_length=NICKNAME_MAX, scale=2)
        join = gr.Button("Join", variant="primary", scale=1)
        leave = gr.Button("Leave room", scale=1)
    player = build_player(handlers.player, progress, "room")
    board = gr.Markdown()
    student_timer = gr.Timer(STUDENT_REFRESH_S, active=False)

    with gr.Accordion("For teachers: create a room and follow the class", open=False):
        decks = quiz.deck_choices()
        with gr.Row():
            deck = gr.Dropdown(decks, value=decks[0][1] if decks else None, label="Deck")
            model = gr.Dropdown(model_choices, value=default_model, label="Model the class is compared with")
            create = gr.Button("Create a room", variant="primary")
        created = gr.Markdown()
        with gr.Row(equal_height=True):
            teacher_code = gr.Textbox(label="Room code", max_lines=1, max_length=12)
            teacher_key = gr.Textbox(label="Teacher key", type="password", max_lines=1, max_length=64)
            open_view = gr.Button("Open teacher view")
        creds = gr.State(None)
        table = gr.Markdown()
        chart = gr.Image(type="pil", interactive=False, label="Share of the class fooled, per image", buttons=[])
        teacher_board = gr.Markdown()
        with gr.Row():
            export = gr.Button("Export all answers (CSV)")
            close = gr.Button("Close the room (no more answers)", variant="stop")
        csv_file = gr.File(label="Answers", interactive=False)
        teacher_timer = gr.Timer(TEACHER_REFRESH_S, active=False)

    teacher_outputs = [creds, table, chart, teacher_board, teacher_timer]
    join.click(human_errors("joining the room")(handlers.join), [code, nickname, player.method],
               [progress, *player.view_outputs, board, student_timer], api_name="room_join", concurrency_limit=None)
    leave.click(handlers.leave, [player.method], [progress, *player.view_outputs, board, student_timer],
                api_visibility="private", concurrency_limit=None)
    student_timer.tick(handlers.board, progress, board, api_visibility="private", show_progress="hidden",
                       concurrency_limit=None)
    create.click(human_errors("creating the room")(handlers.create), [deck, model],
                 [created, teacher_code, teacher_key, *teacher_outputs], api_name="room_create", concurrency_limit=None)
    open_view.click(human_errors("opening the teacher view")(handlers.teacher), [teacher_code, teacher_key],
                    teacher_outputs, api_name="room_teacher", concurrency_limit=None)
    teacher_timer.tick(human_errors("refreshing the teacher view")(handlers.refresh), creds, teacher_outputs,
                       api_visibility="private", show_progress="hidden", concurrency_limit=None)
    export.click(human_errors("exporting the answers")(handlers.export), [teacher_code, teacher_key], csv_file,
                 api_name="room_export", concurrency_limit=None)
    close.click(human_errors("closing the room")(handlers.close), [teacher_code, teacher_key], teacher_outputs,
                api_name="room_close", concurrency_limit=None)
    demo.load(human_errors("restoring your room")(handlers.restore), [progress, player.method],
              [*player.view_outputs, board, student_timer], api_visibility="private", queue=False)
