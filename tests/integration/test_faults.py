"""Faults that lose nothing (issue 11): a killed stage's MLflow run and Prefect flow run are
closed on the next start while a live one is left alone; a dump that fails its check is never
recorded by `dvc repro` and never replaces the last good concept table; a contract failure writes
no table. Real processes (SIGKILL), a real Prefect server and sqlite MLflow store, real DVC."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.project_copy import copy_working_tree

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# A stage flow whose task opens an MLflow run, says so, then works until it is killed.
STAGE = """
import sys, time
from pathlib import Path
from flows.common import stage_flow
from tagflow.core import tracking

def work(cfg):
    if sys.argv[1] == "quick":      # a later stage: opens and closes its run
        with tracking.stage_run("faults", "quick", "smoke", {}):
            return
    tracking.start_run("faults", sys.argv[1], "smoke", {})
    Path(sys.argv[1] + ".started").write_text("")
    time.sleep(600)

stage_flow("fault-" + sys.argv[1], work)(params=sys.argv[2])
"""


def _env(tmp: Path, api_url: str, mlflow_db_template: Path) -> dict:
    """The stages' environment, with a fresh MLflow store in tmp (a copy of the session's empty one)."""
    shutil.copyfile(mlflow_db_template, tmp / "mlflow.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    return env | {"PYTHONPATH": str(ROOT), "PREFECT_API_URL": api_url, "PREFECT_HOME": str(tmp / "prefect"),
                  "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                  "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db"}


def _stage(name: str, tmp: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", STAGE, name, str(ROOT / "params.yaml")], cwd=tmp,
                            env=env, stdout=(tmp / f"{name}.log").open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _wait_started(proc: subprocess.Popen, marker: Path, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{marker.name} never started:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def test_killed_runs_are_closed_on_next_start_and_live_runs_are_not(tmp_path, prefect_api, mlflow_db_template):
    from mlflow.tracking import MlflowClient
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    env = _env(tmp_path, prefect_api, mlflow_db_template)
    store = MlflowClient(env["MLFLOW_TRACKING_URI"])
    store.create_experiment("faults")   # before two processes would create it at once
    killed, live = _stage("killed", tmp_path, env), _stage("live", tmp_path, env)
    try:
        for proc, name in ((killed, "killed"), (live, "live")):
            _wait_started(proc, tmp_path / f"{name}.started", tmp_path / f"{name}.log")
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(10)
        quick = _stage("quick", tmp_path, env)
        assert quick.wait(120) == 0, (tmp_path / "quick.log").read_text()[-3000:]

        runs = {r.info.run_name.split("-")[0]: r
                for r in store.search_runs([store.get_experiment_by_name("faults").experiment_id])}
        assert runs["killed"].info.status == "FAILED"
        assert f"process {killed.pid}" in runs["killed"].data.tags["tagflow.reaped"]
        assert runs["live"].info.status == "RUNNING" and "tagflow.reaped" not in runs["live"].data.tags
        assert runs["quick"].info.status == "FINISHED"

        ours = FlowFilter(name=FlowFilterName(any_=["fault-killed", "fault-live", "fault-quick"]))
        with temporary_settings({PREFECT_API_URL: prefect_api}), get_client(sync_client=True) as client:
            # the session's server: other tests' flow runs are there too
            states = {client.read_flow(r.flow_id).name: r.state for r in client.read_flow_runs(flow_filter=ours)}
        assert states["fault-killed"].type.value == "CRASHED"
        assert f"process {killed.pid}" in states["fault-killed"].message
        assert states["fault-live"].type.value == "RUNNING"
        assert states["fault-quick"].type.value == "COMPLETED"
    finally:
        for proc in (killed, live):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


# ---------------------------------------------------------------- data: checked before recorded

TINY = ROOT / "tests" / "data" / "tiny.ttl"
# Parses, but breaks the contract: a second concept with an existing English prefLabel.
DUPLICATE_LABEL = '\nt:c10 a skos:Concept ; skos:prefLabel "Museums"@en ; skos:broader t:c7 .\n'


def test_contract_failure_writes_nothing_and_keeps_the_last_good_outputs(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from tagflow.core.contracts import ContractError
    from tagflow.thesaurus import build
    from tagflow.thesaurus.config import ThesaurusConfig

    monkeypatch.chdir(tmp_path)
    dump = tmp_path / "dump.ttl"
    shutil.copyfile(TINY, dump)
    cfg = SimpleNamespace(thesaurus=ThesaurusConfig(dump=str(dump), languages=["en", "fr"]))
    assert build.run(cfg)["concepts"] == 9
    outputs = [Path(build.CONCEPTS), Path(build.METRICS), Path(build.CONTRACTS_DIR) / "concepts" / "report.html"]
    before = {p: p.read_bytes() for p in outputs}
    assert not Path(build.REJECTED_DIR).exists()

    dump.write_text(TINY.read_text() + DUPLICATE_LABEL)
    with pytest.raises(ContractError) as failed:
        build.run(cfg)
    assert failed.value.report.html_path == (tmp_path / build.REJECTED_DIR / "concepts" / "report.html")
    assert "FAILED" in failed.value.report.html_path.read_text()
    assert {p: p.read_bytes() for p in outputs} == before      # last good table, report, stats
    assert [p.name for p in Path(build.CONCEPTS).parent.iterdir()] == ["concepts.parquet"]


def _project_copy(dest: Path, prefect_api: str) -> dict:
    """The working tree (tracked + untracked, not ignored) as its own git repo, with the tiny
    thesaurus as its dump; its stages report to the session's Prefect server."""
    copy_working_tree(dest)
    dump = dest / "data" / "unesco-thesaurus" / "unesco-thesaurus.ttl"
    dump.parent.mkdir(parents=True)
    shutil.copyfile(TINY, dump)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "MLFLOW_"))} | {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
        "PREFECT_HOME": str(dest / ".prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GX_ANALYTICS_ENABLED": "false", "PREFECT_API_URL": prefect_api}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "snapshot"]):
        subprocess.run(cmd, cwd=dest, env=env, check=True)
    return env


def _repro(dest: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", "repro", "data", "thesaurus"], cwd=dest, env=env,
                          capture_output=True, text=True)


def test_corrupt_dump_is_not_recorded_and_keeps_the_last_good_outputs(tmp_path, prefect_api):
    dest = tmp_path / "project"
    env = _project_copy(dest, prefect_api)
    good = _repro(dest, env)
    assert good.returncode == 0, good.stdout[-2000:] + good.stderr[-3000:]
    outputs = [dest / "dvc.lock", dest / "artifacts/thesaurus/concepts.parquet", dest / "metrics/thesaurus.json",
               dest / "reports/contracts/concepts/report.html"]
    before = {p: p.read_bytes() for p in outputs}

    dump = dest / "data" / "unesco-thesaurus" / "unesco-thesaurus.ttl"
    dump.write_text("<html><body>502 Bad Gateway</body></html>\n")   # what a broken download saves
    bad = _repro(dest, env)
    assert bad.returncode != 0 and "failed to reproduce 'data'" in bad.stderr
    assert "tagflow thesaurus check-dump: error:" in bad.stderr and "malformed turtle" in bad.stderr
    assert {p: p.read_bytes() for p in outputs} == before   # dvc.lock still names the good dump

    # `make restore-data`: the recorded dump comes back from the DVC cache
    restore = subprocess.run(["dvc", "checkout", "--force", "data/unesco-thesaurus/unesco-thesaurus.ttl"],
                             cwd=dest, env=env, capture_output=True, text=True)
    assert restore.returncode == 0, restore.stderr
    assert dump.read_bytes() == TINY.read_bytes()
    assert "up to date" in subprocess.run(["dvc", "status", "data", "thesaurus"], cwd=dest, env=env,
                                          capture_output=True, text=True).stdout


# A stage run as a `tagflow` command (the CLI's own interrupt handling), working until Ctrl-C.
COMMAND = """
import sys, time
from pathlib import Path
from flows.common import stage_flow
from tagflow.cli import cli, main
from tagflow.core import tracking

def work(cfg):
    with tracking.stage_run("faults", "interrupted", "smoke", {}):
        Path("interrupted.started").write_text("")
        while True:
            sum(i * i for i in range(10_000))

cli.command("interrupted")(lambda: stage_flow("fault-interrupted", work)(params=sys.argv[1]))
sys.exit(main(["interrupted"]))
"""


def test_ctrl_c_stops_the_stage_and_closes_its_runs(tmp_path, mlflow_db_template):
    """Ctrl-C as a terminal sends it: SIGINT to the whole process group, Prefect's ephemeral API
    server included. The stage ends with status 130, its MLflow run FAILED; the flow run, which
    the dead server could not record, is CRASHED by the next stage's start."""
    from mlflow.tracking import MlflowClient

    env = _env(tmp_path, "", mlflow_db_template)
    env.pop("PREFECT_API_URL")
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"   # a loaded machine
    proc = subprocess.Popen([sys.executable, "-c", COMMAND, str(ROOT / "params.yaml")], cwd=tmp_path, env=env,
                            stdout=(tmp_path / "interrupted.log").open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True,  # SIGINT not ignored, whatever the parent does
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_started(proc, tmp_path / "interrupted.started", tmp_path / "interrupted.log", timeout=240)
        sent = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(120)   # a guard against a hang, not a speed claim (README: measured)
        print(f"stage ended {time.monotonic() - sent:.1f} s after Ctrl-C")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    log = (tmp_path / "interrupted.log").read_text()
    assert code == 130 and "tagflow: interrupted" in log, log[-3000:]
    store = MlflowClient(env["MLFLOW_TRACKING_URI"])
    [run] = store.search_runs([store.get_experiment_by_name("faults").experiment_id])
    assert run.info.status == "FAILED"
