"""Load and memory benchmarks for the GAUNTLET app (``python -m benchmarks.load``, ``python -m benchmarks.memory``)."""
