"""training.dedup: near-duplicates across splits are found (resized, re-encoded), distinct images are not."""
from __future__ import annotations

import numpy as np
from PIL import Image

from tests.conftest import shared_data_or_skip
from training import data, dedup


def _noise(seed: int, size: tuple[int, int] = (64, 48)) -> Image.Image:
    smooth = np.random.RandomState(seed).randint(0, 255, (6, 8, 3), dtype=np.uint8)  # blocks: a picture, not noise
    return Image.fromarray(smooth).resize(size, Image.BICUBIC)


def _pairs_folder(root, per_class: int = 15):
    """Every picture twice: as a PNG and as a smaller, re-encoded JPEG copy named ``copy_`` + the original."""
    for label in data.LABELS:
        (root / label).mkdir(parents=True)
        for k in range(per_class):
            image = _noise(k + (100 if label == "FAKE" else 0))
            image.save(root / label / f"img_{k:02d}.png")
            image.resize((40, 30), Image.BILINEAR).save(root / label / f"copy_img_{k:02d}.jpg", quality=80)
    return root


def _partner(name: str) -> str:
    label, file = name.split("/")
    stem = file.removeprefix("copy_").rsplit(".", 1)[0]
    return f"{label}/{stem}.png" if file.startswith("copy_") else f"{label}/copy_{stem}.jpg"


def test_difference_hash_survives_resizing_and_jpeg_but_tells_pictures_apart():
    image = _noise(1)
    copy = image.resize((33, 25), Image.BILINEAR)
    assert (dedup.difference_hash(image) != dedup.difference_hash(copy)).sum() <= dedup.DEFAULT_MAX_DISTANCE
    assert (dedup.difference_hash(image) != dedup.difference_hash(_noise(2))).sum() > 3 * dedup.DEFAULT_MAX_DISTANCE


def test_cli_lists_exactly_the_test_images_whose_copy_was_trained_on(tmp_path):
    folder = _pairs_folder(tmp_path / "set")
    out = tmp_path / "leaked.txt"
    args = dedup.get_args_parser().parse_args(["--data", str(folder), "--out", str(out)])
    leaked = dedup.main(args)
    seen = {i.name for split in ("train", "val") for i in data.dataset_items(str(folder), None, split)}
    test = data.dataset_items(str(folder), None, "test")
    expected = {i.name for i in test if _partner(i.name) in seen}
    assert expected and {item.name for item, _, _ in leaked} == expected
    assert all(other.name == _partner(item.name) for item, other, _ in leaked)
    kept = data.exclude(test, out)  # the listing, comments and all, is an --exclude-list
    assert {i.name for i in kept} == {i.name for i in test} - expected
    assert out.read_text().startswith(f"# {len(expected)} of {len(test)} ")


def test_rvaa_dedup_benchmarks_leave_out_the_listed_images():
    listed = [line.split("#")[0].strip() for line in data.RVAA_TEST_NEAR_DUPLICATES.read_text().splitlines()]
    listed = {name for name in listed if name}
    assert listed and all(name.split("/")[0] in data.LABELS for name in listed)
    assert set(data.TEST_BENCHMARKS["rvaa"]) >= {"rvaa_test", "rvaa_test_dedup"}
    root = shared_data_or_skip()
    for full, dedup_name in (("rvaa_test", "rvaa_test_dedup"), ("mixed_test", "mixed_test_dedup")):
        everything = {i.name for i in data.benchmark_items(full, root)}
        kept = {i.name for i in data.benchmark_items(dedup_name, root)}
        assert listed <= everything and kept == everything - listed
