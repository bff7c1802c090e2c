"""The lexical backend on the tiny thesaurus: label matching (stems, accents, alternative labels,
several languages), the learned scorer and its fallback, and what it returns."""
from __future__ import annotations

import pickle

import pytest

from tagflow.core.errors import ModelError
from tagflow.tagger.backends.lexical import STATE, LabelIndex, LexicalBackend

T = "http://example.org/thes/"
C = {n: f"{T}c{n}" for n in range(1, 10)}

DOCS = [
    {"text": "The museums of the town reopened; museum staff guided visitors.", "uris": [C[8]]},
    {"text": "Educators discussed teaching methods with university staff.", "uris": [C[5], C[6]]},
    {"text": "Archaeological sites and museums attract tourists to the region.", "uris": [C[9], C[8]]},
    {"text": "Higher education funding was cut while teachers protested.", "uris": [C[2], C[5]]},
] * 3


def test_matching_folds_case_accents_plurals_and_alt_labels(tiny_thesaurus):
    index = LabelIndex(tiny_thesaurus, ["en", "fr"])
    found, n_words = index.match("Museums, a MUSEUM and teachers in higher education.", "en")
    assert set(found) == {C[8], C[5], C[2]} and n_words == 8
    assert found[C[8]].positions == [0, 2] and found[C[8]].pref
    assert found[C[2]].label_words == 2             # the two-word label, not "education" inside it
    found, _ = index.match("Tertiary education matters.", "en")
    assert set(found) == {C[2]} and not found[C[2]].pref   # through the alt label
    # "educators" (alt label of Teachers) and "education" share the stem "educ": both are
    # candidates, each marked as ambiguous for the scorer
    found, _ = index.match("Educators", "en")
    assert set(found) == {C[1], C[5]} and found[C[5]].ambiguity == 0.5
    found, _ = index.match("L'éducation et l'Enseignement supérieur", "fr")
    assert set(found) == {C[1], C[2]}


def test_fit_then_suggest(tiny_thesaurus, tmp_path):
    summary = LexicalBackend.fit({"min_examples": 3}, tiny_thesaurus, DOCS, tmp_path)
    assert summary["scorer"] == "gradient boosting" and summary["documents"] == len(DOCS)
    assert 0 < summary["gold_reachable"] <= 1
    backend = LexicalBackend({"min_examples": 3, "min_score": 0.0}, tiny_thesaurus, tmp_path)
    [result] = backend.suggest(["Museums and archaeological sites of the coast."])
    uris = [s.uri for s in result.suggestions]
    assert set(uris) == {C[8], C[9]} and len(uris) == len(set(uris))
    scores = [s.score for s in result.suggestions]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)


def test_too_little_data_falls_back_to_heuristic_scores(tiny_thesaurus, tmp_path):
    summary = LexicalBackend.fit({}, tiny_thesaurus, DOCS[:2], tmp_path)
    assert summary["scorer"].startswith("heuristic")
    with (tmp_path / STATE).open("rb") as fh:
        assert pickle.load(fh)["scorer"] is None
    backend = LexicalBackend({"min_score": 0.0}, tiny_thesaurus, tmp_path)
    [result] = backend.suggest(["Teachers, teachers and more teachers."])
    assert [s.uri for s in result.suggestions] == [C[5]]


def test_nothing_named_nothing_suggested(tiny_thesaurus, tmp_path):
    LexicalBackend.fit({}, tiny_thesaurus, DOCS, tmp_path)
    assert LexicalBackend({}, tiny_thesaurus, tmp_path).suggest(["Quantum chromodynamics."])[0].suggestions == []


def test_unfitted_backend_is_refused(tiny_thesaurus, tmp_path):
    with pytest.raises(ModelError, match="no fitted state"):
        LexicalBackend({}, tiny_thesaurus, tmp_path)
