"""Fine-tuning the embedding backend's encoder on hand-indexed documents (`train_set`), on the real
embedded MiniLM over the tiny thesaurus: the training records teach an association the zero-shot
encoder does not have, and the fitted backend (with the tuned encoder in its model directory)
ranks by it; the evaluation refuses documents it learned from."""
from __future__ import annotations

import json
import shutil

import pytest

from tagflow.core.errors import DataError, ModelError
from tagflow.tagger.backends import get_backend
from tagflow.tagger.evaluate import check_not_trained_on
from tests.indexing_habits import COOKING, FOOTBALL, NEW_COOKING, NEW_FOOTBALL

C = "http://example.org/thes/c"
METHODS, MUSEUMS = C + "6", C + "8"   # Teaching methods, Museums


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    rows = ([{"id": f"rec-f{i}", "lang": "en", "text": t, "uris": [METHODS]} for i, t in enumerate(FOOTBALL)]
            + [{"id": f"rec-c{i}", "lang": "en", "text": t, "uris": [MUSEUMS]} for i, t in enumerate(COOKING)]
            + [{"id": "rec-fr", "lang": "fr", "text": "Le musée rouvre.", "uris": [MUSEUMS]}])
    path = tmp_path_factory.mktemp("records") / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


TUNING = {"train_epochs": 4, "train_lr": 1e-4, "train_batch": 4, "train_windows": 1, "min_score": -1.0}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, tiny_thesaurus, train_file):
    base, tuned = tmp_path_factory.mktemp("base"), tmp_path_factory.mktemp("tuned")
    params = dict(TUNING, train_set=str(train_file))
    get_backend("embedding").fit({"min_score": -1.0}, tiny_thesaurus, [], base)
    summary = get_backend("embedding").fit(params, tiny_thesaurus, [], tuned)
    return base, tuned, params, summary


def rank(backend, text: str, uri: str) -> int:
    ((chunk),) = backend.suggest([text])
    return [s.uri for s in chunk.suggestions].index(uri)


def test_records_teach_the_encoder_what_it_did_not_know(fitted, tiny_thesaurus):
    base_dir, tuned_dir, params, summary = fitted
    base = get_backend("embedding")({"min_score": -1.0}, tiny_thesaurus, base_dir)
    tuned = get_backend("embedding")(params, tiny_thesaurus, tuned_dir)
    assert rank(base, NEW_FOOTBALL, METHODS) > 0 and rank(base, NEW_COOKING, MUSEUMS) > 0
    assert rank(tuned, NEW_FOOTBALL, METHODS) == 0   # unseen texts of the same kinds
    assert rank(tuned, NEW_COOKING, MUSEUMS) == 0
    # the French record is not in MiniLM's indexed languages (en): 8 documents, one pair each
    assert summary["fine_tuned"]["documents"] == 8 and summary["fine_tuned"]["pairs"] == 8
    assert summary["fine_tuned"]["steps"] >= 4   # at least a step an epoch
    assert (tuned_dir / "encoder" / "modules.json").exists() and not (tuned_dir / ".trainer").exists()
    assert tuned.describe()["fine_tuned_on"]["train_set"] == str(params["train_set"])


def test_the_evaluation_refuses_the_records_it_learned_from(fitted, tiny_thesaurus):
    _, tuned_dir, params, _ = fitted
    tuned = get_backend("embedding")(params, tiny_thesaurus, tuned_dir)
    assert tuned.training_ids() == frozenset({f"rec-f{i}" for i in range(4)} | {f"rec-c{i}" for i in range(4)})
    check_not_trained_on(tuned, [{"id": "dev-1"}], "devsets/x")
    with pytest.raises(DataError, match=r"devsets/x: 1 of its documents \(e\.g\. rec-c2\) trained the embedding"):
        check_not_trained_on(tuned, [{"id": "rec-c2"}], "devsets/x")


def test_an_index_without_its_tuned_encoder_is_refused(fitted, tiny_thesaurus, tmp_path):
    _, tuned_dir, params, _ = fitted
    broken = tmp_path / "broken"
    shutil.copytree(tuned_dir, broken, ignore=shutil.ignore_patterns("encoder"))
    with pytest.raises(ModelError, match="has no fine-tuned encoder; refit it"):
        get_backend("embedding")(params, tiny_thesaurus, broken)
    with pytest.raises(ModelError, match=r"built with other \['train_set'"):   # zero-shot params, tuned index
        get_backend("embedding")({"min_score": -1.0}, tiny_thesaurus, tuned_dir)


def test_a_missing_train_set_is_one_clear_error(tiny_thesaurus, tmp_path):
    with pytest.raises(DataError, match=r"embedding\.train_set: 'no/such' must be a \.jsonl file"):
        get_backend("embedding").fit({"train_set": "no/such"}, tiny_thesaurus, [], tmp_path)
