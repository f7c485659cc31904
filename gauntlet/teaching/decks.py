"""Quiz decks: loading and validating ``quiz_data/<id>.json``, and building new ones.

A deck lists images under the data root (``GAUNTLET_DATA_DIR``, else ``../shared/data``)
with their truth (REAL or FAKE), where they come from and a lesson. A path component
ending in ``.zip`` is a zip file, read in place: ``cifake/test.zip/FAKE/1000 (2).jpg``.
Paths that could leave the data root (``..``, absolute paths, links pointing out) are
refused, and a deck whose images are missing is kept but marked unavailable, so the
app still runs without the data. ``python -m gauntlet.decks build FOLDER ...`` makes a
balanced deck from any folder with ``REAL/`` and ``FAKE/`` subfolders;
``python -m gauntlet.decks check`` validates every deck.

Every item names the kinds of artifact that give it away (``artifacts``), from the taxonomy of
Kamali et al. 2024, "Characterizing Photorealism and Artifacts in Diffusion Model-Generated
Images": anatomical, stylistic, functional, physics, sociocultural; real images carry
``"none visible"``. A deck may add two disjoint ``test_pools`` (items in the same format, never in
the deck itself) that classroom rooms draw pre- and post-test items from.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import zipfile
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from ..images import load_image
from ..settings import get_settings

TRUTHS = ("REAL", "FAKE")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
DECK_KEYS = {"id": True, "title": True, "description": False, "items": True, "test_pools": False}
ITEM_KEYS = {"id": True, "image": True, "truth": True, "source": True, "lesson": True, "artifacts": True,
             "display_size": False}
ARTIFACT_KINDS = ("anatomical", "stylistic", "functional", "physics", "sociocultural")  # Kamali et al. 2024
NONE_VISIBLE = "none visible"
POOL_COUNT = 2
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
REVEALING_WORDS = {"real", "fake", "ai", "synthetic", "generated"}
PLACEHOLDER = "TODO (teacher):"
ARTIFACTS_PLACEHOLDER = f"{PLACEHOLDER} one or more of {', '.join(ARTIFACT_KINDS)}"
SMALL_IMAGE_SIDE = 128


class DeckError(ValueError):
    """A deck manifest is wrong; ``str(err)`` says which deck, which item and what to fix."""


@dataclass(frozen=True)
class DeckItem:
    """One quiz image and what to say about it once the player has guessed."""

    id: str
    image: str
    truth: str
    source: str
    lesson: str
    display_size: int | None = None
    artifacts: tuple[str, ...] = (NONE_VISIBLE,)

    @property
    def artifact_kinds(self) -> tuple[str, ...]:
        """The taxonomy's categories of this item (none for real images and unfilled placeholders)."""
        return tuple(kind for kind in self.artifacts if kind in ARTIFACT_KINDS)


@dataclass(frozen=True)
class Deck:
    """A validated deck; ``problem`` is set (and ``items`` may be empty) when it cannot be played."""

    id: str
    title: str
    description: str
    items: tuple[DeckItem, ...]
    problem: str = ""
    test_pools: tuple[tuple[DeckItem, ...], ...] = ()
    pools_problem: str = ""

    @property
    def available(self) -> bool:
        return not self.problem

    @property
    def pool_size(self) -> int:
        """How many pre/post-test items a room can ask for (0: the deck has no usable test pools)."""
        return min((len(pool) for pool in self.test_pools), default=0) if not self.pools_problem else 0

    def item(self, item_id: str) -> DeckItem:
        """A lesson item or a test-pool item by id."""
        for item in (*self.items, *(entry for pool in self.test_pools for entry in pool)):
            if item.id == item_id:
                return item
        raise KeyError(f"Deck {self.id!r} has no item {item_id!r}.")


@dataclass(frozen=True)
class ImageRef:
    """Where an item's image lives: a file, or a member of a zip file."""

    path: Path
    member: str | None = None


def path_parts(relative: str) -> tuple[str, ...]:
    """The components of a deck image path, refusing absolute paths, backslashes and '..'."""
    if not isinstance(relative, str) or not relative.strip():
        raise DeckError("the image path is empty")
    if "\\" in relative or relative.startswith("/") or re.match(r"^[A-Za-z]:", relative):
        raise DeckError(f"image path {relative!r} must be relative to the data folder, with '/' separators")
    parts = PurePosixPath(relative).parts
    if ".." in parts:
        raise DeckError(f"image path {relative!r} may not contain '..'")
    return parts


def resolve_image(data_root: Path, relative: str) -> ImageRef:
    """Map a deck's image path to a file (or zip member) inside ``data_root``, refusing anything outside."""
    parts = path_parts(relative)
    split = next((i + 1 for i, part in enumerate(parts[:-1]) if part.lower().endswith(".zip")), len(parts))
    root = data_root.resolve()
    path = root.joinpath(*parts[:split]).resolve()
    if not path.is_relative_to(root):
        raise DeckError(f"image path {relative!r} leads outside the data folder")
    member = "/".join(parts[split:]) or None
    return ImageRef(path, member)


@lru_cache(maxsize=8)
def _open_zip(path: str, mtime_ns: int) -> zipfile.ZipFile:
    """Zip files stay open (their directory parsed once); a changed file is reopened."""
    return zipfile.ZipFile(path)


def _zip(path: Path) -> zipfile.ZipFile:
    return _open_zip(str(path), path.stat().st_mtime_ns)


def image_exists(ref: ImageRef) -> bool:
    """True when the file (or the zip member) is there."""
    if ref.member is None:
        return ref.path.is_file()
    if not ref.path.is_file():
        return False
    try:
        _zip(ref.path).getinfo(ref.member)
        return True
    except (KeyError, zipfile.BadZipFile):
        return False


def read_image(data_root: Path, relative: str) -> Image.Image:
    """Decode an item's image (RGB) through the safe loader, from a file or a zip member."""
    ref = resolve_image(data_root, relative)
    max_pixels = get_settings().max_pixels
    if ref.member is None:
        return load_image(ref.path, max_pixels=max_pixels)
    return load_image(_zip(ref.path).read(ref.member), max_pixels=max_pixels)


def display_image(image: Image.Image, item: DeckItem) -> Image.Image:
    """The picture players see: pixels only (EXIF and PNG text could name the generator), resized to
    ``display_size`` when set (enlarged with sharp pixels, shrunk smoothly)."""
    clean = Image.fromarray(np.asarray(image.convert("RGB")))
    if not item.display_size or max(clean.size) == item.display_size:
        return clean
    scale = item.display_size / max(clean.size)
    size = (max(1, round(clean.width * scale)), max(1, round(clean.height * scale)))
    return clean.resize(size, Image.NEAREST if scale > 1 else Image.LANCZOS)


def _check_keys(data: object, spec: dict[str, bool], where: str) -> dict:
    if not isinstance(data, dict):
        raise DeckError(f"{where} must be a JSON object")
    missing = [key for key, required in spec.items() if required and key not in data]
    unknown = sorted(set(data) - set(spec))
    if missing:
        raise DeckError(f"{where} is missing {', '.join(repr(k) for k in missing)}")
    if unknown:
        raise DeckError(f"{where} has unknown key(s) {', '.join(repr(k) for k in unknown)} "
                        f"(allowed: {', '.join(spec)})")
    return data


def _text(data: dict, key: str, where: str, required: bool = True) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise DeckError(f"{where}: {key!r} must be a non-empty string")
    return value.strip()


def _check_item_id(item_id: str, where: str) -> None:
    if not ID_PATTERN.match(item_id):
        raise DeckError(f"{where}: id {item_id!r} must be lowercase letters, digits, '-' or '_' (at most 48)")
    words = set(re.split(r"[-_]", item_id))
    if words & REVEALING_WORDS:
        raise DeckError(f"{where}: id {item_id!r} gives the answer away; use a neutral id such as 'faces-07'")


def _artifacts(data: dict, truth: str, where: str) -> tuple[str, ...]:
    """The item's artifact categories: known names, no repeats; ``"none visible"`` alone (always for real images)."""
    kinds = data["artifacts"]
    allowed = (*ARTIFACT_KINDS, NONE_VISIBLE)
    if not isinstance(kinds, list) or not kinds or not all(isinstance(kind, str) for kind in kinds):
        raise DeckError(f"{where}: 'artifacts' must be a non-empty list of categories ({', '.join(allowed)})")
    unknown = [kind for kind in kinds if kind not in allowed and not kind.startswith(PLACEHOLDER)]
    if unknown:
        raise DeckError(f"{where}: unknown artifact category {unknown[0]!r} (choose from {', '.join(allowed)})")
    if len(set(kinds)) != len(kinds) or (NONE_VISIBLE in kinds and len(kinds) > 1):
        raise DeckError(f"{where}: 'artifacts' lists a category twice, or '{NONE_VISIBLE}' next to another one")
    if truth == "REAL" and kinds != [NONE_VISIBLE]:
        raise DeckError(f"{where}: a real image has no generator artifacts: write \"artifacts\": [\"{NONE_VISIBLE}\"]")
    return tuple(kinds)


def parse_item(data: object, index: int, deck_id: str, where: str = "") -> DeckItem:
    """Validate one item of a deck manifest (``where`` names the list it is in, default the deck's items)."""
    label = where or "item"
    where = f"deck {deck_id!r}, {label} {index + 1}"
    data = _check_keys(data, ITEM_KEYS, where)
    item_id = _text(data, "id", where)
    _check_item_id(item_id, where)
    where = f"deck {deck_id!r}, {label} {item_id!r}"
    truth = data["truth"]
    if truth not in TRUTHS:
        raise DeckError(f"{where}: truth must be \"REAL\" or \"FAKE\", not {truth!r}")
    size = data.get("display_size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or not 32 <= size <= 1024):
        raise DeckError(f"{where}: display_size must be a whole number of pixels between 32 and 1024")
    image = _text(data, "image", where)
    try:
        path_parts(image)
    except DeckError as err:
        raise DeckError(f"{where}: {err}") from None
    return DeckItem(item_id, image, truth, _text(data, "source", where), _text(data, "lesson", where), size,
                    _artifacts(data, truth, where))


def _parse_pools(data: object, deck_id: str) -> tuple[tuple[DeckItem, ...], ...]:
    """The deck's two test pools (pre- and post-test items are drawn from different ones)."""
    if data is None:
        return ()
    if not isinstance(data, list) or len(data) != POOL_COUNT or not all(isinstance(p, list) and p for p in data):
        raise DeckError(f"deck {deck_id!r}: 'test_pools' must be a list of {POOL_COUNT} non-empty lists of items")
    return tuple(tuple(parse_item(item, index, deck_id, f"test pool {number} item")
                       for index, item in enumerate(pool)) for number, pool in enumerate(data, start=1))


def parse_deck(data: object, name: str) -> Deck:
    """Validate a whole manifest (``name`` is its file stem, which must equal its id)."""
    data = _check_keys(data, DECK_KEYS, f"deck file {name!r}")
    deck_id = _text(data, "id", f"deck file {name!r}")
    if deck_id != name or not ID_PATTERN.match(deck_id):
        raise DeckError(f"deck file {name!r}: id {deck_id!r} must match the file name and use a-z, 0-9, '-', '_'")
    items = data["items"]
    if not isinstance(items, list) or not items:
        raise DeckError(f"deck {deck_id!r}: 'items' must be a non-empty list")
    parsed = tuple(parse_item(item, index, deck_id) for index, item in enumerate(items))
    pools = _parse_pools(data.get("test_pools"), deck_id)
    seen_ids: set[str] = set()
    for item in (*parsed, *(entry for pool in pools for entry in pool)):
        if item.id in seen_ids:
            raise DeckError(f"deck {deck_id!r}: item id {item.id!r} is used twice")
        seen_ids.add(item.id)
    seen_images = {item.image for item in parsed}
    for pool in pools:
        shared = seen_images & {item.image for item in pool}
        if shared:
            raise DeckError(f"deck {deck_id!r}: test pool image {min(shared)!r} is also in the deck or the other "
                            "pool (pre- and post-test items must be other images)")
        seen_images |= {item.image for item in pool}
    return Deck(deck_id, _text(data, "title", deck_id), _text(data, "description", deck_id, required=False), parsed,
                test_pools=pools)


def missing_images(items: tuple[DeckItem, ...], data_root: Path | None) -> str:
    """Why these items' images cannot be shown ('' when they all can)."""
    if data_root is None or not data_root.is_dir():
        return "the data folder is not set up (set GAUNTLET_DATA_DIR to the folder holding the quiz images)"
    missing = [item.image for item in items if not image_exists(resolve_image(data_root, item.image))]
    if not missing:
        return ""
    return f"{len(missing)} of {len(items)} images are missing from {data_root} (first: {missing[0]!r})"


def load_deck(path: Path, data_root: Path | None) -> Deck:
    """Read, validate and check one manifest; raises :class:`DeckError` for a bad manifest."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DeckError(f"deck file {path.name!r} is not valid JSON (line {err.lineno}, column {err.colno}: "
                        f"{err.msg})") from None
    except OSError as err:
        raise DeckError(f"deck file {path.name!r} cannot be read ({err.strerror})") from None
    deck = parse_deck(data, path.stem)
    pooled = tuple(item for pool in deck.test_pools for item in pool)
    return replace(deck, problem=missing_images(deck.items, data_root),
                   pools_problem=missing_images(pooled, data_root) if pooled else "")


def load_decks(folder: Path, data_root: Path | None) -> list[Deck]:
    """Every deck in ``folder``, sorted by id; broken ones are kept with their ``problem`` (never raised)."""
    decks = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            decks.append(load_deck(path, data_root))
        except DeckError as err:
            decks.append(Deck(path.stem, path.stem, "", (), f"bad manifest: {err}"))
    return decks


def _class_images(folder: Path, label: str) -> list[str]:
    """Names of the images of one class in a folder or a zip with REAL/ and FAKE/ at its top."""
    if folder.suffix.lower() == ".zip":
        names = [n for n in _zip(folder).namelist() if n.startswith(f"{label}/") and not n.endswith("/")]
        return sorted(n for n in names if PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES)
    sub = folder / label
    if not sub.is_dir():
        raise DeckError(f"{folder} has no {label}/ subfolder")
    files = sorted(p.name for p in sub.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return [f"{label}/{name}" for name in files]


def _sample(folder: Path, sizes: list[int], rng: random.Random) -> list[list[tuple[str, str]]]:
    """Disjoint balanced random samples of (relative name, truth), one per size; an odd size gives its extra
    image to a random class."""
    counts = [{"REAL": n // 2, "FAKE": n // 2} for n in sizes]
    for n, count in zip(sizes, counts):
        if n % 2:
            count[rng.choice(TRUTHS)] += 1
    samples: list[list[tuple[str, str]]] = [[] for _ in sizes]
    for label in TRUTHS:
        names, needed = _class_images(folder, label), sum(count[label] for count in counts)
        if len(names) < needed:
            raise DeckError(f"{folder} has only {len(names)} {label} images; {needed} are needed")
        drawn = iter(rng.sample(names, needed))
        for sample, count in zip(samples, counts):
            sample += [(next(drawn), label) for _ in range(count[label])]
    for sample in samples:
        rng.shuffle(sample)
    return samples


def _built_item(root: Path, relative: str, truth: str, item_id: str) -> dict:
    """A new item with placeholder source, lesson and (for AI images) artifact categories for the teacher."""
    item = {"id": item_id, "image": relative, "truth": truth,
            "source": f"{PLACEHOLDER} say who or what made this image",
            "lesson": f"{PLACEHOLDER} write what to look for in this image",
            "artifacts": [NONE_VISIBLE] if truth == "REAL" else [ARTIFACTS_PLACEHOLDER]}
    if max(read_image(root, relative).size) < SMALL_IMAGE_SIDE:
        item["display_size"] = 256
    return item


def build_deck(folder: Path, data_root: Path, title: str, n: int = 20, seed: int = 0,
               deck_id: str | None = None, description: str = "", pool_size: int = 0) -> dict:
    """A balanced deck manifest over ``folder`` (inside ``data_root``), lessons and artifact categories left as
    marked placeholders; ``pool_size`` > 0 adds two test pools of that many other images (pre/post tests)."""
    folder, root = folder.resolve(), data_root.resolve()
    if not folder.is_relative_to(root):
        raise DeckError(f"{folder} is not inside the data folder {root}; pass --data-root")
    if n < 2:
        raise DeckError("a deck needs at least 2 images")
    deck_id = deck_id or re.sub(r"[^a-z0-9_-]+", "-", title.lower()).strip("-")[:48] or "deck"
    prefix = folder.relative_to(root).as_posix()
    samples = _sample(folder, [n] + [pool_size] * (POOL_COUNT if pool_size > 0 else 0), random.Random(seed))
    lists = [[_built_item(root, f"{prefix}/{name}", truth, f"{deck_id}-{tag}{index + 1:02d}")
              for index, (name, truth) in enumerate(sample)]
             for tag, sample in zip(["", *(f"t{number}-" for number in range(1, POOL_COUNT + 1))], samples)]
    deck = {"id": deck_id, "title": title, "description": description, "items": lists[0]}
    if pool_size > 0:
        deck["test_pools"] = lists[1:]
    parse_deck(deck, deck_id)
    return deck


def placeholder_count(deck: Deck) -> int:
    """How many items (test pools included) still carry the builder's placeholder text."""
    items = (*deck.items, *(item for pool in deck.test_pools for item in pool))
    return sum(any(PLACEHOLDER in text for text in (item.lesson, item.source, *item.artifacts)) for item in items)


def artifact_counts(items: tuple[DeckItem, ...]) -> dict[str, int]:
    """How many items show each artifact category (``none visible`` included), in the taxonomy's order."""
    counts = {kind: sum(kind in item.artifacts for item in items) for kind in (*ARTIFACT_KINDS, NONE_VISIBLE)}
    return {kind: count for kind, count in counts.items() if count}


def check_line(deck: Deck) -> str:
    """One line of ``check``: state, artifact categories, test pools and leftover placeholders."""
    if deck.problem:
        return f"{deck.id}: UNAVAILABLE: {deck.problem}"
    kinds = ", ".join(f"{kind} {count}" for kind, count in artifact_counts(deck.items).items())
    line = f"{deck.id}: ok, {len(deck.items)} images; artifacts: {kinds}"
    if deck.test_pools:
        sizes = "+".join(str(len(pool)) for pool in deck.test_pools)
        line += f"; test pools {sizes}" + (f" UNAVAILABLE: {deck.pools_problem}" if deck.pools_problem else "")
    todo = placeholder_count(deck)
    return line + (f" ({todo} items still have placeholder text)" if todo else "")


def _cmd_build(args: argparse.Namespace) -> int:
    data_root = Path(args.data_root) if args.data_root else get_settings().data_dir
    if data_root is None:
        raise DeckError("no data folder: pass --data-root or set GAUNTLET_DATA_DIR")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise DeckError(f"{out} exists; pass --force to overwrite it")
    deck = build_deck(Path(args.folder), data_root, args.title, args.n, args.seed,
                      args.id or (out.stem if out.suffix == ".json" else None), args.description, args.pool_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(deck, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"Wrote {out}: {len(deck['items'])} images. Now replace every '{PLACEHOLDER}' text with the "
          f"real source, a lesson and the artifact categories ({', '.join(ARTIFACT_KINDS)}).")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    data_root = Path(args.data_root) if args.data_root else get_settings().data_dir
    decks = load_decks(Path(args.folder), data_root)
    for deck in decks:
        print(check_line(deck))
    return 0 if decks and all(d.available for d in decks) else 1


def main(argv: list[str] | None = None) -> int:
    """``build`` a deck from a REAL/FAKE folder, or ``check`` every deck in a folder."""
    parser = argparse.ArgumentParser(prog="python -m gauntlet.decks", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="sample a balanced deck from a folder with REAL/ and FAKE/")
    build.add_argument("folder", help="folder (or zip) with REAL/ and FAKE/, inside the data root")
    build.add_argument("--title", required=True)
    build.add_argument("--description", default="")
    build.add_argument("--n", type=int, default=20, help="number of images (half REAL, half FAKE)")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--pool-size", type=int, default=0,
                       help="also sample two test pools of this many other images (pre/post tests in rooms)")
    build.add_argument("--id", help="deck id (default: the output file's name)")
    build.add_argument("--out", required=True, help="where to write the deck, e.g. quiz_data/mydeck.json")
    build.add_argument("--force", action="store_true", help="overwrite --out")
    build.add_argument("--data-root", help="image paths are written relative to this (default: the data dir)")
    check = commands.add_parser("check", help="validate every deck and report the unavailable ones")
    check.add_argument("folder", nargs="?", default=str(get_settings().quiz_dir))
    check.add_argument("--data-root")
    args = parser.parse_args(argv)
    try:
        return _cmd_build(args) if args.command == "build" else _cmd_check(args)
    except DeckError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
