"""training.evaluate: metrics by hand, folders and zips, the --limit rule, the CLI's JSON."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gauntlet.calibration import Calibration
from gauntlet.checkpoint import load_checkpoint, read_config, write_config
from gauntlet.detector import Detector
from gauntlet.images import load_image
from tests.conftest import make_checkpoint
from gauntlet import stats
from training import compare, data, evaluate

REPO = Path(__file__).resolve().parents[1]


def _write_images(root: Path, counts: dict[str, int]) -> None:
    rng = np.random.RandomState(1)
    for label, count in counts.items():
        (root / label).mkdir(parents=True)
        for i in range(count):
            size = (20 + 7 * i, 30 + 3 * i)
            Image.fromarray(rng.randint(0, 255, (*size, 3), dtype=np.uint8)).save(root / label / f"{i:02d}.png")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evalset")
    _write_images(root, {"REAL": 7, "FAKE": 5})
    return root


@pytest.fixture(scope="module")
def archive(folder, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("zip") / "set.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for file in sorted(folder.rglob("*.png")):
            zf.write(file, file.relative_to(folder).as_posix())
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "tiny", "baseline_cnn", seed=3)


def _expected_matrix(checkpoint: Path, folder: Path, input_size: int | None = None) -> list[list[int]]:
    """The confusion matrix built image by image with Detector.predict, as the app would classify them."""
    detector = Detector(load_checkpoint(str(checkpoint)))
    detector.config.input_size = input_size or detector.config.input_size
    matrix = [[0, 0], [0, 0]]
    for truth, label in enumerate(("REAL", "FAKE")):
        for file in sorted((folder / label).iterdir()):
            matrix[truth][detector.predict(load_image(file)).predicted_index] += 1
    return matrix


def test_confusion_metrics_by_hand():
    result = evaluate.confusion_metrics(np.array([0, 0, 0, 1, 1, 1, 1]), np.array([0, 0, 1, 1, 1, 1, 0]))
    assert result["confusion_matrix"] == [[2, 1], [1, 3]]
    assert result["n"] == 7
    assert result["accuracy"] == pytest.approx(5 / 7)
    assert result["precision"] == pytest.approx(3 / 4)
    assert result["recall"] == pytest.approx(3 / 4)
    assert result["f1"] == pytest.approx(3 / 4)


def test_no_fake_predictions_gives_zero_precision():
    result = evaluate.confusion_metrics(np.array([0, 1]), np.array([0, 0]))
    assert (result["precision"], result["recall"], result["f1"], result["accuracy"]) == (0.0, 0.0, 0.0, 0.5)


def test_cli_writes_json_matching_hand_computed_matrix(checkpoint, folder, tmp_path):
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, "-m", "training.evaluate", "--checkpoint", str(checkpoint),
                           "--data", str(folder), "--json", str(out)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    matrix = _expected_matrix(checkpoint, folder)
    assert result["confusion_matrix"] == matrix
    assert result["n"] == 12
    (tn, fp), (fn, tp) = matrix
    assert result["accuracy"] == pytest.approx((tn + tp) / 12)
    assert result["recall"] == pytest.approx(tp / 5)
    assert {"precision", "f1"} <= set(result)
    assert "confusion matrix" in proc.stdout


def test_zip_gives_the_same_result_as_the_folder(checkpoint, folder, archive):
    args = evaluate.get_args_parser().parse_args(["--checkpoint", str(checkpoint), "--data", str(archive)])
    assert evaluate.main(args)["confusion_matrix"] == _expected_matrix(checkpoint, folder)


def test_input_size_measures_the_checkpoint_at_another_scale(checkpoint, folder, tmp_path):
    lite = make_checkpoint(tmp_path / "lite", "efficientnet_lite0", seed=5)
    args = evaluate.get_args_parser().parse_args(["--checkpoint", str(lite), "--data", str(folder),
                                                  "--input-size", "96"])
    result = evaluate.main(args)
    assert result["input_size"] == 96 and result["confusion_matrix"] == _expected_matrix(lite, folder, 96)
    args.checkpoint = str(checkpoint)
    with pytest.raises(SystemExit, match="only takes 32 px"):
        evaluate.main(args)


def test_limit_alternates_classes_in_sorted_order(folder):
    names = [item.name for item in evaluate.select_items(str(folder), limit=5)]
    assert names == ["REAL/00.png", "FAKE/00.png", "REAL/01.png", "FAKE/01.png", "REAL/02.png"]
    tail = [item.name for item in data.interleave(data.list_folder(folder))][-2:]
    assert tail == ["REAL/05.png", "REAL/06.png"]


def test_exclude_list_matches_on_label_and_file(folder, tmp_path):
    listing = tmp_path / "leaked.txt"
    listing.write_text("test/FAKE/01.png\nREAL/03.png\n")
    names = {item.name for item in evaluate.select_items(str(folder), exclude_list=str(listing))}
    assert len(names) == 10 and "FAKE/01.png" not in names and "REAL/03.png" not in names


def test_unreadable_image_is_skipped_and_named(checkpoint, folder, tmp_path):
    broken = tmp_path / "broken"
    _write_images(broken, {"REAL": 2, "FAKE": 2})
    (broken / "FAKE" / "zz.jpg").write_bytes(b"not an image")
    detector = Detector(load_checkpoint(str(checkpoint)))
    result = evaluate.evaluate_items(detector, data.list_folder(broken))
    assert result["n"] == 4 and result["skipped"] == ["FAKE/zz.jpg"]


def test_model_card_renders_recorded_metrics(tmp_path, monkeypatch):
    from training import model_card

    metrics = {"validation": {"accuracy": 0.9, "epoch": 3, "accuracy_as_saved": 0.85},
               "rvaa_test": evaluate.confusion_metrics(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))}
    make_checkpoint(tmp_path / "ckpts" / "tiny", "baseline_cnn", metrics=metrics, command="python -m training.train X")
    monkeypatch.setenv("GAUNTLET_CHECKPOINTS_DIR", str(tmp_path / "ckpts"))
    docs = tmp_path / "docs"
    (docs).mkdir()
    (docs / model_card.CROSS_EVAL).write_text(json.dumps({
        "date": "2024-01-01", "benchmarks": ["faces"], "n": {"faces": 4}, "max_images": None,
        "results": {"tiny": {"faces": {"accuracy": 0.25}}}}))
    card = model_card.render(tmp_path / "ckpts", docs, tmp_path)
    assert "| RVAA test | 4 | 75.00% | 30.1–95.4 | 66.67% | 100.00% | 80.00% | [[1, 1], [0, 2]] |" in card
    assert "best validation accuracy 90.00% (epoch 3); 85.00% with the weights as stored (float16)" in card
    assert "python -m training.train X" in card and "| `tiny` | 25.00%<br>[4.6–69.9] |" in card
    assert (docs / "tiny_confusion.png").is_file() and "(docs/tiny_confusion.png)" in card


def test_model_card_refuses_to_remeasure_some_rows_differently(tmp_path, monkeypatch):
    from training import model_card

    monkeypatch.setenv("GAUNTLET_CHECKPOINTS_DIR", str(tmp_path / "ckpts"))
    stored = {"date": "2024-01-01", "benchmarks": ["faces"], "n": {"faces": 4}, "max_images": 2000,
              "results": {"tiny": {"faces": {"accuracy": 0.25}}}}
    (tmp_path / model_card.CROSS_EVAL).write_text(json.dumps(stored))
    args = model_card.get_args_parser().parse_args(["--evaluate", "--checkpoints", "tiny", "--benchmarks", "faces",
                                                    "--docs", str(tmp_path), "--out", str(tmp_path / "card.md")])
    with pytest.raises(SystemExit, match="--max-images 2000"):
        model_card.main(args)
    assert json.loads((tmp_path / model_card.CROSS_EVAL).read_text()) == stored


def test_wilson_interval_matches_published_values():
    low, high = stats.wilson_interval(50, 100)
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    low, high = stats.wilson_interval(0, 10)
    assert low == 0.0 and round(high, 4) == 0.2775
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    assert evaluate.confusion_metrics(np.array([0, 1]), np.array([0, 0]))["accuracy_ci95"] == \
        list(stats.wilson_interval(1, 2))


def test_mcnemar_exact_is_a_two_sided_binomial_tail():
    assert stats.mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert stats.mcnemar_exact(2, 8) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert stats.mcnemar_exact(3, 3) == 1.0 and stats.mcnemar_exact(0, 0) == 1.0


def test_paired_comparison_counts_disagreements_on_shared_items():
    items = [data.Item(f"REAL/{i}.png", 0, "") for i in range(10)]
    first = {item: i < 9 for i, item in enumerate(items)}
    second = {item: i < 2 for i, item in enumerate(items[:-1])}  # the last item was unreadable for it
    result = compare.paired_comparison(first, second)
    assert result["n"] == 9 and (result["both_right"], result["only_first_right"]) == (2, 7)
    assert (result["only_second_right"], result["both_wrong"]) == (0, 0)
    assert result["accuracy"] == [1.0, pytest.approx(2 / 9)] and result["significant"]
    assert result["mcnemar_p"] == pytest.approx(2 / 128)


def test_compare_cli_pairs_two_checkpoints_as_the_app_classifies(checkpoint, folder, tmp_path):
    other = make_checkpoint(tmp_path / "other", "baseline_cnn", seed=4)
    out = tmp_path / "pair.json"
    args = compare.get_args_parser().parse_args(["--checkpoints", str(checkpoint), str(other),
                                                 "--data", str(folder), "--json", str(out)])
    result = compare.main(args)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    for index, source in enumerate((checkpoint, other)):
        matrix = _expected_matrix(source, folder)
        assert result["accuracy"][index] == pytest.approx((matrix[0][0] + matrix[1][1]) / 12)
    counts = ("both_right", "only_first_right", "only_second_right", "both_wrong")
    assert sum(result[k] for k in counts) == result["n"] == 12


def test_verdict_metrics_by_hand():
    labels = np.array([0, 0, 1, 1, 1])
    fake = np.array([0.1, 0.6, 0.95, 0.55, 0.3])  # predicted 0, 1, 1, 1, 0: right, wrong, right, right, wrong
    result = evaluate.verdict_metrics(labels, fake, Calibration(low=0.2, high=0.9))  # sure: 0.1 and 0.95
    assert (result["coverage"], result["n_sure"], result["accuracy_when_sure"]) == (0.4, 2, 1.0)
    assert result["accuracy"] == pytest.approx(3 / 5)
    nothing_sure = evaluate.verdict_metrics(labels, fake, Calibration(low=0.0, high=1.0))
    assert (nothing_sure["coverage"], nothing_sure["accuracy_when_sure"]) == (0.0, None)


def test_cli_reports_coverage_and_accuracy_when_sure(checkpoint, folder, tmp_path):
    plain = evaluate.main(evaluate.get_args_parser().parse_args(["--checkpoint", str(checkpoint),
                                                                 "--data", str(folder)]))
    assert plain["coverage"] == 1.0 and plain["accuracy_when_sure"] == plain["accuracy"]
    calibrated = tmp_path / "calibrated"
    shutil.copytree(checkpoint, calibrated)
    detector = Detector(load_checkpoint(str(calibrated)))
    fake = sorted(detector.predict(load_image(f)).fake_probability for f in sorted(folder.rglob("*.png")))
    half = len(fake) // 2  # a band from 0.5 to between the middle scores leaves some images unsure
    middle = (fake[half - 1] + fake[half]) / 2  # (no score on its edge, where batching could tip it)
    config = read_config(calibrated)
    config.calibration = {"temperature": 1.0, "not_sure": sorted([0.5, middle])}
    write_config(config, calibrated)
    out = tmp_path / "calibrated.json"
    subprocess.run([sys.executable, "-m", "training.evaluate", "--checkpoint", str(calibrated), "--data", str(folder),
                    "--json", str(out)], cwd=REPO, check=True, capture_output=True)
    result = json.loads(out.read_text())
    detector = Detector(load_checkpoint(str(calibrated)))
    verdicts = [(truth, detector.predict(load_image(f))) for truth in ("REAL", "FAKE")
                for f in sorted((folder / truth).iterdir())]
    sure = [truth == p.predicted_label for truth, p in verdicts if p.sure]
    assert 0 < len(sure) < len(verdicts)
    assert result["coverage"] == pytest.approx(len(sure) / len(verdicts))
    assert result["accuracy_when_sure"] == pytest.approx(sum(sure) / len(sure))
    assert {"accuracy", "precision", "recall", "f1", "confusion_matrix", "n", "accuracy_ci95"} <= set(result)


def test_ensemble_averages_members_probabilities_as_the_app_classifies(checkpoint, folder, tmp_path):
    from training import ensemble
    other = make_checkpoint(tmp_path / "other", "baseline_cnn", seed=4)
    out = tmp_path / "ensemble.json"
    args = ensemble.get_args_parser().parse_args(["--checkpoints", str(checkpoint), str(other), "--data", str(folder),
                                                  "--json", str(out)])
    scores = ensemble.main(args)[str(folder)]
    for source in (checkpoint, other):  # each member scored as the app would classify
        matrix = _expected_matrix(source, folder)
        assert scores[str(source)] == pytest.approx((matrix[0][0] + matrix[1][1]) / 12)
    fake = np.mean([[Detector(load_checkpoint(str(s))).predict(load_image(f)).probabilities["FAKE"]
                     for s in (checkpoint, other)] for f in sorted(folder.rglob("*.png"))], axis=1)
    truth = [int(f.parent.name == "FAKE") for f in sorted(folder.rglob("*.png"))]
    assert scores["ensemble"]["accuracy"] == pytest.approx(np.mean((fake > 0.5) == np.array(truth)), abs=1e-6)
    assert json.loads(out.read_text())[str(folder)]["ensemble"]["n"] == 12


def test_sharpness_falls_with_blur_and_is_reported_per_class(folder):
    from PIL import ImageFilter
    from training import sharpness
    image = Image.open(sorted((folder / "REAL").iterdir())[-1]).convert("RGB")
    assert sharpness.sharpness(image.filter(ImageFilter.GaussianBlur(2))) < sharpness.sharpness(image)
    per_class = sharpness.class_sharpness(data.list_folder(folder))
    assert {label: stats["n"] for label, stats in per_class.items()} == {"REAL": 7, "FAKE": 5}
    assert all(s["q25"] <= s["median"] <= s["q75"] for s in per_class.values())
