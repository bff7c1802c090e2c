"""The synthetic-data filter on the real embedded encoder: a gold concept the document does not
discuss is dropped, and a document left with too few concepts is refused."""
from __future__ import annotations

from tagflow.tagger.synth import ConceptSet, DiscussedFilter

T = "http://example.org/thes/"
C = {n: f"{T}c{n}" for n in range(1, 10)}
TEXT = ("The town's museums reopened after the renovation: curators hung the paintings again and "
        "the archaeological finds from the nearby excavation are back in their glass cases.")


def test_undiscussed_concepts_are_dropped(tiny_thesaurus):
    f = DiscussedFilter(tiny_thesaurus, 0.3)
    museums, archaeology, teaching = f.similarity(TEXT, [C[8], C[9], C[6]])
    assert museums > 0.3 and archaeology > 0.3 and teaching < 0.3
    cs = ConceptSet([C[8], C[9], C[6]], ["Museums", "Archaeological sites", "Teaching methods"], f"{T}mt3")
    kept = f.keep(TEXT, cs, 2)
    assert (kept.uris, kept.labels) == ([C[8], C[9]], ["Museums", "Archaeological sites"])
    assert f.keep(TEXT, cs, 3) is None  # too few discussed concepts left: the document goes
