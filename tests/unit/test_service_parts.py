"""The service's moving parts without a server: the inference queue (batching, backpressure,
isolation of a failing document), the gate verdict shown with every answer, and the champion
watcher's decisions (load, switch, keep serving when the alias goes)."""
from __future__ import annotations

import logging
import threading

import pytest

from services.common import Batcher, Busy, Champion, Loaded, gate_of
from tagflow.core.errors import DataError


class Model:
    """predict records each call's texts and params; the first call waits for `release`."""

    def __init__(self):
        self.calls, self.started, self.release = [], threading.Event(), threading.Event()

    def predict(self, frame, params=None):
        texts = list(frame["text"])
        self.calls.append((texts, dict(params or {})))
        self.started.set()
        self.release.wait(10)
        if "bad" in texts:
            raise DataError("a bad document")
        return [[{"uri": t, "label": t, "score": 1.0}] for t in texts]


def test_waiting_requests_with_the_same_parameters_share_one_call():
    model, batcher = Model(), Batcher(max_pending=10, max_batch_texts=8, wait_seconds=0.05)
    first = batcher.submit(model, ["a"], {})
    assert model.started.wait(10)
    waiting = [batcher.submit(model, ["b"], {}), batcher.submit(model, ["c", "d"], {}),
               batcher.submit(model, ["e"], {"lang": "fr"})]
    model.release.set()
    assert first.result(10) == [[{"uri": "a", "label": "a", "score": 1.0}]]
    assert [[row[0]["uri"] for row in f.result(10)] for f in waiting] == [["b"], ["c", "d"], ["e"]]
    assert model.calls == [(["a"], {}), (["b", "c", "d"], {}), (["e"], {"lang": "fr"})]
    assert batcher.stats["largest_batch"] == 2 and batcher.pending == 0


def test_a_full_queue_refuses_and_a_bad_document_fails_alone():
    model, batcher = Model(), Batcher(max_pending=3, max_batch_texts=8, wait_seconds=0.05)
    running = batcher.submit(model, ["a"], {})
    assert model.started.wait(10)
    ok, bad = batcher.submit(model, ["ok"], {}), batcher.submit(model, ["bad"], {})
    with pytest.raises(Busy) as refused:
        batcher.submit(model, ["late"], {})
    assert refused.value.retry_after >= 1 and batcher.stats["refused"] == 1
    model.release.set()
    assert running.result(10) and ok.result(10)[0][0]["uri"] == "ok"
    with pytest.raises(DataError, match="a bad document"):
        bad.result(10)
    # the shared call failed, then each document went alone
    assert model.calls[1:] == [(["ok", "bad"], {}), (["ok"], {}), (["bad"], {})]


def test_a_request_cancelled_while_waiting_never_reaches_the_model():
    model, batcher = Model(), Batcher(max_pending=5, max_batch_texts=8, wait_seconds=0.01)
    batcher.submit(model, ["a"], {})
    assert model.started.wait(10)
    gone = batcher.submit(model, ["gone"], {})
    assert gone.cancel() and batcher.pending == 1
    after = batcher.submit(model, ["after"], {})
    model.release.set()
    assert after.result(10)[0][0]["uri"] == "after"
    assert [texts for texts, _ in model.calls] == [["a"], ["after"]]


@pytest.mark.parametrize("tags, note", [
    ({"gate.decision": "promoted", "gate.metric": "f1_doc", "gate.value": "0.4", "gate.target": "0.0"},
     "plumbing-only gate (f1_doc target 0.0)"),
    ({"gate.decision": "promoted", "gate.metric": "dev/f1_doc", "gate.value": "0.18", "gate.target": "0.15"}, None),
    ({"gate.decision": "rejected", "gate.metric": "dev/f1_doc", "gate.value": "0.1", "gate.target": "0.15",
      "manual.promoted_by": "ana", "manual.reason": "demo"}, "rejected by its gate and is champion by hand"),
    ({}, "no gate decision on record"),
])
def test_gate_verdict_says_what_a_version_is(tags, note):
    gate = gate_of(tags)
    assert gate["note"] == note if note is None else note in gate["note"]
    if "gate.value" in tags:
        assert gate["value"] == float(tags["gate.value"]) and gate["metric"] == tags["gate.metric"]
    if "manual.promoted_by" in tags:
        assert gate["promoted_by_hand"] == {"by": "ana", "why": "demo"}


def test_champion_follows_the_alias_and_keeps_serving_when_it_goes(monkeypatch, caplog):
    from tagflow.core import registry

    alias = {"version": None}

    def champion_version(name):
        if alias["version"] is None:
            raise registry.NoChampionError(f"model {name!r} has no champion")
        return alias["version"]

    loads = []

    def loader(name, version):
        loads.append(version)
        if version == "3":
            raise OSError("artifact missing")
        return Loaded(model=f"model-{version}", version=version, card={}, gate={})

    monkeypatch.setattr(registry, "champion_version", champion_version)
    champion = Champion("m", 5, loader=loader)
    caplog.set_level(logging.INFO, logger="tagflow.service")
    champion.check_once()
    assert not champion.ready and "has no champion" in champion.missing_reason
    alias["version"] = "1"
    champion.check_once()
    champion.check_once()                               # unchanged: not loaded again
    assert champion.current.model == "model-1" and loads == ["1"]
    alias["version"] = "2"
    champion.check_once()
    alias["version"] = "1"
    champion.check_once()
    assert champion.current.version == "1" and loads == ["1", "2", "1"]
    assert "switched from v1 to v2 (promotion)" in caplog.text
    assert "switched from v2 to v1 (rollback)" in caplog.text
    alias["version"] = "3"                              # a version that cannot be loaded
    champion.check_once()
    assert champion.current.version == "1" and "could not load the champion m v3" in caplog.text
    alias["version"] = None                             # alias removed: keep serving, say so
    champion.check_once()
    assert champion.current.version == "1" and "the champion alias is gone; still serving v1" in caplog.text


def test_a_family_answers_with_its_version_or_says_why_not():
    """The edu model answers a DataFrame (one row per text); without a champion the family's
    answer is a 503 naming the family, the model and why, and a too long text is a 413."""
    import asyncio
    import json

    import pandas as pd

    from services.common import MAX_TEXT_CHARS, Family

    class Edu:
        def predict(self, frame, params=None):
            return pd.DataFrame({"score": [float(len(t)) for t in frame["text"]],
                                 "int_score": [min(5, len(t)) for t in frame["text"]]})

    family = Family("edu", "edu-model", max_pending=4, batch_texts=8, batch_wait=0.01, timeout=10)
    try:
        family.champion.missing_reason = "model 'edu-model' is not registered"
        refused = asyncio.run(family.predict(["a page"], {}))
        assert refused.status_code == 503
        assert json.loads(refused.body)["error"] == ("no edu model in service (edu-model): "
                                                     "model 'edu-model' is not registered")
        family.champion.current = Loaded(model=Edu(), version="7", card={}, gate={"metric": "m"})
        loaded, rows = asyncio.run(family.predict(["ab", "abcdefg"], {}))
        assert rows == [{"score": 2.0, "int_score": 2}, {"score": 7.0, "int_score": 5}]
        assert family.identity(loaded)["model"].version == "7" and family.info()["ready"] is True
        assert asyncio.run(family.predict(["x" * (MAX_TEXT_CHARS + 1)], {})).status_code == 413
    finally:
        family.stop()


def test_ready_families_are_checked_by_name(monkeypatch):
    from services.common import families_from_env

    known = ("tagger", "topics", "edu")
    assert families_from_env("TAGFLOW_TEST_FAMILIES", "tagger", known) == ("tagger",)
    monkeypatch.setenv("TAGFLOW_TEST_FAMILIES", " tagger, edu ")
    assert families_from_env("TAGFLOW_TEST_FAMILIES", "tagger", known) == ("tagger", "edu")
    monkeypatch.setenv("TAGFLOW_TEST_FAMILIES", "tagger,eduu")
    with pytest.raises(SystemExit, match="TAGFLOW_TEST_FAMILIES: unknown family eduu; known: tagger, topics, edu"):
        families_from_env("TAGFLOW_TEST_FAMILIES", "tagger", known)
