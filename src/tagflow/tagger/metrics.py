"""Set-based tagging metrics. Documents are compared by concept URI, never by display string.

`*_doc` metrics average per-document scores (how the reference tagger was reported); `*_micro`
pool all decisions. A document with no prediction scores precision 0 (not undefined), so an
empty answer is never rewarded.
"""
from __future__ import annotations

from ..core.errors import DataError


def prf(pred: set[str], gold: set[str]) -> tuple[float, float, float]:
    hits = len(pred & gold)
    p = hits / len(pred) if pred else 0.0
    r = hits / len(gold) if gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def tagging_scores(golds: list[list[str]], preds: list[list[str]]) -> dict[str, float]:
    if len(golds) != len(preds):
        raise ValueError(f"{len(golds)} gold documents but {len(preds)} predictions")
    if not golds:
        raise DataError("no documents to score")
    per_doc = [prf(set(p), set(g)) for g, p in zip(golds, preds)]
    n = len(per_doc)
    hits = sum(len(set(p) & set(g)) for g, p in zip(golds, preds))
    n_pred = sum(len(set(p)) for p in preds)
    n_gold = sum(len(set(g)) for g in golds)
    mp = hits / n_pred if n_pred else 0.0
    mr = hits / n_gold if n_gold else 0.0
    return {
        "precision_doc": sum(x[0] for x in per_doc) / n,
        "recall_doc": sum(x[1] for x in per_doc) / n,
        "f1_doc": sum(x[2] for x in per_doc) / n,
        "precision_micro": mp,
        "recall_micro": mr,
        "f1_micro": 2 * mp * mr / (mp + mr) if mp + mr else 0.0,
        "documents": n,
    }


def output_quality(valid_json: list[bool], emitted: int, unknown: int, duplicates: int) -> dict[str, float]:
    """Format health of the raw model answers."""
    distinct = emitted - duplicates
    return {
        "valid_json_rate": sum(valid_json) / len(valid_json) if valid_json else 0.0,
        "out_of_thesaurus_rate": unknown / distinct if distinct else 0.0,
        "duplicate_rate": duplicates / emitted if emitted else 0.0,
    }
