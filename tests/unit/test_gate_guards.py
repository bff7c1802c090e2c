"""Guard metrics of the promotion gate: a condition without a target that must not regress
against the champion (e.g. macro-F1 beside a micro-F1 gate)."""
from __future__ import annotations

import pytest

from tagflow.core.errors import ConfigError
from tagflow.core.gate import no_regression


@pytest.mark.parametrize("metric, value, champion, ok", [
    ("validation/macro_f1", 0.50, 0.50, True),     # a tie is not a regression
    ("validation/macro_f1", 0.51, 0.50, True),
    ("validation/macro_f1", 0.49, 0.50, False),
    ("val_mae", 0.40, 0.50, True),                 # lower is better
    ("val_mae", 0.60, 0.50, False),
    ("validation/macro_f1", 0.10, None, True),     # no champion: nothing to regress from
    ("validation/macro_f1", 0.10, float("nan"), True),
    ("validation/macro_f1", float("nan"), 0.5, False),
])
def test_no_regression(metric, value, champion, ok):
    assert no_regression(metric, value, champion)[0] is ok


def test_reasons_name_the_champion_and_the_regression():
    ok, reason = no_regression("validation/macro_f1", 0.401, 0.45, champion_version="3")
    assert not ok and reason == "guard validation/macro_f1 0.401 < champion v3's 0.450 (regression)"


def test_guard_needs_a_known_direction():
    with pytest.raises(ConfigError, match="unknown direction"):
        no_regression("vibes", 1.0, 0.5)
