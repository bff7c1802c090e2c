"""Documents -> topics with probabilities: the one code path that evaluation, the registered
model (pyfunc) and `tagflow topics predict` share, so served = measured."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.errors import ModelError

TOP_K = 5  # probabilities reported per document besides the predicted topics


class TopicPredictor:
    def __init__(self, classifier, thresholds: Sequence[float] | None = None):
        self.classifier = classifier
        self.labels = list(classifier.labels)
        self.thresholds = np.full(len(self.labels), 0.5) if thresholds is None else np.asarray(thresholds, float)
        if len(self.thresholds) != len(self.labels):
            raise ModelError(f"{len(self.thresholds)} thresholds for {len(self.labels)} labels")

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        return self.classifier.scores(list(texts)) if len(texts) else np.zeros((0, len(self.labels)))

    def decide(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores) >= self.thresholds

    def answers(self, scores: np.ndarray, top_k: int = TOP_K) -> list[dict]:
        """One {"topics", "probabilities"} per row: topics above their thresholds (best first),
        probabilities of those and of the top_k labels."""
        out = []
        for row, chosen in zip(np.asarray(scores), self.decide(scores)):
            ranked = np.argsort(-row, kind="stable")
            shown = sorted(set(ranked[:top_k].tolist()) | set(np.flatnonzero(chosen).tolist()),
                           key=lambda j: (-row[j], j))
            out.append({"topics": [self.labels[j] for j in ranked if chosen[j]],
                        "probabilities": {self.labels[j]: round(float(row[j]), 4) for j in shown}})
        return out

    def predict(self, texts: Sequence[str], top_k: int = TOP_K) -> list[dict]:
        return self.answers(self.scores(texts), top_k)


def read_thresholds(path: str | Path, labels: Sequence[str]) -> np.ndarray:
    data = json.loads(Path(path).read_text())
    missing = [label for label in labels if label not in data["thresholds"]]
    if missing:
        raise ModelError(f"{path}: no threshold for {missing[:5]}")
    return np.array([data["thresholds"][label] for label in labels], dtype=float)


def load_local(model_dir: str | Path, thresholds: str | Path | None = None) -> TopicPredictor:
    """A predictor from a trained candidate's folder (and the evaluation's thresholds file)."""
    from .classifiers import load_classifier

    clf = load_classifier(model_dir)
    return TopicPredictor(clf, None if thresholds is None else read_thresholds(thresholds, clf.labels))
