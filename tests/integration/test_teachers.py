"""OpenAITeacher against a real OpenAI-compatible HTTP server on loopback (http.server in a
thread), which records every request and answers as each test scripts it."""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tagflow.core.errors import ConfigError
from tagflow.tagger import teachers
from tagflow.tagger.config import TeacherConfig
from tagflow.tagger.teachers import OpenAITeacher, TeacherError, make_teacher


class ChatServer:
    """POST /v1/chat/completions; `respond(body, n)` returns (status, payload) for the n-th call."""

    def __init__(self):
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.respond = self.echo
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    n = len(server.requests)
                status, payload = server.respond(body, n)
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @staticmethod
    def echo(body, n):
        prompt = body["messages"][-1]["content"]
        return 200, {"choices": [{"message": {"role": "assistant", "content": f"doc for {prompt} / {body['seed']}"}}]}

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = ChatServer()
    yield s
    s.close()


@pytest.fixture
def no_sleep(monkeypatch):
    slept = []
    monkeypatch.setattr(teachers.time, "sleep", slept.append)
    return slept


def teacher_for(server_or_url, **kw) -> OpenAITeacher:
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.base_url
    cfg = TeacherConfig(kind="openai", model="llama3.1:8b", base_url=url + "/", temperature=0.3,
                        max_new_tokens=123)
    return OpenAITeacher(cfg, **kw)


def prompts(n):
    return [[{"role": "system", "content": "You write."}, {"role": "user", "content": f"topic {i}"}]
            for i in range(n)]


def test_request_body_and_order(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = teacher_for(server).write(prompts(10), seed=500)
    assert out == [f"doc for topic {i} / {500 + i}" for i in range(10)]  # prompt order, seed per prompt
    assert len(server.requests) == 10
    for req in server.requests:
        assert req["path"] == "/v1/chat/completions"
        body = req["body"]
        assert (body["model"], body["temperature"], body["max_tokens"]) == ("llama3.1:8b", 0.3, 123)
        assert body["messages"][0] == {"role": "system", "content": "You write."}
        assert "Authorization" not in req["headers"]
    assert sorted(r["body"]["seed"] for r in server.requests) == list(range(500, 510))


def test_api_key_sent_as_bearer(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    teacher_for(server).write(prompts(1), seed=1)
    assert server.requests[0]["headers"]["Authorization"] == "Bearer sk-test-123"


def test_null_content_is_empty_text(server):
    server.respond = lambda body, n: (200, {"choices": [{"message": {"content": None}}]})
    assert teacher_for(server).write(prompts(1), seed=1) == [""]


def test_server_error_retried_then_succeeds(server, no_sleep):
    server.respond = lambda body, n: (503, {"error": "warming up"}) if n == 1 else ChatServer.echo(body, n)
    assert teacher_for(server).write(prompts(1), seed=7) == ["doc for topic 0 / 7"]
    assert len(server.requests) == 2 and len(no_sleep) == 1


def test_server_errors_exhaust_retries(server, no_sleep):
    server.respond = lambda body, n: (500, {"error": "model crashed"})
    with pytest.raises(TeacherError) as err:
        teacher_for(server, retries=3).write(prompts(1), seed=1)
    message = str(err.value)
    assert server.base_url in message and "failed 3 times" in message
    assert "HTTP 500" in message and "model crashed" in message
    assert len(server.requests) == 3


def test_client_error_not_retried(server, no_sleep):
    server.respond = lambda body, n: (400, {"error": "unknown model llama3.1:8b"})
    with pytest.raises(TeacherError, match="refused the request: HTTP 400") as err:
        teacher_for(server).write(prompts(1), seed=1)
    assert server.base_url in str(err.value) and "unknown model" in str(err.value)
    assert len(server.requests) == 1 and no_sleep == []


@pytest.mark.parametrize("payload", [{"error": "no choices here"}, {"choices": []}, "not json at all"])
def test_answer_without_choices(server, no_sleep, payload):
    server.respond = lambda body, n: (200, payload)
    with pytest.raises(TeacherError, match=r"without choices\[0\]\.message\.content") as err:
        teacher_for(server).write(prompts(1), seed=1)
    assert server.base_url in str(err.value)
    assert len(server.requests) == 1


def test_unreachable_endpoint(no_sleep):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"  # closed once the block ends
    with pytest.raises(TeacherError, match="failed 2 times: ConnectError") as err:
        teacher_for(url, retries=2).write(prompts(1), seed=1)
    assert url in str(err.value)
    assert len(no_sleep) == 2


def test_rate_limit_is_retried(server, no_sleep):
    server.respond = lambda body, n: (429, {"error": "slow down"}) if n == 1 else ChatServer.echo(body, n)
    assert teacher_for(server).write(prompts(1), seed=3) == ["doc for topic 0 / 3"]


def test_no_prompts(server):
    assert teacher_for(server).write([], seed=1) == []


def test_make_teacher(server):
    cfg = TeacherConfig(kind="openai", base_url=server.base_url)
    assert isinstance(make_teacher(cfg), OpenAITeacher)
    assert server.requests == []  # constructing a teacher sends nothing
    with pytest.raises(ConfigError, match="'transformers' or 'openai', not 'ollama'"):
        make_teacher(TeacherConfig(kind="ollama"))
