"""The BentoML tagger service, served for real (`bentoml serve` on loopback) from a real sqlite
MLflow registry holding a tiny word-lookup tagger registered as a pyfunc."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx
import pytest

from tests.documents import make_docx, make_pdf

ROOT = Path(__file__).resolve().parents[2]
BENTOML = str(Path(sys.executable).with_name("bentoml"))
C8 = "http://example.org/thes/c8"

# The fake tagger is logged as "model from code" so the server process loads it from the
# artifact store without importing this test module.
FAKE_TAGGER = textwrap.dedent('''
    import time
    import types

    import mlflow
    from mlflow.pyfunc import PythonModel

    VOCABULARY = {
        "museum": ("http://example.org/thes/c8", "Museums", 1.0),
        "heritage": ("http://example.org/thes/c7", "Cultural heritage", 0.8),
        "teachers": ("http://example.org/thes/c5", "Teachers", 0.6),
        "universities": ("http://example.org/thes/c3", "Universities", 0.5),
    }

    class WordLookupTagger(PythonModel):
        def load_context(self, context):
            # like the real TaggerModel, it carries its thesaurus (tagger.th)
            from tagflow.thesaurus import Thesaurus
            self.tagger = types.SimpleNamespace(th=Thesaurus.load(context.artifacts["concepts"]))

        def predict(self, context, model_input, params=None):
            top_n = int((params or {}).get("top_n", 10))
            results = []
            texts = list(model_input["text"])
            # "sleep:S" in a text makes the whole call take S seconds (a slow model)
            time.sleep(max([float(w[6:]) for t in texts for w in t.split() if w.startswith("sleep:")] or [0]))
            for text in texts:
                words = {w.strip(".,;:!?").lower() for w in text.split()}
                hits = [{"uri": u, "label": l, "score": s}
                        for w, (u, l, s) in VOCABULARY.items() if w in words]
                results.append(sorted(hits, key=lambda k: -k["score"])[:top_n])
            return results

    mlflow.models.set_model(WordLookupTagger())
''')


GATE_TAGS = {"gate.decision": "promoted", "gate.metric": "f1_doc", "gate.value": "0.25", "gate.target": "0.0"}


TOPICS_GATE = {"gate.decision": "promoted", "gate.metric": "validation/micro_f1_tuned", "gate.value": "0.91",
               "gate.target": "0.8"}
EDU_GATE = {"gate.decision": "promoted", "gate.metric": "val/spearman_within", "gate.value": "0.52",
            "gate.target": "0.3"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory, tiny_ttl) -> dict:
    """A sqlite store with `fake-tagger` v1 as champion (gate tags of a plumbing-only gate),
    `late-tagger` v1 and v2 not promoted yet, and `busy-tagger` v1 as champion; a tiny topic
    classifier and a tiny edu scorer (tests/family_models.py) as `fake-topics` v1 and `fake-edu`
    v1, champions with measured gates, and as `late-topics` v1 and v2, not promoted yet."""
    from tests.family_models import log_family_models

    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    from tagflow.thesaurus import parse_skos

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root}/mlflow.db"
    code = root / "fake_tagger.py"
    code.write_text(FAKE_TAGGER)
    concepts = root / "concepts.parquet"
    parse_skos(tiny_ttl, ["en", "fr"]).to_parquet(concepts, index=False)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        experiment = mlflow.create_experiment("service-test", artifact_location=(root / "artifacts").as_uri())
        signature = infer_signature(pd.DataFrame({"text": ["a museum"]}), params={"top_n": 10})
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.pyfunc.log_model(name="tagger", python_model=str(code), signature=signature,
                                           artifacts={"concepts": str(concepts)}, pip_requirements=[])
            families = log_family_models(root)
        client = mlflow.MlflowClient()
        for name, model_uri, tags in [("fake-tagger", info.model_uri, GATE_TAGS),
                                      ("busy-tagger", info.model_uri, GATE_TAGS),
                                      ("fake-topics", families["topics"], TOPICS_GATE),
                                      ("fake-edu", families["edu"], EDU_GATE)]:
            mlflow.register_model(model_uri, name, tags=tags)
            client.set_registered_model_alias(name, "champion", "1")
        for _ in range(2):
            mlflow.register_model(info.model_uri, "late-tagger")
            mlflow.register_model(families["topics"], "late-topics")
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        os.environ.pop("MLFLOW_REGISTRY_URI", None)     # set_registry_uri leaves it for child processes
    return {"uri": uri, "root": root}


class Server:
    def __init__(self, registry: dict, model_name: str, port: int, harness, **env_extra: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MLFLOW_TRACKING_URI": registry["uri"], "TAGFLOW_MODEL_NAME": model_name,
               "TAGFLOW_CHAMPION_RECHECK_SECONDS": "0", "BENTOML_HOME": str(registry["root"] / "bentoml"),
               "BENTOML_DO_NOT_TRACK": "true", **env_extra}
        # bentoml serve runs workers as children: the harness stops the whole process group.
        self.process = harness(
            [BENTOML, "serve", "services.tagger_service:Tagger", "--host", "127.0.0.1", "--port", str(self.port)],
            registry["root"] / f"serve-{model_name}.log", env=env, cwd=ROOT, name="bentoml serve")

    def wait_ready(self, timeout: float = 90) -> None:
        self.process.wait_for(f"{self.url}/readyz", timeout=timeout)

    def wait_up(self, timeout: float = 90) -> None:
        """Serving HTTP (ready or not)."""
        self.process.wait_for(f"{self.url}/livez", timeout=timeout)

    def info(self) -> dict:
        return self.post("/info", {}).json()

    def wait_until(self, check, what: str, timeout: float = 30) -> dict:
        """Poll /info until check(info) holds; fails with the last answer and the log."""
        import time
        deadline = time.monotonic() + timeout
        while True:
            info = self.info()
            if check(info):
                return info
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {timeout}s; /info says {info}\n{self.process.log_tail()}")
            time.sleep(0.2)

    def post(self, route: str, payload=None, **kwargs) -> httpx.Response:
        if payload is not None:
            kwargs["json"] = payload
        return httpx.post(f"{self.url}{route}", timeout=30, **kwargs)

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture(scope="module")
def servers(registry, free_port, server_process) -> dict[str, Server]:
    """The servers start together (start-up is mostly imports): one serves `fake-tagger`, which
    has a champion; one `late-tagger`, which has none until a test promotes it; one `busy-tagger`
    with a short queue (3) and a short request timeout (6 s)."""
    started: dict[str, Server] = {}
    try:
        started["fake-tagger"] = Server(registry, "fake-tagger", free_port(), server_process,
                                        TAGFLOW_TOPICS_MODEL_NAME="fake-topics", TAGFLOW_EDU_MODEL_NAME="fake-edu")
        started["late-tagger"] = Server(registry, "late-tagger", free_port(), server_process,
                                        TAGFLOW_TOPICS_MODEL_NAME="late-topics", TAGFLOW_EDU_MODEL_NAME="late-edu")
        started["busy-tagger"] = Server(registry, "busy-tagger", free_port(), server_process,
                                        TAGFLOW_MAX_PENDING="3", TAGFLOW_REQUEST_TIMEOUT_SECONDS="6",
                                        TAGFLOW_BATCH_WAIT_MS="50", TAGFLOW_TOPICS_MODEL_NAME="fake-topics",
                                        TAGFLOW_EDU_MODEL_NAME="busy-edu")
        for server in started.values():
            server.wait_up()
        started["fake-tagger"].wait_ready()
        started["busy-tagger"].wait_ready()
        # topics and edu load on their watcher threads, after the tagger is ready
        started["fake-tagger"].wait_until(lambda i: all(f["ready"] for f in i["families"].values()),
                                          "topics and edu loaded", timeout=90)
        started["busy-tagger"].wait_until(lambda i: i["families"]["topics"]["ready"], "topics loaded", timeout=90)
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
    # every answer carries the version's gate verdict: this one passed a plumbing-only gate
    assert body["gate"]["metric"] == "f1_doc" and body["gate"]["value"] == 0.25
    assert body["gate"]["target"] == 0.0 and "plumbing-only" in body["gate"]["note"]


def test_a_title_is_read_with_the_text(server):
    body = {"text": "The museum reopened last week.", "title": "Heritage funding for a museum"}
    labels = [k["label"] for k in server.post("/tag", body).json()["keywords"]]
    assert labels == ["Museums", "Cultural heritage"]     # "heritage" is only in the title
    too_long = server.post("/tag", {**body, "title": "x" * 1001})
    assert too_long.status_code == 400 and "title" in too_long.text


def test_hierarchy_adds_broader_path_and_micro_thesaurus_from_the_models_thesaurus(server):
    resp = server.post("/tag", {"text": "universities and a museum", "hierarchy": True, "lang": "fr"})
    assert resp.status_code == 200, resp.text
    by_uri = {k["uri"]: k for k in resp.json()["keywords"]}
    universities = by_uri["http://example.org/thes/c3"]
    # top concept first, labels in the asked language (c3's parent c2 only via c2's narrower link)
    assert [b["label"] for b in universities["broader"]] == ["Éducation", "Enseignement supérieur"]
    assert [b["uri"] for b in universities["broader"]] == ["http://example.org/thes/c1", "http://example.org/thes/c2"]
    assert universities["micro_thesaurus"] == {"uri": "http://example.org/thes/mt1", "label": "Education systems"}
    museums = by_uri[C8]
    assert [b["label"] for b in museums["broader"]] == ["Cultural heritage"]     # no French label: English
    assert museums["micro_thesaurus"]["label"] == "Heritage"
    plain = server.post("/tag", {"text": "universities"}).json()["keywords"][0]
    assert set(plain) == {"uri", "label", "score"}


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
    assert body["gate"]["decision"] == "promoted" and body["hierarchy"] is True
    assert body["ready"] is True and body["limits"]["max_text_chars"] == 200_000


REMOTE = re.compile(r"""(src|href|action)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|googletagmanager""", re.I)


def test_docs_page_and_librarian_page_load_nothing_from_elsewhere(server):
    docs = httpx.get(f"{server.url}/", timeout=10)
    assert docs.status_code == 200 and "/docs.json" in docs.text and 'href="/ui"' in docs.text
    ui = httpx.get(f"{server.url}/ui", timeout=10)
    assert ui.status_code == 200 and ui.headers["content-type"].startswith("text/html")
    for page in (docs, ui):
        assert not REMOTE.search(page.text), REMOTE.search(page.text)
        assert "default-src 'self'" in page.headers["content-security-policy"]
    for lang in ("en", "fr", "es", "ar", "ru"):
        assert f'<option value="{lang}"' in ui.text
    for refine in ("none", "specific", "balanced", "broad"):
        assert f'<option value="{refine}"' in ui.text
    paths = httpx.get(f"{server.url}/docs.json", timeout=10).json()["paths"]
    assert {"/tag", "/tag_batch", "/tag_file", "/info", "/topics", "/topics_batch", "/topics_file",
            "/edu", "/edu_batch", "/edu_file"} <= set(paths)


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


def test_without_champion_not_ready_then_the_alias_is_followed_both_ways(registry, servers):
    from tagflow.core import registry as reg

    server = servers["late-tagger"]
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 503
    resp = server.post("/tag", {"text": "a museum"})
    assert resp.status_code == 503, resp.text
    assert "promote" in resp.json()["error"].lower()
    info = server.info()
    assert info["model"] == {"name": "late-tagger", "version": None} and info["ready"] is False
    # validation still answers 4xx while no model is loaded
    assert server.post("/tag", {"text": " "}).status_code == 400

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", registry["uri"])
        reg.promote("late-tagger", "1", who="test", why="first champion")
        server.wait_until(lambda i: i["ready"], "v1 loaded after promotion")
        assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
        resp = server.post("/tag", {"text": "a museum"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["keywords"][0]["uri"] == C8
        assert resp.json()["model"] == {"name": "late-tagger", "version": "1"}
        assert resp.json()["gate"]["promoted_by_hand"] == {"by": "test", "why": "first champion"}
        assert "no gate decision" in resp.json()["gate"]["note"]

        reg.promote("late-tagger", "2", who="test", why="a newer one")
        server.wait_until(lambda i: i["model"]["version"] == "2", "v2 served after promotion")
        assert server.post("/tag", {"text": "a museum"}).json()["model"]["version"] == "2"
        reg.rollback("late-tagger", who="test", why="regression")
        server.wait_until(lambda i: i["model"]["version"] == "1", "v1 served again after rollback")
        assert server.post("/tag", {"text": "a museum"}).json()["model"]["version"] == "1"
    log = server.process.log_tail(100_000)
    assert "switched from v1 to v2 (promotion)" in log and "switched from v2 to v1 (rollback)" in log


# ---------------------------------------------------------------- topics and educational value

GRAIN = "Wheat and corn: the harvest reached 3 million tonnes, grain export bushels rose."
EARNINGS = "Net profit per share rose this qtr; the dividend and revenues beat earnings forecasts."


def local_topics(registry, texts: list[str], top_k: int = 5) -> list[dict]:
    """What the evaluation's inference code says about `texts`, from the registered files."""
    from tagflow.topics.inference import load_local

    root = registry["root"]
    return load_local(root / "topics-svm", root / "topics-thresholds.json").predict(texts, top_k)


def local_edu(registry, texts: list[str]) -> list[tuple[float, int]]:
    from tagflow.edu.model import EduScorer

    scores, ints = EduScorer.load(registry["root"] / "edu-model").score(texts)
    return list(zip(scores.tolist(), ints.tolist()))


def test_topics_of_one_document_and_a_batch_are_the_evaluations_answers(server, registry):
    resp = server.post("/topics", {"text": GRAIN})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    [expected] = local_topics(registry, [GRAIN])
    assert body["topics"] == expected["topics"] == ["grain"]
    assert body["probabilities"] == expected["probabilities"] and len(body["probabilities"]) == 4
    # the per-class thresholds that decided, for every label shown (grain's was tuned to 0.35)
    assert body["thresholds"] == {"grain": 0.35, "acq": 0.5, "crude": 0.5, "earn": 0.5}
    assert body["model"] == {"name": "fake-topics", "version": "1"}
    assert body["gate"]["metric"] == "validation/micro_f1_tuned" and body["gate"]["note"] is None

    texts = [EARNINGS, GRAIN, "nothing of the sort"]
    batch = server.post("/topics_batch", {"texts": texts, "top_k": 1})
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    expected = local_topics(registry, texts, 1)
    assert [r["topics"] for r in results] == [e["topics"] for e in expected]
    assert [r["probabilities"] for r in results] == [e["probabilities"] for e in expected]
    assert results[0]["topics"] == ["earn"] and results[1]["topics"] == ["grain"]
    assert results[0]["probabilities"].keys() == {"earn"}          # top_k 1: the chosen topic only
    assert batch.json()["model"]["version"] == "1"


def test_edu_score_of_one_page_and_a_batch_are_the_evaluations_scores(server, registry):
    from tests.edu_pages import advert, educational

    texts = [educational(3), advert(5), educational(8)]
    expected = local_edu(registry, texts)
    resp = server.post("/edu", {"text": texts[0]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["score"] == pytest.approx(expected[0][0], abs=1e-5) and body["int_score"] == expected[0][1]
    assert body["model"] == {"name": "fake-edu", "version": "1"}
    assert body["gate"]["metric"] == "val/spearman_within" and body["gate"]["value"] == 0.52

    batch = server.post("/edu_batch", {"texts": texts})
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["score"] for r in results] == pytest.approx([e[0] for e in expected], abs=1e-5)
    assert [r["int_score"] for r in results] == [e[1] for e in expected]
    assert all(r["int_score"] == round(min(5.0, max(0.0, r["score"]))) for r in results)


def test_topics_and_edu_of_an_uploaded_file(server, registry):
    pdf = make_pdf(["Wheat and corn: the harvest reached 3 million tonnes,", "grain export bushels rose."])
    topics = server.post("/topics_file", files={"file": ("wheat.pdf", pdf, "application/pdf")}, data={"top_k": "2"})
    assert topics.status_code == 200, topics.text
    assert topics.json()["topics"] == ["grain"] and len(topics.json()["probabilities"]) == 2
    assert topics.json()["chars"] > 40 and topics.json()["model"]["name"] == "fake-topics"
    edu = server.post("/edu_file", files={"file": ("page.html", b"<p>Lesson: how fractions work</p>", "text/html")})
    assert edu.status_code == 200, edu.text
    [(score, _)] = local_edu(registry, ["Lesson: how fractions work"])
    assert edu.json()["score"] == pytest.approx(score, abs=1e-5) and edu.json()["chars"] == 26
    bad = server.post("/edu_file", files={"file": ("old.doc", b"\xd0\xcf\x11\xe0 word", "application/msword")})
    assert bad.status_code == 415 and "old Word .doc files are not read" in bad.json()["error"]


@pytest.mark.parametrize("route, payload, expected", [
    ("/edu", {"text": " "}, "empty"),
    ("/edu", {}, "required"),
    ("/edu_batch", {"texts": []}, "at least 1"),
    ("/topics", {"text": "wheat", "top_k": 0}, "greater than or equal to 1"),
    ("/topics_batch", {"texts": ["wheat"] * 33}, "at most 32"),
])
def test_invalid_topics_and_edu_requests_get_400(server, route, payload, expected):
    resp = server.post(route, payload)
    assert resp.status_code == 400 and expected in resp.text, resp.text


def test_info_says_which_families_are_in_service(server, servers):
    families = server.info()["families"]
    assert families["topics"]["model"] == {"name": "fake-topics", "version": "1"} and families["topics"]["ready"]
    assert families["edu"]["ready"] and families["edu"]["card"]["head"]["kind"] == "ridge"
    late = servers["late-tagger"].info()["families"]
    assert late["edu"] == late["edu"] | {"ready": False, "model": {"name": "late-edu", "version": None}}
    assert "is not registered" in late["edu"]["reason"]


def test_a_family_without_champion_answers_503_and_the_tagger_serves_on(servers):
    server = servers["busy-tagger"]                 # tagger and topics served, edu has no champion
    resp = server.post("/edu", {"text": "Lesson: fractions"})
    assert resp.status_code == 503, resp.text
    assert "no edu model in service (busy-edu)" in resp.json()["error"] and "promote" in resp.json()["error"]
    assert server.post("/edu_batch", {"texts": ["a", "b"]}).status_code == 503
    # ready means the tagger's champion is loaded (TAGFLOW_READY_FAMILIES: tagger), and it is
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    assert server.info()["ready_requires"] == ["tagger"]
    assert server.post("/tag", {"text": "museum"}).status_code == 200
    assert server.post("/topics", {"text": GRAIN}).json()["topics"] == ["grain"]


def test_topics_do_not_wait_behind_a_slow_tagger(servers):
    server = servers["busy-tagger"]
    slow = threading.Thread(target=server.post, args=("/tag", {"text": "museum sleep:3"}))
    slow.start()
    server.wait_until(lambda i: i["queue"]["pending"] == 1, "the slow tagger request is running")
    resp = server.post("/topics", {"text": GRAIN})
    still = server.info()["queue"]["pending"]       # the tagger's queue: its own inference thread
    slow.join()
    assert resp.status_code == 200 and resp.json()["topics"] == ["grain"]
    assert still == 1, "the topics answer waited for the tagger"


def test_topics_follow_their_champion_alias_both_ways(registry, servers):
    from tagflow.core import registry as reg

    server = servers["late-tagger"]
    resp = server.post("/topics", {"text": GRAIN})
    assert resp.status_code == 503 and "'late-topics' has no champion" in resp.json()["error"], resp.text
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", registry["uri"])
        reg.promote("late-topics", "1", who="test", why="first topics champion")
        server.wait_until(lambda i: i["families"]["topics"]["ready"], "topics v1 loaded after promotion")
        body = server.post("/topics", {"text": GRAIN}).json()
        assert body["topics"] == ["grain"] and body["model"] == {"name": "late-topics", "version": "1"}
        assert body["gate"]["promoted_by_hand"]["why"] == "first topics champion"
        reg.promote("late-topics", "2", who="test", why="a newer one")
        server.wait_until(lambda i: i["families"]["topics"]["model"]["version"] == "2", "topics v2 after promotion")
        assert server.post("/topics_batch", {"texts": [GRAIN]}).json()["model"]["version"] == "2"
        reg.rollback("late-topics", who="test", why="regression")
        server.wait_until(lambda i: i["families"]["topics"]["model"]["version"] == "1", "topics v1 after rollback")
        assert server.post("/topics", {"text": GRAIN}).json()["model"]["version"] == "1"


# ---------------------------------------------------------------- documents in


DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.mark.parametrize("name, data, media", [
    ("report.pdf", make_pdf(["The museum reopened.", "Teachers visited."]), "application/pdf"),
    ("minutes.docx", make_docx(["The museum reopened.", "Teachers visited."]), DOCX_TYPE),
    ("page.html", b"<h1>The museum</h1><p>Teachers visited.</p><script>heritage()</script>", "text/html"),
    ("note.txt", "The museum reopened; teachers visited.".encode(), "text/plain"),
])
def test_tag_file_reads_pdf_docx_html_and_text(server, name, data, media):
    resp = server.post("/tag_file", files={"file": (name, data, media)}, data={"top_n": "5"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [k["label"] for k in body["keywords"]] == ["Museums", "Teachers"]   # not "heritage" from the script
    assert body["model"] == {"name": "fake-tagger", "version": "1"} and body["chars"] > 20


def test_tag_file_takes_the_same_options(server):
    resp = server.post("/tag_file", files={"file": ("a.pdf", make_pdf(["museum heritage"]), "application/pdf")},
                       data={"top_n": "1", "hierarchy": "true", "lang": "fr", "refine": "none"})
    assert resp.status_code == 200, resp.text
    [only] = resp.json()["keywords"]
    assert only["uri"] == C8 and only["micro_thesaurus"]["label"] == "Heritage"
    bad = server.post("/tag_file", files={"file": ("a.txt", b"museum", "text/plain")}, data={"top_n": "0"})
    assert bad.status_code == 400 and "top_n" in bad.text


@pytest.mark.parametrize("name, data, status, message", [
    ("old.doc", b"\xd0\xcf\x11\xe0 word 97", 415, "old Word .doc files are not read"),
    ("sheet.xlsx", b"PK\x03\x04", 415, ".xlsx files are not read"),
    ("broken.pdf", b"%PDF-1.4\n1 0 obj <<", 400, "not a readable PDF file"),
    ("broken.docx", b"PK\x03\x04 truncated", 400, "not a readable DOCX file"),
    ("empty.pdf", b"", 400, "the file is empty"),
    ("scan.pdf", make_pdf([]), 400, "no text found in the PDF file"),
])
def test_unreadable_files_get_one_clear_line(server, name, data, status, message):
    resp = server.post("/tag_file", files={"file": (name, data, "application/octet-stream")})
    assert resp.status_code == status, resp.text
    assert message in resp.json()["error"] and "\n" not in resp.json()["error"]


def test_tag_file_limits(server):
    resp = server.post("/tag_file", files={"file": ("big.txt", b"museum " * 30_000, "text/plain")})
    assert resp.status_code == 413 and "200,000" in resp.json()["error"]
    resp = server.post("/tag_file", files={"file": ("huge.pdf", b"x" * (21 * 1024 * 1024), "application/pdf")})
    assert resp.status_code == 413 and "20,971,520 bytes" in resp.json()["error"]
    assert server.post("/tag_file").status_code == 400                          # no file at all


# ---------------------------------------------------------------- the librarian page, in a browser

CHROMIUM = os.environ.get("TAGFLOW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_librarian_page_tags_a_pasted_text_and_an_uploaded_file(server, browser):
    import json

    page = browser.new_page()
    elsewhere: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server.url) else elsewhere.append(r.url))
    page.goto(f"{server.url}/ui")
    model = page.locator("#model")
    model.filter(has_text="fake-tagger v1").wait_for()
    assert "plumbing-only" in model.inner_text()
    page.locator("#model-edu").filter(has_text="fake-edu v1").wait_for()
    assert "gate promoted: val/spearman_within 0.52 (target 0.3)" in page.inner_text("#model-edu")
    assert "fake-topics v1 · gate promoted: validation/micro_f1_tuned 0.91" in page.inner_text("#model-topics")

    text = "The museum reopened; universities and teachers met. Wheat and corn harvest tonnes rose."
    page.fill("#text", text)
    page.select_option("#lang", "fr")
    page.select_option("#refine", "none")
    page.click("#tag-text")
    page.locator("tr.concept").first.wait_for()
    rows = [[td.inner_text() for td in tr.locator("td").all()] for tr in page.locator("tr.concept").all()]
    assert [r[1] for r in rows] == ["Museums", "Teachers", "Universities"]
    universities = rows[2]
    assert universities[3] == "Éducation › Enseignement supérieur" and universities[4] == "Education systems"
    assert universities[5] == "http://example.org/thes/c3" and universities[2] == "0.500"
    # next to the concepts: the document's educational value and topics, as the endpoints say
    edu, topics = server.post("/edu", {"text": text}).json(), server.post("/topics", {"text": text}).json()
    page.locator("#edu-score").wait_for()
    assert page.inner_text("#edu-score") == f"{edu['score']:.2f}"
    assert f"({edu['int_score']} of 5) · fake-edu v1" in page.inner_text("#edu-out")
    page.locator("#topics-out .topic").first.wait_for()
    assert [c.inner_text().split()[0] for c in page.locator("#topics-out .topic.chosen").all()] == topics["topics"] == ["grain"]
    chips = {c.inner_text().split()[0]: c.inner_text().split()[1] for c in page.locator("#topics-out .topic").all()}
    assert chips == {label: f"{p:.2f}" for label, p in topics["probabilities"].items()}

    page.click("#copy-csv")
    csv = page.input_value("#export").splitlines()
    assert csv[0] == "rank,uri,label,score,broader_path,micro_thesaurus"
    assert csv[3] == "3,http://example.org/thes/c3,Universities,0.5,Éducation > Enseignement supérieur,Education systems"
    page.click("#copy-json")
    exported = json.loads(page.input_value("#export"))
    assert [k["uri"] for k in exported["keywords"]] == [C8, "http://example.org/thes/c5", "http://example.org/thes/c3"]
    assert exported["model"] == {"name": "fake-tagger", "version": "1"}
    assert exported["edu"]["score"] == edu["score"] and exported["topics"]["topics"] == ["grain"]

    report = make_pdf(["Teachers of the region met."])
    page.set_input_files("#file", files=[{"name": "report.pdf", "mimeType": "application/pdf", "buffer": report}])
    page.click("#tag-file")
    page.locator("#status").filter(has_text="characters read from the file").wait_for()
    assert [tr.locator("td").nth(1).inner_text() for tr in page.locator("tr.concept").all()] == ["Teachers"]
    page.fill("#title", "Museum teachers")      # the title is read with the file's text
    page.click("#tag-file")
    page.locator("tr.concept").nth(1).wait_for()
    assert sorted(tr.locator("td").nth(1).inner_text() for tr in page.locator("tr.concept").all()) == ["Museums", "Teachers"]
    page.fill("#title", "")
    # the file's educational value and topics too (the PDF's text, not the pasted one)
    edu = server.post("/edu_file", files={"file": ("report.pdf", report, "application/pdf")}).json()
    topics = server.post("/topics_file", files={"file": ("report.pdf", report, "application/pdf")}).json()
    page.locator("#edu-score").wait_for()
    assert page.inner_text("#edu-score") == f"{edu['score']:.2f}"
    page.locator("#topics-out .topic").first.wait_for()
    assert [c.inner_text().split()[0] for c in page.locator("#topics-out .topic.chosen").all()] == topics["topics"]

    page.set_input_files("#file", files=[{"name": "old.doc", "mimeType": "application/msword",
                                          "buffer": b"\xd0\xcf\x11\xe0 word"}])
    page.click("#tag-file")
    page.locator("#status.error").filter(has_text="old Word .doc files are not read").wait_for()
    page.goto(f"{server.url}/")                     # the docs page renders the endpoints itself
    page.locator("h3", has_text="POST /tag_file").wait_for()
    assert elsewhere == []
    page.close()


def test_librarian_page_greys_out_families_without_champion(servers, browser):
    server = servers["late-tagger"]                 # late-edu is not registered at all
    page = browser.new_page()
    page.goto(f"{server.url}/ui")
    edu = page.locator("#model-edu.unavailable")
    edu.wait_for()
    assert "not available" in edu.inner_text() and "'late-edu' is not registered" in edu.inner_text()
    page.fill("#text", "A lesson on fractions.")
    page.click("#tag-text")
    page.locator("#edu-out.unavailable").filter(has_text="no edu model in service").wait_for()
    assert page.locator("#edu-score").count() == 0
    page.close()


# ---------------------------------------------------------------- concurrency


def _concurrently(server, payloads: list[dict]) -> list[httpx.Response]:
    results: list = [None] * len(payloads)

    def send(i: int) -> None:
        results[i] = server.post("/tag", payloads[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_metadata_answers_while_inference_runs_and_waiting_requests_share_a_model_call(servers):
    server = servers["busy-tagger"]
    before = server.info()["queue"]
    slow = threading.Thread(target=server.post, args=("/tag", {"text": "museum sleep:3"}))
    slow.start()
    # /info answers while the model works (it would say pending 0 if it waited behind it)
    info = server.wait_until(lambda i: i["queue"]["pending"] == 1, "the slow request is running")
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    responses = _concurrently(server, [{"text": "teachers"}, {"text": "museum"}])
    slow.join()
    assert [r.status_code for r in responses] == [200, 200]
    assert [r.json()["keywords"][0]["label"] for r in responses] == ["Teachers", "Museums"]
    after = server.info()["queue"]
    # the two that waited behind the slow one went to the model in one call
    assert after["largest_batch"] >= 2 and after["batches"] - before["batches"] == 2, (info, after)


def test_a_full_queue_refuses_at_once_with_retry_after(servers):
    server = servers["busy-tagger"]
    responses = _concurrently(server, [{"text": f"museum sleep:1 n{i}"} for i in range(8)])
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) >= 1 and codes.count(503) >= 8 - 3, codes     # at most 3 admitted
    assert set(codes) <= {200, 503}, codes
    refused = [r for r in responses if r.status_code == 503]
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert "busy" in refused[0].json()["error"]
    assert server.post("/tag", {"text": "museum"}).status_code == 200        # and it recovers


def test_a_request_past_its_timeout_gets_504(servers):
    server = servers["busy-tagger"]
    resp = server.post("/tag", {"text": "museum sleep:9"})
    assert resp.status_code == 504, resp.text
    assert "within 6 seconds" in resp.json()["error"]


# ---------------------------------------------------------------- start and stop


def test_unreachable_registry_at_start_ends_serve_with_one_message(registry, free_port, server_process):
    import socket

    with socket.socket() as held:                         # bound, never listening: refused
        held.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{held.getsockname()[1]}"
        log = registry["root"] / "serve-dead-registry.log"
        env = {**os.environ, "MLFLOW_TRACKING_URI": dead, "TAGFLOW_REGISTRY_START_ATTEMPTS": "2",
               "BENTOML_HOME": str(registry["root"] / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
        proc = server_process([BENTOML, "serve", "services.tagger_service:Tagger", "--host", "127.0.0.1",
                               "--port", str(free_port())], log, env=env, cwd=ROOT, name="bentoml serve")
        try:
            code = proc.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve kept running with a dead registry:\n{proc.log_tail()}")
        finally:
            proc.stop()
    text = log.read_text()
    assert code != 0, text
    assert text.count("did not answer after 2 tries") == 1, text
    assert dead in text and "(try 1 of 2)" in text
    assert "Starting production" not in text              # no worker was ever started


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _wait_gone(pids: list[int], timeout: float = 30) -> list[int]:
    import time
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_stopping_serve_leaves_no_worker_behind(registry, free_port, server_process, sig):
    """SIGTERM stops the service; even SIGKILL of the serve process (its worker runs in a process
    group of its own, so killing serve's group does not reach it) leaves no worker holding the port."""
    server = Server(registry, "fake-tagger", free_port(), server_process, TAGFLOW_CHAMPION_RECHECK_SECONDS="1")
    try:
        server.wait_ready()
        workers = _children(server.process.proc.pid)
        assert workers, "no worker process found"
        os.killpg(server.process.proc.pid, sig)
        try:
            code = server.process.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running after {sig.name}:\n{server.process.log_tail()}")
        assert _wait_gone(workers) == [], f"worker left behind:\n{server.process.log_tail()}"
        assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), server.process.log_tail()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.url}/livez", timeout=5)
    finally:
        server.stop()


# ---------------------------------------------------------------- the same documents through the CLI


def test_cli_tags_pdf_and_docx_files_with_the_champion(registry, tmp_path):
    import json

    tagflow = str(Path(sys.executable).with_name("tagflow"))
    env = {**os.environ, "MLFLOW_TRACKING_URI": registry["uri"]}
    (tmp_path / "report.pdf").write_bytes(make_pdf(["The museum reopened.", "Teachers visited."]))
    (tmp_path / "minutes.docx").write_bytes(make_docx(["Universities and teachers."]))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<")
    for name, labels in [("report.pdf", ["Museums", "Teachers"]), ("minutes.docx", ["Teachers", "Universities"])]:
        done = subprocess.run([tagflow, "tagger", "tag", str(tmp_path / name), "--model", "fake-tagger"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        body = json.loads(done.stdout)
        assert [k["label"] for k in body["keywords"]] == labels and body["model"]["version"] == "1"
    done = subprocess.run([tagflow, "tagger", "tag", str(tmp_path / "broken.pdf"), "--model", "fake-tagger"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "tagflow tagger tag: error: " in done.stderr and "broken.pdf: not a readable PDF file" in done.stderr
    assert "Traceback" not in done.stderr and "EOF marker" not in done.stderr    # no parser noise
