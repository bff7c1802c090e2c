"""Registry gate, manual promote/rollback and the MLflow server, against real stores.

One sqlite store serves the whole module (creating one costs ~6 s); tests stay independent by
using distinct registered-model names. The server test runs a real `mlflow server` on loopback
over that same store."""
from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from tagflow.core import registry
from tagflow.core.errors import RegistryError
from tagflow.tagger.config import RegistryConfig

EXPERIMENT = "test-registry"


class Constant(mlflow.pyfunc.PythonModel):
    """Answers every input with its label, so a loaded model shows which version it is."""

    def __init__(self, label: str):
        self.label = label

    def predict(self, context, model_input: list[str], params=None) -> list[str]:
        return [self.label for _ in model_input]


@pytest.fixture(scope="module")
def store(mlflow_store):
    return mlflow_store, registry.setup(EXPERIMENT)


_logged: dict[str, tuple[str, str]] = {}


def candidate(label: str, f1: float | None = None) -> tuple[str, str]:
    """(model_uri, run_id) of a logged Constant(label) model; logged once per label (~1 s each)."""
    if label not in _logged:
        with mlflow.start_run() as run:
            if f1 is not None:
                mlflow.log_metric("f1_doc", f1)
            info = mlflow.pyfunc.log_model(name="model", python_model=Constant(label),
                                           pip_requirements=[])
        _logged[label] = (info.model_uri, run.info.run_id)
    return _logged[label]


def gate(name: str, f1: float, label: str = "a", target: float = 0.30, tags=None) -> registry.Decision:
    uri, run_id = candidate(label)
    cfg = RegistryConfig(model_name=name, gate_metric="f1_doc", gate_target=target)
    return registry.register_and_gate(uri, run_id, cfg, {"f1_doc": f1, "precision": 0.5}, tags=tags)


def aliases(name: str) -> dict[str, str]:
    return {alias: str(v) for alias, v in MlflowClient().get_registered_model(name).aliases.items()}


def tags(name: str, version: str) -> dict[str, str]:
    return MlflowClient().get_model_version(name, version).tags


# ---------------------------------------------------------------- store setup


def test_setup_is_idempotent_and_keeps_artifacts_under_mlartifacts(store):
    root, experiment_id = store
    assert registry.setup(EXPERIMENT) == experiment_id
    location = MlflowClient().get_experiment(experiment_id).artifact_location
    assert location == (root / "mlartifacts" / EXPERIMENT).as_uri()
    assert (root / "mlflow.db").exists()


# ---------------------------------------------------------------- gate


def test_first_model_at_target_becomes_champion_with_gate_tags(store):
    decision = gate("first", 0.30)
    assert decision.promoted and decision.version == "1" and decision.champion_before is None
    assert aliases("first") == {"champion": "1", "challenger": "1"}
    t = tags("first", "1")
    assert t["gate.decision"] == "promoted"
    assert t["gate.metric"] == "f1_doc" and float(t["gate.value"]) == 0.30
    assert float(t["gate.target"]) == 0.30 and t["gate.champion_before"] == "none"
    assert "f1_doc 0.300 >= target 0.300" in t["gate.reasons"]
    assert float(t["metric.f1_doc"]) == 0.30 and float(t["metric.precision"]) == 0.5
    run_id = candidate("a")[1]
    assert MlflowClient().get_run(run_id).data.tags["registered_version"] == "first/1"
    assert registry.champion_uri("first") == "models:/first@champion"


def test_below_target_is_challenger_only_and_says_why(store):
    decision = gate("weak", 0.12)
    assert not decision.promoted
    assert aliases("weak") == {"challenger": decision.version}
    assert tags("weak", decision.version)["gate.decision"] == "rejected"
    assert "f1_doc 0.120 < target 0.300" in tags("weak", decision.version)["gate.reasons"]
    with pytest.raises(registry.NoChampionError, match="has no champion"):
        registry.champion_uri("weak")


def test_regression_is_refused_and_a_better_model_replaces_the_champion(store):
    assert gate("race", 0.50).promoted
    worse = gate("race", 0.45)  # above target 0.30, below the champion
    assert not worse.promoted and worse.champion_before == "1" and worse.champion_value == 0.50
    assert "f1_doc 0.450 < champion v1's 0.500 (regression)" in worse.reasons
    assert aliases("race") == {"champion": "1", "challenger": "2"}
    assert tags("race", "2")["gate.champion_before"] == "1"

    better = gate("race", 0.61)
    assert better.promoted and better.champion_before == "1"
    assert aliases("race") == {"champion": "3", "challenger": "3"}
    listing = {row["version"]: row for row in registry.describe("race")}
    assert [row["gate"]["decision"] for row in listing.values()] == ["promoted", "rejected", "promoted"]
    assert listing["3"]["aliases"] == ["challenger", "champion"] and listing["1"]["aliases"] == []
    assert listing["2"]["metrics"]["f1_doc"] == 0.45


def test_champion_without_metric_tags_is_judged_by_its_run(store):
    # Registered outside the gate (no metric.* tags): the gate falls back to the run's metric.
    uri, _ = candidate("logged-f1", f1=0.55)
    version = str(mlflow.register_model(uri, "legacy").version)
    registry.promote("legacy", version, who="alice", why="imported from the old registry")
    decision = gate("legacy", 0.50)
    assert not decision.promoted and decision.champion_value == 0.55


def test_lower_is_better_metric_never_promotes_a_regression(store):
    uri, run_id = candidate("a")
    cfg = RegistryConfig(model_name="edu-mse", gate_metric="mse", gate_target=0.8)
    first = registry.register_and_gate(uri, run_id, cfg, {"mse": 0.6})
    worse = registry.register_and_gate(uri, run_id, cfg, {"mse": 0.7})   # under target, above champion
    better = registry.register_and_gate(uri, run_id, cfg, {"mse": 0.5})
    assert (first.promoted, worse.promoted, better.promoted) == (True, False, True)
    assert "mse 0.700 > champion v1's 0.600 (regression)" in worse.reasons
    assert aliases("edu-mse") == {"champion": "3", "challenger": "3"}


def test_extra_tags_travel_with_the_version(store):
    decision = gate("carded", 0.4, tags={"card.backend": "llm", "card.infer.top_n": "10"})
    t = tags("carded", decision.version)
    assert (t["card.backend"], t["card.infer.top_n"], t["gate.decision"]) == ("llm", "10", "promoted")


def test_missing_gate_metric_registers_nothing(store):
    uri, run_id = candidate("a")
    cfg = RegistryConfig(model_name="no-metric", gate_metric="f1_doc")
    with pytest.raises(RegistryError, match="f1_doc"):
        registry.register_and_gate(uri, run_id, cfg, {"precision": 0.9})
    assert registry.describe("no-metric") == []


# ---------------------------------------------------------------- manual operations


def test_manual_promote_then_rollback(store):
    gate("ops", 0.40)                   # v1 champion
    assert not gate("ops", 0.20).promoted  # v2 rejected by the gate
    registry.promote("ops", "2", who="alice", why="hotfix for a vocabulary change")
    assert aliases("ops")["champion"] == "2"
    t = tags("ops", "2")
    assert t["manual.promoted_by"] == "alice" and t["manual.reason"] == "hotfix for a vocabulary change"
    assert t["manual.champion_before"] == "1" and t["manual.at"]

    assert registry.rollback("ops", who="bob", why="hotfix misbehaves") == "1"
    assert aliases("ops")["champion"] == "1"
    assert tags("ops", "1")["rollback.by"] == "bob" and tags("ops", "1")["rollback.from"] == "2"
    assert tags("ops", "2")["demoted.reason"] == "hotfix misbehaves"
    with pytest.raises(registry.NothingToRollBackError, match="only champion"):
        registry.rollback("ops", who="bob", why="again")
    assert registry.rollback("ops", who="bob", why="explicit", to_version="2") == "2"


def test_rollback_walks_back_like_an_undo_stack(store):
    for f1 in (0.40, 0.50, 0.60):
        assert gate("undo", f1).promoted
    assert registry.rollback("undo", who="carol", why="v3 bad") == "2"
    assert registry.rollback("undo", who="carol", why="v2 bad too") == "1"  # not back to 3
    assert aliases("undo")["champion"] == "1"


def test_manual_operations_refuse_bad_input(store):
    gate("strict", 0.40)
    with pytest.raises(registry.UnknownVersionError, match=r"no version 7 \(versions: 1\)"):
        registry.promote("strict", "7", who="alice", why="typo")
    with pytest.raises(RegistryError, match="why"):
        registry.promote("strict", "1", who="alice", why="  ")
    with pytest.raises(RegistryError, match="already champion"):
        registry.rollback("strict", who="bob", why="no-op", to_version="1")
    with pytest.raises(registry.UnknownVersionError, match="no registered model"):
        registry.promote("never-registered", "1", who="alice", why="x")


def test_no_champion_error_names_the_promote_command(store):
    with pytest.raises(registry.NoChampionError) as err:
        registry.champion_uri("brand-new")
    assert 'tagflow promote --model brand-new --version N --why "..."' in str(err.value)
    assert "is not registered" in str(err.value)
    with pytest.raises(registry.NoChampionError):
        registry.load_champion("brand-new")
    assert registry.describe("brand-new") == []
    assert not gate("rejected-only", 0.10).promoted  # registered, but nothing ever passed
    with pytest.raises(registry.NoChampionError, match="tagflow promote"):
        registry.rollback("rejected-only", who="bob", why="x")


def test_load_champion_follows_promotion_and_rollback(store):
    gate("served", 0.40, label="a")
    gate("served", 0.70, label="b")
    model, version = registry.load_champion("served")
    assert version == "2" and model.predict(["doc"]) == ["b"]
    registry.rollback("served", who="dave", why="b hallucinates")
    model, version = registry.load_champion("served")
    assert version == "1" and model.predict(["doc"]) == ["a"]


# ---------------------------------------------------------------- server


def test_server_command_is_lean_and_loopback_only(store, monkeypatch):
    root, _ = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")  # a client URI, not a store
    argv = registry.server_command(5055)
    assert argv[:2] == ["env", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false"]
    assert Path(argv[2]).name == "mlflow" and Path(argv[2]).exists()
    flags = dict(zip(argv[4::2], argv[5::2]))
    assert flags == {"--host": "127.0.0.1", "--port": "5055", "--workers": "1",
                     "--backend-store-uri": f"sqlite:///{root.resolve()}/mlflow.db",
                     "--artifacts-destination": str(root.resolve() / "mlartifacts")}


def test_real_server_registers_through_rest(store, monkeypatch, free_port, server_process):
    root, _ = store
    port = free_port()
    # Own process group, so that the uvicorn worker is stopped with its parent.
    server = server_process(registry.server_command(port), root / "server.log", name="mlflow server")
    try:
        url = f"http://127.0.0.1:{port}"
        server.wait_for(f"{url}/health", timeout=90)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        registry.setup("via-server")  # created by the server: artifacts go through its proxy
        with mlflow.start_run() as run:
            info = mlflow.pyfunc.log_model(name="model", python_model=Constant("rest"),
                                           pip_requirements=[])
        cfg = RegistryConfig(model_name="over-rest", gate_target=0.3)
        decision = registry.register_and_gate(info.model_uri, run.info.run_id, cfg, {"f1_doc": 0.4})
        assert decision.promoted
        client = MlflowClient(tracking_uri=url)
        assert client.get_model_version_by_alias("over-rest", "champion").version in ("1", 1)
        model, version = registry.load_champion("over-rest")
        assert version == "1" and model.predict(["doc"]) == ["rest"]
        assert any((root / "mlartifacts").rglob("MLmodel"))  # uploaded to --artifacts-destination

        # Same store: the sqlite file sees what the server wrote, and the server what it holds.
        monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.DEFAULT_TRACKING_URI)
        assert registry.champion_uri("over-rest") == "models:/over-rest@champion"
    finally:
        server.stop(grace=20)
        mlflow.set_tracking_uri(registry.DEFAULT_TRACKING_URI)


def test_every_alias_change_is_appended_to_the_audit_trail(store):
    gate("audited", 0.40)                                   # v1 promoted by the gate
    gate("audited", 0.10)                                   # v2 rejected
    registry.promote("audited", "2", who="alice", why="first reason")
    registry.rollback("audited", who="bob", why="v2 misbehaves")
    registry.promote("audited", "2", who="alice", why="second reason")   # same version again
    trail = registry.audit_trail("audited")
    assert [(e["action"], e["from"], e["to"]) for e in trail] == [
        ("gate: promoted", "none", "1"), ("gate: rejected (challenger only)", "1", "1"),
        ("promote", "1", "2"), ("rollback", "2", "1"), ("promote", "1", "2")]
    assert [e["why"] for e in trail if e["action"] == "promote"] == ["first reason", "second reason"]
    assert trail[0]["who"].startswith("gate (") and trail[0]["metrics"] == {"f1_doc": 0.4}
    assert "f1_doc 0.400 >= target 0.300" in trail[0]["why"]
    assert registry.audit_trail("never-registered") == []


def test_a_mistyped_local_store_is_an_error_not_a_new_store(store, tmp_path, monkeypatch):
    typo = tmp_path / "mlfow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{typo}")
    with pytest.raises(registry.NoStoreError, match=r"no MLflow store at .*mlfow\.db .*check the path"):
        registry.describe("audited")
    with pytest.raises(registry.NoChampionError):           # the service treats it as "no champion yet"
        registry.champion_version("audited")
    with pytest.raises(registry.NoStoreError):
        registry.promote("audited", "1", who="alice", why="x")
    assert not typo.exists()
