"""The app's library layer: model catalogue, analysis, time limits, captions."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_checkpoint
from gauntlet.checkpoint import CheckpointConfig
from gauntlet.explain.base import ExplanationTimeout
from gauntlet.images import ImageError
from gauntlet.explain.faithfulness import explanation_faithfulness
from gauntlet.model_card import unseen_accuracy
from gauntlet.present import explanation_notes, method_caption, track_record, verdict_sentence
from benchmarks.explain import default_checkpoint
from benchmarks.load import pick_model
from gauntlet.service import ModelCatalog, default_bundled_model, default_model_order, selector_label


@pytest.fixture
def catalog(tmp_path):
    make_checkpoint(tmp_path / "baseline-cifake", "baseline_cnn", display_name="Baseline", datasets=["cifake"],
                    default_rank=1)
    make_checkpoint(tmp_path / "lite0-mixed", "efficientnet_lite0", display_name="Lite0", datasets=["rvaa", "cifake"],
                    default_rank=0)
    return ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path)


def test_catalog_lists_bundled_models_best_first_with_training_data(catalog):
    assert catalog.choices() == [("Lite0 — trained on RVAA + CIFAKE", "lite0-mixed"),
                                 ("Baseline — trained on CIFAKE", "baseline-cifake")]
    assert catalog.default_key == "lite0-mixed"


def test_models_are_ranked_by_their_config_not_their_folder_name():
    configs = {name: CheckpointConfig(architecture="baseline_cnn", input_size=32, default_rank=rank) for name, rank in
               [("lite0-mixed", 2), ("z", 0), ("a-unranked", None), ("baseline-rvaa", 1)]}
    assert default_model_order(configs) == ["z", "baseline-rvaa", "lite0-mixed", "a-unranked"]


def test_selector_names_the_training_data_from_the_structured_field():
    config = CheckpointConfig(architecture="baseline_cnn", input_size=32, display_name="Soup", datasets=["mixed"],
                              trained_on="greedy soup of 3 candidates, kept a, b; each: rvaa: 1 training and 1 ...")
    assert selector_label(config) == "Soup — trained on MIXED"
    assert selector_label(CheckpointConfig(architecture="baseline_cnn", input_size=32, name="old")) == "old"
    bundled = ModelCatalog(extra_sources=()).entries.values()
    assert all(entry.config.datasets for entry in bundled), "every bundled config names its datasets"
    assert [entry.key for entry in bundled][0] == "lite0-mixed", "the app's default model leads the selector"


def test_benchmarks_measure_the_model_the_app_shows_first(catalog, tmp_path, monkeypatch):
    assert default_bundled_model(tmp_path) == catalog.default_key == "lite0-mixed"
    assert pick_model(tmp_path / "work", tmp_path, None) == (tmp_path, "lite0-mixed")
    monkeypatch.setenv("GAUNTLET_CHECKPOINTS_DIR", str(tmp_path))
    assert default_checkpoint() == "lite0-mixed"
    assert default_bundled_model(tmp_path / "empty") is None


def test_detector_and_explainers_are_built_once(catalog, rgb_image):
    assert catalog.detector("baseline-cifake") is catalog.detector("baseline-cifake")
    explainers = catalog.explainers("baseline-cifake")
    assert explainers.get("grad_cam", "fast") is explainers.get("grad_cam", "fast")
    assert explainers.detector.model is not catalog.detector("baseline-cifake").model, "explanations use a copy"
    verdict = catalog.predict(rgb_image, "baseline-cifake").prediction
    assert verdict.probabilities == explainers.detector.predict(rgb_image).probabilities


def test_verdicts_say_how_often_the_model_was_right_on_its_test_set(tmp_path, rgb_image):
    matrix = {"accuracy": 0.75, "n": 144, "confusion_matrix": [[50, 14], [22, 58]]}
    make_checkpoint(tmp_path / "lite0-rvaa", "baseline_cnn", metrics={"validation": {"accuracy": 0.9},
                                                                      "rvaa_test": matrix})
    make_checkpoint(tmp_path / "other", "baseline_cnn")
    unseen = {"lite0-rvaa": {"faces": (0.485, 400), "photos_mixed": (0.57, 100)}}
    catalog = ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path, unseen=unseen)
    record = catalog.predict(rgb_image, "lite0-rvaa").track_record
    assert record.startswith("On its own test set, RVAA test with 144 images, this model was right 75.0% of the time")
    assert "(95% interval 67.3% to 81.4%)" in record
    assert record.endswith("never trained on, it was right on 48.5% of faces (95% interval 43.6% to 53.4%) and on "
                           "57.0% of photos_mixed (95% interval 47.2% to 66.3%) — no better than a coin toss.")
    assert catalog.predict(rgb_image, "other").track_record == ""
    plain = ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path).predict(rgb_image, "lite0-rvaa").track_record
    assert plain.endswith("wrong far more often (see the Model card tab).")
    worse = track_record(catalog.detector("lite0-rvaa").config, {"faces": (0.4075, 400)})
    assert "40.8% of faces" in worse and "coin" not in worse, "clearly below chance is not a coin toss"


def test_unseen_accuracy_reads_the_generalization_benchmark(tmp_path):
    assert unseen_accuracy(tmp_path / "missing.json") == {}
    path = tmp_path / "generalization.json"
    path.write_text(json.dumps({"default": "a", "checkpoints": {"a": {"unseen_mean": 0.6, "sets": {
        "faces": {"accuracy": 0.5, "n": 400}, "generators_real_photos_test": {"accuracy": 0.7, "n": 516}}}}}))
    assert unseen_accuracy(path) == {"a": {"faces": (0.5, 400), "generators_real_photos_test": (0.7, 516)}}


def test_analyse_returns_verdict_and_one_overlay_per_method(catalog, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.RandomState(1).randint(0, 255, (20, 30, 3), dtype=np.uint8)).save(path)
    analysis = catalog.analyse(str(path), "baseline-cifake", ["grad_cam", "score_cam", "lime"], "fast")
    assert set(analysis.prediction.probabilities) == {"REAL", "FAKE"}
    assert abs(sum(analysis.prediction.probabilities.values()) - 1) < 1e-5
    assert [(r.method, r.variant) for r in analysis.results] == [("grad_cam", "fast"), ("score_cam", "fast"),
                                                                 ("lime", "fast")]
    for result in analysis.results:
        assert result.overlay.size == result.explanation.image.size == (256, 171), "small images are shown enlarged"
        assert result.explanation.target_index == analysis.prediction.predicted_index
        assert result.faithfulness is None
    notes = explanation_notes(analysis.results)
    assert "Score-CAM" in notes and "LIME" in notes and "red" in notes.lower()
    assert method_caption(analysis.results[0].explanation).startswith("Grad-CAM (fast) · ")
    assert f"explains {analysis.prediction.predicted_label}" in notes
    assert verdict_sentence(analysis.prediction).startswith("The model thinks this image is")


def test_faithfulness_is_measured_on_request_and_put_in_words(catalog, rgb_image):
    plain = catalog.analyse(rgb_image, "baseline-cifake", ["grad_cam", "ablation_cam"], "fast")
    assert [r.faithfulness for r in plain.results] == [None, None]
    assert "Faithfulness" not in explanation_notes(plain.results)
    measured = catalog.analyse(rgb_image, "baseline-cifake", ["grad_cam", "ablation_cam"], "fast", faithfulness=True)
    detector = catalog.explainers("baseline-cifake").detector
    prepared = detector.prepare(rgb_image)
    for result in measured.results:
        assert result.faithfulness == explanation_faithfulness(detector, result.explanation, prepared=prepared)
        assert 0 <= result.faithfulness.deletion_auc <= 1 and 0 <= result.faithfulness.insertion_auc <= 1
    notes = explanation_notes(measured.results)
    assert notes.count("*Faithfulness:*") == 2
    assert f"deletion AUC {measured.results[1].faithfulness.deletion_auc:.2f}" in notes
    again = catalog.analyse(rgb_image, "baseline-cifake", ["grad_cam", "ablation_cam"], "fast")
    assert [r.faithfulness for r in again.results] == [None, None], "only shown when asked for"


def test_an_unknown_model_is_a_user_error(catalog):
    from gauntlet.errors import UserError

    with pytest.raises(UserError, match="Unknown model"):
        catalog.detector("no-such-model")


def test_bad_upload_is_a_human_error(catalog, tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not an image")
    with pytest.raises(ImageError, match="not an image"):
        catalog.analyse(str(path), "baseline-cifake", ["grad_cam"])


def test_slow_explanations_are_stopped_and_leave_the_model_intact(catalog, rgb_image):
    catalog.explain_timeout_s = 0.000001  # what ModelCatalog.from_settings takes from GAUNTLET_EXPLAIN_TIMEOUT_S
    detector = catalog.explainers("lite0-mixed").detector
    before = detector.predict(rgb_image).probabilities
    with pytest.raises(ExplanationTimeout, match="took longer than"):
        catalog.analyse(rgb_image, "lite0-mixed", ["ablation_cam"], "full")
    assert not detector.model._forward_pre_hooks, "the time-limit hook is removed"
    assert type(detector.model.features).__name__ == "EfficientNetLiteFeatures", "ablation layer swapped back"
    assert detector.predict(rgb_image).probabilities == before


def test_warm_up_on_a_busy_host_stops_at_the_time_limit_and_keeps_the_model(catalog):
    catalog.explain_timeout_s = 0.000001
    catalog.warm_up()  # the app must still start
    assert "lite0-mixed" in catalog._detectors


def test_warm_up_loads_the_default_model_and_its_explainers(catalog):
    catalog.warm_up()
    assert list(catalog._detectors) == ["lite0-mixed"]
    assert set(catalog.explainers("lite0-mixed")._built) == {
        (method, "fast", "last") for method in ("score_cam", "ablation_cam", "lime")}


@pytest.fixture
def spies(monkeypatch):
    """Counts of decodes (file -> pixels), verdicts, preprocessings and explainer runs."""
    import gauntlet.images
    from gauntlet.detector import Detector
    from gauntlet.explain.base import Explainer

    counts = {"decode": 0, "predict": 0, "prepare": 0, "explain": 0}

    def counting(owner, name, count):
        original = getattr(owner, name)

        def spy(*args, **kwargs):
            counts[count] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, spy)

    counting(gauntlet.images, "_decode", "decode")
    counting(Detector, "predict", "predict")
    counting(Detector, "prepare", "prepare")
    counting(Explainer, "explain", "explain")
    return counts


def photo_file(folder, name: str = "photo.png"):
    path = folder / name
    Image.fromarray(np.random.RandomState(1).randint(0, 255, (20, 30, 3), dtype=np.uint8)).save(path)
    return path


def test_an_analysis_decodes_scores_and_preprocesses_its_image_once(catalog, tmp_path, spies):
    catalog.analyse(str(photo_file(tmp_path)), "lite0-mixed", ["grad_cam", "score_cam", "ablation_cam", "lime"],
                    faithfulness=True)
    # Detector.predict preprocesses for the verdict; the four explainers and their faithfulness share one more
    assert spies == {"decode": 1, "predict": 1, "prepare": 2, "explain": 4}


def test_explanations_stream_in_one_by_one_grad_cam_first(catalog, rgb_image):
    verdict = catalog.predict(rgb_image, "baseline-cifake")
    stream = list(catalog.explain_stream(verdict, ["lime", "score_cam", "grad_cam"]))
    assert [[r.method for r in step.results] for step in stream] == [
        [], ["grad_cam"], ["grad_cam", "lime"], ["grad_cam", "lime", "score_cam"]]
    assert all(step.prediction == verdict.prediction and step.image is verdict.image for step in stream)
    again = list(catalog.explain_stream(verdict, ["lime", "score_cam", "grad_cam"]))
    assert len(again) == 1, "finished explanations come at once"
    assert [r.method for r in again[0].results] == ["lime", "score_cam", "grad_cam"]
    assert {r.method: r for r in again[0].results} == {r.method: r for r in stream[-1].results}


def test_finished_explanations_are_reused_for_the_same_pixels(catalog, tmp_path, rgb_image, spies):
    first = catalog.analyse(str(photo_file(tmp_path, "a.png")), "baseline-cifake", ["score_cam", "lime"])
    assert spies["explain"] == 2
    again = catalog.analyse(str(photo_file(tmp_path, "b.png")), "baseline-cifake", ["lime", "score_cam"])
    assert spies["explain"] == 2, "same pixels, another file: nothing is recomputed"
    assert spies["prepare"] == spies["predict"] + 1, "nor preprocessed beyond its verdict"
    assert [r.method for r in again.results] == ["lime", "score_cam"], "cached results come in the order asked"
    assert again.results[0] is first.results[1]
    catalog.analyse(str(photo_file(tmp_path, "c.png")), "baseline-cifake", ["lime"], layers="last3")
    catalog.analyse(str(photo_file(tmp_path, "d.png")), "baseline-cifake", ["lime"], variant="full")
    catalog.analyse(str(photo_file(tmp_path, "e.png")), "lite0-mixed", ["lime"])
    catalog.analyse(rgb_image, "baseline-cifake", ["lime"])
    assert spies["explain"] == 6, "other layers, variant, model or pixels are computed"


def test_the_explanation_cache_is_bounded(tmp_path):
    from gauntlet.lru import SharedLRU

    make_checkpoint(tmp_path / "tiny", "baseline_cnn")
    catalog = ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path, explanation_cache=2)
    files = []
    for seed in range(3):
        image = Image.fromarray(np.random.RandomState(seed).randint(0, 255, (8, 8, 3), dtype=np.uint8))
        (result,) = catalog.analyse(image, "tiny", ["grad_cam"]).results
        files.append(Path(result.overlay_file))
        assert Image.open(files[-1]).size == result.overlay.size, "the overlay is saved once, as a file"
    assert len(catalog.cache) == 2
    assert [file.exists() for file in files] == [False, True, True], "an evicted result's file goes with it"
    cache = SharedLRU(2)
    cache.put("a", 1), cache.put("b", 2), cache.get("a"), cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3), "the least recently used goes"
    disabled = SharedLRU(0)
    disabled.put("a", 1)
    assert disabled.get("a") is None and len(disabled) == 0


def test_each_explanation_worker_has_its_own_model_copy(tmp_path, rgb_image):
    make_checkpoint(tmp_path / "tiny", "baseline_cnn")
    catalog = ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path, explanation_workers=2)
    verdict_model = catalog.detector("tiny").model
    models = {id(s.detector.model) for s in catalog._explainers["tiny"]} | {id(verdict_model)}
    assert len(models) == 3
    with catalog.explaining("tiny"):  # one worker busy: the other one explains (with one worker this would wait)
        assert len(catalog.analyse(rgb_image, "tiny", ["grad_cam"]).results) == 1


def test_cached_explanations_need_no_idle_worker(tmp_path, rgb_image):
    """Several analyses run at once (GAUNTLET_ANALYSE_CONCURRENCY): one whose explanations are cached is
    answered while the only worker is busy, instead of queueing behind it."""
    make_checkpoint(tmp_path / "tiny", "baseline_cnn")
    catalog = ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path, explanation_workers=1)
    first = catalog.analyse(rgb_image, "tiny", ["grad_cam"])
    with catalog.explaining("tiny"):  # the only worker is busy: a cached answer must not need it
        again = catalog.analyse(rgb_image, "tiny", ["grad_cam"])
    assert again.results[0] is first.results[0]


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread nice values are a Linux feature")
def test_explanations_compute_on_a_low_priority_thread(tmp_path, rgb_image, monkeypatch):
    """Verdicts must get the CPU first on a busy 2-core Space: explanations run on the worker's own thread,
    niced, while the request's own thread (a verdict's, in the app) keeps its priority."""
    import threading

    from gauntlet.explain.base import Explainer
    from gauntlet.explain_worker import EXPLAIN_NICENESS

    seen = []
    original = Explainer.explain

    def spy(self, *args, **kwargs):
        seen.append((threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Explainer, "explain", spy)
    make_checkpoint(tmp_path / "tiny", "baseline_cnn")
    catalog = ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path)
    catalog.analyse(rgb_image, "tiny", ["grad_cam", "lime"])
    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert len(seen) == 2 and len({thread for thread, _ in seen}) == 1, "one worker thread ran both"
    assert seen[0][0] != threading.get_native_id()
    assert seen[0][1] == min(here + EXPLAIN_NICENESS, 19) and here < seen[0][1]


def test_explanations_computed_in_a_separate_process_match_the_thread_ones(tmp_path, rgb_image):
    """The app explains in a low-priority process of its own (GAUNTLET_EXPLAIN_PROCESS): same heatmaps, same
    faithfulness scores, and the verdict's model in this process is never the one explaining."""
    make_checkpoint(tmp_path / "tiny", "baseline_cnn")
    apart = ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path, explain_processes=True, explanation_cache=0)
    here = ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path, explanation_cache=0)
    try:
        far = apart.analyse(rgb_image, "tiny", ["grad_cam", "lime"], faithfulness=True)
        near = here.analyse(rgb_image, "tiny", ["grad_cam", "lime"], faithfulness=True)
        for a, b in zip(far.results, near.results):
            assert a.method == b.method
            np.testing.assert_allclose(a.explanation.heatmap, b.explanation.heatmap, atol=1e-5)
            assert a.faithfulness == pytest.approx(b.faithfulness, abs=1e-5)
        assert [type(w).__name__ for w in apart._workers.values()] == ["ProcessWorker"]
    finally:
        for worker in apart._workers.values():
            worker.close()


def test_a_dead_explanation_process_is_a_message_and_the_next_request_gets_a_new_one(tmp_path, rgb_image):
    import signal

    from gauntlet.errors import UserError

    make_checkpoint(tmp_path / "tiny", "baseline_cnn")
    catalog = ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path, explain_processes=True, explanation_cache=0)
    worker = catalog._workers[catalog.explainers("tiny")]
    try:
        catalog.analyse(rgb_image, "tiny", ["grad_cam"])
        for pid in list(worker._pool._processes):  # what the kernel does to a process that runs out of memory
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(UserError, match="stopped unexpectedly"):
            catalog.analyse(rgb_image, "tiny", ["grad_cam"])
        assert len(catalog.analyse(rgb_image, "tiny", ["grad_cam"]).results) == 1
    finally:
        worker.close()


def test_a_stream_left_half_way_frees_its_worker(tmp_path, rgb_image):
    """A visitor who leaves mid-stream must not keep the only explanation worker."""
    make_checkpoint(tmp_path / "tiny", "baseline_cnn")
    catalog = ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path, explanation_workers=1)
    stream = catalog.explain_stream(catalog.predict(rgb_image, "tiny"), ["grad_cam", "lime"])
    next(stream), next(stream)  # the verdict, then Grad-CAM: the worker is held for LIME
    assert catalog._idle["tiny"].empty()
    stream.close()
    assert not catalog._idle["tiny"].empty()


def test_background_work_takes_the_worker_only_when_no_visitor_waits(tmp_path, monkeypatch):
    """The quiz's start-up warm-up must never hold up a visitor: when the busy worker is freed, a visitor who
    is waiting gets it before background work that waited longer."""
    import threading
    import time

    import gauntlet.service
    monkeypatch.setattr(gauntlet.service, "BACKGROUND_POLL_S", 0.01)
    make_checkpoint(tmp_path / "tiny", "baseline_cnn")
    catalog = ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path, explanation_workers=1)
    order = []

    def take(who: str, background: bool) -> None:
        with catalog.explaining("tiny", background=background):
            order.append(who)
            time.sleep(0.05)

    with catalog.explaining("tiny"):  # a visitor's explanation is running
        warm_up = threading.Thread(target=take, args=("background", True))
        warm_up.start()
        time.sleep(0.1)
        visitor = threading.Thread(target=take, args=("visitor", False))
        visitor.start()
        deadline = time.monotonic() + 10
        while not catalog._waiting.get("tiny") and time.monotonic() < deadline:
            time.sleep(0.005)
    visitor.join(5), warm_up.join(5)
    assert order == ["visitor", "background"]
    with catalog.explaining("tiny", background=True):  # nobody waits: background work starts at once
        assert catalog._idle["tiny"].empty()


def test_a_picture_is_previewed_from_one_file_written_once(tmp_path, rgb_image):
    """gradio rewrites a returned PIL image in its cache while another visitor may be downloading it: the
    preview is a file the catalogue writes once (atomically) per picture and reuses, bounded like the cache."""
    make_checkpoint(tmp_path / "tiny", "baseline_cnn")
    catalog = ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path, explanation_cache=1)
    first = catalog.predict(rgb_image, "tiny").preview_file
    written = os.stat(first).st_mtime_ns
    assert catalog.predict(rgb_image.copy(), "tiny").preview_file == first and os.stat(first).st_mtime_ns == written
    other = catalog.predict(rgb_image.transpose(0), "tiny").preview_file
    assert other != first and not os.path.exists(first), "the least recently used preview is deleted"
    assert ModelCatalog(extra_sources=(), checkpoints_dir=tmp_path, explanation_cache=0).predict(
        rgb_image, "tiny").preview_file is None
