"""The training stage with a backend that needs no SFT adapter: nothing is trained, the MLflow run
that evaluation and registration join is still opened (and closed), and the skip is recorded."""
from __future__ import annotations

import json

import mlflow

from tagflow.config import load_config
from tagflow.core.tracking import read_run_id
from tagflow.tagger import paths, sft


def test_non_llm_backend_skips_training_but_keeps_the_run(mlflow_store, monkeypatch):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "params.yaml", "smoke")
    cfg.tagger.infer.backend = "lexical"
    monkeypatch.setattr(sft, "train", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    summary = sft.run(cfg)
    assert summary == {"skipped": "backend lexical does not use the SFT adapter"}
    assert json.loads((mlflow_store / paths.METRICS_TRAIN).read_text()) == summary
    assert json.loads((mlflow_store / paths.ADAPTER_DIR / "skipped.json").read_text()) == summary
    run = mlflow.MlflowClient().get_run(read_run_id(mlflow_store / paths.RUN_FILE))
    assert run.info.status == "FINISHED" and run.data.tags["sft.skipped"] == summary["skipped"]


def test_preference_stages_skip_and_record_why(mlflow_store, monkeypatch):
    """Pairs, IPO, the before/after evaluation and the SFT+IPO registration with a backend that
    has no SFT model: nothing sampled or trained, each output says why, the IPO run is closed."""
    from pathlib import Path

    from tagflow.tagger import ipo, pairs, prefeval, register

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "params.yaml", "smoke")
    cfg.tagger.infer.backend = "embedding"
    boom = lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran"))  # noqa: E731
    monkeypatch.setattr(pairs, "sample_answers", boom)
    monkeypatch.setattr(ipo, "train", boom)
    monkeypatch.setattr(prefeval, "compare", boom)
    monkeypatch.setattr(register, "register", boom)
    reason = "backend embedding does not use the SFT adapter"
    assert pairs.run(cfg) == {"skipped": reason}
    assert (mlflow_store / paths.PAIRS).read_text() == ""
    # every dvc.yaml output of the stage exists, the contract folder included (else `dvc repro` fails)
    assert json.loads((mlflow_store / paths.CONTRACTS_DIR / "pairs" / "skipped.json").read_text()) == {"skipped": reason}
    assert ipo.run(cfg) == {"skipped": reason}
    assert json.loads((mlflow_store / paths.IPO_DIR / "skipped.json").read_text()) == {"skipped": reason}
    run = mlflow.MlflowClient().get_run(read_run_id(mlflow_store / paths.IPO_RUN_FILE))
    assert run.info.status == "FINISHED" and run.data.tags["ipo.skipped"] == reason
    assert prefeval.run(cfg) == {"skipped": reason}
    for path in (paths.METRICS_PREFERENCE, paths.METRICS_TAGGER_IPO):
        assert json.loads((mlflow_store / path).read_text()) == {"skipped": reason}
    assert register.run_ipo(cfg) == {"skipped": reason}
    assert json.loads((mlflow_store / paths.IPO_REGISTRY_REPORT).read_text()) == {"skipped": reason}
