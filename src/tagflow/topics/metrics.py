"""Multi-label metrics over (documents x labels) boolean matrices: micro and macro F1, per-class
thresholds tuned on validation, cross-fitted tuning (an honest figure when the tuning set is also
the one scored), bootstrap CIs over documents, and the per-class report.

Macro-F1 averages over the labels with at least one gold document in the scored set (a label
absent from it has no defined recall); false positives on other labels still count in micro-F1.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)  # coarse on purpose: rare labels overfit
MIN_TUNED_F1 = 0.3  # a label's tuned threshold is used only if it reaches this F1 (SCut.FBR)


def _f1(tp, fp, fn):
    tp, fp, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn))
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0)


def counts(Y: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-label true positives, false positives, false negatives."""
    Y, P = np.asarray(Y, bool), np.asarray(P, bool)
    return (Y & P).sum(0), (~Y & P).sum(0), (Y & ~P).sum(0)


def f1_scores(Y: np.ndarray, P: np.ndarray) -> dict[str, float]:
    tp, fp, fn = counts(Y, P)
    present = (tp + fn) > 0
    per_label = _f1(tp, fp, fn)
    micro_p = tp.sum() / max(1, tp.sum() + fp.sum())
    micro_r = tp.sum() / max(1, tp.sum() + fn.sum())
    return {"micro_f1": float(_f1(tp.sum(), fp.sum(), fn.sum())),
            "macro_f1": float(per_label[present].mean()) if present.any() else 0.0,
            "micro_precision": float(micro_p), "micro_recall": float(micro_r),
            "labels_scored": int(present.sum())}


def tune_thresholds(Y: np.ndarray, S: np.ndarray, default: float = 0.5,
                    grid: np.ndarray = THRESHOLD_GRID, min_f1: float = MIN_TUNED_F1) -> np.ndarray:
    """Per label, the grid threshold with the best F1 on (Y, S); ties go to the one nearest the
    default. Labels without a positive in Y, and labels whose best F1 stays under `min_f1`, keep
    the default (SCut.FBR, Yang 2001): otherwise a rare label's best is a threshold so low that it
    tags nearly every document for one hit (F1 0.005 beats 0), and micro-F1 collapses."""
    Y, S = np.asarray(Y, bool), np.asarray(S, np.float64)
    out = np.full(Y.shape[1], default, dtype=np.float64)
    by_closeness = grid[np.argsort(np.abs(grid - default), kind="stable")]
    for j in range(Y.shape[1]):
        if not Y[:, j].any():
            continue
        pred = S[:, j][:, None] >= by_closeness[None, :]        # docs x thresholds
        tp = (pred & Y[:, j][:, None]).sum(0)
        fp = (pred & ~Y[:, j][:, None]).sum(0)
        fn = Y[:, j].sum() - tp
        f1 = _f1(tp, fp, fn)
        best = int(np.argmax(f1))                                   # first max = nearest default
        if f1[best] >= min_f1:
            out[j] = by_closeness[best]
    return out


def crossfit_predictions(Y: np.ndarray, S: np.ndarray, seed: int = 13, folds: int = 2) -> np.ndarray:
    """Predictions where each document's thresholds were tuned on the other folds only."""
    n = len(Y)
    fold = np.random.default_rng(seed).permutation(n) % folds
    P = np.zeros_like(np.asarray(S), dtype=bool)
    for k in range(folds):
        held = fold == k
        thresholds = tune_thresholds(Y[~held], S[~held])
        P[held] = S[held] >= thresholds
    return P


def bootstrap_ci(Y: np.ndarray, P: np.ndarray, n: int = 1000, seed: int = 13,
                 level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile CIs of micro- and macro-F1 over documents resampled with replacement."""
    Y, P = np.asarray(Y, bool), np.asarray(P, bool)
    if n <= 0 or len(Y) == 0:
        return {}
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(Y), np.full(len(Y), 1.0 / len(Y)), size=n).astype(np.float64)
    tp, fp, fn = weights @ (Y & P), weights @ (~Y & P), weights @ (Y & ~P)   # n x labels
    micro = _f1(tp.sum(1), fp.sum(1), fn.sum(1))
    per_label = _f1(tp, fp, fn)
    present = (tp + fn) > 0
    macro = np.where(present, per_label, 0.0).sum(1) / np.maximum(1, present.sum(1))
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {"micro_f1": (float(np.percentile(micro, lo)), float(np.percentile(micro, hi))),
            "macro_f1": (float(np.percentile(macro, lo)), float(np.percentile(macro, hi)))}


def per_class(Y: np.ndarray, P: np.ndarray, labels: Sequence[str],
              thresholds: np.ndarray | None = None) -> list[dict]:
    tp, fp, fn = counts(Y, P)
    rows = []
    for j, label in enumerate(labels):
        rows.append({"label": label, "support": int(tp[j] + fn[j]), "predicted": int(tp[j] + fp[j]),
                     "precision": round(float(tp[j] / max(1, tp[j] + fp[j])), 4),
                     "recall": round(float(tp[j] / max(1, tp[j] + fn[j])), 4),
                     "f1": round(float(_f1(tp[j], fp[j], fn[j])), 4),
                     **({"threshold": float(thresholds[j])} if thresholds is not None else {})})
    return sorted(rows, key=lambda r: (-r["support"], r["label"]))


def subset(Y: np.ndarray, P: np.ndarray, labels: Sequence[str], keep: Sequence[str]):
    """Only the `keep` labels, on documents with at least one of them (the top-10 evaluation)."""
    cols = [j for j, label in enumerate(labels) if label in set(keep)]
    Ys, Ps = np.asarray(Y, bool)[:, cols], np.asarray(P, bool)[:, cols]
    rows = Ys.any(1)
    return Ys[rows], Ps[rows]
