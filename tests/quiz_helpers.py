"""Builders for quiz tests: a data root of generated images (folders and a zip) and a deck over it."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

LEAKY_TEXT = "made-by-a-generator"

TRUTH_OF = {"demo-01": "FAKE", "demo-02": "REAL", "demo-03": "REAL", "demo-04": "FAKE", "demo-05": "FAKE",
            "demo-06": "REAL"}
ARTIFACTS_OF = {"demo-01": ["anatomical"], "demo-04": ["functional", "physics"], "demo-05": ["anatomical"]}
# Two test pools over the images the deck leaves free: (id, image, truth)
POOLS = [[("demo-t1-01", "set/REAL/img_1.png", "REAL"), ("demo-t1-02", "set/FAKE/img_1.png", "FAKE"),
          ("demo-t1-03", "set/REAL/img_3.png", "REAL"), ("demo-t1-04", "set/FAKE/img_3.png", "FAKE")],
         [("demo-t2-01", "set.zip/REAL/img 0.png", "REAL"), ("demo-t2-02", "set.zip/FAKE/img 0.png", "FAKE"),
          ("demo-t2-03", "set.zip/REAL/img 2.png", "REAL"), ("demo-t2-04", "set.zip/FAKE/img 2.png", "FAKE")]]
POOL_TRUTH_OF = {item_id: truth for pool in POOLS for item_id, _, truth in pool}


def _png(seed: int, size: tuple[int, int] = (40, 40)) -> bytes:
    pixels = np.random.RandomState(seed).randint(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer, metadata = io.BytesIO(), PngImagePlugin.PngInfo()
    metadata.add_text("parameters", LEAKY_TEXT)  # what an image generator writes into its PNG files
    Image.fromarray(pixels).save(buffer, format="PNG", pnginfo=metadata)
    return buffer.getvalue()


def make_data_root(root: Path, per_class: int = 4) -> Path:
    """``root/set/{REAL,FAKE}/img_N.png`` and ``root/set.zip`` with the same layout (tiny random images)."""
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(root / "set.zip", "w") as archive:
        for offset, label in enumerate(("REAL", "FAKE")):
            (root / "set" / label).mkdir(parents=True, exist_ok=True)
            for index in range(per_class):
                data = _png(100 * offset + index)
                (root / "set" / label / f"img_{index}.png").write_bytes(data)
                archive.writestr(f"{label}/img {index}.png", data)
    return root


def _item(item_id: str, image: str, truth: str) -> dict:
    return {"id": item_id, "image": image, "truth": truth, "source": f"source of {item_id}",
            "lesson": f"lesson of {item_id}", "artifacts": ARTIFACTS_OF.get(item_id, ["none visible"])}


def demo_deck() -> dict:
    """Six items over ``make_data_root``: four files and two zip members, ids that reveal nothing; and two test
    pools of four other images each."""
    images = ["set/FAKE/img_0.png", "set/REAL/img_0.png", "set.zip/REAL/img 1.png", "set.zip/FAKE/img 1.png",
              "set/FAKE/img_2.png", "set/REAL/img_2.png"]
    items = [_item(item_id, image, truth) for (item_id, truth), image in zip(TRUTH_OF.items(), images)]
    items[2]["display_size"] = 128
    pools = [[_item(*entry) for entry in pool] for pool in POOLS]
    return {"id": "demo", "title": "Demo deck", "description": "Generated noise for tests.", "items": items,
            "test_pools": pools}


def write_deck(folder: Path, deck: dict, name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name or deck['id']}.json"
    path.write_text(json.dumps(deck))
    return path


def demo_quiz(root: Path, model: str = "tiny"):
    """A :class:`~gauntlet.teaching.quiz.Quiz` over the demo deck, a tiny random model and a fresh classroom
    database, all under ``root`` (the deck's images in ``root / "data"``)."""
    from conftest import make_checkpoint
    from gauntlet.service import ModelCatalog
    from gauntlet.teaching.classroom import ClassroomStore
    from gauntlet.teaching.decks import load_decks
    from gauntlet.teaching.quiz import Quiz
    from gauntlet.teaching.reveal_cache import RevealCache

    make_checkpoint(root / "checkpoints" / model, "baseline_cnn")
    data_root = make_data_root(root / "data")
    write_deck(root / "decks", demo_deck())
    catalog = ModelCatalog(extra_sources=(), checkpoints_dir=root / "checkpoints")
    return Quiz(catalog, load_decks(root / "decks", data_root), RevealCache(catalog, root / "cache"),
                ClassroomStore(root / "classroom.sqlite3"))
