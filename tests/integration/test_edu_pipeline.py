"""The edu stages end to end on tiny annotation sets (the embedded MiniLM for both setups):
fetch from a mirror -> table -> contract -> cached embeddings -> heads chosen on val -> metrics,
plots and predictions -> registered pyfuncs behind a gate -> `tagflow edu predict` from the
registry and from a local folder, giving exactly the evaluation's scores."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tagflow.cli import main
from tagflow.config import load_config
from tagflow.edu import contracts, data, embed, evaluate, paths, register, train
from tests.edu_pages import write_mirror

ROOT = Path(__file__).resolve().parents[2]
MINILM = {"model": "embedded:all-minilm-l6-v2", "prefix": "", "max_seq_length": 128}


@pytest.fixture(scope="module")
def project(mlflow_store):
    """The stages run in the store's directory, on a params file like the project's (smoke)."""
    root = mlflow_store
    mirror = write_mirror(root / "mirror", n=40)
    raw = yaml_load(ROOT / "params.yaml")
    raw["profile"] = "smoke"
    edu = raw["edu"]
    edu["data"]["raw_dir"] = "data/edu"
    edu["embed"]["encoders"] = {"en": MINILM, "multilingual": MINILM | {"prefix": "passage: "}}
    edu["embed"]["bf16"] = "off"  # fp32: scores do not depend on how pages are batched
    edu["train"]["setups"] = {"en": {"encoder": "en", "train": ["en_llm"]},
                              "multilingual": {"encoder": "multilingual", "train": ["en_llm", "da_llm"]}}
    edu["registry"]["gate_target"] = 0.3
    raw["profiles"]["smoke"]["edu"]["registry"] = {}
    params = root / "params.yaml"
    params.write_text(yaml_dump(raw))
    cfg = load_config(params)
    data.fetch(cfg.edu.data, mirror=str(mirror))
    outputs = {}
    for step in (data, contracts, embed, train, evaluate, register):
        outputs[step.__name__.rsplit(".", 1)[-1]] = step.run(cfg)
    return root, cfg, outputs


def yaml_load(path):
    import yaml
    return yaml.safe_load(Path(path).read_text())


def yaml_dump(raw):
    import yaml
    return yaml.safe_dump(raw, sort_keys=False)


def test_stages_write_their_outputs(project):
    root, cfg, out = project
    table = pd.read_parquet(root / paths.TABLE)
    assert len(table) == 120 and set(table["split"]) == {"train", "val", "test"}
    assert out["contracts"].success
    emb = json.loads((root / paths.METRICS_EMBED).read_text())
    # en pages are shared by both setups, but each encoder (prefix) has its own cache
    assert emb["en/embedded"] == 40 and emb["multilingual/embedded"] == 120
    assert embed.run(cfg)["en/embedded"] == 0  # computed once: a rerun reuses every vector
    card = json.loads((root / paths.model_dir("en") / "card.json").read_text())
    assert card["family"] == "edu" and card["head"]["kind"] in ("linear", "ridge")
    assert card["train"]["pages"] == len(table[(table.source == "en_llm") & (table.split == "train")])


def test_metrics_beat_the_trivial_baselines_with_cis(project):
    root, cfg, out = project
    m = json.loads((root / paths.METRICS).read_text())
    for setup in ("en", "multilingual"):
        v = f"{setup}/val/"
        assert m[v + "spearman"] > 0.5 and m[v + "spearman_within"] > 0.5, m[v + "spearman_within"]
        assert m[v + "spearman_ci_low"] <= m[v + "spearman"] <= m[v + "spearman_ci_high"]
        assert m[v + "baseline_mean_spearman"] == 0.0 and m[v + "baseline_all_positive_spearman"] == 0.0
        assert m[v + "macro_f1"] > m[v + "baseline_all_positive_macro_f1"]
    assert "multilingual/test_da_llm/mae" in m and "multilingual/xling_da_human/spearman" in m
    confusion = json.loads((root / paths.EVAL_DIR / "confusion.json").read_text())
    assert sum(map(sum, confusion["en/val"])) == m["en/val/pages"]
    plot = pd.read_csv(root / paths.PLOTS_DIR / "en_val.csv")
    assert list(plot.columns) == ["actual", "predicted"] and len(plot) == m["en/val/pages"]


def test_registered_and_gated(project):
    from mlflow import MlflowClient

    root, cfg, out = project
    decisions = out["register"]["decisions"]
    assert set(decisions) == {"en", "multilingual"}
    for setup, d in decisions.items():
        assert d["metric"] == "val/spearman_within" and d["promoted"] is True, d
        mv = MlflowClient().get_model_version(d["model_name"], d["version"])
        assert mv.tags["gate.decision"] == "promoted" and mv.tags["card.family"] == "edu"
    # a gate the model cannot reach: registered as challenger, champion stays
    cfg.edu.registry.gate_target = 0.999
    again = register.run(cfg)["decisions"]["en"]
    assert again["promoted"] is False and again["champion_before"] == decisions["en"]["version"]
    cfg.edu.registry.gate_target = 0.3


def test_predict_cli_serves_what_evaluation_measured(project, tmp_path):
    root, cfg, out = project
    preds = [json.loads(line) for line in (root / paths.EVAL_DIR / "en_predictions.jsonl").read_text().splitlines()]
    val = [p for p in preds if p["set"] == "val"]
    table = pd.read_parquet(root / paths.TABLE).set_index("id")
    pages = tmp_path / "pages.csv"
    pd.DataFrame({"id": [p["id"] for p in val], "text": [table.loc[p["id"], "text"] for p in val]}).to_csv(pages, index=False)
    params = str(root / "params.yaml")
    for extra in (["--model", "fineweb-edu-en"], ["--model-dir", paths.model_dir("en")]):
        output = tmp_path / f"out{extra[0].strip('-')}.jsonl"
        assert main(["--params", params, "edu", "predict", "--input", str(pages), "--output", str(output),
                     *extra]) == 0
        got = [json.loads(line) for line in output.read_text().splitlines()]
        assert [g["id"] for g in got] == [p["id"] for p in val]
        for g, p in zip(got, val):
            assert g["score"] == pytest.approx(p["score"], abs=1e-4) and g["int_score"] == p["int_score"]
        if extra[0] == "--model":
            champion = out["register"]["decisions"]["en"]["version"]
            assert got[0]["model"] == {"name": "fineweb-edu-en", "version": champion, "alias": "champion"}
        else:
            assert got[0]["model"]["path"] == paths.model_dir("en")


def test_predict_cli_bad_input_is_one_line(project, tmp_path, capsys):
    root, _, _ = project
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "body": "no text"}\n')
    code = main(["--params", str(root / "params.yaml"), "edu", "predict", "--input", str(bad),
                 "--output", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith(f"tagflow edu predict: error: {bad}: page 1 has no 'text' string")
    code = main(["--params", str(root / "params.yaml"), "edu", "predict", "--input", str(tmp_path / "bad.jsonl"),
                 "--output", str(tmp_path / "o.jsonl"), "--model", "no-such-model"])
    assert code == 2


def test_changed_evaluation_settings_get_a_run_of_their_own(project):
    """MLflow refuses to change a logged parameter: re-evaluating with other settings (here the
    bootstrap draws) opens an evaluation run linked to the training run, and registration logs there."""
    from mlflow import MlflowClient

    from tagflow.core import tracking

    root, cfg, out = project
    training = tracking.read_run_id(root / paths.RUN_FILE)
    assert tracking.read_run_id(root / paths.EVAL_RUN_FILE) == training   # first evaluation: the training run
    n_boot = cfg.edu.evaluate.n_boot
    cfg.edu.evaluate.n_boot = n_boot + 7
    try:
        evaluate.run(cfg)
        own = tracking.read_run_id(root / paths.EVAL_RUN_FILE)
        assert own != training
        run = MlflowClient().get_run(own)
        assert run.data.tags["training_run"] == training and run.data.tags["changed_params"] == "evaluate.n_boot"
        assert run.data.params["evaluate.n_boot"] == str(n_boot + 7) and "en/val/spearman" in run.data.metrics
        assert MlflowClient().get_run(training).data.params["evaluate.n_boot"] == str(n_boot)
        assert register.run(cfg)["run_id"] == own
    finally:
        cfg.edu.evaluate.n_boot = n_boot
