"""Faults that lose nothing (issue 11): a killed stage's MLflow run and Prefect flow run are
closed on the next start while a live one is left alone; a dump that fails its check is never
recorded by `dvc repro` and never replaces the last good concept table; a contract failure writes
no table. Real processes (SIGKILL), a real Prefect server and sqlite MLflow store, real DVC."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def _env(tmp: Path, api_url: str) -> dict:
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


@pytest.fixture
def prefect_server(tmp_path, free_port, server_process):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "PREFECT_HOME": str(tmp_path / "prefect-server"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path}/prefect.db"}
    server = server_process([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], tmp_path / "server.log", env=env)
    try:
        server.wait_for(f"http://127.0.0.1:{port}/api/health", timeout=90)
        yield f"http://127.0.0.1:{port}/api"
    finally:
        server.stop()


def test_killed_runs_are_closed_on_next_start_and_live_runs_are_not(tmp_path, prefect_server):
    from mlflow.tracking import MlflowClient
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    env = _env(tmp_path, prefect_server)
    store = MlflowClient(env["MLFLOW_TRACKING_URI"])
    store.create_experiment("faults")   # the store exists before two processes open it at once
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

        with temporary_settings({PREFECT_API_URL: prefect_server}), get_client(sync_client=True) as client:
            states = {client.read_flow(r.flow_id).name: r.state for r in client.read_flow_runs()}
        assert states["fault-killed"].type.value == "CRASHED"
        assert f"process {killed.pid}" in states["fault-killed"].message
        assert states["fault-live"].type.value == "RUNNING"
        assert states["fault-quick"].type.value == "COMPLETED"
    finally:
        for proc in (killed, live):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
