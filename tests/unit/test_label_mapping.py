"""Nearest-label mapping for free generation (character trigrams over every label)."""
from __future__ import annotations

from tagflow.tagger.backends.llm import resolve_labels
from tagflow.tagger.backends.mapping import NearestLabel

T = "http://example.org/thes/"


def test_variants_map_to_the_closest_label_and_inventions_stay_unknown(tiny_thesaurus):
    nearest = NearestLabel(tiny_thesaurus, min_similarity=0.6)
    assert nearest("Museum") == T + "c8"
    assert nearest("Cultural heritages") == T + "c7"
    assert nearest("Universités") == T + "c3"          # a French label, inflected
    assert nearest("Quantum chromodynamics") is None
    assert nearest("  ") is None


def test_mapping_runs_only_after_an_exact_miss_and_repeats_still_count(tiny_thesaurus):
    nearest = NearestLabel(tiny_thesaurus, min_similarity=0.6)
    result = resolve_labels(["Museums", "Museum", "Teachrs", "Spaceships"], tiny_thesaurus, nearest)
    assert [s.uri for s in result.suggestions] == [T + "c8", T + "c5"]
    assert result.duplicates == 1 and result.unknown == ["Spaceships"]
    exact = resolve_labels(["Museums", "Museum", "Teachrs"], tiny_thesaurus)
    assert [s.uri for s in exact.suggestions] == [T + "c8"] and exact.unknown == ["Museum", "Teachrs"]
