"""Quiz decks: loading and validating ``quiz_data/<id>.json``, and building new ones.

A deck lists images by a path such as ``faces/REAL/real_0029.jpg``, with their truth
(REAL or FAKE), where they come from and a lesson. :func:`locate_image` finds that path,
in this order: in the repository's starter images (``images/`` beside the deck files,
written by ``python -m gauntlet.decks vendor``), under the data root (``GAUNTLET_DATA_DIR``,
else ``../shared/data``), and, for a deck that names a Hub dataset (``hub_repo`` and a pinned
``hub_revision``), in that dataset (downloaded once into the Hugging Face cache). An item's
``sha256``, when given, is checked whatever the image came from. A path component ending
in ``.zip`` is a zip file, read in place: ``cifake/test.zip/FAKE/1000 (2).jpg``.
Paths that could leave a root (``..``, absolute paths, links pointing out) are refused,
and a deck whose images are missing is kept but marked unavailable with the reason, so
the app still runs without the data. ``python -m gauntlet.decks build FOLDER ...`` makes a
balanced deck from any folder with ``REAL/`` and ``FAKE/`` subfolders;
``python -m gauntlet.decks check`` validates every deck; ``vendor`` copies a deck's images
into the repository; ``publish DECK_FILE --repo OWNER/NAME`` puts them on the Hub.

Every item names the kinds of artifact that give it away (``artifacts``), from the taxonomy of
Kamali et al. 2024, "Characterizing Photorealism and Artifacts in Diffusion Model-Generated
Images": anatomical, stylistic, functional, physics, sociocultural; real images carry
``"none visible"``. A deck may add two disjoint ``test_pools`` (items in the same format, never in
the deck itself) that classroom rooms draw pre- and post-test items from.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import zipfile
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from ..checkpoint import hub_download, hub_endpoint, hub_reachable
from ..errors import UserError
from ..images import DEFAULT_MAX_PIXELS, load_image
from ..settings import get_settings

TRUTHS = ("REAL", "FAKE")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
DECK_KEYS = {"id": True, "title": True, "description": False, "hub_repo": False, "hub_revision": False,
             "items": True, "test_pools": False}
ITEM_KEYS = {"id": True, "image": True, "truth": True, "source": True, "lesson": True, "artifacts": True,
             "display_size": False, "sha256": False}
ITEM_LISTS = ("items", "test_pools")  # the keys of a deck file that hold items (see raw_items)
ARTIFACT_KINDS = ("anatomical", "stylistic", "functional", "physics", "sociocultural")  # Kamali et al. 2024
NONE_VISIBLE = "none visible"
POOL_COUNT = 2
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
REPO_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
IMAGES_DIR = "images"  # beside the deck files: the repository's own copies, at the paths the decks name
EXAMPLES_DIR = "examples"  # inside IMAGES_DIR: detector examples, in no deck
REVEALING_WORDS = {"real", "fake", "ai", "synthetic", "generated"}
PLACEHOLDER = "TODO (teacher):"
ARTIFACTS_PLACEHOLDER = f"{PLACEHOLDER} one or more of {', '.join(ARTIFACT_KINDS)}"
SMALL_IMAGE_SIDE = 128


class DeckError(UserError):
    """A deck manifest is wrong; ``str(err)`` says which deck, which item and what to fix."""


@dataclass(frozen=True)
class ImageRef:
    """Where an item's image lives: a file, or a member of a zip file."""

    path: Path
    member: str | None = None


@dataclass(frozen=True)
class DeckItem:
    """One quiz image and what to say about it once the player has guessed; ``ref``: where it was found."""

    id: str
    image: str
    truth: str
    source: str
    lesson: str
    display_size: int | None = None
    sha256: str = ""
    ref: ImageRef | None = field(default=None, compare=False)
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
    hub_repo: str = ""
    hub_revision: str = ""
    test_pools: tuple[tuple[DeckItem, ...], ...] = ()
    pools_problem: str = ""

    @property
    def available(self) -> bool:
        return not self.problem

    def pooled_items(self) -> tuple[DeckItem, ...]:
        """The items of both test pools."""
        return tuple(item for pool in self.test_pools for item in pool)

    def all_items(self) -> tuple[DeckItem, ...]:
        """Every item the deck file references: what locating, hashing, vendoring and publishing go over."""
        return (*self.items, *self.pooled_items())

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


def raw_items(data: dict) -> list[dict]:
    """Every item dict of a parsed deck file, over all its item lists (:data:`ITEM_LISTS`; test pools are lists
    of lists)."""
    entries = [entry for key in ITEM_LISTS for entry in data.get(key) or []]
    flat = [item for entry in entries for item in (entry if isinstance(entry, list) else [entry])]
    return [item for item in flat if isinstance(item, dict)]


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


def image_bytes(ref: ImageRef) -> bytes:
    """The stored bytes of an image, as its ``sha256`` is computed."""
    return ref.path.read_bytes() if ref.member is None else _zip(ref.path).read(ref.member)


def sha256_of(ref: ImageRef) -> str:
    """The hex sha256 of an image's stored bytes."""
    return hashlib.sha256(image_bytes(ref)).hexdigest()


def _decode(ref: ImageRef, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode an image (RGB) through the safe loader, from a file or a zip member."""
    if ref.member is None:
        return load_image(ref.path, max_pixels=max_pixels)
    return load_image(_zip(ref.path).read(ref.member), max_pixels=max_pixels)


def read_image(data_root: Path, relative: str) -> Image.Image:
    """Decode an image under ``data_root`` (RGB) through the safe loader, from a file or a zip member."""
    return _decode(resolve_image(data_root, relative))


def item_image(item: DeckItem) -> Image.Image:
    """Decode a loaded deck item's image (RGB), wherever :func:`locate_image` found it."""
    if item.ref is None:
        raise DeckError(f"the image of item {item.id!r} ({item.image!r}) was not found")
    return _decode(item.ref)


class HubAccess:
    """May the Hub be asked? Not when offline, nor when it cannot be reached within ~2 s (probed once, shared)."""

    def __init__(self, offline: bool) -> None:
        self.offline = offline
        self._online: bool | None = None

    def online(self) -> bool:
        if self._online is None:
            self._online = not self.offline and hub_reachable(hub_endpoint())
        return self._online


def describe_hub_error(err: Exception, repo: str, revision: str) -> str:
    """A sentence for a failed Hub download (missing repository, revision or file; anything else by name)."""
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(err, RepositoryNotFoundError):
        return f"the Hub dataset {repo!r} does not exist (or is private)"
    if isinstance(err, RevisionNotFoundError):
        return f"the Hub dataset {repo!r} has no revision {revision!r} (was it moved or deleted?)"
    if isinstance(err, EntryNotFoundError):
        return f"the Hub dataset {repo}@{revision} has no such file ({err.__class__.__name__})"
    return f"the Hub answered with {type(err).__name__}"


class HubImages:
    """A deck's Hub dataset at its pinned revision: fetches missing images into the Hugging Face cache.

    Images already cached are used without asking the Hub. After the first failure it asks no
    more (a deck waits for one timeout, not twenty), and ``failure`` says why.
    """

    def __init__(self, repo: str, revision: str, access: HubAccess) -> None:
        self.repo, self.revision, self.access = repo, revision, access
        self.failure = ""

    def fetch(self, relative: str) -> ImageRef | None:
        if self.failure:
            return None
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            try:
                return ImageRef(hub_download(self.repo, relative, self.revision, offline=True, repo_type="dataset"))
            except LocalEntryNotFoundError:
                if not self.access.online():
                    self.failure = "the Hub cannot be reached (or HF_HUB_OFFLINE is set) and they are not cached"
                    return None
            return ImageRef(hub_download(self.repo, relative, self.revision, offline=False, repo_type="dataset"))
        except Exception as err:  # noqa: BLE001 - network, missing repo or file: one sentence in the deck list
            self.failure = describe_hub_error(err, self.repo, self.revision)
            return None


@dataclass(frozen=True)
class ImageSources:
    """Where a deck's images are looked for: the repository's copies, the data folder, then the deck's Hub dataset."""

    repo_images: Path
    data_root: Path | None
    hub: HubAccess


def locate_image(relative: str, roots: tuple[Path | None, ...], hub: HubImages | None = None) -> ImageRef | None:
    """Where a deck's image path is: the first of ``roots`` holding it (repository copies, then the data folder),
    else the deck's Hub dataset; ``None`` when nowhere. The one place that decides where images come from."""
    for root in roots:
        if root is not None and root.is_dir():
            ref = resolve_image(root, relative)
            if image_exists(ref):
                return ref
    return hub.fetch(relative) if hub else None


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


def _check_sha256(data: dict, where: str) -> str:
    value = data.get("sha256", "")
    if not isinstance(value, str) or (value and not SHA256_PATTERN.match(value)):
        raise DeckError(f"{where}: sha256 must be 64 lowercase hexadecimal digits")
    return value


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


def parse_item(data: object, index: int, deck_id: str, locate=None, where: str = "") -> DeckItem:
    """Validate one item of a deck manifest; ``locate`` (path -> :class:`ImageRef` or None) finds its image;
    ``where`` names the list it is in (default: the deck's items)."""
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
                    _check_sha256(data, where), locate(image) if locate else None, _artifacts(data, truth, where))


def _parse_pools(data: object, deck_id: str, locate=None) -> tuple[tuple[DeckItem, ...], ...]:
    """The deck's two test pools (pre- and post-test items are drawn from different ones)."""
    if data is None:
        return ()
    if not isinstance(data, list) or len(data) != POOL_COUNT or not all(isinstance(p, list) and p for p in data):
        raise DeckError(f"deck {deck_id!r}: 'test_pools' must be a list of {POOL_COUNT} non-empty lists of items")
    return tuple(tuple(parse_item(item, index, deck_id, locate, f"test pool {number} item")
                       for index, item in enumerate(pool)) for number, pool in enumerate(data, start=1))


def _hub_source(data: dict, deck_id: str) -> tuple[str, str]:
    """The deck's Hub dataset and pinned revision ('' and '' when it names none)."""
    repo, revision = data.get("hub_repo", ""), data.get("hub_revision", "")
    if not isinstance(repo, str) or not isinstance(revision, str) or bool(repo) != bool(revision):
        raise DeckError(f"deck {deck_id!r}: 'hub_repo' (owner/name) and 'hub_revision' go together, both strings")
    if repo and not REPO_PATTERN.match(repo):
        raise DeckError(f"deck {deck_id!r}: hub_repo {repo!r} must look like owner/name")
    return repo, revision


def parse_deck(data: object, name: str, sources: ImageSources | None = None) -> Deck:
    """Validate a whole manifest (``name`` is its file stem, which must equal its id); with ``sources``, also
    locate every image and set ``problem`` when one is missing or does not match its sha256."""
    data = _check_keys(data, DECK_KEYS, f"deck file {name!r}")
    deck_id = _text(data, "id", f"deck file {name!r}")
    if deck_id != name or not ID_PATTERN.match(deck_id):
        raise DeckError(f"deck file {name!r}: id {deck_id!r} must match the file name and use a-z, 0-9, '-', '_'")
    items = data["items"]
    if not isinstance(items, list) or not items:
        raise DeckError(f"deck {deck_id!r}: 'items' must be a non-empty list")
    hub_repo, hub_revision = _hub_source(data, deck_id)
    if hub_repo and (unpinned := [item.get("id") for item in raw_items(data) if not item.get("sha256")]):
        raise DeckError(f"deck {deck_id!r}: item {unpinned[0]!r} has no sha256, which every image fetched from the "
                        f"Hub needs (python -m gauntlet.decks publish writes them)")
    hub = HubImages(hub_repo, hub_revision, sources.hub) if sources and hub_repo else None
    roots = (sources.repo_images, sources.data_root) if sources else ()
    locate = (lambda image: locate_image(image, roots, hub)) if sources else None
    parsed = tuple(parse_item(item, index, deck_id, locate) for index, item in enumerate(items))
    pools = _parse_pools(data.get("test_pools"), deck_id, locate)
    _check_distinct(deck_id, parsed, pools)
    deck = Deck(deck_id, _text(data, "title", deck_id), _text(data, "description", deck_id, required=False), parsed,
                hub_repo=hub_repo, hub_revision=hub_revision, test_pools=pools)
    if not sources:
        return deck
    pooled = deck.pooled_items()
    return replace(deck, problem=image_problem(deck, deck.items, sources.data_root, hub),
                   pools_problem=image_problem(deck, pooled, sources.data_root, hub) if pooled else "")


def _check_distinct(deck_id: str, items: tuple[DeckItem, ...], pools: tuple[tuple[DeckItem, ...], ...]) -> None:
    """Item ids are unique, and no test-pool image is in the deck or in the other pool."""
    seen_ids: set[str] = set()
    for item in (*items, *(entry for pool in pools for entry in pool)):
        if item.id in seen_ids:
            raise DeckError(f"deck {deck_id!r}: item id {item.id!r} is used twice")
        seen_ids.add(item.id)
    seen_images = {item.image for item in items}
    for pool in pools:
        shared = seen_images & {item.image for item in pool}
        if shared:
            raise DeckError(f"deck {deck_id!r}: test pool image {min(shared)!r} is also in the deck or the other "
                            "pool (pre- and post-test items must be other images)")
        seen_images |= {item.image for item in pool}


def image_problem(deck: Deck, items: tuple[DeckItem, ...], data_root: Path | None,
                  hub: HubImages | None = None) -> str:
    """Why these items of ``deck`` cannot be shown ('' when every image was found and matches its sha256)."""
    missing = [item.image for item in items if item.ref is None]
    if missing and hub and hub.failure:
        return (f"{len(missing)} of {len(items)} images could not be fetched from the Hub dataset "
                f"{deck.hub_repo}@{deck.hub_revision}: {hub.failure}")
    if missing and (data_root is None or not data_root.is_dir()):
        return "the data folder is not set up (set GAUNTLET_DATA_DIR to the folder holding the quiz images)"
    if missing:
        return f"{len(missing)} of {len(items)} images are missing from {data_root} (first: {missing[0]!r})"
    changed = [item.image for item in items if item.sha256 and item.sha256 != sha256_of(item.ref)]
    if changed:
        moved = ", or the Hub revision moved" if deck.hub_repo else ""
        return (f"{len(changed)} of {len(items)} images do not match the sha256 in the deck file (first: "
                f"{changed[0]!r}): changed or tampered with{moved}")
    return ""


def load_deck(path: Path, data_root: Path | None, hub: HubAccess | None = None) -> Deck:
    """Read, validate and check one manifest; raises :class:`DeckError` for a bad manifest.

    Images are looked for in ``images/`` beside the deck file, then under ``data_root``, then
    in the deck's Hub dataset when it names one (``hub``: whether the Hub may be asked)."""
    sources = ImageSources(path.parent / IMAGES_DIR, data_root, hub or HubAccess(False))
    return parse_deck(read_deck_file(path), path.stem, sources)


def read_deck_file(path: Path) -> object:
    """A deck file's JSON, or a :class:`DeckError` saying why it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DeckError(f"deck file {path.name!r} is not valid JSON (line {err.lineno}, column {err.colno}: "
                        f"{err.msg})") from None
    except OSError as err:
        raise DeckError(f"deck file {path.name!r} cannot be read ({err.strerror})") from None


def write_deck_file(path: Path, data: dict) -> None:
    """Write a deck file one key per line (``indent=2``), so that line-based merges of decks work."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def load_decks(folder: Path, data_root: Path | None, hub_offline: bool = False) -> list[Deck]:
    """Every deck in ``folder``, sorted by id; broken ones are kept with their ``problem`` (never raised).
    The Hub is probed at most once (~2 s when unreachable), and only when a deck needs an image from it."""
    decks, hub = [], HubAccess(hub_offline)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            decks.append(load_deck(path, data_root, hub))
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

# Collections whose licence lets their images be copied into this repository (``vendor``), and their source.
LICENSED_COLLECTIONS = {
    "faces": "faces/: StyleGAN-style generated faces and real face photographs (300x300), from the collection "
             "`faces_logvisionn_ood`",
    "photos_mixed": "photos_mixed/: GAN and diffusion images and real photographs (animals, city, food, nature, "
                    "people; centre-cropped, 384x384), from the collection `ml72_playground`",
}
VENDOR_JPEG_QUALITY = 85
NOTICE = """Images in this folder are re-encoded copies (RGB, JPEG quality {quality}, no metadata) of images
from these collections of the project's shared data (paths mirror the data folder:
<collection>/<REAL|FAKE>/<file>; examples/ holds the Detector tab's examples, which are in no deck).
The original file name of each image is in its collection's manifest.csv (column original_name).

{sources}

Licence of the source collections, as stated by their sources: MIT.

Copyright (c) the authors of the source collections

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction, including
without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the
following conditions: The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY
KIND, EXPRESS OR IMPLIED.

Written by: python -m gauntlet.decks vendor DECK_FILE ... --examples PATH ...
"""


def check_vendorable(relative: str) -> None:
    """Refuse an image that may not be copied into the repository (licence) or not under the same name (JPEG)."""
    if path_parts(relative)[0] not in LICENSED_COLLECTIONS:
        raise DeckError(f"{relative!r}: only images of {', '.join(LICENSED_COLLECTIONS)} may be copied into the "
                        f"repository (their licence allows it); keep the others in the data folder or on the Hub")
    if PurePosixPath(relative).suffix.lower() not in {".jpg", ".jpeg"}:
        raise DeckError(f"{relative!r}: only .jpg images can be copied (re-encoded as JPEG under the same name)")


def vendor_image(data_root: Path, relative: str, target_root: Path, quality: int = VENDOR_JPEG_QUALITY) -> Path:
    """Copy one image from the data folder to ``target_root/relative``, re-encoded as a metadata-free RGB JPEG
    (so no camera, generator or location data travels with it)."""
    pixels = np.asarray(read_image(data_root, relative).convert("RGB"))
    target = target_root.joinpath(*path_parts(relative))
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(target, format="JPEG", quality=quality, optimize=True)
    return target


def vendor(deck_paths: list[Path], data_root: Path, examples: tuple[str, ...] = (),
           quality: int = VENDOR_JPEG_QUALITY) -> list[Path]:
    """Copy every image the decks use (and the detector ``examples``) into ``images/`` beside the deck files,
    with a NOTICE naming source and licence: a fresh clone can then play these decks without the data folder."""
    folders = {path.resolve().parent for path in deck_paths}
    if len(folders) != 1:
        raise DeckError("give deck files from one folder: their images go to images/ beside them")
    images_dir = folders.pop() / IMAGES_DIR
    items = [item for path in deck_paths for item in raw_items(_validated(path))]
    if pinned := [item["id"] for item in items if item.get("sha256")]:
        raise DeckError(f"item {pinned[0]!r} is pinned by its sha256 (a published deck): re-encoded copies would not "
                        f"match it; remove hub_repo, hub_revision and the sha256 values first")
    used = [item["image"] for item in items]
    if shared := sorted(set(used) & set(examples)):
        raise DeckError(f"example {shared[0]!r} is in a deck: examples must be images the quiz does not ask about")
    for image in [*used, *examples]:
        check_vendorable(image)
    written = [vendor_image(data_root, image, images_dir, quality) for image in dict.fromkeys(used)]
    written += [vendor_image(data_root, image, images_dir / EXAMPLES_DIR, quality) for image in examples]
    sources = "\n".join(f"- {LICENSED_COLLECTIONS[name]}" for name in LICENSED_COLLECTIONS)
    (images_dir / "NOTICE").write_text(NOTICE.format(quality=quality, sources=sources), encoding="utf-8")
    return written


def _validated(path: Path) -> dict:
    """A deck file's JSON, refused unless it is a valid deck."""
    data = read_deck_file(path)
    parse_deck(data, path.stem)
    return data


def starter_examples(decks_dir: Path) -> list[Path]:
    """The detector examples kept in the repository (``images/examples/`` beside the decks)."""
    folder = decks_dir / IMAGES_DIR / EXAMPLES_DIR
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []


def publish(path: Path, repo_id: str, data_root: Path | None, private: bool = False,
            message: str = "Upload GAUNTLET deck images") -> str:
    """Upload every image a deck uses to a Hub dataset, then write ``hub_repo``, the commit as ``hub_revision``
    and each item's ``sha256`` into the deck file; returns the commit id."""
    from huggingface_hub import CommitOperationAdd, HfApi

    if not REPO_PATTERN.match(repo_id):
        raise DeckError(f"--repo {repo_id!r} must look like owner/name")
    data, deck = _validated(path), load_deck(path, data_root)
    refs = {item.image: item.ref for item in deck.all_items()}
    if None in refs.values():
        raise DeckError(f"cannot publish deck {deck.id!r}: {deck.problem}")
    api = HfApi(endpoint=hub_endpoint())
    operations = [CommitOperationAdd(path_in_repo=image, path_or_fileobj=image_bytes(ref))
                  for image, ref in refs.items()]
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.create_commit(repo_id, operations=operations, commit_message=message, repo_type="dataset")
    except Exception as err:  # noqa: BLE001 - network, authentication, refusals: one clear error
        raise DeckError(f"could not publish to the Hub dataset {repo_id} at {hub_endpoint()}: "
                        f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from err
    hashes = {image: sha256_of(ref) for image, ref in refs.items()}
    write_deck_file(path, pinned_to_hub(data, repo_id, commit.oid, hashes))
    return commit.oid


def pinned_to_hub(data: dict, repo_id: str, revision: str, hashes: dict[str, str]) -> dict:
    """The deck file's JSON naming its Hub dataset and revision (before the item lists) and every item's sha256."""
    for item in raw_items(data):
        item["sha256"] = hashes[item["image"]]
    head = {key: value for key, value in data.items() if key not in (*ITEM_LISTS, "hub_repo", "hub_revision")}
    lists = {key: value for key, value in data.items() if key in ITEM_LISTS}
    return {**head, "hub_repo": repo_id, "hub_revision": revision, **lists}


def placeholder_count(deck: Deck) -> int:
    """How many items (test pools included) still carry the builder's placeholder text."""
    items = deck.all_items()
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
    data_root = _data_root(args)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise DeckError(f"{out} exists; pass --force to overwrite it")
    deck = build_deck(Path(args.folder), data_root, args.title, args.n, args.seed,
                      args.id or (out.stem if out.suffix == ".json" else None), args.description, args.pool_size)
    write_deck_file(out, deck)
    print(f"Wrote {out}: {len(deck['items'])} images. Now replace every '{PLACEHOLDER}' text with the "
          f"real source, a lesson and the artifact categories ({', '.join(ARTIFACT_KINDS)}).")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    decks = load_decks(Path(args.folder), _optional_root(args), args.hub_offline)
    for deck in decks:
        print(check_line(deck))
    return 0 if decks and all(d.available for d in decks) else 1


def _optional_root(args: argparse.Namespace) -> Path | None:
    """``--data-root`` (default: the configured data folder), or None when there is none."""
    return Path(args.data_root) if args.data_root else None


def _data_root(args: argparse.Namespace) -> Path:
    data_root = _optional_root(args)
    if data_root is None:
        raise DeckError("no data folder: pass --data-root or set GAUNTLET_DATA_DIR")
    return data_root


def _cmd_vendor(args: argparse.Namespace) -> int:
    written = vendor([Path(p) for p in args.decks], _data_root(args), tuple(args.examples), args.quality)
    size = sum(path.stat().st_size for path in written)
    print(f"Wrote {len(written)} images ({size / 1e6:.2f} MB) and a NOTICE into "
          f"{Path(args.decks[0]).resolve().parent / IMAGES_DIR}.")
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    commit = publish(Path(args.deck), args.repo, _optional_root(args), args.private, args.message)
    print(f"Published the images of {args.deck} to the Hub dataset {args.repo} at revision {commit}; "
          f"the deck file now names them (hub_repo, hub_revision, sha256).")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``build`` a deck from a REAL/FAKE folder, ``check`` every deck in a folder, ``vendor`` a deck's images into
    the repository, or ``publish`` them to a Hub dataset."""
    settings = get_settings()
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
    build.add_argument("--data-root", default=settings.data_dir,
                       help="image paths are written relative to this (default: the data dir)")
    check = commands.add_parser("check", help="validate every deck and report the unavailable ones")
    check.add_argument("folder", nargs="?", default=str(settings.quiz_dir))
    vend = commands.add_parser("vendor", help="copy the decks' images (re-encoded, no metadata) into images/ "
                                              "beside them, with a NOTICE; only MIT-licensed collections")
    vend.add_argument("decks", nargs="+", metavar="DECK_FILE")
    vend.add_argument("--examples", nargs="*", default=[], metavar="PATH",
                      help="detector examples (paths under the data root, in no deck) for images/examples/")
    vend.add_argument("--quality", type=int, default=VENDOR_JPEG_QUALITY, help="JPEG quality")
    pub = commands.add_parser("publish", help="upload a deck's images to a Hub dataset and pin it in the deck file")
    pub.add_argument("deck", metavar="DECK_FILE")
    pub.add_argument("--repo", required=True, help="Hub dataset, OWNER/NAME (created if needed)")
    pub.add_argument("--private", action="store_true", help="create the dataset as private")
    pub.add_argument("--message", default="Upload GAUNTLET deck images", help="commit message")
    for command in (check, vend, pub):
        command.add_argument("--data-root", default=settings.data_dir, help="default: the data dir")
    parser.set_defaults(hub_offline=settings.hub_offline)
    args = parser.parse_args(argv)
    commands = {"build": _cmd_build, "check": _cmd_check, "vendor": _cmd_vendor, "publish": _cmd_publish}
    try:
        return commands[args.command](args)
    except DeckError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
