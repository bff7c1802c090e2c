"""Language routing on the tiny thesaurus: English chunks to one member, the rest to another (here
a lexical variant matching French labels only), each fitted inside the route's model directory."""
from __future__ import annotations

import json

import pytest

from tagflow.core.errors import ConfigError
from tagflow.tagger.backends import fit_backend, get_backend, make_backend
from tagflow.tagger.backends.route import STATE, parse_routes
from tagflow.tagger.config import InferConfig

T = "http://example.org/thes/"
EN = "The museums of the town reopened, and the teachers brought their pupils to the museum."
FR = "Les enseignants de l'université et de l'enseignement supérieur ont manifesté dans la ville."


def infer(routes="en=embedding,*=lexical@fr"):
    return InferConfig(backend="route", top_n=3, backends={
        "route": {"routes": routes},
        "lexical@fr": {"languages": "fr", "min_examples": 1000, "min_score": 0.0},  # heuristic scores
    })


def test_chunks_go_to_the_member_of_their_language_in_order(tiny_thesaurus, tmp_path):
    summary = fit_backend(infer(), tiny_thesaurus, [], [], tmp_path)
    assert summary["routes"] == {"en": "embedding", "*": "lexical@fr"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embedding", "lexical@fr", "route.json"]
    assert json.loads((tmp_path / STATE).read_text())["member_params"]["lexical@fr"]["languages"] == "fr"

    route = make_backend(infer(), tiny_thesaurus, tmp_path)
    english = get_backend("embedding")({}, tiny_thesaurus, tmp_path / "embedding")
    french = get_backend("lexical@fr")(route.members["lexical@fr"].params, tiny_thesaurus, tmp_path / "lexical@fr")
    got = route.suggest([FR, EN, FR])
    assert got[1].suggestions == english.suggest([EN])[0].suggestions
    assert got[0].suggestions == got[2].suggestions == french.suggest([FR])[0].suggestions
    assert {s.uri for s in got[0].suggestions} >= {T + "c2", T + "c3"}   # French labels matched
    # the French-only lexical variant finds nothing in English text: routing made the difference
    assert french.suggest([EN])[0].suggestions == []
    assert route.describe()["routes"] == {"en": "embedding", "*": "lexical@fr"}


@pytest.mark.parametrize("spec,message", [
    ("en=embedding", r"has no `\*=backend`"),
    ("en=embedding,en=lexical,*=lexical", r"distinct `lang=backend` pairs"),
    ("en,*=lexical", r"distinct `lang=backend` pairs"),
    ("en=telepathy,*=lexical", r"'telepathy' cannot be a member"),
    ("en=llm,*=lexical", r"'llm' cannot be a member"),
    ("en=route@x,*=lexical", r"'route@x' cannot be a member"),
])
def test_bad_routes_are_refused(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_routes(spec)
