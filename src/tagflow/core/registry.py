"""MLflow tracking store, the promotion gate, and manual promote / rollback.

Registry aliases carry the deployment state (stages are deprecated in MLflow 3):
  challenger  the most recently registered candidate, whatever the gate said
  champion    the version the service loads (`models:/<name>@champion`)

Everything the gate decided is written on the model version as tags (gate.*, metric.*), so the
registry alone explains why a version is or is not champion, without opening its run. The
registered model keeps a `champion_history` tag (JSON list of versions, newest last) because
MLflow forgets where an alias pointed before it moved, and rollback needs exactly that.

Every alias change (a gate decision, a manual promote, a rollback) is also appended to an audit
trail: one finished run per event in the `registry-audit` experiment of the same store, tagged
with the model, action, who, why, from/to version, metrics and the gate's reasons. Runs are never
rewritten, so the trail keeps every event (`tagflow models --history`), unlike version tags,
which a second promotion of the same version overwrites.

The store is a local sqlite file plus ./mlartifacts unless MLFLOW_TRACKING_URI says otherwise
(e.g. http://127.0.0.1:5000 for the server started by infra/mlflow-server.sh).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import NoReturn

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from .errors import RegistryError, TagflowError
from .gate import decide, no_regression

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # relative to the project root (cwd of dvc repro)
ARTIFACTS_DIR = "mlartifacts"
CHAMPION, CHALLENGER = "champion", "challenger"
AUDIT_EXPERIMENT = "registry-audit"
HISTORY_TAG = "champion_history"
HISTORY_KEEP = 100  # registry tags are bounded; a hundred promotions back is plenty for rollback
def promote_hint(model_name: str) -> str:
    return (f'promote one with `tagflow promote --model {model_name} --version N --why "..."`, '
            "or run the pipeline (`dvc repro`) so a model passes its gate")


class NoChampionError(RegistryError):
    """No version carries the champion alias (or the registered model does not exist)."""


class NoStoreError(NoChampionError):
    """The tracking URI names a local store that does not exist (a typo, or nothing run yet)."""


class UnknownVersionError(RegistryError):
    """The registered model or the requested version does not exist."""


class NothingToRollBackError(RegistryError):
    """The champion is the only one on record: there is no earlier champion to return to."""


@dataclass
class Decision:
    promoted: bool
    version: str
    metric: str
    value: float
    target: float
    champion_before: str | None
    champion_value: float | None
    reasons: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- store


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _is_local_db(uri: str) -> bool:
    return uri.startswith("sqlite:")


def _client(create: bool = False) -> MlflowClient:
    """The store's client. Only the pipeline's writes (`create=True`) may create a local store:
    reading or changing aliases in a sqlite file that does not exist is an error, not a new,
    empty store that silently answers "nothing registered"."""
    uri = tracking_uri()
    if not create and _is_local_db(uri):
        path = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
        if path is not None and not path.exists():
            raise NoStoreError(f"no MLflow store at {path.resolve()} (MLFLOW_TRACKING_URI={uri}): "
                               "check the path, or run the pipeline (`dvc repro`) to create it")
    # Set globally too: mlflow.register_model and models:/ URIs resolve through the global URI.
    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in text).strip("-.") or "experiment"


def setup(experiment: str) -> str:
    """Point MLflow at the project store and return the experiment's id (created if needed)."""
    experiment_id = _experiment_id(_client(create=True), experiment)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _experiment_id(client: MlflowClient, experiment: str) -> str:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        # Without an explicit location a sqlite-backed experiment writes to ./mlruns; keep
        # artifacts beside the server's ./mlartifacts so one directory holds them all.
        location = None
        if _is_local_db(tracking_uri()):
            location = (Path.cwd() / ARTIFACTS_DIR / _slug(experiment)).resolve().as_uri()
        try:
            experiment_id = client.create_experiment(experiment, artifact_location=location)
        except MlflowException as exc:  # another process created it first
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment_id = client.get_experiment_by_name(experiment).experiment_id
    else:
        experiment_id = found.experiment_id
        if found.lifecycle_stage == "deleted":  # a deleted name cannot be re-created, only restored
            client.restore_experiment(experiment_id)
    return experiment_id


# ---------------------------------------------------------------- audit trail


def _audit(client: MlflowClient, name: str, action: str, *, who: str, why: str,
           from_version: str | None, to_version: str | None, metrics: dict | None = None) -> None:
    """Append one event to the audit trail (a finished run; see the module docstring)."""
    tags = {"audit.model": name, "audit.action": action, "audit.who": who, "audit.why": why[:4000],
            "audit.from": from_version or "none", "audit.to": to_version or "none", "audit.at": _now(),
            "audit.metrics": json.dumps(metrics or {}, sort_keys=True)[:4000]}
    run = client.create_run(_experiment_id(client, AUDIT_EXPERIMENT), tags=tags,
                            run_name=f"{name}: {action} v{from_version or '-'} -> v{to_version or '-'}")
    client.set_terminated(run.info.run_id)


def audit_trail(model_name: str) -> list[dict]:
    """The model's audit trail, oldest first: {at, action, who, why, from, to, metrics}."""
    client = _client()
    experiment = client.get_experiment_by_name(AUDIT_EXPERIMENT)
    if experiment is None:
        return []
    quote = '"' if "'" in model_name else "'"
    runs = client.search_runs([experiment.experiment_id], max_results=5000,
                              filter_string=f"tags.`audit.model` = {quote}{model_name}{quote}",
                              order_by=["attributes.start_time ASC"])
    out = []
    for run in runs:
        t = run.data.tags
        out.append({"at": t.get("audit.at"), "action": t.get("audit.action"), "who": t.get("audit.who"),
                    "why": t.get("audit.why"), "from": t.get("audit.from"), "to": t.get("audit.to"),
                    "metrics": json.loads(t.get("audit.metrics") or "{}")})
    return sorted(out, key=lambda e: e["at"] or "")  # stable: same-second events keep run order


# ---------------------------------------------------------------- gate


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _registered(client: MlflowClient, name: str):
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def _champion_version(model) -> str | None:
    if model is None:
        return None
    version = model.aliases.get(CHAMPION)
    return None if version is None else str(version)


def _metric_of(client: MlflowClient, name: str, version: str, metric: str) -> float | None:
    """The version's gate metric: its metric.* tag, else its run's logged metric."""
    mv = client.get_model_version(name, version)
    tagged = _float_or_none(mv.tags.get(f"metric.{metric}"))
    if tagged is not None:
        return tagged
    if mv.run_id:
        try:
            return client.get_run(mv.run_id).data.metrics.get(metric)
        except MlflowException:
            return None
    return None


def _float_or_none(text: str | None) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None  # absent, or a tag someone edited by hand


def _history(model) -> list[str]:
    raw = (model.tags or {}).get(HISTORY_TAG) if model is not None else None
    try:
        return [str(v) for v in json.loads(raw)] if raw else []
    except (ValueError, TypeError):
        return []  # hand-edited tag: start over rather than refuse to promote


def _set_champion(client: MlflowClient, name: str, version: str, history: list[str]) -> None:
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[-HISTORY_KEEP:]))


def _history_with_current(model) -> tuple[list[str], str | None]:
    """History whose last entry is the live champion, even if the alias was moved by hand (UI)."""
    history, current = _history(model), _champion_version(model)
    if current is not None and history[-1:] != [current]:
        history.append(current)
    return history, current


def register_and_gate(model_uri: str, run_id: str, cfg, metrics: dict[str, float],
                      tags: dict[str, str] | None = None) -> Decision:
    """Register `model_uri` as a new version, mark it challenger, and make it champion if it passes.

    `cfg` is a family's registry section (model_name, gate_metric, gate_target); the gate's
    direction comes from the metric (core.gate). `tags` are extra version tags (the model card).

    Checks come first and the version is created with all its tags in one call, so a failure
    leaves no half-labelled version behind."""
    if cfg.gate_metric not in metrics:
        raise RegistryError(f"gate metric {cfg.gate_metric!r} (params.yaml registry.gate_metric) is not "
                       f"among the evaluation metrics {sorted(metrics)}")
    guards = [str(g) for g in (getattr(cfg, "guard_metrics", None) or [])]
    absent = [g for g in guards if g not in metrics]
    if absent:
        raise RegistryError(f"guard metric(s) {absent} (params.yaml registry.guard_metrics) not among "
                            f"the evaluation metrics")
    metrics = {key: float(value) for key, value in metrics.items()}
    client = _client(create=True)
    client.get_run(run_id)  # fails now, with MLflow's message, if the run is not in this store
    name, value = cfg.model_name, metrics[cfg.gate_metric]

    model = _registered(client, name)
    champion = _champion_version(model)
    champion_value = None if champion is None else _metric_of(client, name, champion, cfg.gate_metric)
    promoted, reasons = decide(value, cfg.gate_target, champion_value,
                               metric=cfg.gate_metric, champion_version=champion)
    if champion is not None and champion_value is None:
        reasons.append(f"champion v{champion} has no recorded {cfg.gate_metric}; "
                       "compared with the target only")
    for guard in guards:  # conditions beside the gate metric: no regression against the champion
        before = None if champion is None else _metric_of(client, name, champion, guard)
        ok, reason = no_regression(guard, metrics[guard], before, champion_version=champion)
        promoted = promoted and ok
        reasons.append(reason)

    gate_tags = {
        "gate.decision": "promoted" if promoted else "rejected",
        "gate.reasons": "; ".join(reasons),
        "gate.metric": cfg.gate_metric,
        "gate.value": repr(value),
        "gate.target": repr(float(cfg.gate_target)),
        **({"gate.guards": ",".join(guards)} if guards else {}),
        "gate.champion_before": champion or "none",
        "gate.at": _now(),
        "run_id": run_id,
        **{f"metric.{key}": repr(val) for key, val in metrics.items()},
        **(tags or {}),
    }
    version = str(mlflow.register_model(model_uri, name, tags=gate_tags).version)
    client.set_registered_model_alias(name, CHALLENGER, version)
    if promoted:
        earlier, _ = _history_with_current(model)
        _set_champion(client, name, version, earlier + [version])
    _audit(client, name, "gate: promoted" if promoted else "gate: rejected (challenger only)",
           who=f"gate ({_user()})", why="; ".join(reasons), from_version=champion,
           to_version=version if promoted else champion, metrics={cfg.gate_metric: value})
    # Mirror the outcome on the run so the experiment view shows it next to the metrics.
    client.set_tag(run_id, "gate.decision", gate_tags["gate.decision"])
    client.set_tag(run_id, "registered_version", f"{name}/{version}")
    return Decision(promoted=promoted, version=version, metric=cfg.gate_metric, value=value,
                    target=float(cfg.gate_target), champion_before=champion,
                    champion_value=champion_value, reasons=reasons)


# ---------------------------------------------------------------- manual operations


def _user() -> str:
    import getpass
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers)
        return "unknown"


def _require(who: str, why: str) -> None:
    if not (who or "").strip() or not (why or "").strip():
        raise RegistryError("who and why are both required: manual registry changes are audited")


def _existing_model(client: MlflowClient, name: str):
    model = _registered(client, name)
    if model is None:
        raise UnknownVersionError(f"no registered model {name!r} in {tracking_uri()}")
    return model


def _version_exists(client: MlflowClient, name: str, version: str) -> bool:
    try:
        client.get_model_version(name, version)
        return True
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return False
        raise


def _require_version(client: MlflowClient, name: str, version: str) -> None:
    if not _version_exists(client, name, version):
        known = sorted((int(mv.version) for mv in client.search_model_versions(_name_filter(name))))
        raise UnknownVersionError(f"{name} has no version {version} (versions: "
                                  f"{', '.join(map(str, known)) or 'none'})")


def promote(model_name: str, version: str, who: str, why: str) -> None:
    """Make `version` champion by hand (bypassing the gate), recording who and why."""
    _require(who, why)
    version = str(version)
    client = _client()
    model = _existing_model(client, model_name)
    _require_version(client, model_name, version)
    history, current = _history_with_current(model)
    if version != current:
        history.append(version)
    for key, value in {"manual.promoted_by": who, "manual.reason": why, "manual.at": _now(),
                       "manual.champion_before": current or "none"}.items():
        client.set_model_version_tag(model_name, version, key, value)
    _set_champion(client, model_name, version, history)
    _audit(client, model_name, "promote", who=who, why=why, from_version=current, to_version=version)


def rollback(model_name: str, who: str, why: str, to_version: str | None = None) -> str:
    """Return the champion alias to the previous champion (or `to_version`); returns that version.

    History behaves like an undo stack: rolling back drops the current champion, so a second
    rollback goes one further back instead of toggling between the last two."""
    _require(who, why)
    client = _client()
    model = _existing_model(client, model_name)
    history, current = _history_with_current(model)
    if to_version is not None:
        target = str(to_version)
        _require_version(client, model_name, target)
        if target == current:
            raise RegistryError(f"{model_name} v{target} is already champion")
        if target in history:  # back to the moment it was champion
            history = history[: len(history) - history[::-1].index(target)]
        else:
            history = (history[:-1] if current else history) + [target]
    else:
        earlier = history[:-1] if current else history
        while earlier and not _version_exists(client, model_name, earlier[-1]):
            earlier.pop()  # deleted versions cannot be served
        if not earlier:
            if current is None:
                raise NoChampionError(f"{model_name} has no champion and none on record; {promote_hint(model_name)}")
            raise NothingToRollBackError(
                f"{model_name} v{current} is the only champion on record: nothing to roll back to; "
                "pass an explicit version (`tagflow rollback --to-version N`) or promote one")
        history, target = earlier, earlier[-1]
    stamp = _now()
    for key, value in {"rollback.by": who, "rollback.reason": why, "rollback.at": stamp,
                       "rollback.from": current or "none"}.items():
        client.set_model_version_tag(model_name, target, key, value)
    if current is not None:
        for key, value in {"demoted.by": who, "demoted.reason": why, "demoted.at": stamp}.items():
            client.set_model_version_tag(model_name, current, key, value)
    _set_champion(client, model_name, target, history)
    _audit(client, model_name, "rollback", who=who, why=why, from_version=current, to_version=target)
    return target


# ---------------------------------------------------------------- reading


def champion_version(model_name: str) -> str:
    model = _registered(_client(), model_name)
    version = _champion_version(model)
    if version is None:
        where = "has no champion" if model is not None else "is not registered"
        raise NoChampionError(f"model {model_name!r} {where} in {tracking_uri()}; {promote_hint(model_name)}")
    return version


def champion_uri(model_name: str) -> str:
    champion_version(model_name)  # raise now rather than when something tries to load it
    return f"models:/{model_name}@{CHAMPION}"


def load_champion(model_name: str):
    """(PyFuncModel, version). Loads by version number, not alias, so the version returned is
    the one loaded even if the alias moves meanwhile."""
    version = champion_version(model_name)
    return mlflow.pyfunc.load_model(f"models:/{model_name}/{version}"), version


def _name_filter(name: str) -> str:
    quote = '"' if "'" in name else "'"
    return f"name={quote}{name}{quote}"


def describe(model_name: str) -> list[dict]:
    """Every version, oldest first: aliases, gate outcome, metrics and the remaining tags."""
    client = _client()
    model = _registered(client, model_name)
    if model is None:
        return []
    aliases: dict[str, list[str]] = {}
    for alias, version in model.aliases.items():  # search results do not carry aliases
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for mv in client.search_model_versions(_name_filter(model_name)):
        tags = dict(mv.tags)
        gate = {k.removeprefix("gate."): tags.pop(k) for k in list(tags) if k.startswith("gate.")}
        metrics = {k.removeprefix("metric."): _float_or_none(tags.pop(k)) for k in list(tags)
                   if k.startswith("metric.")}
        rows.append({
            "version": str(mv.version),
            "aliases": sorted(aliases.get(str(mv.version), [])),
            "run_id": mv.run_id or tags.get("run_id"),
            "created_at": datetime.fromtimestamp(mv.creation_timestamp / 1000, timezone.utc)
            .isoformat(timespec="seconds"),
            "source": mv.source,
            "gate": gate,
            "metrics": metrics,
            "tags": tags,
        })
    return sorted(rows, key=lambda row: int(row["version"]))


# ---------------------------------------------------------------- server


def _mlflow_executable() -> str:
    # The mlflow next to this interpreter (.venv/bin/mlflow), so the server runs the same MLflow.
    beside = Path(sys.executable).parent / "mlflow"
    return str(beside) if beside.exists() else (shutil.which("mlflow") or "mlflow")


def _absolute_store_uri(uri: str) -> str:
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str((Path.cwd() / uri.removeprefix("sqlite:///")).resolve())
    return uri


def server_command(port: int, store_uri: str | None = None,
                   artifacts: str | Path = ARTIFACTS_DIR) -> list[str]:
    """argv for `mlflow server` on 127.0.0.1:port over the project store.

    One worker and no job runner: the defaults start 15 processes / ~2.4 GB, this ~450 MB. The
    environment switch is part of the argv (`env ...`) so every caller gets it."""
    if store_uri is None:
        uri = tracking_uri()
        # An http tracking URI points at a server (perhaps this one): serve the default store.
        store_uri = DEFAULT_TRACKING_URI if uri.startswith(("http:", "https:")) else uri
    return ["env", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false", _mlflow_executable(), "server",
            "--host", "127.0.0.1", "--port", str(int(port)), "--workers", "1",
            "--backend-store-uri", _absolute_store_uri(store_uri),
            "--artifacts-destination", str(Path(artifacts).resolve())]


def serve(port: int) -> NoReturn:
    """Replace this process with the MLflow server (infra/mlflow-server.sh)."""
    with socket.socket() as probe:  # fail with a useful message, not a uvicorn traceback
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise TagflowError(f"port {port} on 127.0.0.1 is in use; choose another with MLFLOW_PORT=N")
    argv = server_command(port)
    print(f"MLflow UI: http://127.0.0.1:{port}  (store {argv[argv.index('--backend-store-uri') + 1]})",
          flush=True)
    os.execvp(argv[0], argv)
