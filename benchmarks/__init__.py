"""Benchmarks for the GAUNTLET app, run by hand, not by the tests: ``python -m benchmarks.load``,
``python -m benchmarks.memory`` and ``python -m benchmarks.explain`` (full vs fast explanations)."""
