"""The scheduled retrains: flows/retrain.py against tiny DVC projects, and the deployments of every
family (`tagflow deploy`, through infra/prefect.sh) on a process work pool, a worker running one,
all against a real Prefect server on loopback. The tiny projects' register stage is a shell line
writing a registry report: the real register stages are tested with their families."""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.prefect_db import save_prefect_db, seed_prefect_db

ROOT = Path(__file__).resolve().parents[2]
PREFECT_SH = ROOT / "infra" / "prefect.sh"
VENV_BIN = Path(sys.executable).parent
POOL = "tagflow-process"
FAMILIES = ("tagger", "preference", "topics", "edu")
DECISION = {"promoted": True, "version": "3", "reasons": ["micro-F1 0.88 >= target 0.85"],
            "model_name": "reuters-topics"}
SUMMARY = "promoted reuters-topics v3 (micro-F1 0.88 >= target 0.85)"
REPORT = "reports/topics_registry.json"

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
        seed_prefect_db(self.db, self.db_template)   # a migrated copy (conftest)
        self.process = self.harness([str(PREFECT_SH), "server"], self.log, env=self.server_env,
                                    name="prefect server")
        try:
            self.process.wait_for(f"{self.api_url}/health", timeout=300)   # a loaded machine
        except BaseException:   # pytest.fail: the fixture's teardown never runs, stop it here
            self.process.stop()
            raise
        save_prefect_db(self.db, self.db_template)

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


@pytest.fixture(scope="module")
def server(tmp_path_factory, free_port, server_process, prefect_db_template):
    srv = PrefectServer(tmp_path_factory.mktemp("prefect-home"), prefect_db_template, free_port(), server_process)
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


def retrain_with_logs(project: Path, family: str = "topics"):
    """(decisions by report, the run's logs, its final state)."""
    from flows.retrain import retrain

    state = retrain(family=family, project_dir=str(project), return_state=True)
    return state.result(), run_logs(state.state_details.flow_run_id), state


def decision_artifacts(flow_run_id) -> list:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with _client() as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))


def _dvc(project: Path, *args: str) -> str:
    result = subprocess.run([str(VENV_BIN / "dvc"), *args], cwd=project, capture_output=True, text=True)
    assert result.returncode == 0, f"dvc {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def make_project(path: Path, cmd: str | None = None, decision: dict | None = DECISION,
                 stage: str = "topics_register", report: str = REPORT) -> Path:
    """A DVC project whose `stage` writes out.txt and (like the family's register stage) its
    registry report; an unrelated stage `other` must not run when one family retrains."""
    path.mkdir(parents=True, exist_ok=True)
    _dvc(path, "init", "--no-scm", "-q")
    if cmd is None:
        cmd = "echo hi > out.txt"
        if decision is not None:
            cmd += f" && mkdir -p reports && echo {shlex.quote(json.dumps(decision))} > {report}"
    outs: list = ["out.txt"]
    if decision is not None:
        outs.append({report: {"cache": False}})
    stages = {stage: {"cmd": cmd, "outs": outs}, "other": {"cmd": "echo x > other.txt", "outs": ["other.txt"]}}
    (path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    return path


def forget_outputs(project: Path) -> None:
    """Lose the stage's output and DVC's cache, as on a fresh checkout."""
    shutil.rmtree(project / ".dvc" / "cache")
    (project / "out.txt").unlink()


# --- the flow itself, run in-process -------------------------------------------------------

def test_retrain_runs_the_family_stage_and_shows_the_decision(tmp_path, prefect_client_settings):
    project = make_project(tmp_path / "proj")
    decisions, messages, state = retrain_with_logs(project)
    assert decisions == {REPORT: DECISION}
    assert (project / "out.txt").read_text() == "hi\n"
    assert not (project / "other.txt").exists(), "a topics retrain ran another family's stage"
    assert any("No default DVC remote configured: skipping dvc pull" in m for m in messages)
    assert any("No default DVC remote configured: skipping dvc push" in m for m in messages)
    assert "Running stage 'topics_register':" in messages   # dvc repro's output reached Prefect
    # The decision, where the UI shows it: the final state's message and a keyed Markdown artifact.
    assert state.is_completed() and state.message == SUMMARY
    [artifact] = decision_artifacts(state.state_details.flow_run_id)
    assert artifact.key == "retrain-topics-decision" and artifact.type == "markdown"
    assert f"- {SUMMARY}" in artifact.data and REPORT in artifact.data


def test_a_rejection_and_per_setup_reports_read_as_such(tmp_path, prefect_client_settings):
    edu = {"decisions": {
        "en": {"promoted": False, "version": "2", "model_name": "fineweb-edu-en",
               "reasons": ["val/spearman_within 0.170 < target 0.300"]},
        "multilingual": {"promoted": True, "version": "4", "model_name": "fineweb-edu-multilingual",
                         "reasons": ["val/spearman_within 0.351 >= champion v1's 0.342"]}}}
    project = make_project(tmp_path / "proj", decision=edu, stage="edu_register", report="reports/edu_registry.json")
    _, messages, state = retrain_with_logs(project, family="edu")
    assert state.message == ("en: rejected fineweb-edu-en v2: val/spearman_within 0.170 < target 0.300 | "
                             "multilingual: promoted fineweb-edu-multilingual v4 "
                             "(val/spearman_within 0.351 >= champion v1's 0.342)")
    assert state.is_completed(), "a rejected challenger is a decision, not a failed retrain"


def test_failing_stage_fails_the_flow_with_the_stage_error(tmp_path, prefect_client_settings):
    from flows.retrain import retrain

    # printf assembles the message, so it is the stage's stderr, not DVC echoing the command
    project = make_project(tmp_path / "proj", cmd="printf 'boom: %s\\n' 'the corpus is empty' >&2; exit 3")
    with pytest.raises(RuntimeError, match="boom: the corpus is empty") as info:
        retrain(family="topics", project_dir=str(project))
    assert re.search(r"dvc repro failed \(exit \d+\)", str(info.value))
    assert "failed to reproduce 'topics_register'" in str(info.value)


def test_missing_registry_decision_is_an_error_naming_the_file(tmp_path, prefect_client_settings):
    from flows.retrain import retrain
    from tagflow.core.errors import DataError

    project = make_project(tmp_path / "proj", decision=None)
    with pytest.raises(DataError, match=r"reports/topics_registry\.json not found"):
        retrain(family="topics", project_dir=str(project))


def test_unknown_family_is_refused_before_anything_runs(tmp_path, prefect_client_settings):
    from flows.retrain import retrain
    from tagflow.core.errors import ConfigError

    project = make_project(tmp_path / "proj")
    with pytest.raises(ConfigError, match=r"unknown model family 'topic'; known: \['all', 'edu',"):
        retrain(family="topic", project_dir=str(project))
    assert not (project / "out.txt").exists()


def test_remote_without_the_data_is_skipped_then_filled_by_push(tmp_path, prefect_client_settings):
    project = make_project(tmp_path / "proj")
    _dvc(project, "repro", "topics_register")  # dvc.lock now names out.txt, which no remote holds
    remote = tmp_path / "remote"
    remote.mkdir()
    _dvc(project, "remote", "add", "-d", "store", str(remote))
    forget_outputs(project)

    decisions, messages, _ = retrain_with_logs(project)
    assert decisions == {REPORT: DECISION}
    assert any("DVC remote 'store' does not hold all the data" in m for m in messages)
    assert any("dvc push to 'store': 1 file pushed" in m for m in messages)
    assert [p.name for p in remote.rglob("*") if p.is_file()], "push left the remote empty"

    # The next run gets the data back from the remote instead of rebuilding it, and says that the
    # decision it shows is the last one, not a new one.
    forget_outputs(project)
    decisions, messages, state = retrain_with_logs(project)
    assert decisions == {REPORT: DECISION | {"up_to_date": True}}
    assert state.message == f"up to date, last decision: {SUMMARY}"
    assert any(m.startswith("dvc pull from 'store'") for m in messages)
    assert not any(m.startswith("Running stage") for m in messages), "repro reran a stage pull restored"
    assert (project / "out.txt").read_text() == "hi\n"


# --- the deployments: `tagflow deploy` through infra/prefect.sh --------------------------------

def _deployments(client) -> dict:
    return {f: client.read_deployment_by_name(f"retrain/{f}") for f in FAMILIES}


def test_deploy_declares_every_family_on_the_process_pool(deployed, prefect_client_settings):
    from tagflow.config import load_config

    crons = load_config(ROOT / "params.yaml").deploy.schedules
    with _client() as client:
        deployments = _deployments(client)
        pool = client.read_work_pool(POOL)
    assert pool.type == "process"
    for family, deployment in deployments.items():
        assert deployment.work_pool_name == POOL
        assert deployment.entrypoint == "flows/retrain.py:retrain"
        assert deployment.parameters == {"family": family}
        assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in deployment.schedules] == [
            (getattr(crons, family).cron, "UTC", getattr(crons, family).active)], family
        # The flow runs in this checkout, resolved when deploying: no path is written in the repo.
        [step] = deployment.pull_steps
        assert Path(step["prefect.deployments.steps.set_working_directory"]["directory"]) == ROOT


def _tagflow_deploy(server: PrefectServer, params: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "tagflow"), "--params", str(params), "deploy"], cwd=ROOT,
                          env=server.client_env, capture_output=True, text=True, timeout=120)


def test_redeploy_takes_schedules_from_params_and_the_server_schedules_runs(deployed, prefect_client_settings, tmp_path):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["deploy"]["schedules"]["topics"] = {"cron": "15 5 * * *", "active": True}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = _tagflow_deploy(deployed, tmp_path / "params.yaml")
    assert result.returncode == 0, result.stderr
    assert "deployed retrain/topics: cron '15 5 * * *' UTC, active" in result.stdout

    with _client() as client:
        deployments = _deployments(client)
        topics = deployments["topics"]
        # Updated in place: one schedule each, not one more per deploy.
        assert {f: len(d.schedules) for f, d in deployments.items()} == dict.fromkeys(FAMILIES, 1)
        assert [(s.schedule.cron, s.active) for s in topics.schedules] == [("15 5 * * *", True)]
        only_topics = DeploymentFilter(id=DeploymentFilterId(any_=[topics.id]))
        deadline = time.monotonic() + 20
        runs = []
        while time.monotonic() < deadline and not runs:
            runs = [r for r in client.read_flow_runs(deployment_filter=only_topics) if r.auto_scheduled]
            if not runs and scheduler_failed(deployed):
                break  # no need to wait out the deadline
            time.sleep(0.5)
        paused = [r for f, d in deployments.items() if f != "topics" for r in client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[d.id]))) if r.auto_scheduled]
    assert runs, f"no scheduled run of retrain/topics; server log:\n{deployed.log_tail(12)}"
    start = min(r.expected_start_time for r in runs)
    assert (start.hour, start.minute, start.utcoffset().total_seconds()) == (5, 15, 0)
    assert not paused, "a paused schedule produced runs"


def test_deploy_refuses_a_bad_cron_in_one_line(deployed, tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["deploy"]["schedules"]["edu"]["cron"] = "61 * * * *"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = _tagflow_deploy(deployed, tmp_path / "params.yaml")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "deploy.schedules.edu" in line and "Invalid cron string" in line


def scheduler_failed(server: PrefectServer) -> bool:
    lines = server.log.read_text(errors="replace").splitlines()
    return any("ERROR" in line and "schedul" in line for line in lines)


def test_worker_runs_a_family_deployment_and_records_the_decision(deployed, prefect_client_settings, tmp_path):
    project = make_project(tmp_path / "proj")
    with _client() as client:
        deployment = client.read_deployment_by_name("retrain/topics")
        run = client.create_flow_run_from_deployment(deployment.id, parameters={"project_dir": str(project)})

    worker = deployed.script("worker", "--run-once", timeout=120)
    assert worker.returncode == 0, f"worker failed:\n{worker.stdout}\n{worker.stderr}"

    with _client() as client:
        flow_run = client.read_flow_run(run.id)
    state = flow_run.state
    assert state.is_completed(), f"flow run ended {state.name}: {state.message}\n{worker.stdout[-3000:]}"
    assert flow_run.parameters == {"family": "topics", "project_dir": str(project)}
    assert state.message == SUMMARY
    assert (project / "out.txt").read_text() == "hi\n"
    assert "Running stage 'topics_register':" in run_logs(run.id)
    [artifact] = decision_artifacts(run.id)
    assert artifact.key == "retrain-topics-decision" and SUMMARY in artifact.data
