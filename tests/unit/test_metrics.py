"""Set-based tagging metrics on cases computed by hand."""
from __future__ import annotations

import pytest

from tagflow.tagger.metrics import output_quality, prf, tagging_scores


def test_prf_perfect():
    assert prf({"a", "b"}, {"a", "b"}) == (1.0, 1.0, 1.0)


def test_prf_disjoint():
    assert prf({"a"}, {"b", "c"}) == (0.0, 0.0, 0.0)


def test_prf_partial():
    p, r, f = prf({"a", "b", "c"}, {"a", "d"})
    assert p == pytest.approx(1 / 3)
    assert r == pytest.approx(1 / 2)
    assert f == pytest.approx(0.4)  # 2 * (1/3 * 1/2) / (1/3 + 1/2) = (1/3) / (5/6)


def test_prf_empty_prediction_scores_zero():
    assert prf(set(), {"a"}) == (0.0, 0.0, 0.0)


def test_prf_empty_gold_scores_zero():
    assert prf({"a"}, set()) == (0.0, 0.0, 0.0)


def test_tagging_scores_per_document_vs_micro():
    # doc 1: gold {a,b}, pred {a,b}   -> p 1, r 1, f 1
    # doc 2: gold {c,d,e,f}, pred {g} -> p 0, r 0, f 0
    # per-document mean: p 0.5, r 0.5, f 0.5
    # micro: hits 2, predicted 3, gold 6 -> p 2/3, r 1/3, f 2*(2/9)/(1) = 4/9
    s = tagging_scores([["a", "b"], ["c", "d", "e", "f"]], [["a", "b"], ["g"]])
    assert s["precision_doc"] == pytest.approx(0.5)
    assert s["recall_doc"] == pytest.approx(0.5)
    assert s["f1_doc"] == pytest.approx(0.5)
    assert s["precision_micro"] == pytest.approx(2 / 3)
    assert s["recall_micro"] == pytest.approx(1 / 3)
    assert s["f1_micro"] == pytest.approx(4 / 9)
    assert s["documents"] == 2


def test_tagging_scores_partial_single_document():
    s = tagging_scores([["a", "d"]], [["a", "b", "c"]])
    assert (s["precision_doc"], s["recall_doc"], s["f1_doc"]) == pytest.approx((1 / 3, 1 / 2, 0.4))
    assert (s["precision_micro"], s["recall_micro"], s["f1_micro"]) == pytest.approx((1 / 3, 1 / 2, 0.4))


def test_tagging_scores_repeated_predictions_count_once():
    s = tagging_scores([["a"]], [["a", "a", "a"]])
    assert s["precision_doc"] == 1.0 and s["precision_micro"] == 1.0


def test_tagging_scores_empty_predictions_score_zero():
    s = tagging_scores([["a", "b"], ["c"]], [[], []])
    assert s["precision_doc"] == s["recall_doc"] == s["f1_doc"] == 0.0
    assert s["precision_micro"] == s["recall_micro"] == s["f1_micro"] == 0.0


def test_tagging_scores_mismatched_lengths():
    with pytest.raises(ValueError, match="2 gold documents but 1 predictions"):
        tagging_scores([["a"], ["b"]], [["a"]])


def test_tagging_scores_no_documents():
    with pytest.raises(ValueError, match="no documents"):
        tagging_scores([], [])


def test_output_quality():
    q = output_quality([True, False, True, True], emitted=10, unknown=2, duplicates=2)
    assert q["valid_json_rate"] == pytest.approx(0.75)
    assert q["out_of_thesaurus_rate"] == pytest.approx(2 / 8)  # unknown among the 8 distinct labels
    assert q["duplicate_rate"] == pytest.approx(2 / 10)


def test_output_quality_nothing_emitted():
    assert output_quality([], 0, 0, 0) == {"valid_json_rate": 0.0, "out_of_thesaurus_rate": 0.0,
                                            "duplicate_rate": 0.0}
