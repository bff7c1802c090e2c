"""MLflow run lifecycle and lineage, for every family.

What every run records besides params and metrics: the profile, the git commit and the DVC
hashes of the data and artifacts it was built from, so a registered version can be traced back to
exact inputs. A training stage opens a run (`stage_run`) and leaves its id beside its output
(`write_run_ref`); the evaluation and registration stages reopen that run (`resume_run`), so one
run holds training, evaluation and the registered model."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import subprocess
from pathlib import Path
from typing import Iterator

import yaml

from . import reaper

_MLFLOW_UNSAFE = re.compile(r"[^0-9A-Za-z_\-. :/]")   # what MLflow allows in param and tag names


def git_state() -> dict[str, str]:
    def git(*args):
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""
    commit = git("rev-parse", "HEAD") or "unknown"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"git_commit": commit, "git_dirty": str(dirty).lower()}


def dvc_hashes(lock_path: str | Path = "dvc.lock") -> dict[str, str]:
    """`dvc.<path>` -> md5 for every dependency and output recorded in dvc.lock (and data.dvc)."""
    hashes: dict[str, str] = {}
    lock = Path(lock_path)
    if lock.exists():
        for stage in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).values():
            for entry in stage.get("deps", []) + stage.get("outs", []):
                if "md5" in entry:
                    hashes[f"dvc.{entry['path']}"] = entry["md5"]
    for dvc_file in (p for p in Path(".").glob("*.dvc") if p.is_file()):
        for out in (yaml.safe_load(dvc_file.read_text()) or {}).get("outs", []):
            hashes[f"dvc.{out['path']}"] = out.get("md5", "")
    return hashes


def flatten(prefix: str, obj) -> dict[str, str]:
    """Nested params as MLflow param/tag names: dotted, with characters MLflow refuses in a name
    (e.g. the `@` of a backend variant, `embedding@multilingual`) replaced by `_`."""
    data = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj
    out = {}
    for key, value in data.items():
        name = f"{prefix}.{_MLFLOW_UNSAFE.sub('_', str(key))}" if prefix else _MLFLOW_UNSAFE.sub("_", str(key))
        if isinstance(value, dict):
            out |= flatten(name, value)
        else:
            out[name] = json.dumps(value) if isinstance(value, list) else str(value)
    return out


def code_version() -> dict[str, str]:
    """What a model card records about the code that built it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("tagflow")
    except PackageNotFoundError:
        package = "unknown"
    return {"tagflow_version": package, **git_state()}


def write_run_ref(path: str | Path, run_id: str, experiment: str) -> None:
    from .io import write_json

    write_json(path, {"run_id": run_id, "experiment": experiment})


def read_run_id(path: str | Path) -> str | None:
    """The run id a training stage left beside its output, None if there is none."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text()).get("run_id")
    except (ValueError, AttributeError):
        return None  # a damaged reference: evaluation opens a new run that says so


@contextlib.contextmanager
def stage_run(experiment: str, stage: str, profile: str, params: dict) -> Iterator[str]:
    """A run for one stage: FINISHED when the block completes, FAILED (and re-raised) when it
    does not, so an interrupted stage never leaves a run RUNNING."""
    import mlflow

    run_id = start_run(experiment, stage, profile, params)
    try:
        yield run_id
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run()


def start_run(experiment: str, stage: str, profile: str, params: dict) -> str:
    """Start (and leave active) a run; returns its id."""
    import mlflow

    from . import registry

    registry.setup(experiment)
    reap_dead_runs()
    run = mlflow.start_run(run_name=f"{stage}-{profile}")
    mlflow.set_tags({"profile": profile, "stage": stage, **git_state(), **reaper.owner()})
    mlflow.log_params(params)
    return run.info.run_id


def resume_run(experiment: str, run_id: str | None, profile: str):
    """Reopen the training run. If this store never saw it (artifacts restored from the DVC
    cache or a remote on another machine), open a new run that says so instead of failing."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from . import registry

    registry.setup(experiment)
    reap_dead_runs()
    if run_id:
        try:
            mlflow.get_run(run_id)
            run = mlflow.start_run(run_id=run_id)
            mlflow.set_tags(reaper.owner())  # this process owns the reopened run now
            return run
        except MlflowException:
            pass
    run = mlflow.start_run(run_name=f"restored-{profile}")
    mlflow.set_tags({"profile": profile, "restored_from_run": run_id or "unknown", **git_state(),
                     **reaper.owner()})
    return run


@contextlib.contextmanager
def evaluation_run(experiment: str, training_run_id: str | None, profile: str, params: dict,
                   ref_path: str | Path) -> Iterator[str]:
    """The run an evaluation logs into (its id), named in `ref_path` for the registration after it.

    Normally the training run, reopened. If the evaluation's own settings (`params`) changed since
    that run logged them (top_n, chunking, bootstrap draws...), MLflow refuses to change a logged
    parameter, so the evaluation gets a run of its own, tagged with the training run and the changed
    names. `params` are logged either way."""
    import mlflow

    run = resume_run(experiment, training_run_id, profile)
    run_id = run.info.run_id
    try:
        changed = changed_params(run.data.params, params)
        if changed:
            mlflow.end_run()
            run_id = start_run(experiment, "evaluate", profile, {})
            mlflow.set_tags({"training_run": training_run_id or "unknown",
                             "changed_params": ", ".join(changed)[:5000]})
        write_run_ref(ref_path, run_id, experiment)
        mlflow.log_params(params)
        yield run_id
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run()  # whichever run is active: the training run's context would not end its replacement


def changed_params(logged: dict[str, str], params: dict) -> list[str]:
    """Names of `params` that a run already holds (`logged`, as MLflow keeps them: strings) with
    another value."""
    return sorted(k for k, v in params.items() if k in logged and logged[k] != str(v))


def reap_dead_runs() -> None:
    """Close the RUNNING runs of killed processes (core.reaper) before a stage opens its own;
    a store that cannot be searched only costs a warning."""
    try:
        reaper.reap_mlflow()
    except Exception as exc:  # bookkeeping must not stop the stage
        reaper.log.warning("could not check for killed MLflow runs: %s: %s", type(exc).__name__, exc)
