"""GAUNTLET web app: wires the library's plain functions to Gradio components, nothing more.

Run ``python app.py`` and open http://127.0.0.1:7860 (``GAUNTLET_HOST`` / ``GAUNTLET_PORT`` to change).
"""
from __future__ import annotations

import logging

import gradio as gr
import torch

from gauntlet.forensics.lab import ForensicsLab
from gauntlet.model_card import load_model_card
from gauntlet.service import ModelCatalog, example_images
from gauntlet.settings import Settings, get_settings
from gauntlet.teaching.decks import starter_examples
from gauntlet.teaching.quiz import DEFAULT_METHOD, Quiz, precompute_in_background
from ui.classroom_tab import TAB_ID as CLASSROOM_TAB, build_classroom_tab, wire_join_link
from ui.detector_tab import build_detector_tab
from ui.game_board import progress_state
from ui.model_card_tab import build_model_card_tab
from ui.quiz_tab import build_quiz_tab

INTRO = """# GAUNTLET · is this image AI-generated?
Upload an image: a detector gives its verdict, and explanation methods show **where it looked**.
Then train your own eye in the quiz."""


def detector_examples(settings: Settings) -> list[str]:
    """The Detector tab's examples: those kept in the repository, then a few from the data folder when present."""
    return [str(path) for path in starter_examples(settings.quiz_dir)] + example_images(settings.data_dir)


def build_app(catalog: ModelCatalog, settings: Settings, quiz: Quiz | None = None,
              examples: list[str] | None = None) -> gr.Blocks:
    """The whole UI; every tab builder receives plain callables from the library (``quiz``: decks and rooms;
    ``examples``: the Detector tab's example paths, by default :func:`detector_examples`)."""
    quiz = quiz or Quiz.from_settings(catalog, settings)
    examples = detector_examples(settings) if examples is None else examples
    with gr.Blocks(title="GAUNTLET — explainable AI-image detector", analytics_enabled=False,
                   delete_cache=(1800, 3600)) as demo:
        gr.Markdown(INTRO)
        quiz_progress, room_progress = progress_state("gauntlet-quiz"), progress_state("gauntlet-classroom")
        with gr.Tabs() as tabs:
            with gr.Tab("Detector"):
                lab = ForensicsLab(catalog, settings.max_pixels, int(settings.max_upload_mb * 1024 * 1024),
                                   settings.explain_timeout_s)
                build_detector_tab(catalog.predict, catalog.explain_stream, catalog.choices(), catalog.default_key,
                                   examples, settings.predict_concurrency, lab,
                                   settings.analyse_concurrency)
            with gr.Tab("Spot the fake"):
                build_quiz_tab(demo, quiz, catalog.choices(), catalog.default_key, quiz_progress)
            with gr.Tab("Classroom", id=CLASSROOM_TAB):
                classroom = build_classroom_tab(demo, quiz, catalog.choices(), catalog.default_key, room_progress)
            with gr.Tab("Model card"):
                build_model_card_tab(*load_model_card())
        wire_join_link(demo, tabs, classroom)
    demo.queue(max_size=settings.queue_max_size, default_concurrency_limit=settings.concurrency_limit)
    return demo


def launch(settings: Settings | None = None, **kwargs) -> gr.Blocks:
    """Build and start the app with the environment's settings (``kwargs`` go to ``launch``)."""
    settings = settings or get_settings()
    if settings.torch_threads:  # 1 (default) is fastest when concurrent requests share a small CPU; 0 = torch default
        torch.set_num_threads(settings.torch_threads)
    catalog = ModelCatalog.from_settings(settings)
    catalog.warm_up()
    quiz = Quiz.from_settings(catalog, settings)
    if settings.precompute_reveals and catalog.default_key:
        precompute_in_background(quiz, [catalog.default_key], [DEFAULT_METHOD])
    examples = detector_examples(settings)  # the only files served from outside: the data folder holds quiz answers
    demo = build_app(catalog, settings, quiz, examples)
    demo.launch(server_name=settings.host, server_port=settings.port, max_file_size=int(settings.max_upload_mb * 1024 * 1024),
                allowed_paths=examples, theme=gr.themes.Soft(), footer_links=["api"], **kwargs)
    return demo


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    launch()
