"""Educational-value metrics as the references report them, and more: per-class precision,
recall and F1 of `int_score`, its macro-F1 and confusion matrix, binary F1 at a threshold (the
references' headline), Spearman correlation with the annotator and MAE, each with a 95%
percentile bootstrap interval over pages, beside the trivial baselines (all-positive, the mean
score) that any gate must keep out."""
from __future__ import annotations

import math

import numpy as np

from ..core.errors import DataError
from ..core.stats import bootstrap_stats
from .data import int_score

CLASSES = list(range(6))
CI_METRICS = ("spearman", "spearman_within", "macro_f1", "binary_f1", "mae")


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
    """Mean F1 over the classes present in the gold or the predictions (sklearn's default),
    from the confusion counts (fast enough for a thousand bootstrap resamples)."""
    counts = np.bincount(np.asarray(gold) * 6 + np.asarray(pred), minlength=36).reshape(6, 6)
    tp, gold_n, pred_n = np.diag(counts), counts.sum(axis=1), counts.sum(axis=0)
    present = (gold_n + pred_n) > 0
    f1 = np.divide(2 * tp, gold_n + pred_n, out=np.zeros(6), where=present)
    return float(f1[present].mean())


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


def point_metrics(gold_scores, pred_scores, threshold: int = 3, groups=None) -> dict[str, float]:
    """With `groups` (e.g. the source of each page), also `spearman_within`: the mean of the
    per-group correlations, which a model cannot earn by telling the groups apart (pooled English
    pages score 2-5, Danish ones 0-3). Without groups it equals `spearman`."""
    gold_scores, pred_scores = np.asarray(gold_scores, dtype=float), np.asarray(pred_scores, dtype=float)
    g, p = int_score(gold_scores), int_score(pred_scores)
    pooled = spearman(gold_scores, pred_scores)
    within = pooled
    if groups is not None:
        groups = np.asarray(groups)
        names = np.unique(groups)
        if len(names) > 1:
            within = float(np.mean([spearman(gold_scores[groups == n], pred_scores[groups == n]) for n in names]))
    return {
        "spearman": pooled,
        "spearman_within": within,
        "macro_f1": macro_f1(g, p),
        "binary_f1": binary_f1(g, p, threshold),
        "accuracy": float(np.mean(g == p)),
        "mae": float(np.mean(np.abs(gold_scores - pred_scores))),
        "rmse": float(math.sqrt(np.mean((gold_scores - pred_scores) ** 2))),
    }


def report(gold_scores, pred_scores, *, threshold: int = 3, n_boot: int = 1000, seed: int = 0,
           baseline_mean: float | None = None, groups=None) -> dict[str, float]:
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
    groups = None if groups is None else np.asarray(groups)
    out: dict[str, float] = {"pages": int(gold_scores.size),
                             **point_metrics(gold_scores, pred_scores, threshold, groups)}

    def stat(idx):
        m = point_metrics(gold_scores[idx], pred_scores[idx], threshold,
                          None if groups is None else groups[idx])
        return [m[name] for name in CI_METRICS]
    for name, (low, high) in zip(CI_METRICS, bootstrap_stats(stat, gold_scores.size, n_boot, seed)):
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = low, high
    g, p = int_score(gold_scores), int_score(pred_scores)
    labels = sorted(set(g.tolist()) | set(p.tolist()))
    for k, prec, rec, f1, sup in zip(labels, *_f1s(g, p, labels)):
        out |= {f"class_{k}_precision": float(prec), f"class_{k}_recall": float(rec),
                f"class_{k}_f1": float(f1), f"class_{k}_support": int(sup)}
    positive = np.full_like(gold_scores, 5.0)  # every page educational
    mean = float(np.mean(gold_scores) if baseline_mean is None else baseline_mean)
    for name, guess in (("all_positive", positive), ("mean", np.full_like(gold_scores, mean))):
        for metric, value in point_metrics(gold_scores, guess, threshold, groups).items():
            out[f"baseline_{name}_{metric}"] = value
    return out
