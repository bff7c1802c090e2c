"""End to end: the smoke profile through `dvc repro` in a scratch copy of this project, what a
parameter change reruns, and the promoted model served by a real `bentoml serve` on loopback,
answering exactly what the evaluation stage measured. Slow (a few minutes): it trains a real
(tiny) LoRA adapter on the embedded SmolLM2 and parses the real UNESCO dump."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.project_copy import copy_working_tree

ROOT = Path(__file__).resolve().parents[2]
MIRROR = Path(os.environ.get("TAGFLOW_MIRROR", ROOT.parent / "shared" / "data"))
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def sh(cmd: list[str], cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(f"{cmd} exited {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}"
                             f"\n--- stderr\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="module")
def project(tmp_path_factory, prefect_api) -> tuple[Path, dict]:
    """A copy of the working tree (tracked + untracked, not ignored) as its own git repo, on the
    smoke profile, after `dvc repro`. Its stages report to the session's Prefect server (as with
    PREFECT_API_URL set in a terminal) instead of each starting an ephemeral one."""
    dest = tmp_path_factory.mktemp("e2e") / "project"
    copy_working_tree(dest)
    env = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
                        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "GX_ANALYTICS_ENABLED": "false",
                        "BENTOML_DO_NOT_TRACK": "true", "MLFLOW_TRACKING_URI": f"sqlite:///{dest}/mlflow.db",
                        "PREFECT_API_URL": prefect_api}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "snapshot"]):
        sh(cmd, dest, env)
    sh(["tagflow", "profile", "smoke"], dest, env)
    fetched = sh(["tagflow", "thesaurus", "fetch", "--mirror", str(MIRROR)], dest, env, check=False)
    if fetched.returncode and not MIRROR.exists():
        pytest.skip(f"no network and no data mirror at {MIRROR}: {fetched.stderr[-300:]}")
    assert fetched.returncode == 0, fetched.stderr
    sh(["tagflow", "edu", "fetch", "--mirror", str(MIRROR)], dest, env)
    sh(["tagflow", "topics", "fetch", "--mirror", str(MIRROR)], dest, env)
    repro = sh(["dvc", "repro"], dest, env)
    assert "Running stage 'tagger_register'" in repro.stdout
    return dest, env


def test_pipeline_writes_metrics_and_gates_the_model(project):
    dest, _ = project
    stats = json.loads((dest / "metrics/thesaurus.json").read_text())
    assert stats["concepts"] > 4000 and stats["micro_thesauri"] == 88 and stats["domains"] == 7
    synth = json.loads((dest / "metrics/synth.json").read_text())
    assert synth["documents"] == 12 and 0.0 <= synth["verbatim_label_share"] <= 1.0
    for split, n in {"train": 8, "val": 2, "test": 2}.items():
        assert len((dest / f"artifacts/sft/{split}.jsonl").read_text().splitlines()) == n
    metrics = json.loads((dest / "metrics/tagger.json").read_text())
    for key in ("f1_doc", "precision_doc", "recall_doc", "f1_micro", "valid_json_rate",
                "out_of_thesaurus_rate", "duplicate_rate", "f1_at_5", "ndcg_at_5", "hf1_doc",
                "f1_doc_ci_low", "f1_doc_ci_high"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["f1_doc_ci_low"] <= metrics["f1_doc"] <= metrics["f1_doc_ci_high"]
    decision = json.loads((dest / "reports/registry.json").read_text())
    assert decision["promoted"] is True and decision["version"] == "1"  # smoke gate target is 0.0
    assert (dest / "reports/contracts/splits/report.html").exists()
    assert json.loads((dest / "metrics/contracts_splits.json").read_text())["failed"] == 0
    assert json.loads((dest / "artifacts/backend/fit.json").read_text())["backend"] == "llm"
    assert (dest / "artifacts/tagger/adapter_config.json").exists()
    prompt = "Extract UNESCO Thesaurus keywords from this text:\n\n{text}"
    assert json.loads((dest / "artifacts/sft/meta.json").read_text()) == {"prompt": prompt}
    assert json.loads((dest / "artifacts/tagger/tagger.json").read_text())["prompt"] == prompt


def test_every_stage_ran_as_a_flow_run_on_the_prefect_server(project, prefect_api):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (FlowFilter, FlowFilterName, FlowRunFilter,
                                                FlowRunFilterState, FlowRunFilterStateType)
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    dest, _ = project
    renamed = {"data": "thesaurus-check-dump"}   # the one flow named after its command
    expected = {renamed.get(s, s.replace("_", "-")) for s in yaml.safe_load((dest / "dvc.yaml").read_text())["stages"]}
    completed = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED])))
    with temporary_settings({PREFECT_API_URL: prefect_api}), get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows(flow_filter=FlowFilter(name=FlowFilterName(any_=sorted(expected))))}
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=sorted(expected))),
                                     flow_run_filter=completed, limit=200)
    assert {flows[r.flow_id] for r in runs} == expected
    assert len(expected) >= 20


def test_dev_set_concepts_exist_in_the_dump(project):
    """The hand-indexed dev set and training records against the real concept table: every gold
    URI exists, its label is the English preferred label, and no document pairs a concept with
    one of its ancestors."""
    import pandas as pd

    from tagflow.thesaurus import Thesaurus

    dest, _ = project
    th = Thesaurus(pd.read_parquet(dest / "artifacts/thesaurus/concepts.parquet"))
    for f in sorted([*(dest / "devsets/tagger").glob("*.jsonl"), *(dest / "trainsets/tagger").glob("*.jsonl")]):
        for row in map(json.loads, f.read_text().splitlines()):
            assert all(u in th for u in row["uris"]), row["id"]
            assert [th.label[u] for u in row["uris"]] == row["labels"], row["id"]
            assert th.prune_hierarchy(row["uris"]) == row["uris"], row["id"]


def test_mlflow_run_records_lineage(project):
    dest, env = project
    code = ("import mlflow, json; c = mlflow.MlflowClient(); v = c.get_model_version_by_alias('unesco-tagger', 'champion'); "
            "r = c.get_run(v.run_id); print(json.dumps({'tags': r.data.tags, 'params': r.data.params, "
            "'metrics': r.data.metrics, 'vtags': v.tags}))")
    out = json.loads(sh([sys.executable, "-c", code], dest, env).stdout.strip().splitlines()[-1])
    assert len(out["tags"]["git_commit"]) == 40
    assert out["tags"]["profile"] == "smoke"
    assert out["tags"]["dvc.artifacts/sft"].endswith(".dir")
    assert out["tags"]["dvc.data"].endswith(".dir")
    assert out["params"]["sft.max_steps"] == "3"
    assert "f1_doc" in out["metrics"] and "train_loss" in out["metrics"]
    vtags = out["vtags"]
    assert vtags["gate.decision"] == "promoted"
    # the model card, on the version: backend, settings, prompt, thesaurus and code versions
    assert (vtags["card.family"], vtags["card.backend"], vtags["card.profile"]) == ("tagger", "llm", "smoke")
    assert vtags["card.backend_params.max_new_tokens"] == "24" and vtags["card.infer.top_n"] == "10"
    assert vtags["card.prompt"].startswith("Extract UNESCO Thesaurus keywords")
    assert vtags["card.base_model"] == "embedded:smollm2-135m-instruct"
    assert len(vtags["card.thesaurus.sha256"]) == 64 and vtags["card.thesaurus.concepts"] == str(stats_concepts(dest))
    assert vtags["card.code.git_commit"] == out["tags"]["git_commit"]


PREFERENCE_STAGES = {"tagger_pairs", "tagger_ipo", "tagger_pref_evaluate", "tagger_ipo_register"}


def champion(dest: Path) -> tuple[str, list[dict]]:
    """The champion's version and what its evaluation predicted on the test split: SFT+IPO's when
    its gate (run after the SFT model's) promoted it, else the SFT model's."""
    ipo = json.loads((dest / "reports/registry_ipo.json").read_text())
    if ipo.get("promoted"):
        version, path = ipo["version"], dest / "artifacts/pref_eval/ipo_predictions.jsonl"
    else:
        version = json.loads((dest / "reports/registry.json").read_text())["version"]
        path = dest / "artifacts/eval/predictions.jsonl"
    return version, [json.loads(line) for line in path.read_text().splitlines()]


def test_preference_tuning_stages(project):
    """Pairs from the SFT model, IPO on top of it, base vs SFT vs SFT+IPO, and the gate's
    decision on SFT+IPO against the SFT champion."""
    dest, _ = project
    stats = json.loads((dest / "metrics/pairs.json").read_text())
    pairs = [json.loads(line) for line in (dest / "artifacts/pairs/pairs.jsonl").read_text().splitlines()]
    assert stats["generations"] == 8 * 2 and len(pairs) == stats["pairs"] >= 1
    assert stats["format_pairs"] + stats["semantic_pairs"] == stats["pairs"]
    assert stats["contract"]["failed"] == 0 and (dest / "reports/contracts/pairs/report.html").exists()
    for pair in pairs:
        assert pair["chosen"] != pair["rejected"] and pair["prompt"][0]["role"] == "user"
    ipo = json.loads((dest / "metrics/ipo.json").read_text())
    assert ipo["steps"] == 2 and ipo["pairs"] == len(pairs)
    meta = json.loads((dest / "artifacts/tagger_ipo/tagger.json").read_text())
    assert meta["adapters"] == ["sft", "ipo"] and meta["base_model"] == "embedded:smollm2-135m-instruct"
    pref = json.loads((dest / "metrics/preference.json").read_text())
    assert sorted(pref["models"]) == ["base", "ipo", "sft"]
    for entry in pref["models"].values():
        assert entry["test"]["documents"] == 2 and 0.0 <= entry["test"]["valid_rate"] <= 1.0
    for name in ("base", "sft", "ipo"):
        assert (dest / f"artifacts/pref_plots/{name}.csv").read_text().startswith("bin,count\n")
    assert "f1_doc" in json.loads((dest / "metrics/tagger_ipo.json").read_text())
    decision = json.loads((dest / "reports/registry_ipo.json").read_text())
    assert decision["version"] == "2" and decision["champion_before"] == "1"
    assert isinstance(decision["promoted"], bool) and decision["metric"] == "f1_doc"


def stats_concepts(dest: Path) -> int:
    return json.loads((dest / "metrics/thesaurus.json").read_text())["concepts"]


def edit(path: Path, old: str, new: str) -> str:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    return text


def stale(dest: Path, env: dict) -> set[str]:
    return set(json.loads(sh(["dvc", "status", "--json"], dest, env).stdout))


def ran(dest: Path, env: dict) -> set[str]:
    return set(re.findall(r"Running stage '(\w+)'", sh(["dvc", "repro"], dest, env).stdout))


def test_noop_and_param_changes_rerun_exactly_what_they_reach(project):
    dest, env = project
    params = dest / "params.yaml"
    assert "up to date" in sh(["dvc", "repro"], dest, env).stdout

    # Another profile's overlay is not a parameter of any stage while smoke is active.
    original = edit(params, "        epochs: 3\n", "        epochs: 5\n")
    assert stale(dest, env) == set()
    params.write_text(original)

    # A contract threshold reruns the check, not the synthesis before it nor the training after it.
    original = edit(params, "    max_keywords: 8\n", "    max_keywords: 9\n")
    assert stale(dest, env) == {"tagger_validate"}
    assert ran(dest, env) == {"tagger_validate"}
    params.write_text(original)
    assert ran(dest, env) == {"tagger_validate"}

    # An inference setting after training: the model is evaluated again in a run of its own,
    # linked to the training run (MLflow keeps a run's parameters as first logged); back to the
    # trained setting, the training run holds the evaluation again. (Only up to the evaluation:
    # registering would move the champion that the serving test below compares with.)
    # The fit is not among them: it reads the backend's parameters only.
    original = edit(params, "    chunk_overlap: 500\n", "    chunk_overlap: 400\n")
    assert stale(dest, env) == {"tagger_evaluate", "tagger_register", "tagger_pref_evaluate", "tagger_ipo_register"}
    sh(["dvc", "repro", "tagger_evaluate"], dest, env)
    train_run = json.loads((dest / "artifacts/tagger/run.json").read_text())["run_id"]
    eval_run = json.loads((dest / "artifacts/eval/run.json").read_text())["run_id"]
    assert eval_run != train_run
    code = ("import mlflow, json, sys; r = mlflow.MlflowClient().get_run(sys.argv[1]); "
            "print(json.dumps({'overlap': r.data.params.get('infer.chunk_overlap'), 'tags': r.data.tags}))")
    run = json.loads(sh([sys.executable, "-c", code, eval_run], dest, env).stdout.strip().splitlines()[-1])
    assert run["overlap"] == "400" and run["tags"]["training_run"] == train_run
    assert run["tags"]["changed_params"] == "infer.chunk_overlap"
    params.write_text(original)
    sh(["dvc", "repro", "tagger_evaluate"], dest, env)
    assert json.loads((dest / "artifacts/eval/run.json").read_text())["run_id"] == train_run

    # A backend's parameter is the fit's too.
    original = edit(params, "      llm: {max_new_tokens: 96, batch_size: 8}\n", "      llm: {max_new_tokens: 96, batch_size: 4}\n")
    assert "tagger_fit" in stale(dest, env)
    params.write_text(original)

    # A training parameter: training, then what its new adapter reaches.
    edit(params, "    learning_rate: 2.0e-4\n", "    learning_rate: 1.0e-4\n")
    assert stale(dest, env) == {"tagger_train", "tagger_ipo"}   # IPO's run records the SFT params
    assert ran(dest, env) == {"tagger_train", "tagger_evaluate", "tagger_register", *PREFERENCE_STAGES}
    assert "up to date" in sh(["dvc", "repro"], dest, env).stdout


def test_broken_split_fails_validation_with_named_expectation(project):
    dest, env = project
    train = dest / "artifacts/sft/train.jsonl"
    original = train.read_text()
    rows = [json.loads(line) for line in original.splitlines()]
    rows[0]["labels"][0] = "Not a thesaurus label"
    try:
        train.write_text("".join(json.dumps(r) + "\n" for r in rows))
        proc = sh(["tagflow", "tagger", "validate"], dest, env, check=False)
        assert proc.returncode == 2
        assert "labels_not_pref_en" in proc.stderr and "Not a thesaurus label" in proc.stderr
    finally:
        train.write_text(original)


# The champion's own tagger, loaded from the registry, tags the evaluated split again; its raw
# generations show which prompt and generation settings it runs.
RETAG = """
import json, sys, mlflow
from tagflow.core.registry import load_champion
model, version = load_champion("unesco-tagger")
impl = model.unwrap_python_model()
texts = [json.loads(line)["text"] for line in open("artifacts/sft/test.jsonl")]
docs = impl.tagger.tag_many(texts)
print(json.dumps({"version": version, "card": impl.card,
                  "raw": [d.raw_outputs for d in docs],
                  "predicted": [[c.as_dict() for c in d.concepts] for d in docs]}))
"""


def test_cli_tags_a_jsonl_batch_with_the_champion(project, tmp_path):
    dest, env = project
    texts = [json.loads(line)["text"] for line in (dest / "artifacts/sft/test.jsonl").read_text().splitlines()]
    batch = tmp_path / "docs.jsonl"
    batch.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    out = sh(["tagflow", "tagger", "tag", str(batch), "--max-keywords", "3", "--lang", "fr"], dest, env)
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    version, _ = champion(dest)
    assert [line["id"] for line in lines] == [f"d{i}" for i in range(len(texts))]
    assert all(line["model"] == {"name": "unesco-tagger", "version": version, "backend": "llm"} for line in lines)
    assert all(len(line["concepts"]) <= 3 for line in lines)


def test_served_champion_answers_what_evaluation_measured(project, free_port, server_process):
    """Served = measured: over HTTP and in-process, the champion's predictions on the test split
    equal the evaluation stage's, with params.yaml changed meanwhile (the model reads its card)."""
    dest, env = project
    version, evaluated = champion(dest)
    texts = [json.loads(line)["text"] for line in (dest / "artifacts/sft/test.jsonl").read_text().splitlines()]
    params = dest / "params.yaml"
    # Today's params.yaml now asks for other generation settings and another top_n: a model that
    # read them (instead of its card) would answer differently.
    original = edit(params, "      infer: {backend: llm, top_n: 10, chunk_chars: 3000, backends: {llm: {max_new_tokens: 24}}}",
                    "      infer: {backend: llm, top_n: 1, chunk_chars: 3000, backends: {llm: {max_new_tokens: 4}}}")
    try:
        again = json.loads(sh([sys.executable, "-c", RETAG], dest, env).stdout.strip().splitlines()[-1])
        assert again["version"] == version
        assert again["raw"] == [row["raw"] for row in evaluated]
        assert again["predicted"] == [row["predicted"] for row in evaluated]
        assert again["card"]["infer"]["top_n"] == 10 and again["card"]["backend_params"]["max_new_tokens"] == 24

        port = free_port()
        server = server_process([str(BIN / "bentoml"), "serve", "services.tagger_service:Tagger",
                                 "--host", "127.0.0.1", "--port", str(port)], dest / "serve.log",
                                env=env, cwd=dest, name="bentoml serve")
        try:
            base = f"http://127.0.0.1:{port}"
            server.wait_for(f"{base}/readyz", timeout=180)
            resp = httpx.post(f"{base}/tag_batch", json={"texts": texts}, timeout=300)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert body["model"] == {"name": "unesco-tagger", "version": version}
            assert [r["keywords"] for r in body["results"]] == [row["predicted"] for row in evaluated]
            info = httpx.post(f"{base}/info", json={}, timeout=30).json()
            assert info["card"] == again["card"]
            resp = httpx.post(f"{base}/tag", json={"text": texts[0], "top_n": 5}, timeout=300)
            assert resp.status_code == 200 and len(resp.json()["keywords"]) <= 5
            for kw in resp.json()["keywords"]:
                assert kw["uri"].startswith("http://vocabularies.unesco.org/thesaurus/concept")
            assert httpx.post(f"{base}/tag", json={"text": "  "}, timeout=30).status_code == 400
        finally:
            server.stop(grace=20)
    finally:
        params.write_text(original)


def test_topics_stages_ran_and_the_model_was_gated(project):
    dest, _ = project
    data = json.loads((dest / "metrics/topics_data.json").read_text())
    assert (data["train_docs"], data["validation_docs"], data["test_docs"]) == (300, 100, 0)
    assert json.loads((dest / "metrics/topics_contracts.json").read_text())["failed"] == 0
    metrics = json.loads((dest / "metrics/topics.json").read_text())
    assert metrics["selected"] in ("svm", "transformer")
    for key in ("validation/micro_f1", "validation/macro_f1_tuned", "svm/validation/micro_f1_tuned",
                "transformer/validation/micro_f1_tuned"):
        assert 0.0 <= metrics[key] <= 1.0, key
    decision = json.loads((dest / "reports/topics_registry.json").read_text())
    assert decision["promoted"] is True and decision["model_name"] == "reuters-topics"  # smoke target 0.0
