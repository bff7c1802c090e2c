"""The promotion gate for any metric: direction from the metric's name, target and champion."""
from __future__ import annotations

import pytest

from tagflow.core.errors import ConfigError
from tagflow.core.gate import HIGHER, LOWER, decide, direction


@pytest.mark.parametrize("metric, way", [
    ("f1_doc", HIGHER), ("f1_micro", HIGHER), ("test/f1_doc", HIGHER), ("macro_f1", HIGHER),
    ("spearman", HIGHER), ("accuracy", HIGHER), ("valid_json_rate", HIGHER),
    ("mse", LOWER), ("val_mae", LOWER), ("eval_loss", LOWER), ("out_of_thesaurus_rate", LOWER),
])
def test_direction_from_the_metric_name(metric, way):
    assert direction(metric) == way


def test_unknown_metric_has_no_direction():
    with pytest.raises(ConfigError, match="'vibes': unknown direction"):
        direction("vibes")


@pytest.mark.parametrize("value,target,champion,promoted", [
    (0.30, 0.30, None, True),        # equal to target promotes
    (0.0, 0.0, None, True),          # smoke profile: target 0 accepts a zero score
    (0.2999, 0.30, None, False),
    (0.50, 0.30, 0.50, True),        # a tie with the champion is not a regression
    (0.45, 0.30, 0.50, False),       # above target, below champion
    (0.25, 0.30, 0.10, False),       # beats a weak champion but misses the target
    (float("nan"), 0.30, None, False),
    (0.40, 0.30, float("nan"), True),  # a broken champion score does not block forever
])
def test_higher_is_better(value, target, champion, promoted):
    assert decide(value, target, champion, metric="f1_doc")[0] is promoted


@pytest.mark.parametrize("value,target,champion,promoted", [
    (0.40, 0.50, None, True),        # an MSE under its ceiling
    (0.50, 0.50, None, True),
    (0.60, 0.50, None, False),       # over the ceiling
    (0.40, 0.50, 0.30, False),       # worse than the champion's 0.30: a regression
    (0.30, 0.50, 0.30, True),
    (0.20, 0.50, 0.30, True),
])
def test_lower_is_better(value, target, champion, promoted):
    assert decide(value, target, champion, metric="mse")[0] is promoted


def test_reasons_are_readable():
    ok, reasons = decide(0.412, 0.30, None, metric="f1_doc")
    assert ok and reasons[0] == "f1_doc 0.412 >= target 0.300"
    ok, reasons = decide(0.28, 0.25, 0.31, metric="f1_doc", champion_version="3")
    assert not ok and "f1_doc 0.280 < champion v3's 0.310 (regression)" in reasons
    # three decimals would print "0.300 < target 0.300": more digits are shown instead
    ok, reasons = decide(0.29996, 0.30, None, metric="f1_doc")
    assert not ok and reasons[0] == "f1_doc 0.29996 < target 0.3"
    ok, reasons = decide(0.7, 0.5, 0.4, metric="mse", champion_version="2")
    assert not ok and reasons == ["mse 0.700 > target 0.500 (lower is better)",
                                  "mse 0.700 > champion v2's 0.400 (regression)"]
