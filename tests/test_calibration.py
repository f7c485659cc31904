"""Calibrated three-way verdicts: the temperature, the "not sure" band, and the words people read."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_checkpoint
from gauntlet.calibration import NOT_SURE, Calibration, CalibrationError
from gauntlet.checkpoint import load_checkpoint, read_config, write_config
from gauntlet.detector import Detector, Prediction
from gauntlet.present import verdict_sentence, verdict_short
from gauntlet.teaching.classroom import ItemStat, Room
from gauntlet.teaching.decks import Deck, DeckItem
from gauntlet.teaching.class_report import ClassReport, ItemReport, Tally
from gauntlet.teaching.quiz import Outcome, Progress, score
from gauntlet.teaching.quiz_present import reveal_markdown, summary_markdown, teacher_markdown


def test_the_band_decides_which_verdicts_are_sure():
    calibration = Calibration.from_config({"temperature": 1.5, "not_sure": [0.2, 0.85]})
    probabilities = np.array([0.0, 0.2, 0.21, 0.5, 0.84, 0.85, 1.0])
    assert calibration.is_sure(probabilities).tolist() == [True, True, False, False, False, True, True]
    assert calibration.is_sure(0.3) is False and calibration.is_sure(0.9) is True


def test_no_calibration_is_temperature_one_and_always_sure():
    for missing in ({}, None):
        calibration = Calibration.from_config(missing)
        assert (calibration.temperature, calibration.calibrated) == (1.0, False)
        assert calibration.is_sure(np.linspace(0, 1, 101)).all()


def test_temperature_divides_the_logits():
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    calibrated = Calibration(temperature=3.0).rescale(torch.softmax(logits, dim=1))
    assert torch.allclose(calibrated, torch.softmax(logits / 3.0, dim=1))
    assert calibrated[0, 0] < torch.softmax(logits, dim=1)[0, 0]  # a higher temperature is less extreme


def test_temperature_of_a_mirror_averaged_verdict_scales_its_logit():
    averaged = torch.tensor([[0.2, 0.8]])  # the mean of two passes' probabilities
    fake = Calibration(temperature=2.0).rescale(averaged)[0, 1]
    assert float(fake) == pytest.approx(1 / (1 + np.exp(-np.log(0.8 / 0.2) / 2.0)))


@pytest.mark.parametrize("bad", [{"temperature": 0}, {"temperature": "hot"}, {"not_sure": [0.6, 0.9]},
                                 {"not_sure": [0.1, 0.4]}, {"not_sure": [0.2]}, {"not_sure": 0.3},
                                 {"not_sure": [-0.1, 0.9]}])
def test_malformed_calibration_is_refused_in_words(bad):
    with pytest.raises(CalibrationError, match="calibration"):
        Calibration.from_config(bad)


def test_old_configs_without_calibration_still_load(tmp_path):
    folder = make_checkpoint(tmp_path / "old", "baseline_cnn")
    assert read_config(folder).calibration == {}


@pytest.fixture(scope="module")
def calibrated_folder(tmp_path_factory):
    calibration = {"temperature": 4.0, "not_sure": [0.0, 1.0], "fitted_on": "nothing", "command": "by hand"}
    return make_checkpoint(tmp_path_factory.mktemp("cal") / "cal", "baseline_cnn", seed=2, calibration=calibration)


def test_detector_shows_calibrated_probabilities_and_argmax(calibrated_folder, rgb_image):
    detector = Detector(load_checkpoint(str(calibrated_folder)))
    batch = detector.preprocess(rgb_image)
    with torch.no_grad():
        expected = torch.softmax(detector.model(batch) / 4.0, dim=1)[0]
    prediction = detector.predict(rgb_image)
    assert [prediction.probabilities[label] for label in ("REAL", "FAKE")] == pytest.approx(expected.tolist())
    assert prediction.predicted_index == int(expected.argmax()) and prediction.predicted_label in ("REAL", "FAKE")
    assert detector.probabilities(batch)[0].tolist() != pytest.approx(expected.tolist())  # explanations: raw scores
    assert prediction.sure is False and prediction.verdict_label == NOT_SURE  # a band of [0, 1]: nothing is sure


def test_the_same_weights_without_calibration_are_sure(calibrated_folder, rgb_image):
    config = read_config(calibrated_folder)
    config.calibration = {}
    checkpoint = load_checkpoint(str(calibrated_folder))
    checkpoint.config = config
    prediction = Detector(checkpoint).predict(rgb_image)
    assert prediction.sure and prediction.verdict_label == prediction.predicted_label


def test_a_band_around_the_score_makes_the_verdict_unsure(tmp_path, rgb_image):
    folder = make_checkpoint(tmp_path / "band", "baseline_cnn", seed=5)
    fake = Detector(load_checkpoint(str(folder))).predict(rgb_image).fake_probability
    config = read_config(folder)
    config.calibration = {"temperature": 1.0, "not_sure": [min(fake, 0.5) - 0.01, max(fake, 0.5) + 0.01]}
    write_config(config, folder)
    assert Detector(load_checkpoint(str(folder))).predict(rgb_image).sure is False
    config.calibration["not_sure"] = [0.5, 0.5]
    write_config(config, folder)
    assert Detector(load_checkpoint(str(folder))).predict(rgb_image).sure is True


def _prediction(label: str, sure: bool) -> Prediction:
    probabilities = {"REAL": 0.38, "FAKE": 0.62} if label == "FAKE" else {"REAL": 0.62, "FAKE": 0.38}
    return Prediction(probabilities, int(label == "FAKE"), label, sure)


def test_verdict_words_say_when_the_model_is_not_sure():
    unsure, sure = _prediction("FAKE", False), _prediction("FAKE", True)
    assert "**not sure**" in verdict_sentence(unsure) and "AI-generated (62%)" in verdict_sentence(unsure)
    assert verdict_sentence(sure).startswith("The model thinks this image is **made by a generative model")
    assert "not sure" not in verdict_sentence(sure)
    assert verdict_short(unsure) == "not sure (leans FAKE, 62%)" and verdict_short(sure) == "FAKE (62%)"


def test_quiz_reveal_and_teacher_view_say_not_sure():
    item = DeckItem("x-01", "faces/FAKE/a.jpg", "FAKE", "faces", "Look at the ears.")
    unsure = Outcome(item, "REAL", False, _prediction("FAKE", False), Image.new("RGB", (8, 8)), "score_cam")
    text = reveal_markdown(unsure)
    assert "**not sure**" in text and "The model gave **no verdict** (its lean was right)." in text
    sure = Outcome(item, "REAL", False, _prediction("REAL", True), Image.new("RGB", (8, 8)), "score_cam")
    assert "The model was **wrong**." in reveal_markdown(sure)
    room = Room("ABCD", "demo", "tiny", False)
    reports = [ItemReport(item, ItemStat("x-01", 4, 1), _prediction("REAL", False))]
    report = ClassReport(room, reports, [], Tally(), 0, 0, 0, {}, None)
    assert "| x-01 | FAKE | none visible | 4 | 25% | not sure (leans REAL, 62%) | no verdict (lean wrong) |" in \
        teacher_markdown(report)


def test_quiz_summary_counts_the_models_unsure_answers():
    deck = Deck("d", "Deck", "", tuple(DeckItem(f"d-{i}", f"x/{i}.jpg", truth, "src", "lesson")
                                       for i, truth in enumerate(["FAKE", "REAL", "FAKE"])))
    progress = Progress("d", "tiny", [["d-0", "FAKE"], ["d-1", "FAKE"], ["d-2", "REAL"]])
    verdicts = {"d-0": _prediction("FAKE", False), "d-1": _prediction("REAL", True), "d-2": _prediction("REAL", False)}
    summary = score(deck, progress.answers, verdicts)
    assert (summary.model_right, summary.model_not_sure) == (2, 2)
    assert "**not sure** on 2 of these images" in summary_markdown(summary)
    assert "not sure" not in summary_markdown(score(deck, progress.answers,
                                                     {k: _prediction("FAKE", True) for k in verdicts}))


def test_the_app_verdict_says_not_sure(calibrated_folder, rgb_image):
    import gradio as gr

    from gauntlet.service import ModelCatalog
    from ui.detector_tab import DetectorOutputs, make_predict_handler

    catalog = ModelCatalog(extra_sources=(), checkpoints_dir=calibrated_folder.parent, unseen={})
    out = DetectorOutputs(gr.Image(), gr.Label(), gr.Markdown(), gr.Gallery(), gr.Markdown(), gr.State(), gr.State(),
                          gr.State())
    shown = make_predict_handler(catalog.predict, out)(rgb_image, "cal")
    probabilities, summary = shown[out.verdict], shown[out.summary]
    assert "**not sure**" in summary and sum(probabilities.values()) == pytest.approx(1.0)
