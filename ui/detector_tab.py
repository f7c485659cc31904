"""Detector tab: upload -> verdict (gr.Label) and explanations side by side (gr.Gallery)."""
from __future__ import annotations

from typing import Callable

import gradio as gr

from gauntlet.forensics.lab import ForensicsLab
from gauntlet.present import explanation_notes, method_caption, verdict_sentence
from gauntlet.service import Analysis
from .common import human_errors
from .forensics_panel import build_forensics_panel

METHOD_CHOICES = [("Grad-CAM (instant)", "grad_cam"), ("Score-CAM", "score_cam"),
                  ("Ablation-CAM", "ablation_cam"), ("LIME", "lime")]
VARIANT_CHOICES = [("Fast (seconds)", "fast"), ("Full original method (slow: minutes)", "full")]
LAYER_CHOICES = [("Last block", "last"), ("Last three blocks together", "last3")]
HISTORY_LIMIT = 20


def make_predict_handler(predict: Callable[..., Analysis]) -> Callable:
    """The upload handler: the verdict alone, in milliseconds -> (preview, label, summary)."""

    @human_errors("reading the image")
    def run(path, model_key):
        if not path:
            raise gr.Error("Please upload an image first (or click one of the examples).", print_exception=False)
        analysis = predict(path, model_key)
        return analysis.image, analysis.prediction.probabilities, _summary(analysis)

    return run


def _summary(analysis: Analysis) -> str:
    record = f"  \n{analysis.track_record}" if analysis.track_record else ""
    return f"{verdict_sentence(analysis.prediction)}  \nModel: {analysis.model_label}{record}"


def make_analyse_handler(analyse: Callable[..., Analysis]) -> Callable:
    """The click handler: ``analyse`` result -> (preview, label, summary, gallery tiles, notes, history,
    explanations: kept in a gr.State for the forensics panel's agreement line and sanity check)."""

    @human_errors("analysing the image")
    def run(path, model_key, methods, variant, layers, history, measure=False, progress=gr.Progress(track_tqdm=True)):
        if not path:
            raise gr.Error("Please upload an image first (or click one of the examples).", print_exception=False)
        if not model_key:
            raise gr.Error("No model is available: add a checkpoint under checkpoints/.", print_exception=False)
        analysis = analyse(path, model_key, list(methods or []), variant, layers,
                           progress=lambda fraction, text: progress(fraction, desc=text), faithfulness=bool(measure))
        tiles = [(image, method_caption(e)) for image, e in zip(analysis.overlays, analysis.explanations)]
        summary = _summary(analysis)
        history = (history or [])[-(HISTORY_LIMIT - 1):] + [
            {"verdict": analysis.prediction.predicted_label, "fake": round(analysis.prediction.fake_probability, 4)}]
        return (analysis.image, analysis.prediction.probabilities, summary, tiles,
                explanation_notes(analysis.explanations, analysis.faithfulness), history, analysis.explanations)

    return run


def build_detector_tab(predict: Callable[..., Analysis], analyse: Callable[..., Analysis],
                       model_choices: list[tuple[str, str]], default_model: str | None, examples: list[str],
                       predict_concurrency: int = 4, lab: ForensicsLab | None = None) -> None:
    """Wire the tab: an upload shows ``predict``'s verdict at once, then ``analyse`` adds the explanations.

    The verdict has its own concurrency group, so it never queues behind slow explanations.
    """

    history, explanations = gr.State([]), gr.State([])
    with gr.Row():
        with gr.Column(scale=1):
            # No file_types filter: gradio would refuse by extension with a technical message;
            # gauntlet.images reads the content and explains in words what the file is instead.
            upload = gr.File(label="Upload an image", type="filepath")
            model = gr.Dropdown(model_choices, value=default_model, label="Model")
            methods = gr.CheckboxGroup(METHOD_CHOICES, value=["score_cam", "ablation_cam", "lime"],
                                       label="Explanation methods")
            with gr.Accordion("Explanation settings", open=False):
                variant = gr.Radio(VARIANT_CHOICES, value="fast", label="Speed")
                layers = gr.Radio(LAYER_CHOICES, value="last", label="Layers the CAM methods look at")
                measure = gr.Checkbox(False, label="Measure faithfulness (deletion / insertion AUC: about 0.5 s "
                                      "more per method)")
            button = gr.Button("Analyse", variant="primary")
            preview = gr.Image(label="Your image", interactive=False, height=260)
            if examples:
                gr.Examples(examples, inputs=upload, label="Or try an example")
        with gr.Column(scale=2):
            verdict = gr.Label(num_top_classes=2, label="Verdict (REAL = photo or human-made, FAKE = AI)")
            summary = gr.Markdown()
            gallery = gr.Gallery(label="Where the model looked", columns=3, height=280, object_fit="contain")
            notes = gr.Markdown()
            after_explanations = build_forensics_panel(lab, upload, model, button) if lab else None
    verdict_outputs = [preview, verdict, summary]
    shown = upload.upload(make_predict_handler(predict), inputs=[upload, model], outputs=verdict_outputs,
                          api_name="predict", concurrency_limit=predict_concurrency, concurrency_id="predict")
    explain = dict(fn=make_analyse_handler(analyse), inputs=[upload, model, methods, variant, layers, history, measure],
                   outputs=[*verdict_outputs, gallery, notes, history, explanations], concurrency_limit="default")
    clicked = button.click(**explain, api_name="analyse")
    followed = shown.success(**explain, api_visibility="private")
    if after_explanations:
        after_explanations(clicked, explanations, layers)
        after_explanations(followed, explanations, layers, api=False)
