"""Model card tab: the generated MODEL_CARD.md (its summary first), then its charts and the per-checkpoint detail."""
from __future__ import annotations

import gradio as gr

from gauntlet.model_card import split_summary


def build_model_card_tab(card_markdown: str, charts: list[tuple[str, str]]) -> None:
    """Show the card's summary, then, when there are any, its charts in a gallery, then the rest of its text."""
    summary, details = split_summary(card_markdown)
    gr.Markdown(summary)
    if charts:
        gr.Gallery(charts, label="Confusion matrices (rows: truth, columns: prediction)", columns=2,
                   height="auto", object_fit="contain", interactive=False)
    if details:
        gr.Markdown(details)
