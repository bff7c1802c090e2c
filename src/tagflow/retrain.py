"""What a scheduled retrain of each model family runs, and how its registry decision reads.

A family's retrain is `dvc repro <its register stage>`: DVC reruns whatever upstream of that stage
is stale (data, validation, training, evaluation) and nothing of the other families. The register
stage writes the gate's decision to a JSON report; `decision_lines` turns any report shape (one
model, one per setup as in edu, or a recorded skip) into the lines shown in the Prefect UI."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .core.errors import ConfigError, DataError
from .edu import paths as edu_paths
from .tagger import paths as tagger_paths
from .topics import paths as topics_paths


@dataclass(frozen=True)
class Family:
    name: str
    stages: tuple[str, ...]   # `dvc repro` targets; () = the whole pipeline
    reports: tuple[str, ...]  # the registry decisions those stages write


_ONE = {
    "tagger": Family("tagger", ("tagger_register",), (tagger_paths.REGISTRY_REPORT,)),
    # Preference tuning (pairs -> IPO -> gate) builds on the SFT model, so it retrains that first.
    "preference": Family("preference", ("tagger_ipo_register",), (tagger_paths.IPO_REGISTRY_REPORT,)),
    "topics": Family("topics", ("topics_register",), (topics_paths.REGISTRY_REPORT,)),
    "edu": Family("edu", ("edu_register",), (edu_paths.REGISTRY_REPORT,)),
}
FAMILIES = _ONE | {"all": Family("all", (), tuple(f.reports[0] for f in _ONE.values()))}
DECISION_KEYS = {"promoted", "version", "reasons"}


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(f"unknown model family {name!r}; known: {sorted(FAMILIES)}") from None


def read_report(path: Path) -> dict:
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path} not found: the family's register stage writes its decision there") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg})") from None
    if not isinstance(report, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(report).__name__}")
    return report


def _one_line(decision: dict, where: str) -> str:
    if "skipped" in decision:
        return f"skipped: {decision['skipped']}"
    missing = DECISION_KEYS - decision.keys()
    if missing:
        raise DataError(f"{where}: registry decision lacks {sorted(missing)}")
    model = f"{decision.get('model_name') or 'model'} v{decision['version']}"
    reasons = "; ".join(decision["reasons"]) or "-"
    return f"promoted {model} ({reasons})" if decision["promoted"] else f"rejected {model}: {reasons}"


def decision_lines(report: dict, where: str) -> list[str]:
    """One line per registered model of a register stage's report."""
    if isinstance(report.get("decisions"), dict):   # one model per setup (edu: en, multilingual)
        return [f"{setup}: {_one_line(d, f'{where} [{setup}]')}" for setup, d in report["decisions"].items()]
    return [_one_line(report, where)]


def markdown(family_name: str, lines_by_report: dict[str, list[str]]) -> str:
    """The decision as a Markdown artifact: what a person opening the flow run reads first."""
    out = [f"# Registry decision: {family_name}", ""]
    for report, lines in lines_by_report.items():
        out += [f"`{report}`", ""] + [f"- {line}" for line in lines] + [""]
    return "\n".join(out)
