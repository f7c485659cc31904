"""Model card tab: the generated MODEL_CARD.md and its confusion-matrix charts."""
from __future__ import annotations

import gradio as gr


def build_model_card_tab(card_markdown: str, charts: list[tuple[str, str]]) -> None:
    """Show the card's text and, when there are any, its charts in a gallery."""
    if charts:
        gr.Gallery(charts, label="Confusion matrices (rows: truth, columns: prediction)", columns=2,
                   height="auto", object_fit="contain", interactive=False)
    gr.Markdown(card_markdown)
