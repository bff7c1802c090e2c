"""The rerank backend's memory of its training records (`neighbours`), on the tiny thesaurus with
the real embedded MiniLM: what similar records were indexed with becomes a feature, so an
indexing habit no retriever knows (football filed under "Teaching methods", cookery under
"Museums") carries over to new documents; a record is featurised without itself; a member
fine-tuned on the scorer's records is refused; a scorer trained on other features is refused."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tagflow.core.errors import ConfigError, ModelError
from tagflow.core.io import write_jsonl
from tagflow.tagger.backends import fit_backend, make_backend
from tagflow.tagger.backends.rerank import RECORDS, STATE, RecordMemory
from tagflow.tagger.config import InferConfig
from tests.indexing_habits import COOKING, FOOTBALL, NEW_COOKING, NEW_FOOTBALL
from tests.model.test_rerank_backend import INDEXED, T

METHODS, MUSEUMS = T + "c6", T + "c8"   # Teaching methods, Museums

RECORDS_ROWS = ([{"id": f"foot-{i}", "text": t, "uris": [METHODS]} for i, t in enumerate(FOOTBALL)]
                + [{"id": f"cook-{i}", "text": t, "uris": [MUSEUMS]} for i, t in enumerate(COOKING)]
                + [{"id": f"rec-{i}", "text": t, "uris": [T + c for c in g]} for i, (t, g) in enumerate(INDEXED)])


def infer(member: dict | None = None, **params):
    return InferConfig(backend="rerank", top_n=3, backends={
        "embedding": member or {},
        "rerank": {"members": "embedding", "label_languages": "en", "candidates": 20, **params}})


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("records")
    write_jsonl(folder / "records.jsonl", RECORDS_ROWS)
    return folder


@pytest.fixture(scope="module")
def fitted(tiny_thesaurus, records, tmp_path_factory):
    out = {}
    for neighbours in (3, 0):
        out[neighbours] = tmp_path_factory.mktemp(f"rerank{neighbours}")
        fit_backend(infer(train_set=str(records), neighbours=neighbours), tiny_thesaurus, [], [], out[neighbours])
    return out


def first(backend, text: str) -> str:
    ((chunk),) = backend.suggest([text])
    return chunk.suggestions[0].uri


def test_the_memory_carries_the_records_indexing_habits_to_new_documents(fitted, tiny_thesaurus):
    with_memory = make_backend(infer(neighbours=3), tiny_thesaurus, fitted[3])
    assert first(with_memory, NEW_FOOTBALL) == METHODS
    assert first(with_memory, NEW_COOKING) == MUSEUMS
    assert with_memory.describe()["memory"] == {"documents": len(RECORDS_ROWS), "neighbours": 3}
    without = make_backend(infer(neighbours=0), tiny_thesaurus, fitted[0])   # the same scorer, no memory
    assert (first(without, NEW_FOOTBALL), first(without, NEW_COOKING)) != (METHODS, MUSEUMS)
    assert not (fitted[0] / RECORDS).exists() and without.describe()["memory"] is None


def test_similar_records_bring_candidates_the_retrievers_missed(records, tiny_thesaurus, tmp_path):
    def suggested(neighbour_candidates: int) -> list[str]:
        params = dict(train_set=str(records), neighbours=3, candidates=1, neighbour_candidates=neighbour_candidates)
        out = tmp_path / str(neighbour_candidates)
        out.mkdir()
        fit_backend(infer(**params), tiny_thesaurus, [], [], out)
        ((chunk),) = make_backend(infer(**params), tiny_thesaurus, out).suggest([NEW_FOOTBALL])
        return [s.uri for s in chunk.suggestions]

    assert METHODS not in suggested(0)   # MiniLM's best concept for football is another one
    assert METHODS in suggested(2)       # the football records' concept, from the two nearest


def test_the_model_keeps_the_records_as_vectors_and_concepts(fitted):
    memory = RecordMemory.load(fitted[3] / RECORDS, 3)
    assert memory.vectors["embedding"].shape == (len(RECORDS_ROWS), 384)
    assert [set(c) for c in memory.concepts] == [set(r["uris"]) for r in RECORDS_ROWS]


def test_a_record_is_featurised_without_itself():
    vectors = {"m": np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], dtype=np.float32)}
    memory = RecordMemory(vectors, [["a"], ["a", "b"], ["c"]], neighbours=1)
    query = {"m": np.array([1.0, 0.0], dtype=np.float32)}
    outside = memory.features(["a", "b", "c"], query, exclude=None)   # nearest: record 0 (cosine 1)
    np.testing.assert_allclose(outside, [[1.0, np.log1p(2)], [0.0, np.log1p(1)], [0.0, np.log1p(1)]])
    inside = memory.features(["a", "b", "c"], query, exclude=0)       # record 0 itself: next is 1
    np.testing.assert_allclose(inside, [[0.8, np.log1p(1)], [0.8, np.log1p(1)], [0.0, np.log1p(1)]])
    everyone = RecordMemory(vectors, [["a"], ["a", "b"], ["c"]], neighbours=5, candidates=5)
    assert everyone.concepts_near(query, exclude=2) == {"a", "b"}   # all the others, never itself
    assert everyone.concepts_near(query, exclude=None) == {"a", "b", "c"}


def test_a_member_tuned_on_the_scorers_records_is_refused(tiny_thesaurus, records, tmp_path):
    tuned = {"train_set": str(records), "train_epochs": 1, "train_batch": 4, "train_windows": 1}
    with pytest.raises(ConfigError, match=r"rerank: member embedding is fine-tuned on the scorer's documents"):
        fit_backend(infer(tuned, train_set=str(records)), tiny_thesaurus, [], [], tmp_path)


def test_a_scorer_trained_on_other_features_is_refused(fitted, tiny_thesaurus, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(fitted[3], changed)
    state = json.loads((changed / STATE).read_text())
    state["params"]["neighbours"] = 0
    (changed / STATE).write_text(json.dumps(state))
    with pytest.raises(ModelError, match="trained on other features; refit it"):
        make_backend(infer(), tiny_thesaurus, changed)
    with pytest.raises(ConfigError, match="neighbours and neighbour_candidates at least 0"):
        fit_backend(infer(neighbours=-1), tiny_thesaurus, [], [], tmp_path / "bad")
