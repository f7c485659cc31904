"""Which image collections a checkpoint learned from: the one rule behind "never trained on".

Benchmarks of generalization score a checkpoint only on collections it did not train on, and the
model selector names its training data; both read it here, from the checkpoint's config.
"""
from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from .checkpoint import CheckpointConfig

TRAINING_SOURCE = re.compile(r"([^:|;,]+): \d+ training and")  # as training.train describes a run
TEST_METRIC = re.compile(r"^(?P<data>.+?)_test(?:_|$)")  # recorded test metrics: rvaa_test, mixed_test_dedup, ...
COLLECTION_PARTS = {"mixed": ("rvaa", "cifake")}  # training.data's composite data sets, by their parts
NAME_KEYS = ("name", "source", "data", "path")  # where a structured ``datasets`` entry names its collection


def training_sources(trained_on: str) -> list[str]:
    """The data sets named in a ``trained_on`` text, each once, in order: "rvaa: 670 training and ..." -> ["rvaa"].

    Weight averages list their ingredients' runs ("greedy soup of 3 candidates, ...; each: mixed: 1870 training
    and ..."): their data sets are named once each.
    """
    return list(dict.fromkeys(match.strip() for match in TRAINING_SOURCE.findall(trained_on)))


def _entry_name(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(next((entry[key] for key in NAME_KEYS if entry.get(key)), ""))
    return str(entry)


def collection_name(source: str) -> str:
    """A data set name or folder path as a collection name: "../shared/data/generators/" -> "generators"."""
    return PurePath(source.strip().rstrip("/\\")).name.lower()


def _declared_sources(config: CheckpointConfig) -> list[str]:
    """Training sources in order of trust: a structured ``datasets`` field, ``trained_on``, recorded test metrics."""
    declared = getattr(config, "datasets", None)
    if declared:
        entries = declared.keys() if isinstance(declared, dict) else declared
        return [_entry_name(entry) for entry in entries]
    return training_sources(config.trained_on) or [m["data"] for m in map(TEST_METRIC.match, config.metrics) if m]


def trained_collections(config: CheckpointConfig) -> set[str]:
    """The collections a checkpoint was trained on, as lower-case names (cifake, rvaa, generators, real_photos, ...).

    Read from a structured ``datasets`` field when the config has one (a list of names or of objects with a
    ``name``/``source``/``path``, or a ``{name: weight}`` mapping), else from the sources ``trained_on``
    names (as ``training.train`` writes it), else from the test benchmarks in ``metrics`` (``rvaa_test`` -> rvaa).
    Folder paths count by their last part; composite data sets (``mixed``) count as their parts too.
    """
    names = {collection_name(source) for source in _declared_sources(config) if source.strip()}
    return names | {part for name in names for part in COLLECTION_PARTS.get(name, ())}


def never_trained_on(config: CheckpointConfig, collections: set[str]) -> bool:
    """True when the checkpoint learned from none of ``collections`` (collection names, see above)."""
    return not trained_collections(config) & {name.lower() for name in collections}
