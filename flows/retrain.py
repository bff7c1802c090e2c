"""Scheduled retrain of one model family: fetch the data, rerun its part of the DVC pipeline,
publish it, show the registry decision.

The pipeline itself is `dvc repro` (each stage is a `tagflow <step>` command); this flow only wraps
it so a Prefect schedule can run it, retry the network steps and keep the logs:

    dvc pull  ->  dvc repro <family's register stage> [--force]  ->  dvc push  ->  registry decision

The families and their stages are in tagflow.retrain (tagger, preference, topics, edu, all). The
decision ends up in the Prefect UI twice: as the flow run's final state message ("promoted
tagflow-tagger v3 (...)" / "rejected ...") and as a Markdown artifact keyed
`retrain-<family>-decision`, whose history lists every run's decision.

Pull and push are skipped (with a log line) when the project has no default DVC remote; a pull
that finds the remote without some of the data is not an error either, since `dvc repro`
rebuilds whatever is missing.

Run it on a schedule (three terminals, each from the project root; README "Scheduled retraining"):

    infra/prefect.sh server   # 1. Prefect API + UI on http://127.0.0.1:4200 (PREFECT_PORT to change)
    infra/prefect.sh worker   # 2. creates the `tagflow-process` work pool if needed, runs its flow runs
    infra/prefect.sh deploy   # 3. `tagflow deploy`: retrain/<family> per family, crons from params.yaml
    infra/prefect.sh run topics   # optional: start a run of retrain/topics now

The worker runs each flow run in a subprocess inside the project root (the deployment's pull
step), so code and data are the ones checked out there. Stop the worker with Ctrl-C twice.

Run it once, locally, without a server (Prefect starts a temporary one):

    .venv/bin/python -m flows.retrain [--family topics] [--force] [--target STAGE ...]
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
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from tagflow.retrain import FAMILIES, decision_lines, markdown, read_report
from tagflow.retrain import family as family_spec

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The venv's bin directory, deliberately not resolved: resolving the python symlink would lead
# out of the venv to the base interpreter, where neither `dvc` nor `tagflow` is installed.
VENV_BIN = Path(sys.executable).parent
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


def _with_deps(stages: list[str] | None) -> list[str]:
    # A family's retrain moves only the data of its stages and their upstream, not every family's.
    return ["--with-deps", *stages] if stages else []


def default_remote(project_dir: Path) -> str | None:
    """Name of the project's default DVC remote, or None when there is none."""
    result = _dvc(project_dir, "remote", "default")
    name = result.stdout.strip()
    return name if result.returncode == 0 and name else None


@task(retries=1, retry_delay_seconds=10, cache_policy=NO_CACHE)
def dvc_pull(project_dir: Path, remote: str | None, stages: list[str] | None = None) -> bool:
    """Fetch the pipeline's data from the remote. True when everything was fetched."""
    logger = get_run_logger()
    if remote is None:
        logger.info("No default DVC remote configured: skipping dvc pull")
        return False
    result = _dvc(project_dir, "pull", *_with_deps(stages))
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
def dvc_push(project_dir: Path, remote: str | None, stages: list[str] | None = None) -> bool:
    """Send the new outputs to the remote. False when there is no remote to push to."""
    logger = get_run_logger()
    if remote is None:
        logger.info("No default DVC remote configured: skipping dvc push")
        return False
    result = _dvc(project_dir, "push", *_with_deps(stages))
    if result.returncode != 0:
        output = result.stdout + result.stderr
        raise RuntimeError(f"dvc push to remote {remote!r} failed (exit {result.returncode}):\n{_tail(output)}")
    logger.info("dvc push to %r: %s", remote, _tail(result.stdout, 1) or "done")
    return True


def _mtimes(project_dir: Path, reports: tuple[str, ...]) -> dict[str, float | None]:
    return {r: (project_dir / r).stat().st_mtime if (project_dir / r).exists() else None for r in reports}


UP_TO_DATE = "up to date, last decision: "


@task(cache_policy=NO_CACHE)
def read_registry_decisions(project_dir: Path, reports: tuple[str, ...], required: bool = True,
                            before: dict[str, float | None] | None = None) -> dict[str, dict]:
    """The register stages' reports, by path, each decision logged (a rejection as a warning).
    A report `dvc repro` did not rewrite (its mtime as in `before`) is marked as an old decision."""
    logger = get_run_logger()
    found = {}
    for report in reports:
        path = project_dir / report
        if not path.exists() and not required:
            logger.info("No registry decision at %s (the targets stop before its register stage)", path)
            continue
        found[report] = read_report(path)
        if before and before.get(report) == path.stat().st_mtime:
            found[report] = {**found[report], "up_to_date": True}
        for line in _lines(found[report], str(path)):
            (logger.warning if "rejected " in line else logger.info)(line)
    return found


def _lines(report: dict, where: str) -> list[str]:
    old = UP_TO_DATE if report.get("up_to_date") else ""
    return [old + line for line in decision_lines(report, where)]


def publish_decision(family_name: str, decisions: dict[str, dict]) -> str:
    """Show the decision in the Prefect UI (a Markdown artifact keyed by family, so its history
    lists every run's decision) and return it as one line, the flow run's final state message."""
    lines = {report: _lines(d, report) for report, d in decisions.items()}
    create_markdown_artifact(markdown(family_name, lines), key=f"retrain-{family_name}-decision",
                             description=f"registry decision of the {family_name} retrain")
    return " | ".join(line for group in lines.values() for line in group) or "no registry decision (targets stop early)"


@flow(name="retrain", flow_run_name="retrain-{family}")
def retrain(family: str = "all", targets: list[str] | None = None, force: bool = False,
            project_dir: str | None = None):
    """Pull data, `dvc repro` the family's register stage (`all`: the whole pipeline; `targets`
    instead to pick stages, `force` to rerun up-to-date ones), push, and return the registry
    decisions by report path; the flow run ends COMPLETED with the decision as its message."""
    chosen = family_spec(family)
    root = Path(project_dir).resolve() if project_dir else PROJECT_ROOT
    if not (root / "dvc.yaml").exists():
        raise FileNotFoundError(f"{root} has no dvc.yaml: project_dir must be the root of a DVC project")
    remote = default_remote(root)
    stages = targets or list(chosen.stages)
    dvc_pull(root, remote, stages)
    before = _mtimes(root, chosen.reports)   # after the pull: a pulled report is no new decision either
    dvc_repro(root, stages, force)
    dvc_push(root, remote, stages)
    decisions = read_registry_decisions(root, chosen.reports, required=not targets, before=before)
    return Completed(message=publish_decision(family, decisions), data=decisions)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.retrain", description=retrain.__doc__)
    parser.add_argument("--family", default="all", choices=sorted(FAMILIES), help="what to retrain (default: all)")
    parser.add_argument("--target", action="append", dest="targets", metavar="STAGE", help="a DVC stage to reproduce (repeatable)")
    parser.add_argument("--force", action="store_true", help="rerun stages even when up to date")
    parser.add_argument("--project-dir", help=f"DVC project root (default: {PROJECT_ROOT})")
    args = parser.parse_args(argv)
    decision = retrain(family=args.family, targets=args.targets, force=args.force, project_dir=args.project_dir)
    print(json.dumps(decision, indent=2))


if __name__ == "__main__":
    main()
