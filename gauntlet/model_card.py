"""The model card as the app shows it: MODEL_CARD.md's text, with its charts split out for a gallery.

``python -m training.model_card`` writes MODEL_CARD.md; the app only reads it,
so the card in the repository and the card in the app are the same numbers.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .settings import REPO_ROOT

CARD_PATH = REPO_ROOT / "MODEL_CARD.md"
DOCS_DIR = REPO_ROOT / "docs" / "model_card"
CROSS_EVAL = "cross_eval.json"  # written by python -m training.model_card --evaluate
GENERALIZATION = REPO_ROOT / "docs" / "benchmarks" / "generalization.json"  # python -m benchmarks.generalization
UNSEEN_BENCHMARKS = ("faces", "photos_mixed")  # quiz collections that no checkpoint is trained on
BENCHMARK_TITLES = {  # benchmark names of training.data, as people read them
    "cifake_test": "CIFAKE test (official)", "cifake_test_dedup": "CIFAKE test without the 378 leaked",
    "cifake_test_first2000": "CIFAKE test, first 2,000 (--limit 2000)", "rvaa_test": "RVAA test",
    "rvaa_test_dedup": "RVAA test without near-duplicates of training/validation images",
    "mixed_test": "MIXED test", "mixed_test_dedup": "MIXED test without those near-duplicates",
    "faces": "faces", "photos_mixed": "photos_mixed", "test": "test split",
    "generators_real_photos_test": "generators + real_photos test splits"}
DETAILS_HEADING = "## Checkpoints"  # after the card's summary: one section per checkpoint
IMAGE_LINE = re.compile(r"^!\[(?P<caption>[^\]]*)\]\((?P<path>[^)\s]+)\)\s*$")


def load_model_card(path: Path = CARD_PATH) -> tuple[str, list[tuple[str, str]]]:
    """(markdown without image lines, [(chart path, caption)]); a clear note when the card is missing."""
    if not path.is_file():
        return ("No model card yet: run `python -m training.model_card` to generate MODEL_CARD.md.", [])
    text, charts = [], []
    for line in path.read_text().splitlines():
        match = IMAGE_LINE.match(line.strip())
        chart = (path.parent / match["path"]).resolve() if match else None
        if chart is not None and chart.is_file() and chart.is_relative_to(path.parent.resolve()):
            charts.append((str(chart), match["caption"]))
        else:
            text.append(line)
    return "\n".join(text), charts


def split_summary(card_markdown: str) -> tuple[str, str]:
    """(the card's opening and summary, the per-checkpoint detail and the rest), split at :data:`DETAILS_HEADING`."""
    head, found, rest = card_markdown.partition(f"\n{DETAILS_HEADING}\n")
    return (head, found.lstrip("\n") + rest) if found else (card_markdown, "")


def unseen_accuracy(path: Path = GENERALIZATION) -> dict[str, dict[str, tuple[float, int]]]:
    """Per checkpoint name, its measured (accuracy, images) on each collection it never trained on, from the
    generalization benchmark's JSON (``python -m benchmarks.generalization``); {} without results."""
    if not path.is_file():
        return {}
    checkpoints = json.loads(path.read_text())["checkpoints"]
    return {name: {name_of_set: (result["accuracy"], result["n"]) for name_of_set, result in entry["sets"].items()}
            for name, entry in checkpoints.items()}
