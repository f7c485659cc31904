"""One registry row is all a new explanation method needs: every list, caption and default reads the registry."""
from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from benchmarks import explain as explain_benchmark
from gauntlet.explain import FULL, METHODS, Explanation, Method, available_variants, build_explainer, register
from gauntlet.explain.cam import GradCamExplainer
from gauntlet.analysis import MethodResult
from gauntlet.present import explanation_notes, method_caption
from ui.detector_tab import build_detector_tab
from ui.game_board import PlayerHandlers, build_player, progress_state


class DummyExplainer(GradCamExplainer):
    key = "dummy"


@pytest.fixture
def dummy():
    register(Method("dummy", "Dummy-CAM", {FULL: DummyExplainer}, {FULL: "Dummy-CAM caption."}, default_on=True))
    yield METHODS["dummy"]
    del METHODS["dummy"]


def components(blocks: gr.Blocks, kind: type) -> list:
    return [block for block in blocks.blocks.values() if isinstance(block, kind)]


def test_a_registered_method_reaches_every_choice_list_and_default(dummy):
    with gr.Blocks() as demo:
        build_detector_tab(lambda *a: None, lambda *a, **k: None, [("m", "m")], "m", [])
        build_player(PlayerHandlers(quiz=None), progress_state("test"), "quiz")
    (methods,) = components(demo, gr.CheckboxGroup)
    assert ("Dummy-CAM", "dummy") in methods.choices and "dummy" in methods.value
    heatmap_choices = [radio.choices for radio in components(demo, gr.Radio) if radio.label == "Heatmap method"]
    assert ("Dummy-CAM", "dummy") in heatmap_choices[0]
    assert "dummy" in explain_benchmark.get_args_parser().parse_args([]).methods


def test_a_registered_method_is_built_named_and_captioned(dummy, tiny_detectors, rgb_image):
    assert available_variants("dummy") == [FULL]
    with build_explainer("dummy", tiny_detectors["baseline_cnn"]) as explainer:
        explanation = explainer.explain(rgb_image)
    assert explanation.method == "dummy" and method_caption(explanation).startswith("Dummy-CAM (full)")
    notes = explanation_notes([MethodResult(explanation, explanation.image)])
    assert "**Dummy-CAM**" in notes and "Dummy-CAM caption." in notes


def test_every_method_has_a_title_a_full_caption_and_the_quiz_default_is_shown_by_default():
    from gauntlet.teaching.quiz import DEFAULT_METHOD

    for method in METHODS.values():
        assert method.title and method.caption(FULL) and FULL in method.variants
    assert METHODS[DEFAULT_METHOD].default_on
    fast = Explanation("score_cam", "fast", np.zeros((2, 2), np.float32), Image.new("RGB", (2, 2)), 1, "FAKE", 0.0)
    assert METHODS["score_cam"].caption("fast") in explanation_notes([MethodResult(fast, fast.image)])
