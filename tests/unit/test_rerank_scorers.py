"""rerank's scorers as plain numbers: the exported trees score exactly as scikit-learn's model,
survive a JSON round trip, learn an interaction a logistic regression cannot, and scorers saved
before the trees (no `kind`) still load as logistic."""
from __future__ import annotations

import json

import numpy as np

from tagflow.tagger.backends.rerank import LinearScorer, TreeScorer, load_scorer

PARAMS = {"C": 1.0, "trees": 60, "leaves": 7, "learning_rate": 0.1}
FEATURES = ["retriever", "knn", "noise"]


def interaction(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Relevant when exactly one of two signals is high (an XOR: no linear boundary separates it)."""
    X = np.random.default_rng(seed).uniform(0, 1, size=(n, 3))
    return X, (X[:, 0] > 0.5) ^ (X[:, 1] > 0.5)


def accuracy(scorer, X, y) -> float:
    return float(((scorer(X) > 0.5) == y).mean())


def test_trees_learn_an_interaction_the_logistic_regression_cannot():
    X, y = interaction(3000, seed=1)
    X_new, y_new = interaction(1000, seed=2)
    trees, linear = TreeScorer.train(X, y, PARAMS, FEATURES), LinearScorer.train(X, y, PARAMS, FEATURES)
    assert accuracy(trees, X_new, y_new) > 0.9
    assert accuracy(linear, X_new, y_new) < 0.65
    weights = trees.weights()
    assert abs(sum(weights) - 1.0) < 1e-9 and weights[2] < min(weights[:2])   # the noise feature matters least


def test_exported_trees_reproduce_scikit_learn_and_survive_json():
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = interaction(2000, seed=3)
    trees = TreeScorer.train(X, y, PARAMS, FEATURES)
    model = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=7, learning_rate=0.1, l2_regularization=1.0,
                                           early_stopping=False, random_state=13).fit(X, y)
    X_new, _ = interaction(500, seed=4)
    reloaded = load_scorer(json.loads(json.dumps(trees.state)))
    assert isinstance(reloaded, TreeScorer) and reloaded.kind == "trees"
    assert np.allclose(reloaded(X_new), model.predict_proba(X_new)[:, 1], atol=1e-9)


def test_a_scorer_saved_before_the_trees_loads_as_logistic():
    X, y = interaction(500, seed=5)
    state = dict(LinearScorer.train(X, y, PARAMS, FEATURES).state)
    del state["kind"]   # what older models stored
    old = load_scorer(state)
    assert isinstance(old, LinearScorer)
    assert np.allclose(old(X), LinearScorer(state)(X))
