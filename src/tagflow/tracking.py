"""What every MLflow run records besides params and metrics: the profile, the git commit and the
DVC hashes of the data and artifacts it was built from, so a registered version can be traced
back to exact inputs."""
from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import yaml


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
    data = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj
    out = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out |= flatten(name, value)
        else:
            out[name] = json.dumps(value) if isinstance(value, list) else str(value)
    return out


def start_run(experiment: str, stage: str, profile: str, params: dict) -> str:
    """Start (and leave active) a run; returns its id."""
    import mlflow

    from . import registry

    registry.setup(experiment)
    run = mlflow.start_run(run_name=f"{stage}-{profile}")
    mlflow.set_tags({"profile": profile, "stage": stage, **git_state()})
    mlflow.log_params(params)
    return run.info.run_id


def resume_run(experiment: str, run_id: str | None, profile: str):
    """Reopen the training run. If this store never saw it (artifacts restored from the DVC
    cache or a remote on another machine), open a new run that says so instead of failing."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from . import registry

    registry.setup(experiment)
    if run_id:
        try:
            mlflow.get_run(run_id)
            return mlflow.start_run(run_id=run_id)
        except MlflowException:
            pass
    run = mlflow.start_run(run_name=f"restored-{profile}")
    mlflow.set_tags({"profile": profile, "restored_from_run": run_id or "unknown", **git_state()})
    return run
