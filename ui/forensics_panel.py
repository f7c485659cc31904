"""The Detector tab's forensics lab: what the file says, the frequency view, whether the heatmaps agree, and
what re-sharing does to the verdict. Each is its own small event with its own API name."""
from __future__ import annotations

import html
import re
from typing import Callable

import gradio as gr

from gauntlet.explain import Explanation, method_title
from gauntlet.forensics.agreement import SanityCheck, agreement_text
from gauntlet.forensics.frequency import FrequencyView
from gauntlet.forensics.lab import ForensicsLab
from gauntlet.forensics.laundering import LaunderingReport
from gauntlet.forensics.provenance import IPTC_SOURCE_TYPES, Provenance
from gauntlet.render import overlay
from .common import human_errors

SANITY_MAX_SECONDS = 5.0  # repeat only explanations that took less (a full LIME takes minutes)
PROVENANCE_LIMITS = ("**What it does not prove:** metadata is easy to remove or forge, and most sites strip it "
                     "on upload; a valid signature says who signed, not that the picture is true.")
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def md(text: object, limit: int = 300) -> str:
    """Metadata (written by whoever made the file) as inert Markdown: one line, specials escaped, cut short."""
    flat = " ".join(str(text).split())
    flat = flat if len(flat) <= limit else flat[:limit] + "…"
    return _MARKDOWN_SPECIALS.sub(r"\\\1", html.escape(flat, quote=False))


def provenance_markdown(result: Provenance) -> str:
    """The provenance panel: the summary sentence, what each source says, notes, and what it does not prove."""
    lines = [f"**What the file says.** {result.summary}"]
    manifest = result.c2pa
    if manifest and manifest.get("remote_url"):
        lines.append(f"- Content Credentials: stored online at {md(manifest['remote_url'])} (not fetched)")
    elif manifest:
        sources = ", ".join(IPTC_SOURCE_TYPES.get(code, md(code)) for code in manifest["digital_source_types"])
        lines.append(f"- Content Credentials: signature {md(manifest['validation_state'])}; made with "
                     f"{md(manifest['claim_generator']) or 'an unnamed tool'}"
                     + (f"; source: {sources}" if sources else "")
                     + (f"; actions: {md(', '.join(manifest['actions']))}" if manifest["actions"] else ""))
    else:
        lines.append("- Content Credentials (C2PA): none")
    camera = {k: v for k, v in result.exif.items() if k != "location_present"}
    exif = "; ".join(f"{k}: {md(v, 80)}" for k, v in camera.items())
    if result.exif.get("location_present"):
        exif += ("; " if exif else "") + "a GPS location is present (not shown)"
    lines.append(f"- Camera data (EXIF): {exif or 'none'}")
    if result.png_text:
        lines.append("- PNG text: " + "; ".join(f"{md(k, 40)}: {md(v, 120)}" for k, v in result.png_text.items()))
    if result.xmp.get("digital_source_type"):
        code = result.xmp["digital_source_type"]
        lines.append(f"- XMP source type: {IPTC_SOURCE_TYPES.get(code, md(code))}")
    lines += [f"- Note: {md(note)}" for note in result.notes]
    return "\n".join([*lines, "", PROVENANCE_LIMITS])


def laundering_tiles(report: LaunderingReport) -> list[tuple]:
    """Gallery tiles: each version with the Grad-CAM of its verdict, captioned with that verdict."""
    return [(overlay(v.explanation.image, v.explanation.heatmap) if v.explanation else v.image,
             f"{v.title}: {_verdict(v.prediction)}") for v in [report.original, *report.copies]]


def laundering_markdown(report: LaunderingReport) -> str:
    """The fragile/stable sentence above a table of the five verdicts (the tiles' captions are cut short)."""
    label = report.original.prediction.predicted_label
    rows = [f"| {v.title} | {_verdict(v.prediction)}{' (flipped)' if v.prediction.predicted_label != label else ''} |"
            for v in [report.original, *report.copies]]
    return "\n".join([report.sentence, "", "| version | verdict |", "|---|---|", *rows])


def _verdict(prediction) -> str:
    return f"{prediction.predicted_label}, {prediction.fake_probability:.0%} FAKE"


def frequency_tiles(view: FrequencyView) -> list[tuple]:
    return [(view.spectrum, "Spectrum of the fine detail"), (view.npr, "NPR residual")]


def frequency_markdown(view: FrequencyView) -> str:
    return f"**Left:** {view.spectrum_caption}  \n**Right:** {view.npr_caption}"


def heatmaps_of(explanations: list[Explanation] | None) -> list[tuple[str, object]]:
    return [(method_title(e.method), e.heatmap) for e in explanations or []]


def sanity_markdown(checks: list[SanityCheck], skipped: list[str]) -> str:
    lines = [check.sentence for check in checks]
    if skipped:
        lines.append(f"_Not repeated (too slow to run twice): {', '.join(skipped)}._")
    return "  \n".join(lines)


def make_provenance_handler(provenance: Callable[[str], Provenance]) -> Callable:
    @human_errors("reading what the file says")
    def run(path):
        return provenance_markdown(provenance(path)) if path else ""

    return run


def make_frequency_handler(frequency: Callable[[str], FrequencyView]) -> Callable:
    @human_errors("computing the frequency view")
    def run(path):
        if not path:
            return [], ""
        view = frequency(path)
        return frequency_tiles(view), frequency_markdown(view)

    return run


def make_launder_handler(launder: Callable[[str, str], LaunderingReport]) -> Callable:
    @human_errors("re-scoring the re-shared copies")
    def run(path, model_key):
        if not path:
            raise gr.Error("Please upload an image first (or click one of the examples).", print_exception=False)
        report = launder(path, model_key)
        return laundering_tiles(report), laundering_markdown(report)

    return run


@human_errors("comparing the heatmaps")
def agreement_handler(explanations):
    return agreement_text(heatmaps_of(explanations))


def make_sanity_handler(sanity: Callable[..., SanityCheck]) -> Callable:
    @human_errors("running the sanity check")
    def run(path, model_key, layers, explanations):
        if not path or not explanations:
            return ""
        quick = [e for e in explanations if e.seconds < SANITY_MAX_SECONDS]
        skipped = [method_title(e.method) for e in explanations if e.seconds >= SANITY_MAX_SECONDS]
        return sanity_markdown([sanity(path, model_key, e, layers) for e in quick], skipped)

    return run


def clear_lab() -> tuple:
    """Empty laundering and agreement outputs: they described the previous image."""
    return [], "", "", ""


def build_forensics_panel(lab: ForensicsLab, upload: gr.File, model: gr.Dropdown, analyse_button: gr.Button,
                          concurrency_id: str = "predict") -> Callable[..., None]:
    """The lab's components and their events; returns ``after_explanations(event, explanations, layers, api)``,
    which chains the agreement line and the sanity check after an event that outputs the ``explanations`` state
    (``api=False`` for the second such event: one API name each)."""
    with gr.Accordion("Forensics lab: more evidence, and how far to trust it", open=True, elem_id="forensics-lab"):
        provenance = gr.Markdown()
        frequency = gr.Gallery(label="Frequency view (centre of the image, full resolution)", columns=2, height=260,
                               object_fit="contain")
        frequency_notes = gr.Markdown()
        agreement = gr.Markdown()
        sanity = gr.Markdown()
        launder_button = gr.Button("What if it was re-shared? (laundering lab)")
        laundered = gr.Gallery(label="The verdict after re-sharing, with Grad-CAM", columns=5, height=220,
                               object_fit="contain")
        launder_note = gr.Markdown()
    quick = dict(concurrency_id=concurrency_id)
    upload.upload(clear_lab, outputs=[laundered, launder_note, agreement, sanity], queue=False,
                  api_visibility="private")
    triggers = [upload.upload, analyse_button.click]  # an example image arrives without an upload event
    gr.on(triggers, make_provenance_handler(lab.provenance), inputs=upload, outputs=provenance,
          api_name="provenance", **quick)
    gr.on(triggers, make_frequency_handler(lab.frequency), inputs=upload, outputs=[frequency, frequency_notes],
          api_name="frequency", **quick)
    launder_button.click(make_launder_handler(lab.launder), inputs=[upload, model], outputs=[laundered, launder_note],
                         api_name="launder")

    def after_explanations(event: gr.events.Dependency, explanations: gr.State, layers: gr.Radio,
                           api: bool = True) -> None:
        names = dict(api_name="agreement") if api else dict(api_visibility="private")
        sanity_names = dict(api_name="sanity_check") if api else dict(api_visibility="private")
        # the sanity check re-runs explanations (seconds): it queues with them, not with the verdicts
        event.success(agreement_handler, inputs=explanations, outputs=agreement, **names, **quick).success(
            make_sanity_handler(lab.sanity), inputs=[upload, model, layers, explanations], outputs=sanity,
            concurrency_limit="default", **sanity_names)

    return after_explanations
