"""Which image collections a checkpoint learned from: the one rule behind "never trained on".

Benchmarks of generalization score a checkpoint only on collections it did not train on; they read it here,
from the structured ``datasets`` field of the checkpoint's config (written by ``training.train`` and
``training.soup``).
"""
from __future__ import annotations

from pathlib import PurePath

from .checkpoint import CheckpointConfig

COLLECTION_PARTS = {"mixed": ("rvaa", "cifake")}  # training.data's composite data sets, by their parts


def collection_name(source: str) -> str:
    """A data set name or folder path as a collection name: "../shared/data/generators/" -> "generators"."""
    return PurePath(source.strip().rstrip("/\\")).name.lower()


def trained_collections(config: CheckpointConfig) -> set[str]:
    """The collections a checkpoint was trained on, as lower-case names (cifake, rvaa, generators, real_photos, ...).

    Folder paths count by their last part; composite data sets (``mixed``) count as their parts too.
    """
    names = {collection_name(source) for source in config.datasets if source.strip()}
    return names | {part for name in names for part in COLLECTION_PARTS.get(name, ())}


def never_trained_on(config: CheckpointConfig, collections: set[str]) -> bool:
    """True when the checkpoint learned from none of ``collections`` (collection names, see above)."""
    return not trained_collections(config) & {name.lower() for name in collections}
