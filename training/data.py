"""Datasets for training and evaluation, read in place from the data directory.

A dataset is a list of :class:`Item` (where an image lives and its label).
Items are decoded with :func:`gauntlet.images.load_image`, exactly as the app
reads an upload, and turned into what the network sees by
:func:`square_array` (pad to a square, bicubic resize), the same steps as
:class:`gauntlet.detector.Detector`. Decoded arrays are cached as ``.npy``
files under the per-user cache directory (outside git), so CIFAKE's 120,000
JPEGs are decoded once.

Named splits (see :data:`SPLITS`): ``cifake``, ``rvaa`` and ``mixed`` each
have ``train``, ``val`` and ``test``; CIFAKE's validation set is a fixed,
seeded 10 % of its training zip, RVAA uses the split column of its manifest.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import random
import uuid
import zipfile
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from tqdm import tqdm

from gauntlet.detector import pad_to_square
from gauntlet.images import load_image
from gauntlet.settings import get_settings

LABELS = ("REAL", "FAKE")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
CIFAKE_VAL_FRACTION = 0.1
MIXED_CIFAKE_TRAIN = 1200
SPLIT_SEED = 0
RVAA_SIDE = 400
RVAA_TEST_NEAR_DUPLICATES = Path(__file__).resolve().parent / "rvaa_test_near_duplicates.txt"  # training.dedup


@dataclass(frozen=True)
class Item:
    """One image: ``name`` is ``LABEL/file`` (unique inside its source), ``archive`` a zip or ''.

    ``upscale`` > 0 resizes the decoded image to that square side first (MIXED's
    CIFAKE images are brought to RVAA's resolution that way).
    """

    name: str
    label: int
    path: str
    archive: str = ""
    upscale: int = 0
    source: str = ""  # where inside its collection it comes from (a generator, a photo source), if known


def data_dir_or_default(data_dir: str | Path | None) -> Path:
    """The configured data directory, with a clear error when there is none."""
    root = Path(data_dir) if data_dir else get_settings().data_dir
    if root is None or not Path(root).is_dir():
        raise FileNotFoundError(f"Data directory {root} not found; set GAUNTLET_DATA_DIR or pass --data-dir.")
    return Path(root)


def _label_of(name: str) -> int | None:
    top = name.split("/", 1)[0].upper()
    return LABELS.index(top) if top in LABELS else None


def _is_image(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def list_zip(path: str | Path) -> list[Item]:
    """Items of a zip whose top-level folders are ``REAL/`` and ``FAKE/``, in sorted member order."""
    names = _open_zip(str(path)).namelist()
    items = [Item(n, _label_of(n), n, str(path)) for n in sorted(names)
             if _is_image(n) and _label_of(n) is not None and n.count("/") == 1]
    return _checked(items, path)


def list_folder(path: str | Path) -> list[Item]:
    """Items of a folder with ``REAL/`` and ``FAKE/`` subfolders (or of such a zip)."""
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        return list_zip(path)
    items = []
    for index, label in enumerate(LABELS):
        folder = path / label
        if folder.is_dir():
            items += [Item(f"{label}/{p.name}", index, str(p)) for p in sorted(folder.iterdir()) if _is_image(p.name)]
    return _checked(items, path)


def _checked(items: list[Item], source: str | Path) -> list[Item]:
    if not items:
        raise FileNotFoundError(f"{source} has no images under REAL/ or FAKE/.")
    return items


def interleave(items: list[Item], limit: int | None = None) -> list[Item]:
    """The first ``limit`` items taken alternately from REAL and FAKE (each in sorted name order).

    This is the ``--limit`` rule of ``training.evaluate``: both classes stay
    present and the same ``N`` always selects the same images.
    """
    by_class = [sorted((i for i in items if i.label == c), key=lambda i: i.name) for c in range(2)]
    merged = [i for pair in zip(*by_class) for i in pair]
    longer = by_class[0] if len(by_class[0]) > len(by_class[1]) else by_class[1]
    merged += longer[len(merged) // 2:]
    return merged[:limit] if limit else merged


def exclude(items: list[Item], listing: str | Path) -> list[Item]:
    """Drop items named in a text file (one path per line, matched on its last ``LABEL/file`` part).

    ``#`` starts a comment, so a listing can say how it was made (see :mod:`training.dedup`).
    """
    lines = [line.split("#")[0].strip() for line in Path(listing).read_text().splitlines()]
    lines = [line for line in lines if line]
    names = {"/".join(line.split("/")[-2:]) for line in lines}
    return [i for i in items if i.name not in names]


def stratified_sample(items: list[Item], per_class: int, seed: int) -> list[Item]:
    """``per_class`` items of each label, drawn with a fixed seed."""
    rng = random.Random(seed)
    return [i for c in range(2) for i in rng.sample([i for i in items if i.label == c], per_class)]


def split_off(items: list[Item], fraction: float, seed: int = SPLIT_SEED) -> tuple[list[Item], list[Item]]:
    """Seeded, stratified split into (rest, held-out ``fraction``)."""
    rng = random.Random(seed)
    rest, held = [], []
    for c in range(2):
        group = [i for i in items if i.label == c]
        rng.shuffle(group)
        cut = max(1, round(len(group) * fraction))
        held += group[:cut]
        rest += group[cut:]
    return rest, held


def cifake_items(data_dir: Path, split: str) -> list[Item]:
    """CIFAKE: ``train``/``val`` are a seeded 90/10 split of train.zip; ``test`` is test.zip (all 20,000)."""
    if split == "test":
        return list_zip(data_dir / "cifake" / "test.zip")
    train, val = split_off(list_zip(data_dir / "cifake" / "train.zip"), CIFAKE_VAL_FRACTION)
    return {"train": train, "val": val}[split]


def cifake_leaked(data_dir: Path) -> Path:
    """The list of CIFAKE test files that are pixel-identical to training files."""
    return data_dir / "cifake" / "test_fake_identical_to_train.txt"


def manifest_items(folder: Path, split: str | None = None, source_column: str = "") -> list[Item]:
    """Items of a folder with a ``manifest.csv`` (``file,label,split,...``), optionally one split.

    ``source_column`` names the column copied into :attr:`Item.source` (``generator``, ``source``).
    """
    with open(folder / "manifest.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if split is None or r["split"] == split]
    return [Item(r["file"], LABELS.index(r["label"]), str(folder / r["file"]),
                 source=r.get(source_column, "") if source_column else "") for r in rows]


def rvaa_items(data_dir: Path, split: str) -> list[Item]:
    """RVAA with the fixed stratified 70/15/15 split of its manifest."""
    return manifest_items(data_dir / "rvaa", split)


def generators_items(data_dir: Path, split: str) -> list[Item]:
    """``generators/``: FAKE only, 11 generators (``Item.source``), fixed 70/15/15 split by prompt."""
    return manifest_items(data_dir / "generators", split, "generator")


def real_photos_items(data_dir: Path, split: str) -> list[Item]:
    """``real_photos/``: REAL only, six photo sources (``Item.source``), fixed 70/15/15 split."""
    return manifest_items(data_dir / "real_photos", split, "source")


def generators_real_items(data_dir: Path, split: str) -> list[Item]:
    """``generators/`` (FAKE) paired with ``real_photos/`` (REAL): encoded alike, so no format shortcut."""
    return generators_items(data_dir, split) + real_photos_items(data_dir, split)


def mixed_items(data_dir: Path, split: str) -> list[Item]:
    """RVAA plus CIFAKE images upscaled to RVAA's resolution (400 px), as in the study.

    train: RVAA train + 1,200 CIFAKE training images (1 %, balanced); val: RVAA
    val + about as many other CIFAKE training images; test: RVAA test + as many
    CIFAKE test images (leaked duplicates excluded). Draws are seeded and disjoint.
    """
    rvaa = rvaa_items(data_dir, split)
    if split == "test":
        pool = exclude(cifake_items(data_dir, "test"), cifake_leaked(data_dir))
        cifake = stratified_sample(pool, (len(rvaa) + 1) // 2, SPLIT_SEED)
    else:
        n_val = (len(rvaa_items(data_dir, "val")) + 1) // 2
        per_class = MIXED_CIFAKE_TRAIN // 2
        pool = stratified_sample(cifake_items(data_dir, "train"), per_class + n_val, SPLIT_SEED)
        halves = pool[:per_class + n_val], pool[per_class + n_val:]
        chosen = slice(0, per_class) if split == "train" else slice(per_class, None)
        cifake = [i for half in halves for i in half[chosen]]
    return rvaa + [Item(f"cifake:{i.name}", i.label, i.path, i.archive, RVAA_SIDE) for i in cifake]


def cifake_sample_items(data_dir: Path, split: str) -> list[Item]:
    """MIXED's CIFAKE part alone (1,200 training images, upscaled as in MIXED): photo-like FAKE and REAL of
    the same ten classes, a counterweight to the painterly prompts of ``generators/``."""
    return [i for i in mixed_items(data_dir, split) if i.upscale]


DATASETS = {"cifake": cifake_items, "rvaa": rvaa_items, "mixed": mixed_items, "generators": generators_items,
            "real_photos": real_photos_items, "generators_real": generators_real_items,
            "cifake_sample": cifake_sample_items}
SINGLE_CLASS = {"generators", "real_photos"}  # one label only: train them together with a source of the other
COLLECTIONS = {"mixed": ["rvaa", "cifake"], "generators_real": ["generators", "real_photos"],
               "cifake_sample": ["cifake"]}  # where each composite data set's images come from


def collections(*datasets: str) -> list[str]:
    """The collections named data sets or REAL/FAKE folders draw their images from, each once (a checkpoint's
    ``datasets``)."""
    return list(dict.fromkeys(c for d in datasets for c in COLLECTIONS.get(d) or [Path(d).name]))


def dataset_items(data: str, data_dir: Path | None, split: str) -> list[Item]:
    """Items of ``split`` for a named dataset, or a seeded stratified 80/10/10 split of a REAL/FAKE folder."""
    if data in DATASETS:
        return DATASETS[data](data_dir_or_default(data_dir), split)
    rest, test = split_off(list_folder(data), 0.1)
    train, val = split_off(rest, 1 / 9)
    return {"train": train, "val": val, "test": test}[split]


BENCHMARKS = {
    "cifake_val": lambda root: cifake_items(root, "val"),  # the *_val sets: model selection only, never reported as tests
    "rvaa_val": lambda root: rvaa_items(root, "val"),
    "mixed_val": lambda root: mixed_items(root, "val"),
    "cifake_test": lambda root: cifake_items(root, "test"),
    "cifake_test_dedup": lambda root: exclude(cifake_items(root, "test"), cifake_leaked(root)),
    "cifake_test_first2000": lambda root: interleave(cifake_items(root, "test"), 2000),
    "rvaa_test": lambda root: rvaa_items(root, "test"),
    "rvaa_test_dedup": lambda root: exclude(rvaa_items(root, "test"), RVAA_TEST_NEAR_DUPLICATES),
    "mixed_test": lambda root: mixed_items(root, "test"),
    "mixed_test_dedup": lambda root: exclude(mixed_items(root, "test"), RVAA_TEST_NEAR_DUPLICATES),
    "mixed_test_cifake": lambda root: [i for i in mixed_items(root, "test") if i.upscale],  # its RVAA half: rvaa_test
    "generators_real_val": lambda root: generators_real_items(root, "val"),
    "faces": lambda root: list_folder(root / "faces"),
    "photos_mixed": lambda root: list_folder(root / "photos_mixed"),
    "generators_real_photos_test": lambda root: generators_real_items(root, "test"),
}
"""Named evaluation sets; ``training.evaluate --data NAME`` accepts these names too."""

TEST_BENCHMARKS = {"cifake": ["cifake_test", "cifake_test_dedup", "cifake_test_first2000"],
                   "rvaa": ["rvaa_test", "rvaa_test_dedup"], "mixed": ["mixed_test", "mixed_test_dedup"],
                   "generators_real": ["generators_real_photos_test"], "cifake_sample": ["mixed_test_cifake"]}
"""The test metrics recorded in a checkpoint trained on each named dataset."""


def benchmark_items(name: str, data_dir: Path | None = None) -> list[Item]:
    """Items of a named benchmark (see :data:`BENCHMARKS`)."""
    return BENCHMARKS[name](data_dir_or_default(data_dir))


def test_sets(dataset: str, data_dir: Path | None = None) -> dict[str, list[Item]]:
    """The test sets a checkpoint trained on ``dataset`` is measured on: its named benchmarks, or the folder's test split."""
    if dataset in TEST_BENCHMARKS:
        return {name: benchmark_items(name, data_dir) for name in TEST_BENCHMARKS[dataset]}
    return {"test": dataset_items(dataset, data_dir, "test")}


@functools.lru_cache(maxsize=8)
def _open_zip(path: str) -> zipfile.ZipFile:
    return zipfile.ZipFile(path)


def read_item(item: Item) -> Image.Image:
    """Decode one item to RGB through the app's own loader (zip members are read in place)."""
    image = load_image(_open_zip(item.archive).read(item.path) if item.archive else item.path)
    if item.upscale:
        image = image.resize((item.upscale, item.upscale), Image.BICUBIC)
    return image


def square_array(image: Image.Image, size: int) -> np.ndarray:
    """Pad to a square and resize (bicubic) to ``size``: the Detector's steps before normalising."""
    return np.array(pad_to_square(image)[0].resize((size, size), Image.BICUBIC), dtype=np.uint8)


def _decode(job: tuple[Item, int]) -> np.ndarray:
    return square_array(read_item(job[0]), job[1])


def _fresh_zip_handles() -> None:
    _open_zip.cache_clear()


def _cache_path(items: list[Item], size: int, tag: str) -> Path:
    digest = hashlib.sha1("\n".join(f"{i.archive}|{i.path}|{i.upscale}" for i in items).encode()).hexdigest()
    return get_settings().cache_dir / "arrays" / f"{tag}-{size}px-{len(items)}-{digest[:12]}.npy"


def decode_arrays(items: list[Item], size: int, tag: str = "images", workers: int = 0) -> np.ndarray:
    """All items as one uint8 ``N x size x size x 3`` array, cached on disk (outside git) after the first call."""
    return cached_arrays(items, size, tag, lambda: _decode_all(items, size, tag, workers))


def cached_arrays(items: list[Item], size: int, tag: str, make: Callable[[], np.ndarray]) -> np.ndarray:
    """``make()``'s array for ``items`` at ``size``, saved under the cache dir by ``tag`` and the items' names."""
    path = _cache_path(items, size, tag)
    if path.is_file():
        return np.load(path)
    stacked = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{uuid.uuid4().hex}.partial.npy")  # side-by-side runs may decode the same set
    np.save(partial, stacked)
    partial.replace(path)
    return stacked


def _decode_all(items: list[Item], size: int, tag: str, workers: int) -> np.ndarray:
    jobs = [(item, size) for item in items]
    progress = dict(total=len(jobs), desc=f"decoding {tag} at {size}px", unit="img")
    if workers > 1:
        with Pool(workers, initializer=_fresh_zip_handles) as pool:
            return np.stack(list(tqdm(pool.imap(_decode, jobs, chunksize=256), **progress)))
    return np.stack([_decode(job) for job in tqdm(jobs, **progress)])


def labels_of(items: list[Item]) -> np.ndarray:
    """Labels as an int64 array (0 = REAL, 1 = FAKE)."""
    return np.array([i.label for i in items], dtype=np.int64)


def source_weights(collections: list[str], labels: np.ndarray, weights: dict[str, float] | None = None,
                   balance: bool = False) -> np.ndarray:
    """Per-image sampling weights (mean 1) for a training set joined from several collections.

    ``collections[i]`` names image ``i``'s collection. Without ``weights`` every image counts once; with them,
    collection ``c`` gets the share ``weights[c] / sum(weights)`` of the total, spread evenly over its images.
    ``balance`` then rescales so that REAL and FAKE carry equal totals (single-class collections such as
    ``generators`` and ``real_photos`` are paired that way).
    """
    names = np.asarray(collections)
    result = np.ones(len(names), dtype=np.float64)
    if weights:
        missing = sorted(set(names) - set(weights))
        if missing:
            raise ValueError(f"No sampling weight for {', '.join(missing)}.")
        total = sum(weights[c] for c in set(names))
        for collection in set(names):
            chosen = names == collection
            result[chosen] = weights[collection] / total / chosen.sum()
    if balance:
        present = [c for c in range(len(LABELS)) if (labels == c).any()]
        for c in present:
            result[labels == c] /= result[labels == c].sum() * len(present)
    return result * len(result) / result.sum()
