"""training.train and training.data: a tiny run end to end, exact resume, preprocessing parity with the app."""
from __future__ import annotations

import copy
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from gauntlet.checkpoint import load_checkpoint, save_checkpoint
from gauntlet.detector import Detector
from gauntlet.images import load_image
from tests.conftest import shared_data_or_skip
from training import data, evaluate, flip, soup, train
from training.augment import augment, cutmix, degrade_arrays, mirror, random_crops


def _synthetic_set(root: Path, per_class: int = 20) -> Path:
    """REAL: dark smooth images; FAKE: bright noisy ones (easy to learn), of varied non-square sizes."""
    rng = np.random.RandomState(0)
    for label in ("REAL", "FAKE"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            shape = (24 + i % 5 * 4, 32 + i % 3 * 6, 3)
            pixels = rng.randint(0, 90, shape) if label == "REAL" else rng.randint(120, 255, shape)
            Image.fromarray(pixels.astype(np.uint8)).save(root / label / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return _synthetic_set(tmp_path_factory.mktemp("trainset"))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GAUNTLET_CACHE_DIR", str(tmp_path / "cache"))


def _args(folder: Path, tmp: Path, *extra: str):
    return train.get_args_parser().parse_args([
        "--data", str(folder), "--epochs", "2", "--batch-size", "8", "--lr", "3e-3", "--seed", "1",
        "--run-dir", str(tmp / "run"), "--out", str(tmp / "out"), "--name", "tiny", *extra])


def test_tiny_run_writes_a_loadable_checkpoint_with_its_story(synthetic, tmp_path):
    args = _args(synthetic, tmp_path, "--augment", "--limit", "30", "--half")
    out = train.main(args)
    checkpoint = load_checkpoint(str(out))
    config = checkpoint.config
    assert (config.architecture, config.input_size, config.labels) == ("baseline_cnn", 32, ["REAL", "FAKE"])
    assert config.target_layers["last"] == ["features.2"]
    assert config.command.startswith("python -m training.train ") and "--augment" in config.command
    assert "--limit 30" in config.command and "--workers" not in config.command
    assert "30 training" in config.trained_on
    assert config.datasets == [synthetic.name], "the training data as data, for the model selector"
    assert (config.recipe["data"], config.recipe["epochs"], config.recipe["augment"], config.recipe["input_size"]) == \
        ([str(synthetic)], 2, True, 32) and "run_dir" not in config.recipe and "threads" not in config.recipe
    test = config.metrics["test"]
    assert test["n"] == 4 and sum(map(sum, test["confusion_matrix"])) == 4
    assert 1 <= config.metrics["validation"]["epoch"] <= 2
    as_saved = evaluate.evaluate_items(Detector(checkpoint), train._items(args, "val"))["accuracy"]
    assert config.metrics["validation"]["accuracy_as_saved"] == as_saved, "float16 weights validated as stored"


def test_training_learns_an_easy_task(synthetic, tmp_path):
    config = load_checkpoint(str(train.main(_args(synthetic, tmp_path, "--epochs", "4")))).config
    assert config.metrics["validation"]["accuracy"] == 1.0
    assert config.metrics["test"]["accuracy"] == 1.0


def test_a_run_started_from_a_checkpoint_records_the_commands_behind_it(synthetic, tmp_path):
    first = train.main(_args(synthetic, tmp_path / "a", "--epochs", "1"))
    second = train.main(_args(synthetic, tmp_path / "b", "--epochs", "1", "--init", str(first)))
    third = load_checkpoint(str(train.main(_args(synthetic, tmp_path / "c", "--epochs", "1", "--init", str(second)))))
    commands = [load_checkpoint(str(out)).config.command for out in (first, second)]
    assert third.config.lineage == commands and f"--init {second}" in third.config.command


def test_interrupted_run_resumes_to_the_same_weights(synthetic, tmp_path, monkeypatch):
    straight = load_checkpoint(str(train.main(_args(synthetic, tmp_path / "a"))))
    original = train.train_epoch

    def crash_on_second_epoch(*args, **kwargs):
        if args[-1] == 1:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train, "train_epoch", crash_on_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train.main(_args(synthetic, tmp_path / "b"))
    monkeypatch.setattr(train, "train_epoch", original)
    resumed = load_checkpoint(str(train.main(_args(synthetic, tmp_path / "b"))))
    assert len(torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=False)["history"]) == 2
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_keep_last_saves_the_final_epoch_and_rerunning_can_keep_the_best(synthetic, tmp_path):
    last = load_checkpoint(str(train.main(_args(synthetic, tmp_path, "--epochs", "3", "--limit", "16",
                                                "--keep", "last"))))
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert last.config.metrics["validation"]["epoch"] == 3 and "(last epoch kept)" in last.config.trained_on
    for key, value in state["model"].items():
        assert torch.equal(value, last.model.state_dict()[key]), key
    best = load_checkpoint(str(train.main(_args(synthetic, tmp_path, "--epochs", "3", "--limit", "16"))))
    assert best.config.metrics["validation"]["epoch"] == state["best"]["epoch"]
    assert "--keep" not in best.config.command and "(best epoch kept)" in best.config.trained_on


def test_resume_refuses_a_different_command(synthetic, tmp_path):
    train.main(_args(synthetic, tmp_path, "--epochs", "1"))
    with pytest.raises(SystemExit, match="other settings"):
        train.main(_args(synthetic, tmp_path, "--epochs", "1", "--lr", "1e-2"))


@pytest.mark.parametrize("arch", ["baseline_cnn", "efficientnet_lite0"])
def test_training_arrays_match_the_app_preprocessing(tiny_detectors, rgb_image, arch):
    detector = tiny_detectors[arch]
    array = data.square_array(rgb_image, detector.input_size)[None]
    assert torch.allclose(detector.to_tensor(array), detector.preprocess(rgb_image), atol=1e-6)


def test_augment_keeps_shape_and_is_seeded():
    batch = torch.randn(4, 3, 16, 16)
    first = augment(batch, torch.Generator().manual_seed(0))
    assert first.shape == batch.shape
    assert torch.equal(first, augment(batch, torch.Generator().manual_seed(0)))
    assert not torch.equal(first, batch)


def test_cutmix_pastes_one_box_and_reports_the_share_left_unchanged():
    batch = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 20, 20).contiguous()
    mixed, partner, keep = cutmix(batch, torch.Generator().manual_seed(3))
    assert torch.equal(mixed, cutmix(batch, torch.Generator().manual_seed(3))[0])
    own = (mixed == batch).float().mean(dim=(1, 2, 3))
    moved = partner != torch.arange(4)
    assert moved.any() and torch.allclose(own[moved], torch.full_like(own[moved], keep))
    assert ((mixed == batch) | (mixed == batch[partner])).all()


def test_cutmix_run_says_so_and_resumes_runs_begun_before_the_option(synthetic, tmp_path):
    out = train.main(_args(synthetic, tmp_path, "--epochs", "1", "--cutmix", "1"))
    config = load_checkpoint(str(out)).config
    assert "--cutmix 1.0" in config.command and "CutMix on 100% of batches" in config.trained_on
    with pytest.raises(SystemExit):
        _args(synthetic, tmp_path, "--cutmix", "1.5")
    state_path = tmp_path / "old" / "run" / "last.pt"
    train.main(_args(synthetic, tmp_path / "old", "--epochs", "1"))
    state = torch.load(state_path, weights_only=False)
    del state["args"]["cutmix"]  # a run state written before --cutmix existed
    torch.save(state, state_path)
    assert train.main(_args(synthetic, tmp_path / "old", "--epochs", "1")).is_dir()


def test_mirror_flips_some_images_left_right_and_keeps_the_others():
    batch = torch.randn(16, 3, 5, 7)
    mirrored = mirror(batch, torch.Generator().manual_seed(2))
    assert torch.equal(mirrored, mirror(batch, torch.Generator().manual_seed(2)))
    flipped = [torch.equal(m, b.flip(2)) for m, b in zip(mirrored, batch)]
    kept = [torch.equal(m, b) for m, b in zip(mirrored, batch)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_bfloat16_mirrored_run_says_so_and_saves_float32_weights(synthetic, tmp_path):
    out = train.main(_args(synthetic, tmp_path, "--epochs", "1", "--hflip", "--bf16", "--limit", "16"))
    checkpoint = load_checkpoint(str(out))
    assert "--hflip" in checkpoint.config.command and "--bf16" in checkpoint.config.command
    assert "random left-right mirroring" in checkpoint.config.trained_on
    assert "accuracy_as_saved" not in checkpoint.config.metrics["validation"], "float32 weights: nothing to add"
    stored = load_file(str(out / "model.safetensors"))
    assert {t.dtype for t in stored.values() if t.is_floating_point()} == {torch.float32}


def test_random_crops_are_windows_of_each_image_at_its_own_scale():
    batch = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    crops = random_crops(batch, 5, torch.Generator().manual_seed(1))
    assert crops.shape == (2, 3, 5, 5)
    assert torch.equal(crops, random_crops(batch, 5, torch.Generator().manual_seed(1)))
    for image, crop in zip(batch, crops):
        top, left = divmod(int(crop[0, 0, 0]) % 64, 8)
        assert torch.equal(crop, image[:, top:top + 5, left:left + 5])
    with pytest.raises(ValueError, match="does not fit"):
        random_crops(batch, 9)


def test_crop_run_trains_on_windows_and_judges_whole_images(synthetic, tmp_path):
    out = train.main(_args(synthetic, tmp_path, "--arch", "efficientnet_lite0", "--input-size", "48",
                           "--crop", "32", "--epochs", "1", "--limit", "16"))
    config = load_checkpoint(str(out)).config
    assert config.input_size == 48 and "--crop 32" in config.command and "random 32 px crops" in config.trained_on
    with pytest.raises(SystemExit, match="cannot train on smaller windows"):
        train.main(_args(synthetic, tmp_path / "cnn", "--crop", "16"))
    with pytest.raises(SystemExit, match="must be smaller"):
        train.main(_args(synthetic, tmp_path / "big", "--arch", "efficientnet_lite0", "--input-size", "48",
                         "--crop", "48"))


def test_decoded_arrays_are_cached(synthetic):
    items = data.list_folder(synthetic)[:3]
    first = data.decode_arrays(items, 32, "t")
    assert first.shape == (3, 32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, data.decode_arrays(items, 32, "t"))
    assert np.array_equal(first[0], data.square_array(load_image(items[0].path), 32))


def test_side_by_side_runs_can_decode_the_same_set(synthetic, monkeypatch):
    """Another process finishing the same cache file while this one writes (grid runs side by side) is harmless."""
    items, real_save = data.list_folder(synthetic)[:3], np.save

    def save_while_another_process_finishes(path, array):
        real_save(path, array)
        monkeypatch.setattr(data.np, "save", real_save)
        data.decode_arrays(items, 16, "race")  # the other process, done first
    monkeypatch.setattr(data.np, "save", save_while_another_process_finishes)
    assert data.decode_arrays(items, 16, "race").shape == (3, 16, 16, 3)


def test_named_splits_follow_the_data_readme():
    root = shared_data_or_skip()
    rvaa = {s: data.dataset_items("rvaa", root, s) for s in ("train", "val", "test")}
    assert [len(rvaa[s]) for s in ("train", "val", "test")] == [670, 143, 144]
    assert len(data.benchmark_items("cifake_test_dedup", root)) == 20000 - 378
    mixed = {s: set(data.dataset_items("mixed", root, s)) for s in ("train", "val", "test")}
    assert len(mixed["train"]) == 670 + 1200 and not (mixed["train"] & mixed["val"]) and not (mixed["val"] & mixed["test"])
    cifake_test = [i for i in mixed["test"] if i.name.startswith("cifake:")]
    assert len(cifake_test) == 144 and all(i.upscale == data.RVAA_SIDE for i in cifake_test)
    assert data.read_item(cifake_test[0]).size == (data.RVAA_SIDE, data.RVAA_SIDE)
    assert set(data.benchmark_items("mixed_test_cifake", root)) == set(cifake_test)
    assert mixed["test"] - set(cifake_test) == set(data.benchmark_items("rvaa_test", root))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where no GPU is visible")
def test_asking_for_a_gpu_without_one_fails_with_a_clear_message(synthetic, tmp_path):
    with pytest.raises(SystemExit, match="no CUDA GPU"):
        train.main(_args(synthetic, tmp_path, "--device", "cuda"))


def test_flip_is_chosen_on_validation_and_recorded(synthetic, tmp_path):
    out = train.main(_args(synthetic, tmp_path, "--epochs", "1"))
    metrics = flip.main(flip.get_args_parser().parse_args(["--checkpoint", str(out), "--data", str(synthetic)]))
    decision = metrics["test_time_flip"]
    config = load_checkpoint(str(out)).config
    assert config.test_time_flip == decision["chosen"] == (decision["validation_flip"] > decision["validation_plain"])
    assert decision["command"] == f"python -m training.flip --checkpoint {out} --data {synthetic}"
    assert config.metrics["test"]["n"] == 4


def test_verdicts_average_the_mirror_image_only_when_the_checkpoint_says_so(tiny_detectors, rgb_image):
    detector = tiny_detectors["baseline_cnn"]
    batch = detector.preprocess(rgb_image)
    mirrored = (detector.probabilities(batch) + detector.probabilities(batch.flip(3))) / 2
    assert torch.equal(detector.verdict_probabilities(batch), detector.probabilities(batch))
    detector.config.test_time_flip = True
    try:
        assert torch.allclose(detector.verdict_probabilities(batch), mirrored)
        assert detector.predict(rgb_image).fake_probability == pytest.approx(float(mirrored[0, 1]), abs=1e-6)
    finally:
        detector.config.test_time_flip = False


def _greedy_soup_drops_a_harmful_candidate(synthetic: Path, good: Path, tmp_path: Path) -> None:
    """A copy of ``good`` with its last layer negated: averaged with ``good`` it zeroes the logits (chance)."""
    original = load_checkpoint(str(good))
    harmful = copy.deepcopy(original)
    last = [m for m in harmful.model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.neg_(), last.bias.neg_()
    harmful.config.name = "harmful"
    save_checkpoint(harmful.model, harmful.config, tmp_path / "harmful")
    assert original.config.metrics["validation"]["accuracy"] > 0.5  # else the negated copy would rank first
    out = soup.main(soup.get_args_parser().parse_args(
        ["--checkpoints", str(tmp_path / "harmful"), str(good), "--data", str(synthetic), "--greedy",
         "--out", str(tmp_path / "greedy")]))
    made = load_checkpoint(str(out))
    assert made.config.trained_on.startswith("greedy soup of 2 candidates, kept tiny;")
    assert made.config.lineage == [original.config.command] and "--greedy" in made.config.command
    for key, tensor in made.model.state_dict().items():
        assert torch.equal(tensor, original.model.state_dict()[key])


def test_soup_judges_weights_as_half_precision_will_store_them():
    state = {"w": torch.tensor([1.0001, 0.1]), "count": torch.tensor(3)}
    stored = soup.as_stored(state, half=True)
    assert torch.equal(stored["w"], torch.tensor([1.0001, 0.1]).half().float()) and stored["w"].dtype == torch.float32
    assert not torch.equal(stored["w"], state["w"]) and stored["count"] is state["count"]
    assert soup.as_stored(state, half=False)["w"] is state["w"]


def test_soup_averages_the_weights_and_records_how(synthetic, tmp_path):
    first = train.main(_args(synthetic, tmp_path / "a", "--epochs", "1", "--limit", "16"))
    second = train.main(_args(synthetic, tmp_path / "b", "--epochs", "1", "--limit", "16", "--seed", "2"))
    out = soup.main(soup.get_args_parser().parse_args(
        ["--checkpoints", str(first), str(second), "--data", str(synthetic), "--out", str(tmp_path / "soup")]))
    made, a, b = (load_checkpoint(str(path)) for path in (out, first, second))
    for key, tensor in made.model.state_dict().items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, (a.model.state_dict()[key] + b.model.state_dict()[key]) / 2)
    config = made.config
    assert config.command.startswith("python -m training.soup --checkpoints ")
    assert config.lineage == [a.config.command, b.config.command]
    assert config.datasets == [synthetic.name] and config.recipe["soup"] == "uniform"
    assert config.recipe["ingredients"] == [a.config.recipe, b.config.recipe]
    assert config.metrics["validation"]["epoch"] is None and "test" in config.metrics
    half = load_checkpoint(str(soup.main(soup.get_args_parser().parse_args(
        ["--checkpoints", str(first), str(second), "--data", str(synthetic), "--half", "--out", str(tmp_path / "h")]))))
    validation = half.config.metrics["validation"]
    assert validation["accuracy_as_saved"] == validation["accuracy"], "a soup is judged as it is stored"
    _greedy_soup_drops_a_harmful_candidate(synthetic, first, tmp_path)
    wider = train.main(_args(synthetic, tmp_path / "c", "--epochs", "1", "--limit", "16", "--arch",
                             "efficientnet_lite0", "--input-size", "32"))
    with pytest.raises(SystemExit, match="only checkpoints of one kind"):
        soup.main(soup.get_args_parser().parse_args(
            ["--checkpoints", str(first), str(wider), "--data", str(synthetic), "--out", str(tmp_path / "bad")]))


def test_degraded_arrays_are_blurred_or_recompressed_copies_drawn_afresh():
    rng = np.random.RandomState(0)
    arrays = rng.randint(0, 255, (6, 32, 32, 3)).astype(np.uint8)
    untouched = arrays.copy()
    none = degrade_arrays(arrays, random.Random(0), 0.0)
    every = degrade_arrays(arrays, random.Random(0), 1.0)
    assert np.array_equal(none, arrays) and np.array_equal(arrays, untouched), "the cached arrays stay as they are"
    assert every.shape == arrays.shape and every.dtype == np.uint8
    changed = [not np.array_equal(a, b) for a, b in zip(every, arrays)]
    assert 0 < sum(changed), "blur or JPEG touched some images (each is applied with probability 1/2)"
    assert np.array_equal(every, degrade_arrays(arrays, random.Random(0), 1.0)), "seeded"


def test_reframe_run_trains_on_both_shapes_and_says_so(synthetic, tmp_path):
    out = train.main(_args(synthetic, tmp_path, "--epochs", "1", "--limit", "16", "--reframe", "--degrade", "0.5",
                           "--balance"))
    config = load_checkpoint(str(out)).config
    assert "--reframe" in config.command and "--degrade 0.5" in config.command
    assert "reframed copy of each training image" in config.trained_on and "blur/JPEG on 50%" in config.trained_on
    assert config.recipe["reframe"] is True and config.recipe["degrade"] == 0.5
    cached = sorted(p.name for p in (tmp_path / "cache" / "arrays").glob("*reframed*.npy"))
    assert len(cached) == 1, "the reframed copies are decoded once and cached"
