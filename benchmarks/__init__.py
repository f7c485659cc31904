"""Benchmarks for the GAUNTLET app, run by hand, not by the tests: ``python -m benchmarks.load``,
``python -m benchmarks.memory`` and ``python -m benchmarks.explain`` (full vs fast explanations)."""

import json
from pathlib import Path


def write_result(result: dict, path: str | None) -> dict:
    """Write a benchmark's result as indented JSON to ``path`` (folders created; nothing when None); return it."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(result, indent=2) + "\n")
    return result
