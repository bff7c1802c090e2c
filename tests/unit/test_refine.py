"""Refinement strategies over the hierarchy, polyhierarchy included, and labels per language."""
from __future__ import annotations

import pandas as pd
import pytest

from tagflow.core.errors import ConfigError, DataError
from tagflow.tagger.backends.base import ChunkSuggestions, Suggestion, TaggerBackend
from tagflow.tagger.config import InferConfig
from tagflow.tagger.pipeline import Tagger, aggregate, refine
from tagflow.thesaurus import Thesaurus

T = "http://example.org/thes/"
C = {n: f"{T}c{n}" for n in range(1, 10)}


@pytest.fixture(scope="module")
def poly():
    """Water (w) and Agriculture (a) are both parents of Irrigation (i); Drip irrigation (d) is
    under Irrigation; Fisheries (f) is a sibling of Irrigation under Agriculture."""
    def row(uri, label, broader):
        return {"uri": uri, "pref_en": label, "pref_fr": label.upper(), "alt_en": [], "broader": broader,
                "narrower": [], "related": [], "micro_thesaurus": "m"}
    rows = [row("w", "Water", []), row("a", "Agriculture", []), row("i", "Irrigation", ["w", "a"]),
            row("d", "Drip irrigation", ["i"]), row("f", "Fisheries", ["a"])]
    table = pd.DataFrame(rows)
    kids = {"w": ["i"], "a": ["i", "f"], "i": ["d"]}
    table["narrower"] = [kids.get(u, []) for u in table["uri"]]
    return Thesaurus(table)


def scores(**kw):
    return dict(kw)


def test_none_keeps_everything(poly):
    ranked = ["w", "i", "d", "f"]
    assert refine(ranked, scores(w=1, i=1, d=1, f=1), poly, "none") == ranked


def test_specific_keeps_the_deepest_through_both_parents(poly):
    # d's ancestors are i, w and a (via i's two parents): all three go, the sibling f stays
    assert refine(["w", "a", "i", "d", "f"], scores(w=1, a=1, i=1, d=1, f=1), poly, "specific") == ["d", "f"]


def test_broad_keeps_the_ancestors(poly):
    assert refine(["d", "i", "w", "f"], scores(d=1, i=1, w=1, f=1), poly, "broad") == ["w", "f"]


def test_balanced_keeps_the_higher_score_of_each_pair(poly):
    # i (0.9) beats its child d (0.4) and its parent w (0.2); the sibling f stays
    assert refine(["i", "d", "w", "f"], scores(i=0.9, d=0.4, w=0.2, f=0.3), poly, "balanced") == ["i", "f"]
    # a tie keeps the descendant
    assert refine(["i", "d"], scores(i=0.5, d=0.5), poly, "balanced") == ["d"]


def test_unknown_strategy(poly):
    with pytest.raises(ConfigError, match="unknown refinement 'deep'"):
        refine(["i", "d"], scores(i=1, d=1), poly, "deep")


def test_labels_in_another_language(poly):
    chunk = ChunkSuggestions([Suggestion("i", 1.0)])
    assert [c.label for c in aggregate([chunk], poly, 5, "specific", "fr")] == ["IRRIGATION"]
    assert [c.label for c in aggregate([chunk], poly, 5, "specific", "es")] == ["Irrigation"]  # no es: en


class Fixed(TaggerBackend):
    name = "fixed"

    def suggest(self, chunks):
        return [ChunkSuggestions([Suggestion(C[1], 0.9), Suggestion(C[2], 0.5)]) for _ in chunks]


def test_tagger_takes_refinement_and_language_per_call(tiny_thesaurus):
    tagger = Tagger(Fixed({}, tiny_thesaurus), tiny_thesaurus, InferConfig())
    assert [c.label for c in tagger.tag("x").concepts] == ["Higher education"]          # specific
    assert [c.label for c in tagger.tag("x", refine="balanced").concepts] == ["Education"]
    assert [c.label for c in tagger.tag("x", refine="none", lang="fr").concepts] == [
        "Éducation", "Enseignement supérieur"]
    with pytest.raises(DataError, match="no labels in 'de'"):
        tagger.tag("x", lang="de")
    with pytest.raises(DataError, match="unknown refinement 'deep'"):
        tagger.tag("x", refine="deep")
