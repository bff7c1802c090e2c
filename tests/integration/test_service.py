"""The BentoML tagger service, served for real (`bentoml serve` on loopback) from a real sqlite
MLflow registry holding a tiny word-lookup tagger registered as a pyfunc."""
from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BENTOML = str(Path(sys.executable).with_name("bentoml"))
C8 = "http://example.org/thes/c8"

# The fake tagger is logged as "model from code" so the server process loads it from the
# artifact store without importing this test module.
FAKE_TAGGER = textwrap.dedent('''
    import mlflow
    from mlflow.pyfunc import PythonModel

    VOCABULARY = {
        "museum": ("http://example.org/thes/c8", "Museums", 1.0),
        "heritage": ("http://example.org/thes/c7", "Cultural heritage", 0.8),
        "teachers": ("http://example.org/thes/c5", "Teachers", 0.6),
    }

    class WordLookupTagger(PythonModel):
        def predict(self, context, model_input, params=None):
            top_n = int((params or {}).get("top_n", 10))
            results = []
            for text in model_input["text"]:
                words = {w.strip(".,;:!?").lower() for w in text.split()}
                hits = [{"uri": u, "label": l, "score": s}
                        for w, (u, l, s) in VOCABULARY.items() if w in words]
                results.append(sorted(hits, key=lambda k: -k["score"])[:top_n])
            return results

    mlflow.models.set_model(WordLookupTagger())
''')


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> dict:
    """A sqlite store with `fake-tagger` v1 as champion and `late-tagger` v1 not promoted yet."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root}/mlflow.db"
    code = root / "fake_tagger.py"
    code.write_text(FAKE_TAGGER)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        experiment = mlflow.create_experiment("service-test", artifact_location=(root / "artifacts").as_uri())
        signature = infer_signature(pd.DataFrame({"text": ["a museum"]}), params={"top_n": 10})
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.pyfunc.log_model(name="tagger", python_model=str(code), signature=signature,
                                           pip_requirements=[], registered_model_name="fake-tagger")
        client = mlflow.MlflowClient()
        client.set_registered_model_alias("fake-tagger", "champion", "1")
        mlflow.register_model(info.model_uri, "late-tagger")
    finally:
        mlflow.set_tracking_uri(None)
    return {"uri": uri, "root": root}


class Server:
    def __init__(self, registry: dict, model_name: str, port: int, harness) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MLFLOW_TRACKING_URI": registry["uri"], "TAGFLOW_MODEL_NAME": model_name,
               "TAGFLOW_CHAMPION_RECHECK_SECONDS": "0", "BENTOML_HOME": str(registry["root"] / "bentoml"),
               "BENTOML_DO_NOT_TRACK": "true"}
        # bentoml serve runs workers as children: the harness stops the whole process group.
        self.process = harness(
            [BENTOML, "serve", "services.tagger_service:Tagger", "--host", "127.0.0.1", "--port", str(self.port)],
            registry["root"] / f"serve-{model_name}.log", env=env, cwd=ROOT, name="bentoml serve")

    def wait_ready(self, timeout: float = 45) -> None:
        self.process.wait_for(f"{self.url}/readyz", timeout=timeout)

    def post(self, route: str, payload=None, **kwargs) -> httpx.Response:
        if payload is not None:
            kwargs["json"] = payload
        return httpx.post(f"{self.url}{route}", timeout=30, **kwargs)

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture(scope="module")
def servers(registry, free_port, server_process) -> dict[str, Server]:
    """Both servers start together (start-up is mostly imports): one serves `fake-tagger`, which
    has a champion; the other `late-tagger`, which has none until a test promotes it."""
    started: dict[str, Server] = {}
    try:
        for name in ("fake-tagger", "late-tagger"):
            started[name] = Server(registry, name, free_port(), server_process)
        for server in started.values():
            server.wait_ready()
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture
def server(servers) -> Server:
    return servers["fake-tagger"]


def test_tag_returns_the_concepts_found_in_the_text(server):
    resp = server.post("/tag", {"text": "The museum reopened; heritage funding helped.", "top_n": 10})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["keywords"][0] == {"uri": C8, "label": "Museums", "score": 1.0}
    assert [k["label"] for k in body["keywords"]] == ["Museums", "Cultural heritage"]
    assert body["model"] == {"name": "fake-tagger", "version": "1"}


def test_top_n_limits_the_keywords(server):
    resp = server.post("/tag", {"text": "museum heritage teachers", "top_n": 1})
    assert resp.status_code == 200, resp.text
    assert [k["uri"] for k in resp.json()["keywords"]] == [C8]


def test_tag_batch_keeps_the_order_of_texts(server):
    resp = server.post("/tag_batch", {"texts": ["teachers", "a museum", "nothing known here"]})
    assert resp.status_code == 200, resp.text
    labels = [[k["label"] for k in r["keywords"]] for r in resp.json()["results"]]
    assert labels == [["Teachers"], ["Museums"], []]


def test_info_names_the_loaded_model(server):
    body = server.post("/info", {}).json()
    assert body["model"] == {"name": "fake-tagger", "version": "1"}
    assert body["ready"] is True and body["limits"]["max_text_chars"] == 200_000


def test_docs_ui_and_openapi_describe_the_endpoints(server):
    assert "swagger" in httpx.get(f"{server.url}/", timeout=10).text.lower()
    paths = httpx.get(f"{server.url}/docs.json", timeout=10).json()["paths"]
    assert {"/tag", "/tag_batch", "/info"} <= set(paths)


@pytest.mark.parametrize("payload, expected", [
    ({}, ['"text"', "required"]),                      # missing
    ({"txt": "museum"}, ['"text"', "required"]),       # misspelt field
    ({"text": ""}, ["empty"]),
    ({"text": "  \n\t "}, ["empty"]),
    ({"text": 42}, ['"text"', "string"]),
    ({"text": ["museum"]}, ['"text"', "string"]),
    ({"text": "museum", "top_n": 0}, ['"top_n"', "greater than or equal to 1"]),
    ({"text": "museum", "top_n": 51}, ['"top_n"', "less than or equal to 50"]),
    ({"text": "museum", "top_n": "5"}, ['"top_n"', "integer"]),
    ({"text": "museum", "top_n": 2.5}, ['"top_n"', "integer"]),
    ({"text": "museum", "top_n": True}, ['"top_n"', "integer"]),
    ({"text": "museum", "refine": "deepest"}, ['"refine"', "'specific'"]),
    ({"text": "museum", "lang": "de"}, ['"lang"', "'fr'"]),
])
def test_invalid_requests_get_400_naming_the_problem(server, payload, expected):
    resp = server.post("/tag", payload)
    assert resp.status_code == 400, resp.text
    for words in expected:
        assert words in resp.text, resp.text


def test_malformed_json_is_refused(server):
    resp = server.post("/tag", content=b'{"text": "museum"', headers={"content-type": "application/json"})
    assert 400 <= resp.status_code < 500, resp.text


def test_oversized_text_gets_413_naming_the_limit(server):
    resp = server.post("/tag", {"text": "museum " * 30_000})      # 210,000 characters
    assert resp.status_code == 413, resp.text
    assert "200,000" in resp.json()["error"]
    batch = server.post("/tag_batch", {"texts": ["museum " * 15_000] * 2})
    assert batch.status_code == 413 and "200,000" in batch.json()["error"]


def test_oversized_raw_body_is_refused_before_parsing(server):
    body = b'{"text": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    resp = server.post("/tag", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 413, resp.text
    assert "4,194,304 bytes" in resp.json()["error"]

    def chunked():                                   # no Content-Length: counted while read
        for _ in range(6):
            yield b"x" * (1024 * 1024)
    resp = server.post("/tag", content=chunked(), headers={"content-type": "application/json"})
    assert resp.status_code == 413, resp.text
    # the server is still fine afterwards
    assert server.post("/tag", {"text": "museum"}).status_code == 200


def test_without_champion_503_then_promotion_is_picked_up_without_restart(registry, servers):
    import mlflow

    server = servers["late-tagger"]
    resp = server.post("/tag", {"text": "a museum"})
    assert resp.status_code == 503, resp.text
    assert "promote" in resp.json()["error"].lower()
    info = server.post("/info", {}).json()
    assert info["model"] == {"name": "late-tagger", "version": None} and info["ready"] is False
    # validation still answers 4xx while no model is loaded
    assert server.post("/tag", {"text": " "}).status_code == 400

    mlflow.MlflowClient(tracking_uri=registry["uri"]).set_registered_model_alias("late-tagger", "champion", "1")
    resp = server.post("/tag", {"text": "a museum"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["keywords"][0]["uri"] == C8
    assert resp.json()["model"] == {"name": "late-tagger", "version": "1"}
