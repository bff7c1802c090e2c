"""Multi-label metrics of the topics family: F1 by hand, threshold tuning, cross-fitting,
bootstrap CIs, the top-10 subset, and the predictor's answers."""
from __future__ import annotations

import numpy as np
import pytest

from tagflow.topics import metrics as M
from tagflow.topics.inference import TopicPredictor

Y = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]], bool)
P = np.array([[1, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0]], bool)


def test_f1_by_hand():
    s = M.f1_scores(Y, P)
    # tp 3 (a, a, b), fp 2 (c on doc 0, a on doc 3), fn 1 (b on doc 1)
    assert s["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert s["micro_precision"] == pytest.approx(3 / 5) and s["micro_recall"] == pytest.approx(3 / 4)
    # macro over labels with gold documents (a: 2*2/(4+1+0)=0.8, b: 2/(2+0+1)=0.667); c has none
    assert s["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2) and s["labels_scored"] == 2


def test_tuned_thresholds_beat_one_half_on_the_tuning_set():
    rng = np.random.default_rng(0)
    Yr = rng.random((200, 4)) < 0.3
    S = np.clip(0.25 + 0.2 * Yr + rng.normal(0, 0.08, Yr.shape), 0, 1)  # positives score ~0.45
    t = M.tune_thresholds(Yr, S)
    assert (t < 0.5).all() and set(t) <= set(M.THRESHOLD_GRID)
    assert M.f1_scores(Yr, S >= t)["micro_f1"] > M.f1_scores(Yr, S >= 0.5)["micro_f1"] + 0.3


def test_labels_without_positives_keep_the_default():
    S = np.array([[0.9, 0.2], [0.1, 0.3]])
    t = M.tune_thresholds(np.array([[1, 0], [0, 0]], bool), S)
    assert t[1] == 0.5 and S[0, 0] >= t[0] > S[1, 0]


def test_a_rare_label_without_a_useful_threshold_keeps_the_default():
    # one positive scoring 0.26 among negatives at 0.27-0.3: the best grid threshold (0.25) tags
    # every document for that one hit (F1 0.02); SCut.FBR keeps 0.5 instead
    S = np.array([[0.26]] + [[0.27 + 0.0003 * i] for i in range(99)])
    Yr = np.zeros((100, 1), bool)
    Yr[0] = True
    assert M.tune_thresholds(Yr, S, min_f1=0.0)[0] == 0.25
    assert M.tune_thresholds(Yr, S)[0] == 0.5


def test_crossfit_uses_other_folds_only():
    rng = np.random.default_rng(1)
    Yr = rng.random((300, 3)) < 0.3
    S = np.clip(0.3 + 0.15 * Yr + rng.normal(0, 0.05, Yr.shape), 0, 1)
    crossfit = M.f1_scores(Yr, M.crossfit_predictions(Yr, S))["micro_f1"]
    in_sample = M.f1_scores(Yr, S >= M.tune_thresholds(Yr, S))["micro_f1"]
    assert 0.5 < crossfit <= in_sample + 1e-9  # honest figure: never above the in-sample one


def test_bootstrap_ci_brackets_the_estimate_and_is_seeded():
    rng = np.random.default_rng(2)
    Yr = rng.random((150, 5)) < 0.3
    Pr = Yr ^ (rng.random(Yr.shape) < 0.15)
    ci = M.bootstrap_ci(Yr, Pr, n=300, seed=5)
    point = M.f1_scores(Yr, Pr)
    for metric in ("micro_f1", "macro_f1"):
        low, high = ci[metric]
        assert low < point[metric] < high and high - low < 0.3
    assert ci == M.bootstrap_ci(Yr, Pr, n=300, seed=5) != M.bootstrap_ci(Yr, Pr, n=300, seed=6)


def test_subset_keeps_documents_with_a_kept_label():
    Ys, Ps = M.subset(Y, P, ["a", "b", "c"], ["b"])
    assert Ys.tolist() == [[True], [True]] and Ps.tolist() == [[False], [True]]


def test_per_class_report_sorted_by_support():
    rows = M.per_class(Y, P, ["a", "b", "c"], np.array([0.4, 0.5, 0.6]))
    assert [r["label"] for r in rows] == ["a", "b", "c"]
    assert rows[0] == {"label": "a", "support": 2, "predicted": 3, "precision": 0.6667, "recall": 1.0,
                       "f1": 0.8, "threshold": 0.4}


class _Fixed:
    labels = ["acq", "earn", "grain"]

    def scores(self, texts):
        return np.array([[0.2, 0.9, 0.45]] * len(texts))


def test_predictor_answers_topics_above_thresholds_with_probabilities():
    answer = TopicPredictor(_Fixed(), [0.5, 0.5, 0.4]).predict(["x"], top_k=1)[0]
    assert answer == {"topics": ["earn", "grain"], "probabilities": {"earn": 0.9, "grain": 0.45}}
    plain = TopicPredictor(_Fixed()).predict(["x", "y"], top_k=3)
    assert plain[1]["topics"] == ["earn"] and list(plain[1]["probabilities"]) == ["earn", "grain", "acq"]
