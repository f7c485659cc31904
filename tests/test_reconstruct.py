"""training.reconstruct: content-matched fakes, one per REAL training image, the same size, named after it."""
from __future__ import annotations

import csv

import numpy as np
import torch
from PIL import Image

from training import data
from training.reconstruct import UpsamplingAutoencoder, get_args_parser, main, reconstruct, to_tensor


def make_folder(root, count=10):
    for label in ("REAL", "FAKE"):
        (root / label).mkdir(parents=True)
        for index in range(count):
            size = (40 + 3 * index, 29 + index)  # odd sizes: not multiples of the autoencoder's stride
            pixels = np.random.RandomState(index).randint(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"img_{index}.png")
    return root


def test_a_reconstruction_keeps_the_size_of_any_image():
    torch.manual_seed(0)
    image = to_tensor(Image.new("RGB", (37, 21), (200, 30, 60)))
    assert reconstruct(UpsamplingAutoencoder(4).eval(), image).size == (37, 21)


def test_only_real_training_images_are_reconstructed_as_fake(tmp_path, monkeypatch):
    monkeypatch.setenv("GAUNTLET_CACHE_DIR", str(tmp_path / "cache"))
    folder = make_folder(tmp_path / "photos")
    args = get_args_parser().parse_args(["--data", str(folder), "--steps", "2", "--crop", "16", "--batch-size", "2",
                                         "--width", "4", "--out", str(tmp_path / "out")])
    out = main(args)
    train_real = [item for item in data.dataset_items(str(folder), None, "train") if item.label == 0]
    rows = list(csv.DictReader(open(out / "manifest.csv")))
    assert [row["original"] for row in rows] == [item.name for item in train_real]  # no val/test content, no FAKE
    assert {row["label"] for row in rows} == {"FAKE"} and len(list((out / "FAKE").iterdir())) == len(rows)
    for row, item in zip(rows, train_real):
        assert Image.open(out / row["file"]).size == data.read_item(item).size, "framing must match the original"
