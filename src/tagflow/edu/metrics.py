"""Educational-value metrics as the references report them, and more: per-class precision,
recall and F1 of `int_score`, its macro-F1 and confusion matrix, binary F1 at a threshold (the
references' headline), Spearman correlation with the annotator and MAE, each with a 95%
percentile bootstrap interval over pages, beside the trivial baselines (all-positive, the mean
score) that any gate must keep out."""
from __future__ import annotations

import math

import numpy as np

from ..core.errors import DataError
from ..core.stats import bootstrap_stat
from .data import int_score

CLASSES = list(range(6))
CI_METRICS = ("spearman", "macro_f1", "binary_f1", "mae")


def spearman(a, b) -> float:
    """Rank correlation; 0.0 when either side is constant (no ranking information at all)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return 0.0
    return float(spearmanr(a, b).statistic)


def _f1s(gold: np.ndarray, pred: np.ndarray, labels) -> tuple[list, list, list, list]:
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    return list(p), list(r), list(f), list(s)


def macro_f1(gold: np.ndarray, pred: np.ndarray) -> float:
    """Mean F1 over the classes present in the gold or the predictions (sklearn's default)."""
    labels = sorted(set(gold.tolist()) | set(pred.tolist()))
    return float(np.mean(_f1s(gold, pred, labels)[2]))


def binary_f1(gold: np.ndarray, pred: np.ndarray, threshold: int) -> float:
    g, p = gold >= threshold, pred >= threshold
    tp = int(np.sum(g & p))
    denom = int(np.sum(g)) + int(np.sum(p))
    return 2 * tp / denom if denom else 0.0


def confusion(gold: np.ndarray, pred: np.ndarray) -> list[list[int]]:
    """6x6 counts, rows = annotator's int_score 0..5, columns = predicted."""
    out = np.zeros((6, 6), dtype=int)
    np.add.at(out, (gold, pred), 1)
    return out.tolist()


def point_metrics(gold_scores, pred_scores, threshold: int = 3) -> dict[str, float]:
    gold_scores, pred_scores = np.asarray(gold_scores, dtype=float), np.asarray(pred_scores, dtype=float)
    g, p = int_score(gold_scores), int_score(pred_scores)
    return {
        "spearman": spearman(gold_scores, pred_scores),
        "macro_f1": macro_f1(g, p),
        "binary_f1": binary_f1(g, p, threshold),
        "accuracy": float(np.mean(g == p)),
        "mae": float(np.mean(np.abs(gold_scores - pred_scores))),
        "rmse": float(math.sqrt(np.mean((gold_scores - pred_scores) ** 2))),
    }


def report(gold_scores, pred_scores, *, threshold: int = 3, n_boot: int = 1000, seed: int = 0,
           baseline_mean: float | None = None) -> dict[str, float]:
    """All metrics in one flat dict: point metrics, `<metric>_ci_low/high` for the headline ones,
    `class_<k>_precision/recall/f1/support` for classes 0-5 seen in gold or predictions, and
    `baseline_all_positive_*` / `baseline_mean_*` (the mean score of the training split when given,
    else of these gold scores)."""
    gold_scores = np.asarray(gold_scores, dtype=float)
    pred_scores = np.asarray(pred_scores, dtype=float)
    if gold_scores.shape != pred_scores.shape:
        raise ValueError(f"{gold_scores.size} gold scores but {pred_scores.size} predictions")
    if gold_scores.size == 0:
        raise DataError("no pages to score")
    out: dict[str, float] = {"pages": int(gold_scores.size), **point_metrics(gold_scores, pred_scores, threshold)}
    for name in CI_METRICS:
        def stat(idx, name=name):
            return point_metrics(gold_scores[idx], pred_scores[idx], threshold)[name]
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = bootstrap_stat(stat, gold_scores.size, n_boot, seed)
    g, p = int_score(gold_scores), int_score(pred_scores)
    labels = sorted(set(g.tolist()) | set(p.tolist()))
    for k, prec, rec, f1, sup in zip(labels, *_f1s(g, p, labels)):
        out |= {f"class_{k}_precision": float(prec), f"class_{k}_recall": float(rec),
                f"class_{k}_f1": float(f1), f"class_{k}_support": int(sup)}
    positive = np.full_like(gold_scores, 5.0)  # every page educational
    mean = float(np.mean(gold_scores) if baseline_mean is None else baseline_mean)
    for name, guess in (("all_positive", positive), ("mean", np.full_like(gold_scores, mean))):
        for metric, value in point_metrics(gold_scores, guess, threshold).items():
            out[f"baseline_{name}_{metric}"] = value
    return out
