"""Ranked, hierarchy-aware, bootstrap and report metrics on cases computed by hand."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from tagflow.tagger.metrics import (bootstrap_ci, full_report, hierarchy_f1, per_document_f1,
                                    ranked_scores, tagging_scores, verbatim)

T = "http://example.org/thes/"
C1, C2, C3, C4, C5, C6, C7, C8, C9 = (f"{T}c{i}" for i in range(1, 10))


def labels_of(thesaurus, uri: str) -> list[str]:
    """All labels of a concept in all languages, from the thesaurus table."""
    row = thesaurus.table.set_index("uri").loc[uri]
    out = [row[c] for c in row.index if c.startswith("pref_") and row[c]]
    for c in row.index:
        if c.startswith("alt_"):
            out.extend(row[c])
    return out


# --- ranked_scores -----------------------------------------------------------------------------

def test_ranked_fewer_predictions_than_k():
    # gold {a, b}, one prediction a: P@k keeps denominator k
    s = ranked_scores([["a", "b"]], [["a"]])
    assert s["p_at_1"] == pytest.approx(1.0)
    assert s["p_at_3"] == pytest.approx(1 / 3)
    assert s["p_at_5"] == pytest.approx(1 / 5)
    assert s["r_at_5"] == pytest.approx(1 / 2)
    assert s["f1_at_5"] == pytest.approx(2 / 3)  # prf({a}, {a,b}): p 1, r 1/2
    # DCG 1 / IDCG (1 + 1/log2 3)
    assert s["ndcg_at_5"] == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_ranked_ndcg_known_value():
    # hits at ranks 2 and 4: DCG = 1/log2(3) + 1/log2(5) = 0.63093 + 0.43068 = 1.06161
    # ideal: 2 hits at ranks 1, 2: 1 + 0.63093 = 1.63093 -> NDCG 0.65093
    s = ranked_scores([["a", "b"]], [["x", "a", "y", "b"]])
    assert s["ndcg_at_5"] == pytest.approx(0.650921, abs=1e-5)
    assert s["ndcg_at_10"] == pytest.approx(0.650921, abs=1e-5)
    assert s["p_at_1"] == 0.0
    assert s["p_at_3"] == pytest.approx(1 / 3)
    assert s["p_at_5"] == pytest.approx(2 / 5)
    assert s["r_at_5"] == pytest.approx(1.0)
    assert s["f1_at_5"] == pytest.approx(2 / 3)  # top-5 set {x,a,y,b}: p 1/2, r 1


def test_ranked_order_matters():
    best = ranked_scores([["a"]], [["a", "x", "y"]])
    worst = ranked_scores([["a"]], [["x", "y", "a"]])
    assert best["ndcg_at_5"] == pytest.approx(1.0)
    assert worst["ndcg_at_5"] == pytest.approx(1 / math.log2(4))  # rank 3 -> 0.5
    assert best["p_at_1"] == 1.0 and worst["p_at_1"] == 0.0
    # set metrics do not see the order
    assert best["p_at_3"] == worst["p_at_3"] == pytest.approx(1 / 3)


def test_ranked_hit_beyond_five_counts_only_for_ndcg_at_10():
    s = ranked_scores([["a"]], [["x1", "x2", "x3", "x4", "x5", "a"]])
    assert s["ndcg_at_5"] == 0.0
    assert s["r_at_5"] == 0.0 and s["f1_at_5"] == 0.0
    assert s["ndcg_at_10"] == pytest.approx(1 / math.log2(7))  # rank 6


def test_ranked_ideal_uses_min_k_and_gold_size():
    gold = [f"g{i}" for i in range(12)]
    s = ranked_scores([gold], [gold[:7]])  # 7 hits on top, 12 gold
    assert s["ndcg_at_5"] == pytest.approx(1.0)  # ideal = 5 hits
    dcg7 = sum(1 / math.log2(i + 2) for i in range(7))
    idcg10 = sum(1 / math.log2(i + 2) for i in range(10))
    assert s["ndcg_at_10"] == pytest.approx(dcg7 / idcg10)
    assert s["ndcg_at_10"] < 1.0


def test_ranked_repeats_count_once_at_first_rank():
    # deduplicated ranking is [a, b]: top-3 holds both hits
    s = ranked_scores([["a", "b"]], [["a", "a", "a", "b"]])
    assert s["p_at_3"] == pytest.approx(2 / 3)
    assert s["ndcg_at_5"] == pytest.approx(1.0)


def test_ranked_averages_over_documents_and_custom_ks():
    s = ranked_scores([["a"], ["b"]], [["a"], ["x", "b"]], ks=(1, 2))
    assert set(s) == {"p_at_1", "p_at_2", "r_at_5", "f1_at_5", "ndcg_at_5", "ndcg_at_10"}
    assert s["p_at_1"] == pytest.approx(0.5)          # (1 + 0) / 2
    assert s["p_at_2"] == pytest.approx(0.5)          # (1/2 + 1/2) / 2
    assert s["f1_at_5"] == pytest.approx((1 + 2 / 3) / 2)
    assert s["ndcg_at_5"] == pytest.approx((1 + 1 / math.log2(3)) / 2)


def test_ranked_empty_gold_and_empty_prediction_score_zero():
    s = ranked_scores([[], ["a"]], [["a"], []])
    assert all(v == 0.0 for v in s.values())


def test_ranked_input_errors():
    with pytest.raises(ValueError, match="2 gold documents but 1 predictions"):
        ranked_scores([["a"], ["b"]], [["a"]])
    with pytest.raises(ValueError, match="no documents"):
        ranked_scores([], [])


# --- hierarchy_f1 ------------------------------------------------------------------------------

@pytest.mark.parametrize("gold, pred, expected", [
    (C2, C2, 1.0),   # exact
    (C2, C1, 0.5),   # predicted parent
    (C2, C3, 0.5),   # predicted child (c3's broader link is only stated as c2 narrower)
    (C3, C1, 0.0),   # grandparent: more than one step
    (C2, C4, 0.0),   # sibling
    (C3, C5, 0.0),   # related, not hierarchical
    (C8, C9, 0.0),   # sibling under c7
])
def test_hierarchy_single_concept_credit(tiny_thesaurus, gold, pred, expected):
    h = hierarchy_f1([[gold]], [[pred]], tiny_thesaurus)
    assert h == pytest.approx({"hp_doc": expected, "hr_doc": expected, "hf1_doc": expected})


def test_hierarchy_mixed_document(tiny_thesaurus):
    # pred credits: c2 exact 1, c1 parent of c2 0.5, c9 child of c7 0.5 -> hp = 2/3
    # gold credits: c2 exact 1, c7 via its child c9 0.5 -> hr = 3/4
    h = hierarchy_f1([[C2, C7]], [[C2, C1, C9]], tiny_thesaurus)
    assert h["hp_doc"] == pytest.approx(2 / 3)
    assert h["hr_doc"] == pytest.approx(3 / 4)
    assert h["hf1_doc"] == pytest.approx(12 / 17)  # 2 * (2/3)(3/4) / (2/3 + 3/4)
    plain = tagging_scores([[C2, C7]], [[C2, C1, C9]])
    assert h["hf1_doc"] > plain["f1_doc"]


def test_hierarchy_gold_takes_best_credit_once(tiny_thesaurus):
    # c2 is predicted exactly and via its parent: recall credit is 1, not 1.5
    h = hierarchy_f1([[C2]], [[C2, C1]], tiny_thesaurus)
    assert h["hr_doc"] == pytest.approx(1.0)
    assert h["hp_doc"] == pytest.approx(0.75)


def test_hierarchy_document_average_and_empty(tiny_thesaurus):
    h = hierarchy_f1([[C2], [C8]], [[C1], []], tiny_thesaurus)
    assert h == pytest.approx({"hp_doc": 0.25, "hr_doc": 0.25, "hf1_doc": 0.25})


def test_hierarchy_link_stated_on_one_side_only():
    # only broader is filled in: the child -> parent link is still found from the parent side
    thes = SimpleNamespace(broader={"child": ["parent"]}, narrower={})
    assert hierarchy_f1([["child"]], [["parent"]], thes)["hf1_doc"] == pytest.approx(0.5)
    assert hierarchy_f1([["parent"]], [["child"]], thes)["hf1_doc"] == pytest.approx(0.5)
    assert hierarchy_f1([["parent"]], [["stranger"]], thes)["hf1_doc"] == 0.0


# --- per_document_f1 and bootstrap_ci ----------------------------------------------------------

def test_per_document_f1():
    assert per_document_f1([["a", "b"], ["c"]], [["a"], ["d"]]) == pytest.approx([2 / 3, 0.0])
    with pytest.raises(ValueError):
        per_document_f1([["a"]], [])


def test_bootstrap_contains_mean_and_is_seeded():
    values = [0.13, 0.92, 0.41, 0.77, 0.05, 0.66, 0.38, 0.59]
    mean = sum(values) / len(values)
    low, high = bootstrap_ci(values, n_boot=500, seed=3)
    assert low < mean < high
    assert min(values) <= low and high <= max(values)
    assert bootstrap_ci(values, n_boot=500, seed=3) == (low, high)
    assert bootstrap_ci(values, n_boot=500, seed=4) != (low, high)


def test_bootstrap_wider_level_gives_wider_interval():
    values = [0.0, 1.0, 0.0, 1.0, 1.0, 0.5]
    low90, high90 = bootstrap_ci(values, level=0.90)
    low99, high99 = bootstrap_ci(values, level=0.99)
    assert low99 <= low90 and high90 <= high99
    assert (high99 - low99) > (high90 - low90)


def test_bootstrap_constant_values_degenerate():
    low, high = bootstrap_ci([0.4] * 10)
    assert low == high == pytest.approx(0.4)


def test_bootstrap_errors():
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([1.0], level=1.0)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0], n_boot=0)


# --- verbatim ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, labels, expected", [
    ("Reform of HIGHER EDUCATION in Europe", ["Higher education"], True),   # case
    ("Reform of higher\n  education", ["Higher education"], True),           # spacing
    ("L'Éducation nationale", ["Education", "Éducation"], True),             # any label, accents
    ("L'education nationale", ["Éducation"], False),                         # accents differ
    ("Higher standards of education", ["Higher education"], False),          # not a phrase
    ("The Museumsinsel in Berlin", ["Museums"], False),                      # not a whole word
    ("Teachers' pay", ["Educators", "Teachers"], True),
    ("We use C++ daily", ["C++"], True),                                     # regex characters
    ("Anything at all", [], False),
    ("Anything at all", ["", "  "], False),                                  # blank labels
])
def test_verbatim(text, labels, expected):
    assert verbatim(text, labels) is expected


# --- full_report -------------------------------------------------------------------------------

GOLDS = [[C2], [C7, C8], [C5]]
PREDS = [[C2, C1], [C9], [C5]]
TEXTS = ["Reform of higher education in Europe",      # c2 verbatim
         "Le patrimoine et les musées de la ville",   # neither c7 nor c8 verbatim
         "Instructors in rural schools"]              # c5 (Teachers / Educators) not verbatim


def test_full_report(tiny_thesaurus):
    label_sets = [{u: labels_of(tiny_thesaurus, u) for u in g} for g in GOLDS]
    r = full_report(GOLDS, PREDS, thesaurus=tiny_thesaurus, texts=TEXTS, langs=["en", "fr", "en"],
                    label_sets=label_sets, n_boot=500, seed=1)
    # per-document F1: 2/3 (p 1/2, r 1), 0, 1
    assert r["f1_doc"] == pytest.approx(5 / 9)
    assert r["documents"] == 3
    assert r["p_at_1"] == pytest.approx(2 / 3)
    assert r["hf1_doc"] == pytest.approx(hierarchy_f1(GOLDS, PREDS, tiny_thesaurus)["hf1_doc"])
    # doc 2: pred c9 is a child of gold c7 -> hp 0.5, hr 0.25, hf1 1/3; doc 1 hf1 = 6/7 (hp .75)
    assert r["hf1_doc"] == pytest.approx((6 / 7 + 1 / 3 + 1) / 3)
    assert r["f1_doc_ci_low"] <= r["f1_doc"] <= r["f1_doc_ci_high"]
    assert r["f1_doc_ci_low"] < r["f1_doc_ci_high"]
    assert r["f1_doc_en"] == pytest.approx((2 / 3 + 1) / 2) and r["documents_en"] == 2
    assert r["f1_doc_fr"] == 0.0 and r["documents_fr"] == 1
    assert r["f1_doc_not_verbatim"] == pytest.approx(0.5)  # docs 2 and 3: (0 + 1) / 2
    assert r["documents_not_verbatim"] == 2
    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r.values())


def test_full_report_optional_parts(tiny_thesaurus):
    base = full_report(GOLDS, PREDS, thesaurus=tiny_thesaurus, n_boot=200)
    assert not any(k.startswith(("documents_", "f1_doc_en", "f1_doc_not")) for k in base)
    assert {"f1_doc", "f1_micro", "ndcg_at_10", "hp_doc", "f1_doc_ci_low"} <= set(base)
    # texts without label_sets: no verbatim split
    assert "documents_not_verbatim" not in full_report(GOLDS, PREDS, thesaurus=tiny_thesaurus,
                                                       texts=TEXTS, n_boot=200)


def test_full_report_omits_not_verbatim_when_every_document_is_verbatim(tiny_thesaurus):
    golds, preds = [[C2], [C3]], [[C2], [C1]]
    texts = ["Tertiary education for all", "Une université publique"]  # alt label; fr, lower case
    label_sets = [{u: labels_of(tiny_thesaurus, u) for u in g} for g in golds]
    r = full_report(golds, preds, thesaurus=tiny_thesaurus, texts=texts, label_sets=label_sets,
                    n_boot=200)
    assert "f1_doc_not_verbatim" not in r and "documents_not_verbatim" not in r


def test_full_report_length_checks(tiny_thesaurus):
    with pytest.raises(ValueError, match="languages"):
        full_report(GOLDS, PREDS, thesaurus=tiny_thesaurus, langs=["en"], n_boot=10)
    with pytest.raises(ValueError, match="texts"):
        full_report(GOLDS, PREDS, thesaurus=tiny_thesaurus, texts=TEXTS[:2],
                    label_sets=[{}, {}, {}], n_boot=10)
