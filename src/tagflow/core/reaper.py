"""Runs whose process was killed (SIGKILL, OOM killer, power loss) never close themselves: MLflow
keeps them RUNNING and Prefect keeps their flow runs RUNNING, forever. Every run tagflow starts
records its owner (host, pid and the process's start time, so a recycled pid is not mistaken for
the owner); every stage start then closes the runs whose owner is gone: MLflow runs FAILED,
Prefect flow runs (and their task runs) CRASHED, each with a note saying why.

Runs of live processes are left alone, and so are runs owned by another host (this host cannot
see its processes) or without owner tags (started by something other than tagflow)."""
from __future__ import annotations

import os
import socket
import time

from .log import get_logger

log = get_logger("reaper")

PID, HOST, STARTED = "tagflow.pid", "tagflow.host", "tagflow.started"
REAPED = "tagflow.reaped"
PREFECT_TAG = "tagflow"  # every stage flow run carries it, beside pid:/host:/started: tags


def _started(pid: int) -> str:
    import psutil

    return f"{psutil.Process(pid).create_time():.2f}"


def owner(pid: int | None = None) -> dict[str, str]:
    """Who owns a run started now: {tagflow.host, tagflow.pid, tagflow.started}."""
    pid = pid or os.getpid()
    return {HOST: socket.gethostname(), PID: str(pid), STARTED: _started(pid)}


def gone(tags: dict[str, str]) -> str | None:
    """Why the owner named by `tags` is known to be dead, or None (alive, or cannot tell)."""
    import psutil

    if tags.get(HOST) != socket.gethostname() or not str(tags.get(PID, "")).isdigit():
        return None
    pid = int(tags[PID])
    try:
        if _started(pid) == tags.get(STARTED):
            return None
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return f"its process {pid} on {tags[HOST]} is gone"
    except psutil.AccessDenied:
        return None
    return f"its process {pid} on {tags[HOST]} is gone (that pid now belongs to another process)"


def _note(reason: str) -> str:
    return (f"{reason}: killed before it could close its run; marked by tagflow process "
            f"{os.getpid()} at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}")


def reap_mlflow(client=None) -> list[str]:
    """Mark RUNNING MLflow runs of dead owners FAILED (store: the current tracking URI).
    Returns their ids."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
    reaped = []
    if not experiments:
        return reaped
    for run in client.search_runs(experiments, "attributes.status = 'RUNNING'", max_results=1000):
        reason = gone(run.data.tags)
        if reason:
            client.set_tag(run.info.run_id, REAPED, _note(reason))
            client.set_terminated(run.info.run_id, status="FAILED")
            log.warning("MLflow run %s (%s) marked FAILED: %s", run.info.run_id,
                        run.info.run_name, reason)
            reaped.append(run.info.run_id)
    return reaped


def prefect_tags(pid: int | None = None) -> list[str]:
    """Owner tags for a Prefect flow run (Prefect tags are plain strings)."""
    return [PREFECT_TAG] + [f"{k.split('.')[1]}:{v}" for k, v in owner(pid).items()]


def _from_prefect_tags(tags: list[str]) -> dict[str, str]:
    found = dict(t.split(":", 1) for t in tags if ":" in t)
    return {f"tagflow.{k}": v for k, v in found.items() if k in ("pid", "host", "started")}


def reap_prefect(client) -> list[str]:
    """Set RUNNING tagflow flow runs of dead owners (and their RUNNING task runs) CRASHED.
    `client`: a synchronous Prefect client. Returns the flow run ids."""
    from prefect.client.schemas.filters import (FlowRunFilter, FlowRunFilterState,
                                                FlowRunFilterStateType, FlowRunFilterTags,
                                                TaskRunFilter, TaskRunFilterFlowRunId,
                                                TaskRunFilterState, TaskRunFilterStateType)
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    running = client.read_flow_runs(flow_run_filter=FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING])),
        tags=FlowRunFilterTags(all_=[PREFECT_TAG])))
    reaped = []
    for run in running:
        reason = gone(_from_prefect_tags(run.tags))
        if not reason:
            continue
        tasks = client.read_task_runs(task_run_filter=TaskRunFilter(
            flow_run_id=TaskRunFilterFlowRunId(any_=[run.id]),
            state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType.RUNNING]))))
        for task_run in tasks:
            client.set_task_run_state(task_run.id, Crashed(message=_note(reason)), force=True)
        client.set_flow_run_state(run.id, Crashed(message=_note(reason)), force=True)
        log.warning("Prefect flow run %s (%s) marked CRASHED: %s", run.id, run.name, reason)
        reaped.append(str(run.id))
    return reaped


def claim_and_reap_flow_run() -> None:
    """Inside a stage flow: tag the current flow run with its owner, then crash the flow runs of
    dead owners. Never fails the stage: bookkeeping problems are logged."""
    from prefect.client.orchestration import get_client
    from prefect.context import get_run_context

    try:
        run = get_run_context().flow_run
        with get_client(sync_client=True) as client:
            client.update_flow_run(run.id, tags=sorted(set(run.tags) | set(prefect_tags())))
            reap_prefect(client)
    except Exception as exc:  # the stage's work matters more than the bookkeeping
        log.warning("could not check for crashed Prefect flow runs: %s: %s", type(exc).__name__, exc)
