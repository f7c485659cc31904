"""The forensics lab: provenance, transforms, laundering, frequency view, heatmap agreement, and their UI and API.

Hostile metadata (bombs, XXE, oversized boxes, odd encodings) is tested in tests/test_hostile_inputs.py.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin

from c2pa_helpers import AI_SOURCE, CAMERA_SOURCE, plain_jpeg, request_recorder, signed_jpeg
from conftest import make_checkpoint
from gauntlet.detector import Prediction
from gauntlet.explain import build_explainer
from gauntlet.forensics.agreement import (AGREE, DISAGREE, PARTLY, agreement_text, pairwise_agreement,
                                          rank_correlation, sanity_check, sanity_sentence, verdict_words,
                                          with_random_head)
from gauntlet.forensics.frequency import CROP, frequency_view, highpass_spectrum, npr_residual
from gauntlet.forensics.lab import ForensicsLab
from gauntlet.forensics.laundering import LAUNDERINGS, launder
from gauntlet.forensics.provenance import NO_PROVENANCE, read_provenance
from gauntlet.service import ModelCatalog
from gauntlet.transforms import TRANSFORMS, apply
from ui.forensics_panel import (agreement_handler, laundering_markdown, laundering_tiles, make_frequency_handler,
                                make_launder_handler, make_provenance_handler, make_sanity_handler, md,
                                provenance_markdown)

REPO = Path(__file__).resolve().parents[1]
SD_PARAMETERS = ("a cat astronaut, oil painting\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, "
                 "Seed: 1234, Size: 512x512, Model: v1-5-pruned")


def noise_image(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.RandomState(seed).randint(0, 255, (height, width, 3), np.uint8))


def png_with_text(**chunks: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    noise_image().save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def jpeg_with_exif(gps: bool = True) -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0131], exif[0x0132] = "Canon", "EOS 5D", "Firmware 1.1", "2020:01:02 03:04:05"
    if gps:
        exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    buffer = io.BytesIO()
    noise_image().save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def xmp_packet(source_type: str) -> bytes:
    return ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
            'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
            f'Iptc4xmpExt:DigitalSourceType="{source_type}"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()


def jpeg_with_xmp(packet: bytes) -> bytes:
    buffer = io.BytesIO()
    noise_image().save(buffer, "JPEG", xmp=packet)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- provenance


def test_a_c2pa_signed_ai_image_is_reported_with_its_generator_and_signature():
    result = read_provenance(signed_jpeg())
    manifest = result.c2pa
    assert manifest["present"] and manifest["validation_state"] == "Valid"  # intact, signer not on a trust list
    assert manifest["digital_source_types"] == ["trainedAlgorithmicMedia"]
    assert manifest["actions"] == ["c2pa.created"] and manifest["software_agents"] == ["TestDiffusion 2.1"]
    assert manifest["claim_generator"].startswith("gauntlet-tests")
    assert any("trainedAlgorithmicMedia" in hint for hint in result.generator_hints)
    assert result.summary.startswith("The file says it was made by TestDiffusion 2.1")
    assert "signer this app cannot vouch for" in result.summary


def test_c2pa_of_a_camera_capture_gives_no_ai_hint():
    result = read_provenance(signed_jpeg(CAMERA_SOURCE, agent="Camera app"))
    assert result.c2pa["digital_source_types"] == ["digitalCapture"] and result.generator_hints == []
    assert "do not say AI was used" in result.summary


def test_a_file_changed_after_signing_is_reported_invalid():
    data = bytearray(signed_jpeg())
    data[-20] ^= 0xFF  # inside the compressed pixels, covered by the signed hash
    result = read_provenance(bytes(data))
    assert result.c2pa["validation_state"] == "Invalid"
    assert "changed after signing" in result.summary


def test_a_remote_manifest_is_reported_and_never_fetched():
    with request_recorder() as (url, requests):
        result = read_provenance(signed_jpeg(remote_url=f"{url}/manifest.c2pa"))
    assert requests == []
    assert result.c2pa["remote_url"] == f"{url}/manifest.c2pa"
    assert "not fetched" in result.summary and any("not fetched" in note for note in result.notes)


def test_stable_diffusion_parameters_in_a_png_name_the_generator():
    result = read_provenance(png_with_text(parameters=SD_PARAMETERS, Software="AUTOMATIC1111"))
    assert result.png_text["parameters"] == SD_PARAMETERS
    assert any("'parameters'" in hint for hint in result.generator_hints)
    assert result.summary.startswith("The file says it was made by AUTOMATIC1111")


def test_comfyui_prompt_and_workflow_chunks_are_hints():
    workflow = json.dumps({"nodes": [{"type": "KSampler"}] * 500})  # long: cut short in the report
    result = read_provenance(png_with_text(prompt='{"3": {"class_type": "KSampler"}}', workflow=workflow))
    assert {"prompt", "workflow"} <= set(result.png_text) and len(result.png_text["workflow"]) < 2100
    assert sum("ComfyUI" in hint for hint in result.generator_hints) == 2
    assert "made by ComfyUI" in result.summary


def test_exif_gives_camera_and_only_the_presence_of_a_location():
    result = read_provenance(jpeg_with_exif(gps=True))
    assert result.exif == {"make": "Canon", "model": "EOS 5D", "software": "Firmware 1.1",
                           "date": "2020:01:02 03:04:05", "location_present": True}
    assert "Canon EOS 5D" in result.summary and "proves nothing" in result.summary
    assert "48" not in json.dumps(result.to_json())  # the latitude appears nowhere
    assert "location_present" not in read_provenance(jpeg_with_exif(gps=False)).exif


def test_xmp_digital_source_type_is_read():
    result = read_provenance(jpeg_with_xmp(xmp_packet(AI_SOURCE)))
    assert result.xmp["digital_source_type"] == "trainedAlgorithmicMedia"
    assert any(hint.startswith("XMP") for hint in result.generator_hints)


def test_a_plain_file_has_no_provenance_and_says_it_proves_nothing():
    result = read_provenance(plain_jpeg())
    assert (result.c2pa, result.exif, result.png_text, result.generator_hints) == (None, {}, {}, [])
    assert result.summary == NO_PROVENANCE


def test_a_file_above_the_upload_limit_is_not_read(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(png_with_text(parameters=SD_PARAMETERS))
    result = read_provenance(path, max_bytes=100)
    assert result.png_text == {} and "upload limit" in result.notes[0]


def test_cli_prints_the_json_keys(tmp_path):
    path = tmp_path / "sd.png"
    path.write_bytes(png_with_text(parameters=SD_PARAMETERS))
    done = subprocess.run([sys.executable, "-m", "gauntlet.provenance", str(path), "--json"], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert {"c2pa", "exif", "png_text", "generator_hints", "summary"} <= set(printed)
    assert printed["png_text"]["parameters"] == SD_PARAMETERS and printed["generator_hints"]


def test_provenance_module_never_imports_gradio():
    done = subprocess.run([sys.executable, "-c", "import sys, gauntlet.provenance, gauntlet.forensics.lab; "
                           "print('gradio' in sys.modules)"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.stdout.strip() == "False", done.stderr


def test_panel_shows_metadata_as_inert_text():
    result = read_provenance(png_with_text(parameters="**bold** [link](http://x) <img src=x>"))
    text = provenance_markdown(result)
    assert "\\*\\*bold\\*\\*" in text and "\\[link\\]" in text and "<img" not in text and "&lt;img" in text
    assert "What it does not prove" in text and md("a\nb") == "a b"


# ----------------------------------------------------------------------------- transforms and laundering


def test_transforms_change_the_image_as_named():
    image = noise_image(101, 60)
    assert set(TRANSFORMS) == {"jpeg", "downscale", "centre_crop", "screenshot"}
    assert apply("downscale", image).size == (50, 30)
    assert apply("centre_crop", image).size == (71, 42)
    assert apply("screenshot", image).size == (81, 48)  # shown at 80 %
    low, high = apply("jpeg", image, quality=10), apply("jpeg", image, quality=95)
    error = [np.abs(np.asarray(x, float) - np.asarray(image, float)).mean() for x in (low, high)]
    assert error[0] > error[1] > 0 and low.mode == "RGB" and low.size == image.size
    assert apply("downscale", Image.new("RGB", (1, 1))).size == (1, 1)
    with pytest.raises(ValueError, match="Unknown transform"):
        apply("blur", image)


class SizeDetector:
    """Says FAKE for images wider than ``threshold`` pixels: a crop or a downscale flips it."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold

    def predict(self, image: Image.Image) -> Prediction:
        fake = image.size[0] > self.threshold
        return Prediction({"REAL": float(not fake), "FAKE": float(fake)}, int(fake), ["REAL", "FAKE"][fake])


def test_a_verdict_that_flips_after_a_transform_is_fragile():
    image = noise_image(100, 80)
    fragile = launder(SizeDetector(75), image)
    assert [c.title for c in fragile.copies] == [title for title, _, _ in LAUNDERINGS]
    assert fragile.flipped == ["Downscaled to half", "70 % centre crop"] and fragile.fragile
    assert "Fragile" in fragile.sentence
    stable = launder(SizeDetector(10), image)
    assert not stable.fragile and "Stable" in stable.sentence and "FAKE" in stable.sentence


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> ModelCatalog:
    root = tmp_path_factory.mktemp("forensics_checkpoints")
    make_checkpoint(root / "tiny", "baseline_cnn")
    return ModelCatalog(extra_sources=(), checkpoints_dir=root, unseen={})


@pytest.fixture(scope="module")
def lab(catalog) -> ForensicsLab:
    return ForensicsLab(catalog, max_pixels=50_000_000, max_upload_bytes=20 * 1024 * 1024)


@pytest.fixture
def upload(tmp_path) -> str:
    path = tmp_path / "upload.png"
    noise_image(50, 40).save(path)
    return str(path)


def test_laundering_lab_gives_five_verdicts_with_grad_cams(lab, upload):
    report = lab.launder(upload, "tiny")
    assert len(report.copies) == 4
    for variant in [report.original, *report.copies]:
        assert variant.explanation.method == "grad_cam"
        assert variant.explanation.target_index == variant.prediction.predicted_index
        assert np.isfinite(variant.explanation.heatmap).all()
    tiles = laundering_tiles(report)
    assert [caption.split(":")[0] for _, caption in tiles] == ["Original", *[t for t, _, _ in LAUNDERINGS]]
    table = laundering_markdown(report)
    assert table.startswith(report.sentence) and table.count("(flipped)") == len(report.flipped)
    assert table.count("% FAKE") == 5


def test_launder_handler_needs_an_upload_and_returns_tiles_and_a_sentence(lab, upload):
    import gradio as gr

    tiles, sentence = make_launder_handler(lab.launder)(upload, "tiny")
    assert len(tiles) == 5 and ("Fragile" in sentence or "Stable" in sentence)
    with pytest.raises(gr.Error, match="upload an image first"):
        make_launder_handler(lab.launder)(None, "tiny")


# ----------------------------------------------------------------------------- frequency view


def test_frequency_view_works_on_the_full_resolution_centre_crop():
    view = frequency_view(noise_image(700, 300))
    assert view.spectrum.size == (CROP, 300) and view.npr.size == (CROP, 300)
    assert view.spectrum.mode == view.npr.mode == "RGB"
    assert "upsampling" in view.spectrum_caption and "NPR" in view.npr_caption
    assert frequency_view(Image.new("RGB", (1, 1))).spectrum.size == (1, 1)


def test_frequency_handler_gives_two_pictures_and_their_captions(lab, upload):
    tiles, captions = make_frequency_handler(lab.frequency)(upload)
    assert [caption for _, caption in tiles] == ["Spectrum of the fine detail", "NPR residual"]
    assert "upsampling" in captions and "NPR" in captions
    assert make_frequency_handler(lab.frequency)(None) == ([], "")


def test_npr_residual_vanishes_for_a_nearest_upsampled_image():
    small = np.random.RandomState(1).randint(0, 255, (32, 32, 3), np.uint8)
    upsampled = Image.fromarray(small.repeat(2, axis=0).repeat(2, axis=1))
    assert npr_residual(upsampled).max() == 0
    assert npr_residual(noise_image(64, 64)).max() == pytest.approx(1.0)


def test_spectrum_peaks_at_the_frequency_of_a_periodic_pattern():
    x = np.arange(128)
    stripes = (128 + 60 * np.sin(2 * np.pi * x / 8))[None, :].repeat(128, axis=0)
    spectrum = highpass_spectrum(Image.fromarray(stripes.astype(np.uint8)).convert("RGB"))
    row = spectrum[64]
    assert row[64 + 16] == pytest.approx(1.0) and row[64 - 16] == pytest.approx(1.0)  # 128 / 8 = 16 bins out


# ----------------------------------------------------------------------------- agreement and sanity check


def test_rank_correlation_is_spearman_on_a_common_grid():
    ramp = np.tile(np.linspace(0, 1, 80, dtype=np.float32), (60, 1))
    assert rank_correlation(ramp, ramp ** 3) == pytest.approx(1.0)  # same ranking, other scale
    assert rank_correlation(ramp, 1 - ramp) == pytest.approx(-1.0)
    assert rank_correlation(ramp, np.tile(np.linspace(0, 1, 40, dtype=np.float32), (30, 1))) == pytest.approx(1.0)
    assert rank_correlation(ramp, np.zeros((60, 80), np.float32)) == 0.0


def test_agreement_in_words():
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
    noise = np.random.RandomState(0).rand(64, 64).astype(np.float32)
    agreeing = [("Grad-CAM", ramp), ("Score-CAM", ramp ** 2), ("LIME", np.sqrt(ramp))]
    assert verdict_words(pairwise_agreement(agreeing)) == AGREE
    assert len(pairwise_agreement(agreeing)) == 3
    assert verdict_words(pairwise_agreement([("A", ramp), ("B", 1 - ramp)])) == DISAGREE
    assert verdict_words(pairwise_agreement([("A", ramp), ("B", ramp), ("C", 1 - ramp)])) == DISAGREE
    assert verdict_words(pairwise_agreement([("A", ramp), ("B", ramp + noise * 3)])) == PARTLY
    text = agreement_text(agreeing)
    assert "the methods agree on where the evidence is" in text and "Grad-CAM vs Score-CAM: ρ = +1.00" in text
    assert agreement_text(agreeing[:1]) == ""
    assert "they disagree: read none of them literally" in agreement_text([("A", ramp), ("B", 1 - ramp)])


def test_random_head_copy_changes_only_the_head(tiny_detectors):
    detector = tiny_detectors["efficientnet_lite0"]
    randomised = with_random_head(detector, seed=3)
    before, after = detector.model.state_dict(), randomised.model.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(name.startswith("head.") for name in changed)
    assert with_random_head(detector, seed=3).model.state_dict()["head.3.weight"].equal(after["head.3.weight"])
    assert randomised.model is not detector.model


def test_sanity_check_compares_with_the_random_head_model(tiny_detectors, rgb_image):
    detector = tiny_detectors["efficientnet_lite0"]
    with build_explainer("grad_cam", detector, "last", "fast") as explainer:
        explanation = explainer.explain(rgb_image)
    check = sanity_check(detector, explanation, rgb_image)
    assert check.method == "grad_cam" and -1 <= check.rho <= 1 and check.passed == (check.rho < 0.5)
    assert "shows the image more than the model's reasoning" in sanity_sentence("Grad-CAM", 0.9)
    assert "depends on what the model learned" in sanity_sentence("Grad-CAM", 0.1)


def test_agreement_and_sanity_handlers_read_the_stored_explanations(catalog, lab, upload):
    explanations = [result.explanation for result in catalog.analyse(upload, "tiny", ["grad_cam", "ablation_cam"]).results]
    assert "rank correlation Grad-CAM vs Ablation-CAM" in agreement_handler(explanations)
    assert agreement_handler([]) == ""
    sanity = make_sanity_handler(lab.sanity)(upload, "tiny", "last", explanations)
    assert sanity.count("**Sanity check:**") == 2
    slow = [explanations[0]]
    slow[0].seconds = 600
    assert "Not repeated" in make_sanity_handler(lab.sanity)(upload, "tiny", "last", slow)


def test_provenance_handler_turns_an_upload_into_the_panel(tmp_path):
    path = tmp_path / "signed.jpg"
    path.write_bytes(signed_jpeg())
    text = make_provenance_handler(read_provenance)(str(path))
    assert "What the file says" in text and "signature Valid" in text and "generative AI" in text
    assert make_provenance_handler(read_provenance)(None) == ""


# ----------------------------------------------------------------------------- through the running app


@pytest.fixture(scope="module")
def app_client(tmp_path_factory):
    from gradio_client import Client

    from benchmarks.server import AppServer

    root = tmp_path_factory.mktemp("app_checkpoints")
    make_checkpoint(root / "tiny", "baseline_cnn")
    with AppServer({"GAUNTLET_CHECKPOINTS_DIR": str(root)}) as server:
        yield Client(server.url, verbose=False)


def test_every_lab_part_is_reachable_through_the_api(app_client, tmp_path):
    from gradio_client import handle_file

    path = tmp_path / "sd.png"
    path.write_bytes(png_with_text(parameters=SD_PARAMETERS))
    upload = handle_file(str(path))
    assert "made by Stable Diffusion" in app_client.predict(upload, api_name="/provenance")
    pictures, captions = app_client.predict(upload, api_name="/frequency")
    assert len(pictures) == 2 and "NPR" in captions
    tiles, sentence = app_client.predict(upload, "tiny", api_name="/launder")
    assert len(tiles) == 5 and ("Fragile" in sentence or "Stable" in sentence)
    app_client.predict(upload, "tiny", ["grad_cam", "ablation_cam"], "fast", "last", api_name="/analyse")
    assert "Grad-CAM vs Ablation-CAM" in app_client.predict(api_name="/agreement")
    assert app_client.predict(upload, "tiny", "last", api_name="/sanity_check").count("Sanity check") == 2
