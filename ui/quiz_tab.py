"""Quiz tab: pick a deck (and a model to compare with) and play it alone on the game board.

The board itself (:mod:`ui.game_board`) is shared with the classroom tab.
"""
from __future__ import annotations

import gradio as gr

from gauntlet.teaching.quiz import Quiz
from gauntlet.teaching.quiz_present import unavailable_markdown
from .common import human_errors
from .game_board import QUICK, PlayerHandlers, build_player


def build_quiz_tab(demo: gr.Blocks, quiz: Quiz, model_choices: list[tuple[str, str]],
                   default_model: str | None, progress: gr.BrowserState) -> None:
    """The solo quiz: pick a deck (and model), play, and compare with the model at the end."""
    handlers = PlayerHandlers(quiz)
    decks = quiz.deck_choices()
    with gr.Row():
        deck = gr.Dropdown(decks, value=decks[0][1] if decks else None, label="Deck", scale=2)
        model = gr.Dropdown(model_choices, value=default_model, label="Model to compare with", scale=2)
        start = gr.Button("Start", variant="secondary", scale=1)
    notes = unavailable_markdown(quiz.unavailable())
    if notes:
        gr.Markdown(notes)
    player = build_player(handlers, progress, "quiz")

    @human_errors("starting the quiz")
    def begin(deck_id: str, model_key: str, method: str) -> dict:
        saved = quiz.start(deck_id, model_key).to_dict()
        return {progress: saved, **handlers.view(saved, method)}

    start.click(begin, [deck, model, player.method], [progress, *player.view_outputs], api_name="quiz_start",
                concurrency_limit=QUICK)
    demo.load(human_errors("restoring your quiz")(handlers.view), [progress, player.method], player.view_outputs,
              api_visibility="private", queue=False)
