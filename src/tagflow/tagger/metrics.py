"""Set-based tagging metrics. Documents are compared by concept URI, never by display string.

`*_doc` metrics average per-document scores (how the reference tagger was reported); `*_micro`
pool all decisions. A document with no prediction scores precision 0 (not undefined), so an
empty answer is never rewarded.

Beyond the set metrics: ranked metrics over ordered predictions (P@k, R@5, F1@5, NDCG), a
hierarchy-aware F1 that gives half credit to a direct parent or child of a gold concept, a
percentile bootstrap interval over documents, and `full_report`, which gathers all of them.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from ..core.errors import DataError
from ..core.stats import bootstrap_ci  # noqa: F401 (shared with other families; re-exported)
from .text import verbatim


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


# --- ranked, hierarchy-aware and report metrics -------------------------------------------------

def _check(golds: Sequence, preds: Sequence) -> None:
    if len(golds) != len(preds):
        raise ValueError(f"{len(golds)} gold documents but {len(preds)} predictions")
    if not golds:
        raise DataError("no documents to score")


def _dedupe(ranked: Iterable[str]) -> list[str]:
    """Keep the first occurrence of each URI, in rank order (a repeat is not a second hit)."""
    return list(dict.fromkeys(ranked))


def _ndcg(ranked: list[str], gold: set[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, u in enumerate(ranked[:k]) if u in gold)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(gold))))
    return dcg / ideal if ideal else 0.0


def ranked_scores(golds: list[list[str]], preds: list[list[str]],
                  ks: Sequence[int] = (1, 3, 5)) -> dict[str, float]:
    """Document-averaged ranked metrics; each prediction list is ranked best first.

    Repeated URIs count once, at their first rank. Per document, with top-k the first k
    distinct predictions:
      p_at_<k>   |top-k & gold| / k (denominator k even when fewer than k were predicted)
      r_at_5     |top-5 & gold| / |gold|
      f1_at_5    `prf` F1 of the top-5 set against gold (its precision is over the predictions
                 kept, at most 5, not over 5)
      ndcg_at_5, ndcg_at_10   binary relevance, gain 1/log2(rank + 1), divided by the ideal
                 DCG: min(k, |gold|) hits at the top ranks
    A document with no gold concept scores 0 on everything. Every value is a mean over documents.
    """
    _check(golds, preds)
    sums: dict[str, float] = {f"p_at_{k}": 0.0 for k in ks}
    sums.update(r_at_5=0.0, f1_at_5=0.0, ndcg_at_5=0.0, ndcg_at_10=0.0)
    for g, p in zip(golds, preds):
        gold, ranked = set(g), _dedupe(p)
        for k in ks:
            sums[f"p_at_{k}"] += len(set(ranked[:k]) & gold) / k
        _, r5, f5 = prf(set(ranked[:5]), gold)
        sums["r_at_5"] += r5
        sums["f1_at_5"] += f5
        sums["ndcg_at_5"] += _ndcg(ranked, gold, 5)
        sums["ndcg_at_10"] += _ndcg(ranked, gold, 10)
    return {key: v / len(golds) for key, v in sums.items()}


def hierarchy_f1(golds: list[list[str]], preds: list[list[str]], thesaurus) -> dict[str, float]:
    """Hierarchy-aware F1, averaged over documents.

    Two concepts are neighbours when one is the direct broader (parent) or direct narrower
    (child) concept of the other: one step in `thesaurus.broader` / `thesaurus.narrower`,
    looked up from either side. Related links, siblings and grandparents are not neighbours.
    Per document, on sets of URIs:
      credit(c, S) = 1 if c is in S, else 0.5 if c is a neighbour of a member of S, else 0
      soft precision hp = sum of credit(p, gold) over the predictions p / |pred|
      soft recall    hr = sum of credit(g, pred) over the gold concepts g / |gold|
                          (each gold concept takes the best credit any prediction gives it)
      hf1 = 2 hp hr / (hp + hr), 0 when both are 0
    An empty prediction (or gold) set gives hp (or hr) 0. Keys: hp_doc, hr_doc, hf1_doc, the
    means over documents (hf1_doc is the mean of per-document hf1, not the F1 of the means).
    """
    _check(golds, preds)

    def adjacent(a: str, b: str) -> bool:
        return (b in thesaurus.broader.get(a, ()) or b in thesaurus.narrower.get(a, ())
                or a in thesaurus.broader.get(b, ()) or a in thesaurus.narrower.get(b, ()))

    def credit(concept: str, others: set[str]) -> float:
        if concept in others:
            return 1.0
        return 0.5 if any(adjacent(concept, o) for o in others) else 0.0

    hp = hr = hf = 0.0
    for g, p in zip(golds, preds):
        gold, pred = set(g), set(p)
        p_soft = sum(credit(c, gold) for c in pred) / len(pred) if pred else 0.0
        r_soft = sum(credit(c, pred) for c in gold) / len(gold) if gold else 0.0
        hp += p_soft
        hr += r_soft
        hf += 2 * p_soft * r_soft / (p_soft + r_soft) if p_soft + r_soft else 0.0
    n = len(golds)
    return {"hp_doc": hp / n, "hr_doc": hr / n, "hf1_doc": hf / n}


def per_document_f1(golds: list[list[str]], preds: list[list[str]]) -> list[float]:
    """Set F1 (`prf`) of each document, in input order."""
    if len(golds) != len(preds):
        raise ValueError(f"{len(golds)} gold documents but {len(preds)} predictions")
    return [prf(set(p), set(g))[2] for g, p in zip(golds, preds)]


def full_report(golds: list[list[str]], preds: list[list[str]], *, thesaurus,
                texts: Sequence[str] | None = None, langs: Sequence[str] | None = None,
                label_sets: Sequence[Mapping[str, Sequence[str]]] | None = None,
                n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """All tagging metrics in one flat dict, unrounded: `tagging_scores`, `ranked_scores`
    (preds are taken as ranked), `hierarchy_f1`, and f1_doc_ci_low / f1_doc_ci_high (percentile
    bootstrap of the mean per-document F1).

    With `langs` (one per document; an empty one counts as "unknown"): f1_doc_<lang> and
    documents_<lang> for each language. With both `texts` and `label_sets` (per document: gold
    URI -> all its labels in all languages): f1_doc_not_verbatim and documents_not_verbatim over
    the documents where no gold concept has a label occurring verbatim in the text (a document
    without gold concepts counts as such); the keys are omitted when there is no such document.
    """
    out: dict[str, float] = dict(tagging_scores(golds, preds))
    out.update(ranked_scores(golds, preds))
    out.update(hierarchy_f1(golds, preds, thesaurus))
    f1s = per_document_f1(golds, preds)
    out["f1_doc_ci_low"], out["f1_doc_ci_high"] = bootstrap_ci(f1s, n_boot=n_boot, seed=seed)
    if langs is not None:
        if len(langs) != len(golds):
            raise ValueError(f"{len(golds)} gold documents but {len(langs)} languages")
        by_lang: dict[str, list[float]] = {}
        for lang, f in zip(langs, f1s):
            by_lang.setdefault(lang or "unknown", []).append(f)
        for lang, fs in sorted(by_lang.items()):
            out[f"f1_doc_{lang}"] = sum(fs) / len(fs)
            out[f"documents_{lang}"] = len(fs)
    if texts is not None and label_sets is not None:
        if not len(texts) == len(label_sets) == len(golds):
            raise ValueError(f"{len(golds)} gold documents but {len(texts)} texts and "
                             f"{len(label_sets)} label sets")
        hidden = [f for g, text, labels, f in zip(golds, texts, label_sets, f1s)
                  if not any(verbatim(text, labels.get(u, ())) for u in set(g))]
        if hidden:
            out["f1_doc_not_verbatim"] = sum(hidden) / len(hidden)
            out["documents_not_verbatim"] = len(hidden)
    return out
