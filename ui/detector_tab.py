"""Detector tab: upload -> verdict (gr.Label), then explanations streamed in one by one (gr.Gallery)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import gradio as gr

from gauntlet.explain import default_methods, method_choices
from gauntlet.forensics.lab import ForensicsLab
from gauntlet.present import explanation_notes, method_caption, verdict_sentence
from gauntlet.service import Analysis
from .common import human_errors
from .forensics_panel import build_forensics_panel

VARIANT_CHOICES = [("Fast (seconds)", "fast"), ("Full original method (slow: minutes)", "full")]
LAYER_CHOICES = [("Last block", "last"), ("Last three blocks together", "last3")]
HISTORY_LIMIT = 20
SHOWN_TTL_S = 900  # a visitor's decoded upload is dropped after this long without a new one (memory)


@dataclass(frozen=True)
class Shown:
    """The upload on screen, decoded and scored once: the explanation handler reuses it (per-user gr.State)."""

    file: str
    verdict: Analysis


@dataclass
class DetectorOutputs:
    """The components the handlers fill; they return ``{component: value}`` for these."""

    preview: gr.Image
    verdict: gr.Label
    summary: gr.Markdown
    gallery: gr.Gallery
    notes: gr.Markdown
    history: gr.State
    shown: gr.State
    explanations: gr.State  # the finished explanations, for the forensics panel's agreement line and sanity check


def _require_upload(path) -> None:
    if not path:
        raise gr.Error("Please upload an image first (or click one of the examples).", print_exception=False)


def make_predict_handler(predict: Callable[..., Analysis], out: DetectorOutputs) -> Callable:
    """The upload handler: the verdict alone, in milliseconds; the decoded upload is kept for the explanations."""

    @human_errors("reading the image")
    def run(path, model_key) -> dict:
        _require_upload(path)
        analysis = predict(path, model_key)
        return {**_verdict_outputs(analysis, out), out.preview: analysis.preview_file or analysis.image, out.shown: Shown(path, analysis)}

    return run


def _verdict_outputs(analysis: Analysis, out: DetectorOutputs) -> dict:
    record = f"  \n{analysis.track_record}" if analysis.track_record else ""
    summary = f"{verdict_sentence(analysis.prediction)}  \nModel: {analysis.model_label}{record}"
    return {out.verdict: analysis.prediction.probabilities, out.summary: summary}


def reuse_or_predict(predict: Callable[..., Analysis], shown: Shown | None, path: str, model_key: str) -> Analysis:
    """The verdict on screen when it is for this file and model; the same decoded image scored by another
    model; else the file decoded and scored now (an API call, or the first click)."""
    if shown is None or shown.file != path:
        return predict(path, model_key)
    return shown.verdict if shown.verdict.model_key == model_key else predict(shown.verdict.image, model_key)


def make_analyse_handler(predict: Callable[..., Analysis], explain_stream: Callable[..., Iterator[Analysis]],
                         out: DetectorOutputs) -> Callable:
    """The click handler: streams the verdict, then the gallery and notes as each method finishes.

    The last value carries every output (preview, verdict, summary, gallery, notes, history).
    """

    @human_errors("analysing the image")
    def run(path, model_key, methods, variant, layers, history, measure=False, shown=None,
            progress=gr.Progress(track_tqdm=True)) -> Iterator[dict]:
        _require_upload(path)
        if not model_key:
            raise gr.Error("No model is available: add a checkpoint under checkpoints/.", print_exception=False)
        verdict = reuse_or_predict(predict, shown, path, model_key)
        requested = list(methods or [])
        analysis = verdict
        for analysis in explain_stream(verdict, requested, variant, layers, faithfulness=bool(measure),
                                       progress=lambda fraction, text: progress(fraction, desc=text)):
            done = [result.method for result in analysis.results]
            partial = {**_verdict_outputs(analysis, out), out.notes: explanation_notes(
                analysis.results, [m for m in requested if m not in done]),
                out.gallery: [(result.overlay_file or result.overlay, method_caption(result.explanation))
                              for result in analysis.results]}
            if len(done) < len(requested):
                yield partial
        history = (history or [])[-(HISTORY_LIMIT - 1):] + [
            {"verdict": analysis.prediction.verdict_label, "fake": round(analysis.prediction.fake_probability, 4)}]
        yield {**partial, out.preview: analysis.preview_file or analysis.image, out.history: history, out.shown: Shown(path, verdict),
               out.explanations: [result.explanation for result in analysis.results]}

    return run


def build_detector_tab(predict: Callable[..., Analysis], explain_stream: Callable[..., Iterator[Analysis]],
                       model_choices: list[tuple[str, str]], default_model: str | None, examples: list[str],
                       predict_concurrency: int = 8, lab: ForensicsLab | None = None,
                       analyse_concurrency: int = 8) -> None:
    """Wire the tab: an upload shows ``predict``'s verdict at once, then ``explain_stream`` adds the explanations;
    with a ``lab``, the forensics panel (provenance, frequency view, agreement, laundering) sits below.

    The verdict has its own concurrency group, so it never queues behind slow explanations; the decoded
    upload and its verdict wait in a gr.State, so the explanations neither decode nor score it again.
    ``analyse_concurrency`` analyses may be under way at once (more than the catalogue's explanation workers):
    explanations already in the cache come back at once instead of queueing behind ones being computed,
    which wait for an idle worker inside ``explain_stream``.
    """

    history, shown, explanations = gr.State([]), gr.State(None, time_to_live=SHOWN_TTL_S), gr.State([])
    with gr.Row():
        with gr.Column(scale=1):
            # No file_types filter: gradio would refuse by extension with a technical message;
            # gauntlet.images reads the content and explains in words what the file is instead.
            upload = gr.File(label="Upload an image", type="filepath")
            model = gr.Dropdown(model_choices, value=default_model, label="Model")
            methods = gr.CheckboxGroup(method_choices(), value=default_methods(), label="Explanation methods")
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
    out = DetectorOutputs(preview, verdict, summary, gallery, notes, history, shown, explanations)
    shown_event = upload.upload(make_predict_handler(predict, out), inputs=[upload, model],
                                outputs=[preview, verdict, summary, shown], api_name="predict",
                                concurrency_limit=predict_concurrency, concurrency_id="predict")
    explain = dict(fn=make_analyse_handler(predict, explain_stream, out),
                   inputs=[upload, model, methods, variant, layers, history, measure, shown],
                   outputs=[preview, verdict, summary, gallery, notes, history, shown, explanations],
                   concurrency_limit=analyse_concurrency, concurrency_id="analyse")
    clicked = button.click(**explain, api_name="analyse")
    followed = shown_event.success(**explain, api_visibility="private")
    if after_explanations:
        after_explanations(clicked, explanations, layers)
        after_explanations(followed, explanations, layers, api=False)
