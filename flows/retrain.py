"""Scheduled retrain: fetch the data, rerun the DVC pipeline, publish it, report the registry decision.

The pipeline itself is `dvc repro` (each stage is a `tagflow <step>` command); this flow only wraps
it so a Prefect schedule can run it, retry the network steps and keep the logs:

    dvc pull  ->  dvc repro [targets] [--force]  ->  dvc push  ->  read reports/registry.json

Pull and push are skipped (with a log line) when the project has no default DVC remote; a pull
that finds the remote without some of the data is not an error either, since `dvc repro`
rebuilds whatever is missing.

Run it on a schedule (three terminals, each from the project root):

    infra/prefect.sh server   # 1. Prefect API + UI on http://127.0.0.1:4200 (PREFECT_PORT to change)
    infra/prefect.sh worker   # 2. creates the `tagflow-process` work pool if needed, runs its flow runs
    infra/prefect.sh deploy   # 3. registers `retrain/nightly` from infra/prefect.yaml (03:00 UTC daily)
    infra/prefect.sh run      #    optional: start a run of retrain/nightly now instead of waiting

The worker runs each flow run in a subprocess inside the project root (the deployment's pull
step), so code and data are the ones checked out there. Stop the worker with Ctrl-C twice.

Run it once, locally, without a server (Prefect starts a temporary one):

    .venv/bin/python -m flows.retrain [--force] [--target STAGE ...]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import deque
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The venv's bin directory, deliberately not resolved: resolving the python symlink would lead
# out of the venv to the base interpreter, where neither `dvc` nor `tagflow` is installed.
VENV_BIN = Path(sys.executable).parent
REGISTRY_DECISION = Path("reports/registry.json")
DECISION_KEYS = {"promoted", "version", "reasons"}
# What DVC says when dvc.lock names data the remote does not hold (a first run, a fresh remote).
MISSING_DATA_MARKERS = ("Checkout failed", "Missing cache files", "No file hash info")
ERROR_TAIL_LINES = 25


def _dvc_executable() -> str:
    candidate = VENV_BIN / "dvc"
    found = str(candidate) if candidate.exists() else shutil.which("dvc")
    if found is None:
        raise FileNotFoundError(f"dvc not found in {VENV_BIN} nor on PATH: install the project's environment")
    return found


def _subprocess_env() -> dict[str, str]:
    # Stage commands call `tagflow ...`: it must resolve to this venv even when the worker was
    # started without activating it.
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DVC_NO_ANALYTICS", "1")
    return env


def _dvc(project_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_dvc_executable(), *args], cwd=project_dir, env=_subprocess_env(), capture_output=True, text=True
    )


def _tail(text: str, lines: int = ERROR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def default_remote(project_dir: Path) -> str | None:
    """Name of the project's default DVC remote, or None when there is none."""
    result = _dvc(project_dir, "remote", "default")
    name = result.stdout.strip()
    return name if result.returncode == 0 and name else None


@task(retries=1, retry_delay_seconds=10, cache_policy=NO_CACHE)
def dvc_pull(project_dir: Path, remote: str | None) -> bool:
    """Fetch the pipeline's data from the remote. True when everything was fetched."""
    logger = get_run_logger()
    if remote is None:
        logger.info("No default DVC remote configured: skipping dvc pull")
        return False
    result = _dvc(project_dir, "pull")
    output = result.stdout + result.stderr
    if result.returncode == 0:
        logger.info("dvc pull from %r: %s", remote, _tail(result.stdout, 1) or "done")
        return True
    if any(marker in output for marker in MISSING_DATA_MARKERS):
        logger.warning(
            "DVC remote %r does not hold all the data dvc.lock names; dvc repro will rebuild it:\n%s",
            remote, _tail(output, 5),
        )
        return False
    raise RuntimeError(f"dvc pull from remote {remote!r} failed (exit {result.returncode}):\n{_tail(output)}")


@task(cache_policy=NO_CACHE)
def dvc_repro(project_dir: Path, targets: list[str] | None, force: bool) -> None:
    """Run the pipeline, streaming its output to the Prefect logger line by line."""
    logger = get_run_logger()
    args = ["repro", *(["--force"] if force else []), *(targets or [])]
    logger.info("Running dvc %s in %s", " ".join(args), project_dir)
    recent: deque[str] = deque(maxlen=ERROR_TAIL_LINES)
    with subprocess.Popen(
        [_dvc_executable(), *args], cwd=project_dir, env=_subprocess_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
    ) as proc:
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                recent.append(line)
                logger.info(line)
    if proc.returncode != 0:
        # The tail holds the failing stage's own stderr and DVC's "failed to reproduce" line.
        raise RuntimeError(f"dvc repro failed (exit {proc.returncode}):\n" + "\n".join(recent))


@task(retries=1, retry_delay_seconds=10, cache_policy=NO_CACHE)
def dvc_push(project_dir: Path, remote: str | None) -> bool:
    """Send the new outputs to the remote. False when there is no remote to push to."""
    logger = get_run_logger()
    if remote is None:
        logger.info("No default DVC remote configured: skipping dvc push")
        return False
    result = _dvc(project_dir, "push")
    if result.returncode != 0:
        output = result.stdout + result.stderr
        raise RuntimeError(f"dvc push to remote {remote!r} failed (exit {result.returncode}):\n{_tail(output)}")
    logger.info("dvc push to %r: %s", remote, _tail(result.stdout, 1) or "done")
    return True


@task(cache_policy=NO_CACHE)
def read_registry_decision(project_dir: Path, required: bool = True) -> dict | None:
    """The registry stage's decision {"promoted", "version", "reasons"}, logged and returned."""
    logger = get_run_logger()
    path = project_dir / REGISTRY_DECISION
    if not path.exists():
        if required:
            raise FileNotFoundError(
                f"{path} not found: the pipeline's last stage writes the registry decision there"
            )
        logger.info("No registry decision at %s (the targets stop before the registry stage)", path)
        return None
    try:
        decision = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg})") from exc
    missing = DECISION_KEYS - decision.keys() if isinstance(decision, dict) else DECISION_KEYS
    if missing:
        raise ValueError(f"{path}: registry decision lacks {sorted(missing)}")
    if decision["promoted"]:
        logger.info("Model version %s promoted: %s", decision["version"], "; ".join(decision["reasons"]) or "-")
    else:
        logger.warning("Model version %s NOT promoted: %s", decision["version"], "; ".join(decision["reasons"]) or "-")
    return decision


@flow(name="retrain")
def retrain(targets: list[str] | None = None, force: bool = False, project_dir: str | None = None) -> dict | None:
    """Pull data, `dvc repro` (optionally only `targets`, `force` to rerun up-to-date stages),
    push, and return the registry decision (None only when `targets` skip the registry stage)."""
    root = Path(project_dir).resolve() if project_dir else PROJECT_ROOT
    if not (root / "dvc.yaml").exists():
        raise FileNotFoundError(f"{root} has no dvc.yaml: project_dir must be the root of a DVC project")
    remote = default_remote(root)
    dvc_pull(root, remote)
    dvc_repro(root, targets, force)
    dvc_push(root, remote)
    return read_registry_decision(root, required=not targets)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.retrain", description=retrain.__doc__)
    parser.add_argument("--target", action="append", dest="targets", metavar="STAGE", help="a DVC stage to reproduce (repeatable)")
    parser.add_argument("--force", action="store_true", help="rerun stages even when up to date")
    parser.add_argument("--project-dir", help=f"DVC project root (default: {PROJECT_ROOT})")
    args = parser.parse_args(argv)
    decision = retrain(targets=args.targets, force=args.force, project_dir=args.project_dir)
    print(json.dumps(decision, indent=2))


if __name__ == "__main__":
    main()
