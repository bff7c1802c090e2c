"""The topics family end to end on a tiny SGML distribution: fetch (mirror fallback), data,
contracts (real GX), training (the SVM, thresholds from training CV), evaluation, registration in a real MLflow store with
the micro-F1 gate and the macro-F1 guard, the served model answering what evaluation measured,
and `tagflow topics predict` on JSONL and CSV input."""
from __future__ import annotations

import json
import socket
import tarfile

import pandas as pd
import pytest

from tagflow.cli import main
from tagflow.config import Config
from tagflow.core import registry
from tagflow.core.contracts import ContractError
from tagflow.core.errors import DataError
from tagflow.core.io import read_jsonl
from tagflow.topics import contracts, data, evaluate, paths, register, train
from tagflow.topics.reuters import fetch_reuters
from tests.topics_sgml import corpus, write_distribution


def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/reuters21578.tar.gz"


def test_fetch_falls_back_to_the_mirror_files_or_archive(tmp_path):
    mirror = tmp_path / "mirror"
    write_distribution(mirror / "reuters21578", corpus(2))
    assert fetch_reuters(closed_url(), tmp_path / "raw", mirror=str(mirror), timeout=2).endswith("reuters21578")
    assert len(list((tmp_path / "raw").glob("reut2-*.sgm"))) == 2
    assert fetch_reuters(closed_url(), tmp_path / "raw", mirror=str(mirror)) == "present"

    archived = tmp_path / "archived"
    archived.mkdir()
    with tarfile.open(archived / "reuters21578.tar.gz", "w:gz") as tar:
        for sgm in sorted((mirror / "reuters21578").glob("*.sgm")):
            tar.add(sgm, arcname=sgm.name)
        tar.add(tmp_path / "raw", arcname="not-sgml-dir")
    fetch_reuters(closed_url(), tmp_path / "from_tar", mirror=str(archived), timeout=2)
    assert sorted(p.name for p in (tmp_path / "from_tar").iterdir()) == ["reut2-000.sgm", "reut2-001.sgm"]


def test_fetch_without_source_says_what_failed(tmp_path):
    with pytest.raises(DataError, match="(?s)could not obtain Reuters-21578.*no --mirror given"):
        fetch_reuters(closed_url(), tmp_path / "raw", timeout=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no reut2-\\*.sgm files and no reuters21578.tar.gz"):
        fetch_reuters(closed_url(), tmp_path / "raw", mirror=str(tmp_path / "empty"), timeout=2)


@pytest.fixture(scope="module")
def cfg(mlflow_store):
    """The tiny distribution in the module's store directory; an absolute store URI, so MLflow
    cannot hand this module a store cached for an earlier module's `sqlite:///mlflow.db`."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{mlflow_store}/mlflow.db")
        yield topics_config(mlflow_store)


def topics_config(mlflow_store) -> Config:
    write_distribution(mlflow_store / "data" / "reuters21578", corpus(25))
    cfg = Config(profile="smoke")
    t = cfg.topics
    t.data.val_fraction = 0.3
    t.contracts.min_train_docs, t.contracts.min_val_docs = 50, 20
    t.contracts.min_labels = 4
    t.train.candidates = ["svm"]
    t.train.svm.threshold_folds = 3     # the cpu profile's mechanism (5 folds there)
    t.evaluate.bootstrap = 50
    t.registry.gate_target = 0.5
    return cfg


@pytest.fixture(scope="module")
def pipeline(cfg):
    out = {"data": data.run(cfg), "contracts": contracts.run(cfg), "train": train.run(cfg),
           "evaluate": evaluate.run(cfg), "register": register.run(cfg)}
    return out


def test_stages_write_their_outputs(pipeline, mlflow_store):
    assert pipeline["data"]["train_docs"] == 105 and pipeline["data"]["validation_docs"] == 45
    assert pipeline["contracts"]["failed"] == 0
    assert (mlflow_store / paths.CONTRACTS_DIR / "report.html").exists()
    assert pipeline["train"]["candidates"]["svm"]["train_seconds"] >= 0
    metrics = json.loads((mlflow_store / paths.METRICS).read_text())
    assert metrics["selected"] == "svm" and metrics["validation/micro_f1_tuned"] > 0.9
    for key in ("validation/micro_f1", "validation/macro_f1", "top10/validation/micro_f1_tuned"):
        low, high = metrics[f"{key}_ci_low"], metrics[f"{key}_ci_high"]
        assert low <= metrics[key] <= high, key
    assert metrics["svm/validation/micro_f1"] == metrics["validation/micro_f1"]
    rows = read_jsonl(mlflow_store / paths.EVAL_DIR / "svm" / "predictions.jsonl")
    assert len(rows) == 45 and {"id", "split", "gold", "topics", "probabilities"} <= set(rows[0])


def test_first_model_is_champion_and_serves_what_evaluation_measured(pipeline, mlflow_store):
    decision = pipeline["register"]
    assert decision["promoted"] and decision["version"] == "1" and decision["selected"] == "svm"
    model, version = registry.load_champion("reuters-topics")
    rows = read_jsonl(mlflow_store / paths.EVAL_DIR / "svm" / "predictions.jsonl")
    table, _ = data.read_table(("validation",))
    texts = dict(zip(table["id"], data.texts_of(table)))
    served = model.predict(pd.DataFrame({"text": [texts[r["id"]] for r in rows]}))
    assert [s["topics"] for s in served] == [r["topics"] for r in rows]
    assert [s["probabilities"] for s in served] == [r["probabilities"] for r in rows]
    card = model.unwrap_python_model().card
    assert card["family"] == "topics" and card["classifier"]["kind"] == "svm"
    assert card["labels"] == ["acq", "crude", "earn", "grain"]


def test_thresholds_come_from_training_cv_and_are_served(pipeline, cfg, mlflow_store):
    cv = json.loads((mlflow_store / paths.cv_thresholds_file("svm")).read_text())
    used = json.loads((mlflow_store / paths.thresholds_file("svm")).read_text())
    assert cv["tuned_on"] == used["tuned_on"] == "train (3-fold cross-validated scores)"
    assert used["thresholds"] == cv["thresholds"] and cv["docs"] == pipeline["data"]["train_docs"]
    assert "oof_micro_f1" in cv and "cv_oof_micro_f1" in pipeline["train"]["candidates"]["svm"]
    model, _ = registry.load_champion("reuters-topics")
    served = model.unwrap_python_model()
    assert served.predictor.thresholds.tolist() == [cv["thresholds"][label] for label in served.predictor.labels]
    assert "cross-validated" in served.card["thresholds"]


def test_without_cv_thresholds_evaluation_tunes_on_validation(pipeline, cfg, mlflow_store):
    cv_file = mlflow_store / paths.cv_thresholds_file("svm")
    saved = cv_file.read_text()
    table, info = data.read_table()
    try:
        cv_file.unlink()
        evaluate.evaluate_candidate("svm", table, info, 50, cfg.topics.data.seed)
        used = json.loads((mlflow_store / paths.thresholds_file("svm")).read_text())
        assert used["tuned_on"] == "validation" and used["docs"] == pipeline["data"]["validation_docs"]
    finally:   # the module's later tests read the CV thresholds' evaluation
        cv_file.write_text(saved)
        evaluate.evaluate_candidate("svm", table, info, 50, cfg.topics.data.seed)


def test_macro_f1_guard_blocks_a_regression(pipeline, cfg, mlflow_store):
    path = mlflow_store / paths.METRICS
    original = json.loads(path.read_text())
    try:
        worse = dict(original, **{"validation/macro_f1_tuned": original["validation/macro_f1_tuned"] - 0.1})
        path.write_text(json.dumps(worse))
        decision = register.run(cfg)
        assert not decision["promoted"] and decision["version"] == "2"
        assert any("guard validation/macro_f1_tuned" in r and "(regression)" in r for r in decision["reasons"])
        assert registry.champion_version("reuters-topics") == "1"
        path.write_text(json.dumps(original))            # a tie on both: promoted
        assert register.run(cfg)["promoted"]
    finally:
        path.write_text(json.dumps(original))


def test_contract_refuses_an_unknown_label(pipeline, cfg, mlflow_store, tmp_path):
    table, info = data.read_table()
    table.loc[0, "labels"] = ["earn", "bogus"]
    with pytest.raises(ContractError, match="unknown_labels"):
        contracts.check_table(table, info, cfg.topics.contracts, tmp_path / "docs")


def test_predict_cli_jsonl_csv_and_local(pipeline, mlflow_store, capsys):
    docs = mlflow_store / "docs.jsonl"
    docs.write_text(json.dumps({"id": "w", "text": "wheat corn tonnes harvest crop export"}) + "\n"
                    + json.dumps({"text": "opec crude oil barrel prices refinery"}) + "\n")
    assert main(["topics", "predict", "--input", str(docs), "--output", "out.jsonl"]) == 0
    out = read_jsonl(mlflow_store / "out.jsonl")
    assert [o["id"] for o in out] == ["w", "2"] and out[0]["topics"] == ["grain"] and out[1]["topics"] == ["crude"]
    assert out[0]["model"] == {"name": "reuters-topics", "version": registry.champion_version("reuters-topics")}
    assert 0.0 <= out[0]["probabilities"]["grain"] <= 1.0

    pd.DataFrame({"text": ["net profit shr qtr dividend"], "id": ["c1"]}).to_csv(mlflow_store / "docs.csv", index=False)
    assert main(["topics", "predict", "--input", "docs.csv", "--output", "csv.jsonl", "--model", "1"]) == 0
    [row] = read_jsonl(mlflow_store / "csv.jsonl")
    assert row["id"] == "c1" and row["topics"] == ["earn"] and row["model"]["version"] == "1"

    assert main(["topics", "predict", "--input", "docs.csv", "--output", "local.jsonl",
                 "--local", f"{paths.MODELS_DIR}/svm"]) == 0
    [local] = read_jsonl(mlflow_store / "local.jsonl")
    assert local["topics"] == row["topics"] and local["probabilities"] == row["probabilities"]


@pytest.mark.parametrize("content, name, message", [
    ("hello", "docs.txt", "expected a .jsonl or .csv file"),
    ('{"body": "no text"}\n', "docs.jsonl", 'record 1 has no "text" string'),
    ("id,body\n1,x\n", "docs.csv", 'record 1 has no "text" string'),
])
def test_predict_cli_bad_input_is_one_line(pipeline, mlflow_store, capsys, content, name, message):
    (mlflow_store / name).write_text(content)
    assert main(["topics", "predict", "--input", name, "--output", "x.jsonl"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tagflow topics predict: error:") and message in err[0]


def test_predict_cli_unknown_alias(pipeline, mlflow_store, capsys):
    (mlflow_store / "one.jsonl").write_text('{"text": "wheat"}\n')
    assert main(["topics", "predict", "--input", "one.jsonl", "--output", "x.jsonl", "--model", "nightly"]) == 2
    assert "model 'reuters-topics' 'nightly' not found" in capsys.readouterr().err
