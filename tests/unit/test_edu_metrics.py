"""edu metrics: hand-computed values, the trivial baselines the gate must keep out, and the
bootstrap interval shared through core.stats."""
from __future__ import annotations

import numpy as np
import pytest

from tagflow.core.errors import DataError
from tagflow.core.gate import decide
from tagflow.core.stats import bootstrap_ci, bootstrap_stat
from tagflow.edu.metrics import binary_f1, confusion, macro_f1, point_metrics, report, spearman


def test_point_metrics_by_hand():
    gold = np.array([0, 1, 2, 3, 4, 5], dtype=float)
    pred = np.array([0.2, 1.4, 1.6, 3.0, 3.6, 5.9])  # int: 0 1 2 3 4 5 -> all right
    m = point_metrics(gold, pred)
    assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0 and m["binary_f1"] == 1.0
    assert m["spearman"] == pytest.approx(1.0)
    assert m["mae"] == pytest.approx((0.2 + 0.4 + 0.4 + 0 + 0.4 + 0.9) / 6)
    # binary at 3: gold positive {3,4,5}; predicted ints 3,3,3,3,2,2 -> tp 1 (page 3), fp 3
    worse = point_metrics(gold, np.array([3, 3, 3, 3, 2, 2.0]))
    assert worse["binary_f1"] == pytest.approx(2 * 1 / (3 + 4))
    assert worse["spearman"] < 0


def test_macro_f1_over_classes_seen_in_gold_or_prediction():
    gold, pred = np.array([1, 1, 2, 2]), np.array([1, 2, 2, 3])
    # class 1: p 1, r .5 -> 2/3; class 2: p .5, r .5 -> .5; class 3: 0
    assert macro_f1(gold, pred) == pytest.approx((2 / 3 + 0.5 + 0) / 3)
    assert binary_f1(gold, pred, 2) == pytest.approx(2 * 2 / (2 + 3))


def test_confusion_rows_are_the_annotator():
    m = confusion(np.array([0, 0, 5]), np.array([0, 1, 5]))
    assert m[0][:2] == [1, 1] and m[5][5] == 1 and sum(map(sum, m)) == 3


def test_constant_predictions_have_no_rank_information():
    assert spearman([1, 2, 3], [2, 2, 2]) == 0.0


def test_report_baselines_cannot_pass_a_spearman_gate():
    rng = np.random.default_rng(0)
    gold = rng.choice([2, 3, 4, 5], size=200, p=[0.1, 0.25, 0.5, 0.15]).astype(float)
    pred = gold + rng.normal(0, 0.6, size=200)
    r = report(gold, pred, n_boot=200, seed=1, baseline_mean=3.6)
    # all-positive wins binary F1 on mostly-educational pages (why F1@3 alone is no gate) ...
    assert r["baseline_all_positive_binary_f1"] > 0.9
    # ... but neither baseline ranks anything
    assert r["baseline_all_positive_spearman"] == 0.0 and r["baseline_mean_spearman"] == 0.0
    assert r["spearman"] > 0.6
    assert r["spearman_ci_low"] < r["spearman"] < r["spearman_ci_high"]
    assert r["mae_ci_low"] < r["mae"] < r["mae_ci_high"]
    assert r["baseline_mean_mae"] == pytest.approx(np.mean(np.abs(gold - 3.6)))
    assert r["class_4_support"] == int(np.sum(gold == 4))
    assert r["pages"] == 200
    for baseline in ("all_positive", "mean"):
        assert not decide(r[f"baseline_{baseline}_spearman"], 0.3, None, metric="val/spearman")[0]
    assert decide(r["spearman"], 0.3, None, metric="val/spearman")[0]


def test_report_refuses_empty_and_mismatched():
    with pytest.raises(DataError):
        report([], [])
    with pytest.raises(ValueError, match="3 gold scores but 2"):
        report([1, 2, 3], [1, 2])


def test_bootstrap_stat_matches_bootstrap_ci_for_the_mean():
    values = np.array([0.1, 0.5, 0.9, 0.3, 0.7])
    by_stat = bootstrap_stat(lambda idx: values[idx].mean(), len(values), n_boot=300, seed=5)
    assert by_stat[0] < values.mean() < by_stat[1]
    assert by_stat == bootstrap_stat(lambda idx: values[idx].mean(), len(values), n_boot=300, seed=5)
    assert bootstrap_ci(values, n_boot=300, seed=5)[0] < values.mean()
    with pytest.raises(ValueError):
        bootstrap_stat(lambda idx: 0.0, 0)


def test_spearman_within_ignores_telling_groups_apart():
    # two sources on different scales; inside each the prediction ranks pages backwards
    gold = np.array([4, 4.5, 5, 0, 0.5, 1])
    pred = np.array([5, 4.5, 4, 1, 0.5, 0])
    groups = np.array(["en"] * 3 + ["da"] * 3)
    m = point_metrics(gold, pred, groups=groups)
    assert m["spearman"] > 0.4  # pooled: rewarded for separating the sources
    assert m["spearman_within"] == pytest.approx(-1.0)
    assert point_metrics(gold, pred)["spearman_within"] == m["spearman"]
    r = report(gold, pred, n_boot=50, groups=groups)
    assert r["spearman_within"] == pytest.approx(-1.0) and r["baseline_mean_spearman_within"] == 0.0
