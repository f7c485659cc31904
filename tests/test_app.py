"""The detector tab's handler called directly, and the whole app through gradio_client."""
from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from app_process import running_app
from conftest import make_checkpoint
from gauntlet.service import ModelCatalog
from gauntlet.settings import REPO_ROOT
from gauntlet.teaching.decks import starter_examples
from ui.detector_tab import DetectorOutputs, make_analyse_handler, make_predict_handler


@pytest.fixture
def checkpoints(tmp_path):
    folder = tmp_path / "checkpoints"
    make_checkpoint(folder / "tiny-baseline", "baseline_cnn", display_name="Tiny", trained_on="noise",
                    metrics={"rvaa_test": {"accuracy": 0.5, "n": 10, "confusion_matrix": [[3, 2], [3, 2]]}})
    return folder


@pytest.fixture
def photo(tmp_path) -> str:
    path = tmp_path / "upload.png"
    Image.fromarray(np.random.RandomState(3).randint(0, 255, (40, 50, 3), dtype=np.uint8)).save(path)
    return str(path)


def outputs() -> DetectorOutputs:
    return DetectorOutputs(gr.Image(), gr.Label(), gr.Markdown(), gr.Gallery(), gr.Markdown(), gr.State(), gr.State(),
                           gr.State())


def handlers(checkpoints, out: DetectorOutputs):
    catalog = ModelCatalog(extra_sources=(), checkpoints_dir=checkpoints)
    return (make_predict_handler(catalog.predict, out),
            make_analyse_handler(catalog.predict, catalog.explain_stream, out))


def analyse(handler, *args, **kwargs) -> list[dict]:
    """Every value the streaming handler yields."""
    return list(handler(*args, progress=lambda *a, **k: None, **kwargs))


def test_handler_streams_verdict_gallery_and_notes(checkpoints, photo):
    out = outputs()
    _, handler = handlers(checkpoints, out)
    steps = analyse(handler, photo, "tiny-baseline", ["score_cam", "grad_cam"], "fast", "last", [])
    assert [len(step[out.gallery]) for step in steps] == [0, 1, 2], "each explanation appears as it finishes"
    assert "Still working on: Score-CAM, Grad-CAM" in steps[0][out.notes]
    final = steps[-1]
    with Image.open(final[out.preview]) as preview:  # written once per picture: a file, never re-encoded per visitor
        assert preview.size == (50, 40)
    assert set(final[out.verdict]) == {"REAL", "FAKE"}
    assert [caption.split(" (")[0] for _, caption in final[out.gallery]] == ["Grad-CAM", "Score-CAM"]
    assert "Still working" not in final[out.notes]
    assert [e.method for e in final[out.explanations]] == ["grad_cam", "score_cam"], "kept for the forensics panel"
    summary = final[out.summary]
    assert "The model thinks" in summary and "Tiny" in summary
    assert "RVAA test with 10 images, this model was right 50.0% of the time (95% interval 23.7% to 76.3%)" in summary
    history = final[out.history]
    assert len(history) == 1 and history[0]["verdict"] in {"REAL", "FAKE"}
    measured_notes = analyse(handler, photo, "tiny-baseline", ["grad_cam"], "fast", "last", [], True)[-1][out.notes]
    assert "Faithfulness" not in final[out.notes] and "deletion AUC" in measured_notes


def test_an_upload_is_decoded_and_scored_once_for_verdict_and_explanations(checkpoints, photo, monkeypatch):
    import gauntlet.images
    from gauntlet.detector import Detector

    calls = []
    for owner, name in [(gauntlet.images, "_decode"), (Detector, "predict"), (Detector, "prepare")]:
        def spy(*args, original=getattr(owner, name), name=name, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)
        monkeypatch.setattr(owner, name, spy)
    make_checkpoint(checkpoints / "tiny-lite0", "efficientnet_lite0")
    out = outputs()
    predict, handler = handlers(checkpoints, out)
    shown = predict(photo, "tiny-baseline")[out.shown]
    assert calls == ["_decode", "predict", "prepare"]
    final = analyse(handler, photo, "tiny-baseline", ["grad_cam", "score_cam", "lime"], "fast", "last", [],
                    shown=shown)[-1]
    assert calls[3:] == ["prepare"], "the explanations reuse the verdict; three methods share one preprocessing"
    assert final[out.verdict] == shown.verdict.prediction.probabilities
    analyse(handler, photo, "tiny-lite0", ["grad_cam"], "fast", "last", [], shown=final[out.shown])
    assert calls.count("_decode") == 1, "another model scores the decoded image"
    analyse(handler, photo, "tiny-baseline", ["grad_cam"], "fast", "last", [], shown=None)
    assert calls.count("_decode") == 2, "without the on-screen upload (an API call) the file is read"


def test_handler_turns_bad_input_into_a_message(checkpoints, tmp_path):
    _, handler = handlers(checkpoints, outputs())
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(gr.Error) as err:
        analyse(handler, str(empty), "tiny-baseline", ["grad_cam"], "fast", "last", [])
    assert "empty" in err.value.message and "Traceback" not in err.value.message
    with pytest.raises(gr.Error, match="upload an image first"):
        analyse(handler, None, "tiny-baseline", ["grad_cam"], "fast", "last", [])


def test_app_end_to_end_through_gradio_client(checkpoints, photo, tmp_path):
    with running_app({"GAUNTLET_CHECKPOINTS_DIR": str(checkpoints), "GAUNTLET_DATA_DIR": str(tmp_path)}) as url:
        client = Client(url, verbose=False)
        job = client.submit(handle_file(photo), "tiny-baseline", ["score_cam", "ablation_cam", "lime"], "fast", "last",
                            api_name="/analyse")
        preview, label, summary, tiles, notes = job.result()
        assert label["label"] in {"REAL", "FAKE"} and len(label["confidences"]) == 2
        assert len(tiles) == 3 and all(tile["image"] for tile in tiles)
        assert [len(step[3] or []) for step in job.outputs()] == [0, 1, 2, 3], "explanations stream in"
        assert "Ablation-CAM" in notes
        bad = tmp_path / "text.jpg"
        bad.write_text("<html>not an image</html>")
        with pytest.raises(Exception) as err:
            client.predict(handle_file(str(bad)), "tiny-baseline", ["grad_cam"], "fast", "last", api_name="/analyse")
        assert "not an image" in str(err.value) and "Traceback" not in str(err.value)


def test_only_example_images_are_served_from_the_data_folder(checkpoints, tmp_path):
    import urllib.error
    import urllib.request

    data = tmp_path / "data"
    (data / "rvaa" / "REAL").mkdir(parents=True)
    (data / "rvaa" / "FAKE").mkdir()
    rows = ["file,label,split"]
    for label in ("REAL", "FAKE"):
        for index, split in enumerate(["val", "test"]):
            name = f"{label}/{label.lower()}_{index}.png"
            Image.new("RGB", (8, 8)).save(data / "rvaa" / name)
            rows.append(f"{name},{label},{split}")
    (data / "rvaa" / "manifest.csv").write_text("\n".join(rows) + "\n")
    with running_app({"GAUNTLET_CHECKPOINTS_DIR": str(checkpoints), "GAUNTLET_DATA_DIR": str(data)}) as url:
        def status(path) -> int:
            try:
                return urllib.request.urlopen(f"{url}gradio_api/file={path}", timeout=10).status
            except urllib.error.HTTPError as err:
                return err.code

        assert status(data / "rvaa" / "REAL" / "real_0.png") == 200, "an example (val split) is served"
        assert status(data / "rvaa" / "manifest.csv") == 403, "the manifest (all answers) is not"
        assert status(data / "rvaa" / "FAKE" / "fake_1.png") == 403, "test-split images are not"
        starter = REPO_ROOT / "quiz_data" / "images"
        assert status(starter_examples(REPO_ROOT / "quiz_data")[0]) == 200, "a starter example is served"
        assert status(starter / "faces" / "FAKE" / "fake_0020.jpg") == 403, "a deck image (its path says FAKE) is not"


def test_verdict_endpoint_answers_without_explanations(checkpoints, photo, tmp_path):
    with running_app({"GAUNTLET_CHECKPOINTS_DIR": str(checkpoints), "GAUNTLET_DATA_DIR": str(tmp_path)}) as url:
        client = Client(url, verbose=False)
        preview, label, summary = client.predict(handle_file(photo), "tiny-baseline", api_name="/predict")
        assert label["label"] in {"REAL", "FAKE"} and "The model thinks" in summary
