"""Per-class thresholds from cross-validated scores over the training split (CV-SCut): no
document is scored by a model that saw it, and the thresholds rescue a label whose unseen
positives score under 0.5."""
from __future__ import annotations

import numpy as np
import pytest

from tagflow.core.errors import ConfigError
from tagflow.topics import metrics as M
from tagflow.topics.classifiers import make_classifier
from tagflow.topics.thresholds import cv_thresholds, out_of_fold_scores


class Memorizer:
    """Answers a text's training labels if it saw the text, 0.25 otherwise: a leak shows."""
    fitted_sizes: list[int] = []

    def fit(self, texts, Y, *_):
        self.seen = dict(zip(texts, np.asarray(Y, float)))
        Memorizer.fitted_sizes.append(len(texts))

    def scores(self, texts):
        return np.array([self.seen.get(t, np.full(2, 0.25)) for t in texts])


def test_out_of_fold_scores_come_from_models_that_never_saw_the_document():
    texts = [f"story {i}" for i in range(23)]
    Y = np.zeros((23, 2), bool)
    Y[::3, 0] = Y[1::2, 1] = True
    Memorizer.fitted_sizes = []
    S = out_of_fold_scores(Memorizer, texts, Y, folds=5, seed=13)
    assert (S == 0.25).all()                       # every document scored, none by its own model
    assert sorted(Memorizer.fitted_sizes) == [18, 18, 18, 19, 19]   # each fit leaves one fold out
    with pytest.raises(ConfigError, match="at least 2 folds"):
        out_of_fold_scores(Memorizer, texts, Y, folds=1, seed=13)


def stories(rng, n):
    """`rare` (15%) carries the word zeta, which 3% of the other stories carry too; `half`
    (50%) carries omega twice; 8 filler words each."""
    vocab = [f"w{i}" for i in range(300)]
    texts, Y = [], np.zeros((n, 2), bool)
    for i in range(n):
        words = list(rng.choice(vocab, 8))
        if rng.random() < 0.15:
            Y[i, 0] = True
            words.append("zeta")
        elif rng.random() < 0.03:
            words.append("zeta")
        if rng.random() < 0.5:
            Y[i, 1] = True
            words += ["omega", "omega"]
        texts.append(" ".join(words))
    return texts, Y


def test_cv_thresholds_recover_a_label_that_0_5_misses_on_unseen_stories():
    rng = np.random.default_rng(0)
    X, Y = stories(rng, 200)
    X_new, Y_new = stories(rng, 300)
    labels = ["rare", "half"]
    params = {"C": 0.05, "ngram_max": 1, "min_df": 1, "sublinear_tf": True, "class_weight": "none"}

    def make():
        return make_classifier("svm", labels, params)

    clf = make()
    clf.fit(X, Y)
    S_new = clf.scores(X_new)
    cv = cv_thresholds(make, labels, X, Y, folds=5, seed=13)
    t = np.array([cv["thresholds"][label] for label in labels])
    assert cv["tuned_on"].startswith("train") and cv["docs"] == 200 and set(t) <= set(M.THRESHOLD_GRID)
    # strong regularization keeps the rare label's margins under 0: at 0.5 it is never predicted
    def f1_of_rare(P):
        return {row["label"]: row["f1"] for row in M.per_class(Y_new, P, labels)}["rare"]

    assert f1_of_rare(S_new >= 0.5) == 0.0
    assert t[0] < 0.5 and f1_of_rare(S_new >= t) > 0.5
    assert M.f1_scores(Y_new, S_new >= t)["macro_f1"] > M.f1_scores(Y_new, S_new >= 0.5)["macro_f1"] + 0.25
