"""The scheduled retrain: flows/retrain.py against tiny DVC projects, and its deployment from
infra/prefect.yaml through infra/prefect.sh, all against a real Prefect server on loopback."""
from __future__ import annotations

import json
import os
import re
import signal
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PREFECT_SH = ROOT / "infra" / "prefect.sh"
VENV_BIN = Path(sys.executable).parent
POOL = "tagflow-process"
DEPLOYMENT = "retrain/nightly"
DECISION = {"promoted": True, "version": "3", "reasons": ["f1_doc improved"]}

# `flows` is a top-level package of the repository, not of the installed library.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _offline_env(monkeypatch):
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process group we started; a Prefect worker wants a second signal."""
    for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            continue


class PrefectServer:
    def __init__(self, home: Path, db_template: Path, port: int, harness):
        self.home, self.harness = home, harness
        self.db = home / "prefect.db"
        self.db_template = db_template
        self.port = port
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.log = home / "server.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        base |= {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DVC_NO_ANALYTICS": "1",
            "PREFECT_PORT": str(self.port),
        }
        self.server_env = base | {"PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{self.db}"}
        # What a terminal running `infra/prefect.sh worker|deploy` would have.
        self.client_env = base | {"PREFECT_API_URL": self.api_url}

    def start(self) -> None:
        # Migrating a fresh database takes the server 15-30 s here; start from a copy of one
        # migrated earlier (the server still applies any migration the copy lacks).
        if self.db_template.exists():
            shutil.copyfile(self.db_template, self.db)
        self.process = self.harness([str(PREFECT_SH), "server"], self.log, env=self.server_env,
                                    name="prefect server")
        self.process.wait_for(f"{self.api_url}/health", timeout=60)
        self._save_db_template()

    def _save_db_template(self) -> None:
        if self.db_template.exists():
            return
        partial = self.db_template.with_suffix(".partial")
        # sqlite's backup API copies a consistent snapshot while the server keeps the file open.
        with sqlite3.connect(self.db) as src, sqlite3.connect(partial) as dst:
            src.backup(dst)
        os.replace(partial, self.db_template)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def script(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run infra/prefect.sh from elsewhere: it must find the project root by itself."""
        proc = subprocess.Popen(
            [str(PREFECT_SH), *args], env=self.client_env, cwd=self.home,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)  # the whole group: a worker's flow-run subprocess too
            raise
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _prefect_version() -> str:
    from importlib.metadata import version

    return version("prefect")


@pytest.fixture(scope="module")
def server(tmp_path_factory, request, free_port, server_process):
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    cache_dir = cache.mkdir("prefect-server-db") if cache else tmp_path_factory.mktemp("prefect-db")
    template = cache_dir / f"prefect-{_prefect_version()}.db"
    srv = PrefectServer(tmp_path_factory.mktemp("prefect-home"), template, free_port(), server_process)
    srv.start()
    try:
        yield srv
    finally:
        srv.process.stop()


@pytest.fixture(scope="module")
def deployed(server):
    result = server.script("deploy")
    assert result.returncode == 0, f"infra/prefect.sh deploy failed:\n{result.stdout}\n{result.stderr}"
    return server


@pytest.fixture
def prefect_client_settings(server):
    """Point in-process flow runs and clients at the test server."""
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    with temporary_settings({PREFECT_API_URL: server.api_url, PREFECT_HOME: server.home}):
        yield
        # Send the runs' buffered logs while the server still listens.
        APILogWorker.drain_all(timeout=5)


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def run_logs(flow_run_id) -> list[str]:
    """The messages a flow run logged, as the Prefect server stored them."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # in-process runs send their logs in the background
    with _client() as client:
        logs = client.read_logs(
            LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), sort=LogSort.TIMESTAMP_ASC
        )
    return [log.message for log in logs]


def retrain_with_logs(project: Path) -> tuple[dict | None, list[str]]:
    from flows.retrain import retrain

    state = retrain(project_dir=str(project), return_state=True)
    return state.result(), run_logs(state.state_details.flow_run_id)


def _dvc(project: Path, *args: str) -> str:
    result = subprocess.run([str(VENV_BIN / "dvc"), *args], cwd=project, capture_output=True, text=True)
    assert result.returncode == 0, f"dvc {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def make_project(path: Path, cmd: str | None = None, decision: dict | None = DECISION) -> Path:
    """A one-stage DVC project whose stage writes out.txt and (like the real pipeline's last
    stage) reports/registry.json."""
    path.mkdir(parents=True, exist_ok=True)
    _dvc(path, "init", "--no-scm", "-q")
    if cmd is None:
        cmd = "echo hi > out.txt"
        if decision is not None:
            cmd += f" && mkdir -p reports && echo '{json.dumps(decision)}' > reports/registry.json"
    outs: list = ["out.txt"]
    if decision is not None:
        outs.append({"reports/registry.json": {"cache": False}})
    (path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"hello": {"cmd": cmd, "outs": outs}}}))
    return path


def forget_outputs(project: Path) -> None:
    """Lose the stage's output and DVC's cache, as on a fresh checkout."""
    shutil.rmtree(project / ".dvc" / "cache")
    (project / "out.txt").unlink()


# --- the flow itself, run in-process -------------------------------------------------------

def test_retrain_runs_the_pipeline_and_returns_the_decision(tmp_path, prefect_client_settings):
    project = make_project(tmp_path / "proj")
    decision, messages = retrain_with_logs(project)
    assert decision == DECISION
    assert (project / "out.txt").read_text() == "hi\n"
    assert any("No default DVC remote configured: skipping dvc pull" in m for m in messages)
    assert any("No default DVC remote configured: skipping dvc push" in m for m in messages)
    # dvc repro's own output reached the Prefect logger
    assert "Running stage 'hello':" in messages


def test_failing_stage_fails_the_flow_with_the_stage_error(tmp_path, prefect_client_settings):
    from flows.retrain import retrain

    # printf assembles the message, so it is the stage's stderr, not DVC echoing the command
    project = make_project(tmp_path / "proj", cmd="printf 'boom: %s\\n' 'the corpus is empty' >&2; exit 3")
    with pytest.raises(RuntimeError, match="boom: the corpus is empty") as info:
        retrain(project_dir=str(project))
    assert re.search(r"dvc repro failed \(exit \d+\)", str(info.value))
    assert "failed to reproduce 'hello'" in str(info.value)


def test_missing_registry_decision_is_an_error_naming_the_file(tmp_path, prefect_client_settings):
    from flows.retrain import retrain

    project = make_project(tmp_path / "proj", decision=None)
    with pytest.raises(FileNotFoundError, match=r"reports/registry\.json not found"):
        retrain(project_dir=str(project))


def test_remote_without_the_data_is_skipped_then_filled_by_push(tmp_path, prefect_client_settings):
    project = make_project(tmp_path / "proj")
    _dvc(project, "repro")  # dvc.lock now names out.txt, which no remote holds
    remote = tmp_path / "remote"
    remote.mkdir()
    _dvc(project, "remote", "add", "-d", "store", str(remote))
    forget_outputs(project)

    decision, messages = retrain_with_logs(project)
    assert decision == DECISION
    assert any("DVC remote 'store' does not hold all the data" in m for m in messages)
    assert any("dvc push to 'store': 1 file pushed" in m for m in messages)
    assert [p.name for p in remote.rglob("*") if p.is_file()], "push left the remote empty"

    # The next run gets the data back from the remote instead of rebuilding it.
    forget_outputs(project)
    decision, messages = retrain_with_logs(project)
    assert decision == DECISION
    assert any(m.startswith("dvc pull from 'store'") for m in messages)
    assert not any(m.startswith("Running stage") for m in messages), "repro reran a stage pull restored"
    assert (project / "out.txt").read_text() == "hi\n"


# --- the deployment, through infra/prefect.sh ---------------------------------------------

def test_deploy_registers_the_nightly_schedule_on_the_process_pool(deployed, prefect_client_settings):
    with _client() as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        pool = client.read_work_pool(POOL)
    assert pool.type == "process"
    assert deployment.work_pool_name == POOL
    assert deployment.entrypoint == "flows/retrain.py:retrain"
    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in deployment.schedules] == [
        ("0 3 * * *", "UTC", True)
    ]
    # The working directory is resolved when deploying, although prefect.yaml holds no path.
    [step] = deployment.pull_steps
    directory = step["prefect.deployments.steps.set_working_directory"]["directory"]
    assert Path(directory).resolve() == ROOT
    assert str(ROOT) not in (ROOT / "infra" / "prefect.yaml").read_text()


def scheduler_failed(server: PrefectServer) -> bool:
    lines = server.log.read_text(errors="replace").splitlines()
    return any("ERROR" in line and "schedul" in line for line in lines)


def test_server_schedules_the_next_nightly_run(deployed, prefect_client_settings):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with _client() as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        only_nightly = DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
        deadline = time.monotonic() + 20
        runs = []
        while time.monotonic() < deadline and not runs:
            runs = [r for r in client.read_flow_runs(deployment_filter=only_nightly) if r.auto_scheduled]
            if not runs and scheduler_failed(deployed):
                break  # no need to wait out the deadline
            time.sleep(0.5)
    assert runs, f"no scheduled run of {DEPLOYMENT}; server log:\n{deployed.log_tail(12)}"
    start = min(r.expected_start_time for r in runs)
    assert (start.hour, start.minute, start.utcoffset().total_seconds()) == (3, 0, 0)


def test_worker_runs_the_deployment(deployed, prefect_client_settings, tmp_path):
    project = make_project(tmp_path / "proj")
    with _client() as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        run = client.create_flow_run_from_deployment(deployment.id, parameters={"project_dir": str(project)})

    worker = deployed.script("worker", "--run-once", timeout=120)
    assert worker.returncode == 0, f"worker failed:\n{worker.stdout}\n{worker.stderr}"

    with _client() as client:
        state = client.read_flow_run(run.id).state
    assert state.is_completed(), f"flow run ended {state.name}: {state.message}\n{worker.stdout[-3000:]}"
    assert (project / "out.txt").read_text() == "hi\n"
    messages = run_logs(run.id)
    assert "Running stage 'hello':" in messages
    assert any("Model version 3 promoted" in m for m in messages)
