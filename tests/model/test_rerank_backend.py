"""The rerank backend on the tiny thesaurus with the real embedded encoder: its scorer learns from
hand-indexed documents, it returns only thesaurus concepts ranked by probability, and the
evaluation refuses to score it on the documents it learned from."""
from __future__ import annotations

import json

import pytest

from tagflow.core.errors import ConfigError, DataError
from tagflow.core.io import write_jsonl
from tagflow.tagger.backends import fit_backend, make_backend
from tagflow.tagger.backends.rerank import RECORDS, SCORER, STATE, feature_names
from tagflow.tagger.config import InferConfig
from tagflow.tagger.evaluate import check_not_trained_on

T = "http://example.org/thes/"
INDEXED = [  # (text, gold): written the way documents talk, not by reciting labels
    ("The city museum reopened its galleries of paintings and sculpture after the renovation.", ["c8"]),
    ("Curators lent the museum's collection of old masters to a travelling exhibition.", ["c8"]),
    ("Excavations at the hill fort uncovered Roman walls and pottery from an ancient settlement.", ["c9"]),
    ("Archaeologists mapped burial mounds and the ruins of a temple near the river.", ["c9", "c7"]),
    ("Primary schools in the region hired teachers to bring class sizes down for young pupils.", ["c4", "c5"]),
    ("Universities raised tuition fees, and students protested on the campus of the capital.", ["c3", "c2"]),
    ("Teachers tried new methods in the classroom: group work, projects and peer tutoring.", ["c5", "c6"]),
    ("The national heritage list gained monuments, historic buildings and old town centres.", ["c7"]),
    ("Lecturers at the university complained about research funding and doctoral programmes.", ["c3"]),
    ("Children in the first grades of primary school learn to read with phonics lessons.", ["c4"]),
]


def infer(**params):
    return InferConfig(backend="rerank", top_n=3, backends={
        "rerank": {"members": "embedding", "label_languages": "en,fr", "candidates": 5, **params}})


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("indexed")
    write_jsonl(folder / "records.jsonl", [{"id": f"rec-{i}", "text": text, "uris": [T + c for c in gold]}
                                           for i, (text, gold) in enumerate(INDEXED)])
    return folder


@pytest.fixture(scope="module")
def fitted(tiny_thesaurus, indexed, tmp_path_factory):
    out = tmp_path_factory.mktemp("rerank")
    summary = fit_backend(infer(train_set=str(indexed)), tiny_thesaurus, [], [], out)
    return out, summary


def test_fit_learns_from_the_named_documents_and_reports_out_of_fold_f1(fitted):
    out, summary = fitted
    assert sorted(p.name for p in out.iterdir()) == sorted(["embedding", RECORDS, SCORER, STATE])
    assert summary["scorer_documents"] == len(INDEXED)
    assert summary["scorer_trained_on"].endswith("indexed0")
    f1, low, high = summary["out_of_fold_f1_at_5"]
    assert 0.0 <= low <= f1 <= high <= 1.0
    assert 0.0 < summary["gold_reachable"] <= 1.0
    scorer = json.loads((out / SCORER).read_text())
    assert scorer["features"] == feature_names(["embedding"], memory=True) == list(summary["weights"])
    assert scorer["trained_ids"] == sorted(f"rec-{i}" for i in range(len(INDEXED)))


def test_suggestions_are_distinct_thesaurus_concepts_ranked_by_probability(fitted, tiny_thesaurus):
    out, _ = fitted
    backend = make_backend(infer(), tiny_thesaurus, out)
    museum, schools = backend.suggest([
        "Visitors queued outside the museum to see its new exhibition of paintings.",
        "Pupils of the village primary school have one teacher for every forty children.",
    ])
    for result in (museum, schools):
        uris = [s.uri for s in result.suggestions]
        scores = [s.score for s in result.suggestions]
        assert uris and len(uris) == len(set(uris)) and all(u in tiny_thesaurus for u in uris)
        assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert museum.suggestions[0].uri == T + "c8"
    assert T + "c4" in [s.uri for s in schools.suggestions[:3]]
    assert backend.suggest([]) == []


def test_evaluation_refuses_documents_the_scorer_learned_from(fitted, tiny_thesaurus):
    backend = make_backend(infer(), tiny_thesaurus, fitted[0])
    assert backend.training_ids() == {f"rec-{i}" for i in range(len(INDEXED))}
    check_not_trained_on(backend, [{"id": "dev-1", "text": "x", "uris": []}], "devsets/x")  # others pass
    with pytest.raises(DataError, match=r"devsets/x: 1 of its documents \(e\.g\. rec-3\) trained the rerank"):
        check_not_trained_on(backend, [{"id": "dev-1"}, {"id": "rec-3"}], "devsets/x")


def test_without_a_train_set_the_scorer_learns_from_the_fit_documents(tiny_thesaurus, tmp_path):
    docs = [{"text": text, "uris": [T + c for c in gold]} for text, gold in INDEXED]
    summary = fit_backend(infer(), tiny_thesaurus, docs, [], tmp_path)
    assert summary["scorer_trained_on"] == "synthetic training split"
    assert json.loads((tmp_path / SCORER).read_text())["trained_ids"] == []   # synthetic: no ids kept


def test_the_trees_scorer_is_stored_as_numbers_and_ranks_thesaurus_concepts(indexed, tiny_thesaurus, tmp_path):
    summary = fit_backend(infer(train_set=str(indexed), scorer="trees", trees=20, leaves=4), tiny_thesaurus,
                          [], [], tmp_path)
    scorer = json.loads((tmp_path / SCORER).read_text())
    assert summary["scorer"] == scorer["kind"] == "trees" and len(scorer["trees"]) == 20
    backend = make_backend(infer(scorer="trees", trees=20, leaves=4), tiny_thesaurus, tmp_path)
    assert backend.describe()["scorer"] == "trees"
    (result,) = backend.suggest(["Visitors queued outside the museum to see its new exhibition of paintings."])
    uris, scores = [s.uri for s in result.suggestions], [s.score for s in result.suggestions]
    assert uris and len(uris) == len(set(uris)) and all(u in tiny_thesaurus for u in uris)
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)


@pytest.mark.parametrize("params,error,message", [
    ({"members": "lexical"}, ConfigError, r"rerank\.members: one or more distinct embedding backends"),
    ({"members": "embedding,embedding"}, ConfigError, r"rerank\.members"),
    ({"train_set": "no/such/folder"}, DataError, r"rerank\.train_set: 'no/such/folder' must be a \.jsonl file"),
    ({"C": 0.0}, ConfigError, r"C positive"),
    ({"scorer": "forest"}, ConfigError, r"rerank\.scorer: one of logistic, trees, got 'forest'"),
    ({"scorer": "trees", "leaves": 1}, ConfigError, r"leaves at least 2"),
])
def test_bad_parameters_are_refused_in_one_line(params, error, message, tiny_thesaurus, tmp_path):
    with pytest.raises(error, match=message):
        fit_backend(infer(**params), tiny_thesaurus, [], [], tmp_path)


def test_fit_reads_each_record_with_its_title(tiny_thesaurus, tmp_path, monkeypatch):
    """Records are read as tagging reads a titled document (tagger.text.with_title)."""
    from tagflow.tagger.backends import rerank

    read = []
    views = rerank.Candidates.views
    monkeypatch.setattr(rerank.Candidates, "views", lambda self, chunks: read.extend(chunks) or views(self, chunks))
    write_jsonl(tmp_path / "records.jsonl", [{"id": f"rec-{i}", "title": "Museum news" if i == 0 else "",
                                              "text": text, "uris": [T + c for c in gold]}
                                             for i, (text, gold) in enumerate(INDEXED)])
    (tmp_path / "out").mkdir()
    fit_backend(infer(train_set=str(tmp_path / "records.jsonl")), tiny_thesaurus, [], [], tmp_path / "out")
    assert read == ["Museum news\n\n" + INDEXED[0][0]] + [text for text, _ in INDEXED[1:]]
