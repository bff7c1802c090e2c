"""Tagging a corpus on a real local Dask cluster through the Prefect flow (the CLI in its own
process, with its ephemeral API server), from a model registered in a real sqlite store: every document once, in the output
format, and a killed run (finished batches plus a torn line) resumes without redoing anything."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tagflow.core.errors import DataError
from tagflow.tagger import corpus

BIN = Path(sys.executable).parent

# A pyfunc logged "from code", so Dask worker processes load it without this test module.
WORDS = textwrap.dedent('''
    import mlflow
    from mlflow.pyfunc import PythonModel

    class Words(PythonModel):
        def predict(self, context, model_input, params=None):
            top_n = int((params or {}).get("top_n", 3))
            return [[{"uri": "http://example.org/w/" + w, "label": w, "score": 1.0}
                     for w in sorted(set(t.lower().split()))[:top_n]] for t in model_input["text"]]

    mlflow.models.set_model(Words())
''')


@pytest.fixture(scope="module")
def champion(mlflow_store):
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    code = mlflow_store / "words.py"
    code.write_text(WORDS)
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])   # the fixture's store
    mlflow.set_experiment("corpus-test")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="m", python_model=str(code), pip_requirements=[],
                                       signature=infer_signature(pd.DataFrame({"text": ["a"]}), params={"top_n": 3}))
    mlflow.register_model(info.model_uri, "words")
    mlflow.MlflowClient().set_registered_model_alias("words", "champion", "1")
    return "words"


def tag_corpus(docs, out, model, workers=1, batch_size=32, top_n=None) -> dict:
    """`tagflow tagger tag-corpus` in its own process (its own ephemeral Prefect server and
    logging, like a user's run), against the fixture's store; returns its summary line."""
    args = [str(BIN / "tagflow"), "tagger", "tag-corpus", str(docs), str(out), "--model", model,
            "--workers", str(workers), "--batch-size", str(batch_size)] + (["--top-n", str(top_n)] if top_n else [])
    done = subprocess.run(args, cwd=docs.parent, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PREFECT_HOME": str(docs.parent / "prefect")})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_corpus(path, n):
    path.write_text("".join(json.dumps({"id": i, "text": f"doc{i} Zebra apple {'x' * (i % 3)}"}) + "\n"
                            for i in range(n)))
    return path


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_corpus_is_tagged_once_and_a_killed_run_resumes(champion, mlflow_store):
    docs, out = write_corpus(mlflow_store / "docs.jsonl", 23), mlflow_store / "out.jsonl"
    summary = tag_corpus(docs, out, champion, workers=2, batch_size=4, top_n=2)
    assert summary == {"tagged": 23, "already_done": 0, "model": "models:/words/1"}
    rows = lines(out)
    assert sorted(r["id"] for r in rows) == list(range(23))
    first = next(r for r in rows if r["id"] == 5)
    assert [c["label"] for c in first["concepts"]] == ["apple", "doc5"] and first["model"] == {"name": "words", "version": "1"}

    # A kill after 10 lines, in the middle of writing the 11th: rerun tags exactly the other 13.
    kept = out.read_text().splitlines(keepends=True)[:10]
    out.write_text("".join(kept) + '{"id": 7, "conc')
    summary = tag_corpus(docs, out, champion, workers=1, batch_size=5)
    assert summary["tagged"] == 13 and summary["already_done"] == 10
    rows = lines(out)
    assert out.read_text().startswith("".join(kept))
    assert sorted(r["id"] for r in rows) == list(range(23))      # each once, none lost
    assert tag_corpus(docs, out, champion)["tagged"] == 0


@pytest.mark.parametrize("content,message", [
    ('{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n', r":2: id '1' appears twice"),
    ('{"id": 1, "text": "  "}\n', r":1: expected an object with an \"id\", a non-empty \"text\""),
    ('{"id": 1, "text": "a", "title": 7}\n', r":1: expected an object .* optionally a \"title\" string"),
    ('not json\n', r":1: not a JSON line"),
])
def test_a_bad_corpus_is_refused_with_its_line(tmp_path, content, message):
    path = tmp_path / "docs.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        corpus.pending(path, tmp_path / "out.jsonl")


def test_an_output_that_is_not_ours_is_refused(tmp_path):
    docs = write_corpus(tmp_path / "docs.jsonl", 2)
    (tmp_path / "out.jsonl").write_text("id,concepts\n")
    with pytest.raises(DataError, match=r"out.jsonl:1: not a line this command wrote"):
        corpus.pending(docs, tmp_path / "out.jsonl")


def test_a_document_is_read_with_its_title(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": 1, "title": "Reef bleaching", "text": "Corals died."}\n'
                    '{"id": 2, "text": "No title here."}\n')
    docs, done = corpus.pending(path, tmp_path / "out.jsonl")
    assert [d["text"] for d in docs] == ["Reef bleaching\n\nCorals died.", "No title here."] and done == 0
