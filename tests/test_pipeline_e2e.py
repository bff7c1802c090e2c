"""End to end: the smoke profile through `dvc repro` in a scratch copy of this project, then the
promoted model served by a real `bentoml serve` on loopback. Slow (a few minutes): it trains a
real (tiny) LoRA adapter on the embedded SmolLM2 and parses the real UNESCO dump."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
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
def project(tmp_path_factory) -> tuple[Path, dict]:
    """A copy of the working tree (tracked + untracked, not ignored) as its own git repo, on the
    smoke profile, after `dvc repro`."""
    dest = tmp_path_factory.mktemp("e2e") / "project"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    env = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
                        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "GX_ANALYTICS_ENABLED": "false",
                        "BENTOML_DO_NOT_TRACK": "true", "MLFLOW_TRACKING_URI": f"sqlite:///{dest}/mlflow.db"}
    env.pop("PREFECT_API_URL", None)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "snapshot"]):
        sh(cmd, dest, env)
    sh(["tagflow", "profile", "smoke"], dest, env)
    fetched = sh(["tagflow", "fetch", "--mirror", str(MIRROR)], dest, env, check=False)
    if fetched.returncode and not MIRROR.exists():
        pytest.skip(f"no network and no data mirror at {MIRROR}: {fetched.stderr[-300:]}")
    assert fetched.returncode == 0, fetched.stderr
    repro = sh(["dvc", "repro"], dest, env)
    assert "Running stage 'register'" in repro.stdout
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
                "out_of_thesaurus_rate", "duplicate_rate"):
        assert 0.0 <= metrics[key] <= 1.0, key
    decision = json.loads((dest / "reports/registry.json").read_text())
    assert decision["promoted"] is True and decision["version"] == "1"  # smoke gate target is 0.0
    assert (dest / "reports/contracts/splits/report.html").exists()
    assert (dest / "artifacts/tagger/adapter_config.json").exists()


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
    assert out["params"]["train_sft.max_steps"] == "3"
    assert "f1_doc" in out["metrics"] and "train_loss" in out["metrics"]
    assert out["vtags"]["gate.decision"] == "promoted"


def test_noop_and_param_change_rerun_only_downstream(project):
    dest, env = project
    assert "up to date" in sh(["dvc", "repro"], dest, env).stdout
    params = dest / "params.yaml"
    params.write_text(params.read_text().replace("  learning_rate: 2.0e-4", "  learning_rate: 1.0e-4", 1))
    # DVC sees the change in train_sft alone; downstream stages rerun because its outputs change.
    assert set(json.loads(sh(["dvc", "status", "--json"], dest, env).stdout)) == {"train_sft"}
    ran = set(re.findall(r"Running stage '(\w+)'", sh(["dvc", "repro"], dest, env).stdout))
    assert ran == {"train_sft", "evaluate", "register"}


def test_broken_split_fails_validation_with_named_expectation(project):
    dest, env = project
    train = dest / "artifacts/sft/train.jsonl"
    original = train.read_text()
    rows = [json.loads(line) for line in original.splitlines()]
    rows[0]["labels"][0] = "Not a thesaurus label"
    try:
        train.write_text("".join(json.dumps(r) + "\n" for r in rows))
        proc = sh(["tagflow", "validate"], dest, env, check=False)
        assert proc.returncode == 1
        assert "labels_not_pref_en" in proc.stderr and "Not a thesaurus label" in proc.stderr
    finally:
        train.write_text(original)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bentoml_serves_the_promoted_model(project):
    dest, env = project
    port = _free_port()
    server = subprocess.Popen([str(BIN / "bentoml"), "serve", "services.tagger_service:Tagger",
                               "--host", "127.0.0.1", "--port", str(port)], cwd=dest, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, "bentoml serve exited"
            time.sleep(1)
        text = json.loads((dest / "artifacts/sft/test.jsonl").read_text().splitlines()[0])["text"]
        resp = httpx.post(f"{base}/tag", json={"text": text, "top_n": 5}, timeout=300)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        served = json.loads((dest / "reports/registry.json").read_text())["version"]
        assert body["model"]["version"] == served  # the champion: the last model, gate target 0.0
        assert isinstance(body["keywords"], list) and len(body["keywords"]) <= 5
        for kw in body["keywords"]:
            assert kw["uri"].startswith("http://vocabularies.unesco.org/thesaurus/concept")
        assert httpx.post(f"{base}/tag", json={"text": "  "}, timeout=30).status_code == 400
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
