"""Per-class thresholds tuned on cross-validated scores over the training split (CV-SCut).

Validation holds 1-3 documents of most rare labels, too few to place a threshold, and tuning on
it leaves no unseen documents to measure the result on. Out-of-fold scores give every training
document a score from a model that never saw it, so each label's threshold is tuned on all of its
training positives (SCut.FBR as in `metrics.tune_thresholds`), and validation stays unseen: its
figures with these thresholds need no cross-fitting. The classifier used afterwards is the one
fitted on the whole training split; the fold models only score.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.errors import ConfigError
from ..core.log import get_logger
from . import metrics as M

log = get_logger("topics.thresholds")


def fold_ids(n: int, folds: int, seed: int) -> np.ndarray:
    """Document -> fold (0..folds-1), balanced sizes, by seed."""
    return np.random.default_rng(seed).permutation(n) % folds


def out_of_fold_scores(make, texts: Sequence[str], Y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Scores of each document by a classifier fitted on the other folds; `make()` returns a new
    unfitted classifier. A label without positives in a fold's training part scores 0 there."""
    if folds < 2:
        raise ConfigError(f"threshold_folds {folds}: cross-validation needs at least 2 folds")
    texts, Y = list(texts), np.asarray(Y, bool)
    fold = fold_ids(len(texts), folds, seed)
    S = np.zeros(Y.shape, dtype=np.float64)
    for k in range(folds):
        held = np.flatnonzero(fold == k)
        fit = np.flatnonzero(fold != k)
        log.info("threshold fold %d/%d: fit on %d documents, score %d", k + 1, folds, len(fit), len(held))
        clf = make()
        clf.fit([texts[i] for i in fit], Y[fit])
        S[held] = clf.scores([texts[i] for i in held])
    return S


def cv_thresholds(make, labels: Sequence[str], texts: Sequence[str], Y: np.ndarray, folds: int,
                  seed: int) -> dict:
    """{"labels", "thresholds": {label: t}, "tuned_on", ...} tuned on out-of-fold scores."""
    return thresholds_record(labels, Y, out_of_fold_scores(make, texts, Y, folds, seed), folds, seed)


def thresholds_record(labels: Sequence[str], Y: np.ndarray, S: np.ndarray, folds: int, seed: int) -> dict:
    """The thresholds tuned on out-of-fold scores S, with the out-of-fold figures at 0.5."""
    thresholds = M.tune_thresholds(Y, S)
    at_half = M.f1_scores(Y, S >= 0.5)
    return {"labels": list(labels), "thresholds": dict(zip(labels, thresholds.tolist())),
            "tuned_on": f"train ({folds}-fold cross-validated scores)", "folds": folds, "seed": seed,
            "docs": int(len(Y)), "min_f1": M.MIN_TUNED_F1,
            "labels_not_at_default": int((thresholds != 0.5).sum()),
            "oof_micro_f1": round(at_half["micro_f1"], 4), "oof_macro_f1": round(at_half["macro_f1"], 4)}
