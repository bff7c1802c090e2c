"""The ensemble of lexical + embedding on the tiny thesaurus: members fitted inside its own model
directory, weights and threshold chosen on validation documents, fused scores."""
from __future__ import annotations

import json

import pytest

from tagflow.core.errors import ConfigError
from tagflow.tagger.backends import fit_backend, make_backend
from tagflow.tagger.backends.ensemble import STATE, fuse
from tagflow.tagger.backends.base import ChunkSuggestions, Suggestion
from tagflow.tagger.config import InferConfig

T = "http://example.org/thes/"
C = {n: f"{T}c{n}" for n in range(1, 10)}
DOCS = [
    {"text": "The museums of the town reopened; museum staff guided visitors through the galleries.",
     "uris": [C[8]]},
    {"text": "Teachers discussed new teaching methods for primary pupils.", "uris": [C[5], C[6]]},
    {"text": "Excavations at the archaeological sites uncovered pottery near the old museum.",
     "uris": [C[9], C[8]]},
    {"text": "Universities raised fees and students protested against the cost of higher education.",
     "uris": [C[3]]},
]


def infer(**members):
    return InferConfig(backend="ensemble", top_n=3,
                       backends={"ensemble": {"members": "lexical,embedding", "weight_step": 0.25},
                                 "lexical": {"min_examples": 2, "min_score": 0.0}, **members})


def test_fit_chooses_weights_on_validation_and_suggests(tiny_thesaurus, tmp_path):
    cfg = infer()
    summary = fit_backend(cfg, tiny_thesaurus, DOCS * 3, DOCS, tmp_path)
    state = json.loads((tmp_path / STATE).read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embedding", "ensemble.json", "lexical"]
    assert state["members"] == ["lexical", "embedding"] and abs(sum(state["weights"]) - 1) < 1e-9
    assert state["validation_documents"] == 4 and 0 < state["validation_f1_doc"] <= 1
    assert summary["weights"] == dict(zip(state["members"], state["weights"]))
    assert state["member_params"]["lexical"]["min_examples"] == 2  # the members' own parameters

    backend = make_backend(cfg, tiny_thesaurus, tmp_path)
    [result] = backend.suggest(["A museum of archaeology opened beside the excavated sites."])
    uris = [s.uri for s in result.suggestions]
    assert C[8] in uris[:3] and len(uris) == len(set(uris))
    assert all(s.score >= state["min_score"] for s in result.suggestions)


def test_fuse_is_a_weighted_mean_where_silence_counts_zero():
    a = [ChunkSuggestions([Suggestion("x", 1.0), Suggestion("y", 0.5)])]
    b = [ChunkSuggestions([Suggestion("x", 0.5)])]
    assert fuse([a, b], [0.75, 0.25]) == [{"x": 0.875, "y": 0.375}]


@pytest.mark.parametrize("members", ["lexical", "lexical,llm", "lexical,lexical", "ensemble,lexical"])
def test_members_must_be_two_distinct_cheap_backends(tiny_thesaurus, tmp_path, members):
    cfg = InferConfig(backend="ensemble", backends={"ensemble": {"members": members}})
    with pytest.raises(ConfigError, match="ensemble members"):
        fit_backend(cfg, tiny_thesaurus, DOCS, DOCS, tmp_path)
