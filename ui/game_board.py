"""The game board shared by the Quiz and Classroom tabs: one image, Real/AI buttons, then the reveal.

Progress lives in a ``gr.BrowserState`` so a refresh loses nothing; it holds only the deck, the model and
the guesses already revealed. Images reach the browser as re-encoded pixels under a content-hash name, and
no component or API response carries a truth before the guess. Handlers return ``{component: value}``
dicts: each says what it changes, and components it leaves out keep their value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import gradio as gr

from gauntlet.errors import UserError
from gauntlet.explain import default_method, method_choices
from gauntlet.teaching.quiz import Progress, Quiz, Summary
from gauntlet.teaching.quiz_present import position_text, reveal_markdown, review_caption, summary_markdown
from .common import human_errors

WELCOME = "Choose a deck and press **Start**: you will see one image at a time. Real photo, or AI?"
# BrowserState encrypts with a key that is sent to the page anyway, so it hides nothing from the player;
# a fixed key keeps saved progress readable after the app restarts (a random one would not).
BROWSER_SECRET = "gauntlet-progress-v1"
QUICK = None  # quiz events only read small files or wait for the reveal worker: no concurrency cap needed
Updates = dict  # {component: value} returned by a handler


@dataclass
class Player:
    """The components of one game board, and the browser state holding the player's progress."""

    progress: gr.BrowserState
    status: gr.Markdown
    image: gr.Image
    guesses: gr.Row
    reveal: gr.Column
    heatmap: gr.Image
    method: gr.Radio
    reveal_text: gr.Column
    result: gr.Markdown
    next: gr.Button
    end: gr.Column
    summary: gr.Markdown
    review: gr.Gallery

    @property
    def view_outputs(self) -> list[gr.components.Component]:
        return [self.status, self.image, self.guesses, self.reveal, self.reveal_text, self.end, self.summary,
                self.review]

    @property
    def reveal_outputs(self) -> list[gr.components.Component]:
        return [self.progress, self.guesses, self.reveal, self.reveal_text, self.result, self.heatmap]

    @property
    def board_outputs(self) -> list[gr.components.Component]:
        """Everything a classroom step may change."""
        return [self.progress, self.status, self.image, self.guesses, self.reveal, self.reveal_text, self.result,
                self.heatmap, self.next, self.end, self.summary, self.review]


class PlayerHandlers:
    """Event handlers over a :class:`Quiz`; every input and output is safe to show the player.
    :func:`build_player` binds them to their board (``self.player``)."""

    def __init__(self, quiz: Quiz, welcome: str = WELCOME) -> None:
        self.quiz, self.welcome = quiz, welcome
        self.player: Player | None = None

    @property
    def view_outputs(self) -> list[gr.components.Component]:
        return self.player.view_outputs

    @property
    def guess_outputs(self) -> list[gr.components.Component]:
        return self.player.reveal_outputs

    def panels(self, image=None, guessing: bool = False, revealed: bool = False, ended: bool = False) -> Updates:
        """The picture and which parts of the board are visible."""
        p = self.player
        return {p.image: image, p.guesses: gr.update(visible=guessing), p.reveal: gr.update(visible=revealed),
                p.reveal_text: gr.update(visible=revealed), p.end: gr.update(visible=ended)}

    def ending(self, summary: Summary) -> Updates:
        """The end-of-deck summary and the review of the images that fooled the player."""
        review = [(image, review_caption(item, guess)) for image, item, guess in self.quiz.review_images(summary)]
        return {self.player.summary: summary_markdown(summary), self.player.review: review}

    def view(self, saved: dict | None, method: str) -> Updates:
        """Show the current image (guess buttons on, reveal off), or the end summary, or the welcome text."""
        p = self.player
        progress = Progress.from_dict(saved)
        if progress is None:
            return {p.status: self.welcome, **self.panels(), p.summary: "", p.review: []}
        shown = self.quiz.show(progress, method or default_method())
        if not shown.done:
            return {p.status: position_text(shown), **self.panels(shown.image_file, guessing=True), p.summary: "",
                    p.review: []}
        return {p.status: position_text(shown), **self.panels(ended=True), **self.ending(self.quiz.summary(progress))}

    def guess(self, saved: dict | None, guess: str, method: str) -> Updates:
        """Record the guess; returns the new progress and the reveal."""
        progress = Progress.from_dict(saved)
        if progress is None:
            raise UserError("Press Start first.")
        progress, outcome = self.quiz.guess(progress, guess, method or default_method())
        p, shown = self.player, gr.update(visible=True)
        return {p.progress: progress.to_dict(), p.guesses: gr.update(visible=False), p.reveal: shown,
                p.reveal_text: shown, p.result: reveal_markdown(outcome), p.heatmap: outcome.heatmap_file}

    def guesser(self, guess: str) -> Callable[[dict | None, str], Updates]:
        """The click handler of the button that answers ``guess``."""

        @human_errors("revealing the answer")
        def run(saved: dict | None, method: str) -> Updates:
            return self.guess(saved, guess, method)

        return run

    def heatmap(self, saved: dict | None, method: str) -> Updates:
        """The last revealed item's heatmap with another method."""
        progress = Progress.from_dict(saved)
        if progress is None or not progress.answers:
            return gr.skip()  # nothing to change (an empty dict is not allowed)
        return {self.player.heatmap: self.quiz.outcome(progress, method).heatmap_file}


def build_player(handlers: PlayerHandlers, progress: gr.BrowserState, api_prefix: str) -> Player:
    """Lay out a game board, bind ``handlers`` to it and wire its guess, next and method events
    (endpoints ``/<prefix>_...``)."""
    status = gr.Markdown(handlers.welcome)
    with gr.Row(equal_height=True):
        with gr.Column():
            image = gr.Image(type="filepath", interactive=False, show_label=False, height=360, buttons=[])
            with gr.Row(visible=False) as guesses:
                real = gr.Button("📷 Real", variant="primary")
                fake = gr.Button("🤖 AI", variant="primary")
        with gr.Column(visible=False) as reveal:
            heatmap = gr.Image(type="filepath", interactive=False, label="Where the model looked", height=360, buttons=[])
            method = gr.Radio(method_choices(with_notes=False), value=default_method(), label="Heatmap method", container=False)
    with gr.Column(visible=False) as reveal_text:
        result = gr.Markdown()
        next_button = gr.Button("Next image ➜", variant="primary")
    with gr.Column(visible=False) as end:
        summary = gr.Markdown()
        review = gr.Gallery(label="The images that fooled you", columns=3, height="auto", object_fit="contain")
    player = Player(progress, status, image, guesses, reveal, heatmap, method, reveal_text, result, next_button, end,
                    summary, review)
    handlers.player = player

    view = human_errors("showing the next image")(handlers.view)
    for button, guess in ((real, "REAL"), (fake, "FAKE")):
        button.click(handlers.guesser(guess), [progress, method], handlers.guess_outputs,
                     api_name=f"{api_prefix}_guess_{guess.lower()}", concurrency_limit=QUICK)
    next_button.click(view, [progress, method], handlers.view_outputs, api_name=f"{api_prefix}_show",
                      concurrency_limit=QUICK)
    method.input(human_errors("drawing the heatmap")(handlers.heatmap), [progress, method], heatmap,
                 api_name=f"{api_prefix}_heatmap", concurrency_limit=QUICK)
    return player


def progress_state(storage_key: str) -> gr.BrowserState:
    """Saved progress in the browser. Create it at the top level of the Blocks, outside any tab:
    components in a tab that is not open yet mount late, and the page-load restore would read nothing."""
    return gr.BrowserState(None, storage_key=storage_key, secret=BROWSER_SECRET)
