"""Every bundled checkpoint reproduces the test accuracy recorded in its config.json, through training.evaluate."""
from __future__ import annotations

import pytest

from gauntlet.checkpoint import bundled_names, read_config
from gauntlet.settings import get_settings
from tests.conftest import shared_data_or_skip
from training import evaluate

DEFAULT = "baseline-cifake"
TOLERANCE = 0.005
CHEAP = ("cifake_test_first2000", "rvaa_test", "mixed_test")


def _recorded() -> list[tuple[str, str]]:
    root = get_settings().checkpoints_dir
    return [(name, bench) for name in bundled_names() for bench in CHEAP
            if bench in read_config(root / name).metrics]


def test_the_default_checkpoint_records_its_first_2000_accuracy():
    assert (DEFAULT, "cifake_test_first2000") in _recorded()


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
