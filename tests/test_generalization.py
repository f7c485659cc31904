"""benchmarks.generalization on tiny synthetic collections and tiny checkpoints; the re-sharing transforms;
which collections a checkpoint counts as trained on."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import generalization
from conftest import make_checkpoint
from gauntlet.checkpoint import CheckpointConfig, load_checkpoint
from gauntlet.detector import Detector
from gauntlet.training_sets import never_trained_on, trained_collections
from gauntlet.service import default_bundled_model
from gauntlet.transforms import centre_crop, downscale, jpeg, resharing_transforms, screenshot
from training import data, evaluate
from training.model_card import generalization_section

SET_KEYS = {"accuracy", "n", "accuracy_ci95", "coverage", "accuracy_when_sure"}
TRANSFORMS = {"none", "jpeg_q75", "downscale_half", "centre_crop_70", "screenshot_png"}


def _image(rng: np.random.RandomState, index: int) -> Image.Image:
    return Image.fromarray(rng.randint(0, 255, (24 + 4 * index, 30 + 2 * index, 3), dtype=np.uint8))


def _folder(root: Path, counts: dict[str, int], seed: int) -> Path:
    rng = np.random.RandomState(seed)
    for label, count in counts.items():
        (root / label).mkdir(parents=True)
        for i in range(count):
            _image(rng, i).save(root / label / f"{i:02d}.jpg", quality=90)
    return root


def _manifest_folder(root: Path, label: str, splits: list[str], seed: int) -> None:
    rng = np.random.RandomState(seed)
    (root / label).mkdir(parents=True)
    rows = ["file,label,split"]
    for i, split in enumerate(splits):
        _image(rng, i).save(root / label / f"{i:02d}.jpg", quality=90)
        rows.append(f"{label}/{i:02d}.jpg,{label},{split}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    _folder(root / "faces", {"REAL": 3, "FAKE": 3}, 1)
    _folder(root / "photos_mixed", {"REAL": 2, "FAKE": 3}, 2)
    _manifest_folder(root / "generators", "FAKE", ["train", "test", "test", "val"], 3)
    _manifest_folder(root / "real_photos", "REAL", ["test", "train", "test", "test"], 4)
    rvaa = _folder(root / "rvaa", {"REAL": 2, "FAKE": 2}, 5)
    rows = ["file,label,split"] + [f"{p.parent.name}/{p.name},{p.parent.name},test" for p in sorted(rvaa.rglob("*.jpg"))]
    (rvaa / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def checkpoints_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bundled")
    make_checkpoint(root / "tiny-rvaa", "baseline_cnn", seed=1, datasets=["rvaa"], default_rank=0)
    make_checkpoint(root / "tiny-generators", "baseline_cnn", seed=2,
                    datasets=["generators"], default_rank=1,
                    calibration={"temperature": 2.0, "not_sure": [0.45, 0.55]})
    return root


@pytest.fixture(scope="module")
def result(data_dir, checkpoints_dir, tmp_path_factory) -> dict:
    extra = _folder(tmp_path_factory.mktemp("extra") / "mine", {"REAL": 2, "FAKE": 2}, 6)
    out = tmp_path_factory.mktemp("out") / "generalization.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GAUNTLET_CHECKPOINTS_DIR", str(checkpoints_dir))
        args = generalization.get_args_parser().parse_args(
            ["--json", str(out), "--data-dir", str(data_dir), "--extra", f"mine={extra}", "--max-images", "5"])
        generalization.main(args)
    return json.loads(out.read_text())


def test_json_has_exactly_the_promised_shape(result, checkpoints_dir):
    assert {"default", "checkpoints", "robustness"} <= set(result)
    assert result["default"] == default_bundled_model(checkpoints_dir) == "tiny-rvaa"
    assert set(result["checkpoints"]) == {"tiny-rvaa", "tiny-generators"}
    for checkpoint in result["checkpoints"].values():
        assert set(checkpoint) == {"sets", "unseen_mean"}
        for metrics in checkpoint["sets"].values():
            assert set(metrics) == SET_KEYS
            assert 0 <= metrics["accuracy"] <= 1 and len(metrics["accuracy_ci95"]) == 2 and 0 <= metrics["coverage"] <= 1
        accuracies = [m["accuracy"] for m in checkpoint["sets"].values()]
        assert checkpoint["unseen_mean"] == pytest.approx(sum(accuracies) / len(accuracies))
    assert set(result["robustness"]) == TRANSFORMS
    assert all(0 <= value <= 1 for value in result["robustness"].values())


def test_each_checkpoint_is_scored_only_where_it_never_trained(result):
    sets = {name: set(c["sets"]) for name, c in result["checkpoints"].items()}
    assert sets["tiny-rvaa"] == {"faces", "photos_mixed", "generators_real_photos_test", "mine"}
    assert sets["tiny-generators"] == {"faces", "photos_mixed", "mine"}


def test_numbers_are_those_of_training_evaluate(result, data_dir, checkpoints_dir):
    generators_test = result["checkpoints"]["tiny-rvaa"]["sets"]["generators_real_photos_test"]
    assert generators_test["n"] == 5  # 2 generators + 3 real_photos test images, all kept (--max-images 5)
    items = data.interleave(data.list_folder(data_dir / "faces"), 5)
    detector = Detector(load_checkpoint(str(checkpoints_dir / "tiny-generators")))
    expected = evaluate.evaluate_items(detector, items)
    faces = result["checkpoints"]["tiny-generators"]["sets"]["faces"]
    assert (faces["accuracy"], faces["coverage"], faces["n"]) == \
        (expected["accuracy"], expected["coverage"], expected["n"])
    assert result["robustness_sets"] == {"rvaa_test": 4, "faces": 5}


def test_the_model_card_renders_it(result):
    text = generalization_section(result)
    assert "| `tiny-generators` |" in text and "trained on" in text and "JPEG quality 75" in text


def test_readme_block_is_replaced_between_its_markers(result, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{generalization.README_BEGIN}\nold\n{generalization.README_END}\n\nrest\n")
    assert generalization.update_readme(result, readme)
    text = readme.read_text()
    assert "old" not in text and "| `tiny-rvaa` (default) |" in text and text.endswith("\n\nrest\n")
    plain = tmp_path / "PLAIN.md"
    plain.write_text("no markers\n")
    assert not generalization.update_readme(result, plain) and plain.read_text() == "no markers\n"


@pytest.mark.parametrize("spec", ["nofolder", "=folder", "name="])
def test_bad_extra_is_a_usage_error(spec, capsys):
    with pytest.raises(SystemExit):
        generalization.get_args_parser().parse_args(["--json", "x.json", "--extra", spec])
    assert "NAME=FOLDER" in capsys.readouterr().err


def test_extra_without_real_or_fake_is_refused_in_words(data_dir, tmp_path):
    with pytest.raises(SystemExit, match="no images under REAL/ or FAKE/"):
        generalization.collection_sets(str(data_dir), [("empty", tmp_path)], None)


def test_transforms_are_deterministic_and_change_what_they_say():
    image = Image.fromarray(np.random.RandomState(7).randint(0, 255, (64, 110, 3), dtype=np.uint8))
    assert downscale(image).size == (55, 32)
    cropped = centre_crop(image)
    assert cropped.size == (77, 45) and np.array_equal(np.asarray(cropped), np.asarray(image)[9:54, 16:93])
    assert screenshot(image).size == (88, 51) and screenshot(image).mode == "RGB"
    assert np.array_equal(np.asarray(jpeg(image)), np.asarray(jpeg(image)))
    assert not np.array_equal(np.asarray(jpeg(image)), np.asarray(image))
    assert not np.array_equal(np.asarray(jpeg(image, 70)), np.asarray(jpeg(image, 95)))


def test_the_registry_names_its_jpeg_quality():
    assert set(resharing_transforms()) == TRANSFORMS - {"none"}
    seventy = resharing_transforms(70)
    image = _image(np.random.RandomState(8), 3)
    assert "jpeg_q70" in seventy and np.array_equal(np.asarray(seventy["jpeg_q70"](image)), np.asarray(jpeg(image, 70)))


def test_trained_collections_read_the_structured_datasets_field():
    mixed = CheckpointConfig("baseline_cnn", 32, datasets=["mixed"])
    assert trained_collections(mixed) == {"mixed", "rvaa", "cifake"}
    structured = CheckpointConfig("baseline_cnn", 32, trained_on="rvaa: 10 training and 2 validation images",
                                  datasets=["generators", "/data/real_photos/", "RVAA"])
    assert trained_collections(structured) == {"generators", "real_photos", "rvaa"}
    assert never_trained_on(structured, {"faces"}) and not never_trained_on(structured, {"real_photos", "cifake"})
    assert trained_collections(CheckpointConfig("baseline_cnn", 32, trained_on="rvaa: 10 training")) == set()


def test_evaluation_applies_the_transform(data_dir, checkpoints_dir):
    detector = Detector(load_checkpoint(str(checkpoints_dir / "tiny-rvaa")))
    items = data.list_folder(data_dir / "faces")
    _, plain, _ = evaluate.predict_items(detector, items)
    _, cropped, _ = evaluate.predict_items(detector, items, transform=resharing_transforms()["centre_crop_70"])
    assert len(cropped) == len(items) and not np.allclose(plain, cropped)


def test_update_docs_only_renders_the_stored_results(tmp_path):
    args = generalization.get_args_parser().parse_args(["--json", str(tmp_path / "x.json"), "--update-docs"])
    with pytest.raises(SystemExit, match="pass that as --json"):
        generalization.main(args)
