"""Every bundled checkpoint reproduces the test accuracy recorded in its config.json, through training.evaluate."""
from __future__ import annotations

from pathlib import Path

import pytest

from gauntlet.checkpoint import bundled_names, read_config
from gauntlet.model_card import UNSEEN_BENCHMARKS, unseen_accuracy
from gauntlet.settings import get_settings
from gauntlet.stats import accuracy_interval
from tests.conftest import shared_data_or_skip
from training import evaluate

REPO = Path(__file__).resolve().parents[1]
CIFAKE_TRAINED = ("baseline-cifake", "lite0-cifake")  # they record the --limit 2000 figure too
TOLERANCE = 0.005
CHEAP = ("cifake_test_first2000", "rvaa_test", "mixed_test")


def _recorded() -> list[tuple[str, str]]:
    root = get_settings().checkpoints_dir
    return [(name, bench) for name in bundled_names() for bench in CHEAP
            if bench in read_config(root / name).metrics]


def test_the_cifake_checkpoints_record_their_first_2000_accuracy():
    recorded = _recorded()
    assert all((name, "cifake_test_first2000") in recorded for name in CIFAKE_TRAINED)


@pytest.mark.slow
@pytest.mark.parametrize("name,bench", _recorded())
def test_recorded_accuracy_is_reproduced(name, bench):
    root = shared_data_or_skip()
    recorded = read_config(get_settings().checkpoints_dir / name).metrics[bench]
    if bench == "cifake_test_first2000":
        argv = ["--data", str(root / "cifake" / "test.zip"), "--limit", "2000"]
    else:
        argv = ["--data", bench, "--data-dir", str(root)]
    result = evaluate.main(evaluate.get_args_parser().parse_args(["--checkpoint", name, *argv]))
    assert result["n"] == recorded["n"]
    assert result["accuracy"] == pytest.approx(recorded["accuracy"], abs=TOLERANCE)


def test_readme_models_table_states_the_recorded_accuracy_and_interval():
    """The README's table is typed by hand: it must say what each config.json recorded (and its Wilson interval)."""
    readme = (REPO / "README.md").read_text()
    root = get_settings().checkpoints_dir
    for name in bundled_names():
        bench, metrics = next((b, m) for b, m in read_config(root / name).metrics.items() if "confusion_matrix" in m)
        low, high = accuracy_interval(metrics["accuracy"], metrics["n"])
        cell = f"**{metrics['accuracy']:.2%}** [{100 * low:.1f}–{100 * high:.1f}] (n={metrics['n']}"
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}` |"))
        assert cell in row, f"README row of {name} should show {cell} ({bench})"


def test_readme_models_table_states_the_stored_never_trained_on_accuracy():
    """The README's last column is typed by hand too: it must match docs/benchmarks/generalization.json."""
    readme = (REPO / "README.md").read_text()
    for name, unseen in unseen_accuracy().items():
        cell = " / ".join(f"{unseen[b][0]:.2%}" for b in UNSEEN_BENCHMARKS)
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}` |"))
        assert row.endswith(f"| {cell} |"), f"README row of {name} should end with {cell}"
