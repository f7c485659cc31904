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
from ui.detector_tab import make_analyse_handler


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


def test_handler_returns_verdict_gallery_and_notes(checkpoints, photo):
    handler = make_analyse_handler(ModelCatalog(extra_sources=(), checkpoints_dir=checkpoints).analyse)
    preview, label, summary, tiles, notes, history, explanations = handler(
        photo, "tiny-baseline", ["grad_cam", "score_cam"], "fast", "last", [], progress=lambda *a, **k: None)
    assert preview.size == (50, 40)
    assert set(label) == {"REAL", "FAKE"}
    assert [caption.split(" (")[0] for _, caption in tiles] == ["Grad-CAM", "Score-CAM"]
    assert "The model thinks" in summary and "Tiny" in summary
    assert "RVAA test with 10 images, this model was right 50.0% of the time (95% interval 23.7% to 76.3%)" in summary
    assert len(history) == 1 and history[0]["verdict"] in {"REAL", "FAKE"}
    assert [e.method for e in explanations] == ["grad_cam", "score_cam"]
    *_, measured_notes, _, _ = handler(photo, "tiny-baseline", ["grad_cam"], "fast", "last", [], True,
                                    progress=lambda *a, **k: None)
    assert "Faithfulness" not in notes and "deletion AUC" in measured_notes


def test_handler_turns_bad_input_into_a_message(checkpoints, tmp_path):
    handler = make_analyse_handler(ModelCatalog(extra_sources=(), checkpoints_dir=checkpoints).analyse)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(gr.Error) as err:
        handler(str(empty), "tiny-baseline", ["grad_cam"], "fast", "last", [], progress=lambda *a, **k: None)
    assert "empty" in err.value.message and "Traceback" not in err.value.message
    with pytest.raises(gr.Error, match="upload an image first"):
        handler(None, "tiny-baseline", ["grad_cam"], "fast", "last", [], progress=lambda *a, **k: None)


def test_app_end_to_end_through_gradio_client(checkpoints, photo, tmp_path):
    with running_app({"GAUNTLET_CHECKPOINTS_DIR": str(checkpoints), "GAUNTLET_DATA_DIR": str(tmp_path)}) as url:
        client = Client(url, verbose=False)
        preview, label, summary, tiles, notes = client.predict(
            handle_file(photo), "tiny-baseline", ["score_cam", "ablation_cam", "lime"], "fast", "last",
            api_name="/analyse")
        assert label["label"] in {"REAL", "FAKE"} and len(label["confidences"]) == 2
        assert len(tiles) == 3 and all(tile["image"] for tile in tiles)
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


def test_verdict_endpoint_answers_without_explanations(checkpoints, photo, tmp_path):
    with running_app({"GAUNTLET_CHECKPOINTS_DIR": str(checkpoints), "GAUNTLET_DATA_DIR": str(tmp_path)}) as url:
        client = Client(url, verbose=False)
        preview, label, summary = client.predict(handle_file(photo), "tiny-baseline", api_name="/predict")
        assert label["label"] in {"REAL", "FAKE"} and "The model thinks" in summary
