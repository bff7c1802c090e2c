"""Regression heads on frozen sentence embeddings, one output each (the score).

  linear   least squares, no penalty: the FineWeb-Edu reference's head
  ridge    least squares with an L2 penalty (alpha chosen on validation)
  mlp      one hidden layer (scikit-learn MLPRegressor), L2 penalty chosen on validation
  ordinal  cumulative logits: one logistic regression per threshold k ("score >= k"); the score
           is the lowest class plus the sum of P(score >= k), so it stays a number in range

`candidates` lists (head, hyper-parameters) pairs for training to try; `fit` returns a fitted
object with `predict(X) -> scores`, pickled with joblib into the model folder.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import ConfigError


class OrdinalHead:
    def __init__(self, C: float = 1.0, seed: int = 0):
        self.C, self.seed = C, seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> "OrdinalHead":
        from sklearn.linear_model import LogisticRegression

        classes = np.round(np.asarray(y, dtype=float)).astype(int)
        self.low = int(classes.min())
        self.models: list = []
        for k in range(self.low + 1, int(classes.max()) + 1):
            target = classes >= k
            if target.all() or not target.any():  # cannot happen inside [low, high]; kept safe
                self.models.append(float(target.mean()))
                continue
            self.models.append(LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)
                               .fit(X, target))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = np.full(len(X), float(self.low))
        for model in self.models:
            out += model if isinstance(model, float) else model.predict_proba(X)[:, 1]
        return out


def candidates(heads: list[str], ridge_alphas: list[float]) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    for head in heads:
        if head == "linear":
            out.append(("linear", {}))
        elif head == "ridge":
            out += [("ridge", {"alpha": float(a)}) for a in ridge_alphas]
        elif head == "mlp":
            out += [("mlp", {"alpha": a}) for a in (1e-3, 1e-1)]
        elif head == "ordinal":
            out += [("ordinal", {"C": 1.0 / float(a)}) for a in ridge_alphas]
        else:
            raise ConfigError(f"unknown edu head {head!r}")
    return out


def fit(head: str, params: dict, X: np.ndarray, y: np.ndarray, seed: int = 13, mlp_hidden: int = 64):
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.neural_network import MLPRegressor

    y = np.asarray(y, dtype=float)
    if head == "linear":
        model = LinearRegression()
    elif head == "ridge":
        model = Ridge(alpha=params["alpha"])
    elif head == "mlp":
        model = MLPRegressor(hidden_layer_sizes=(mlp_hidden,), alpha=params["alpha"], max_iter=800,
                             learning_rate_init=1e-3, random_state=seed)
    elif head == "ordinal":
        model = OrdinalHead(C=params["C"], seed=seed)
    else:
        raise ConfigError(f"unknown edu head {head!r}")
    return model.fit(X, y)
