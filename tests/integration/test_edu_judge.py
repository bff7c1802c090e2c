"""The LLM-judge annotation flow against a fake OpenAI-compatible server on 127.0.0.1 (real
HTTP): rubric prompt sent, 429 and 5xx retried, raw judgements kept, an answer without a score
recorded as an error, and a run killed mid-way (SIGKILL) resumed without re-judging any page it
had finished."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tagflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
N_PAGES = 10
NO_SCORE = 7  # this page's judge never gives a score


class FakeJudge(BaseHTTPRequestHandler):
    requests: list[int] = []
    failed_once: set[int] = set()
    lock = threading.Lock()

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        prompt = body["messages"][0]["content"]
        page = int(re.search(r"PAGE-(\d+)", prompt).group(1))
        assert "additive 5-point scoring system" in prompt and body["model"] == "fake-judge"
        with self.lock:
            self.requests.append(page)
            first = page not in self.failed_once
            self.failed_once.add(page)
        time.sleep(0.3)  # slow enough to kill a run mid-way
        if page == 3 and first:
            return self.reply(429, {"error": "slow down"}, {"Retry-After": "0"})
        if page == 5 and first:
            return self.reply(503, {"error": "overloaded"})
        answer = ("The extract is a lesson." + ("" if page == NO_SCORE else f"\nEducational score: {page % 6}"))
        self.reply(200, {"choices": [{"message": {"role": "assistant", "content": answer}}]})

    def reply(self, status, payload, headers=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    FakeJudge.requests, FakeJudge.failed_once = [], set()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeJudge)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def setup(tmp_path, server):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["edu"]["judge"] |= {"kind": "openai", "model": "fake-judge", "base_url": server, "retries": 3,
                            "requests_per_second": 0.0, "concurrency": 2, "batch_size": 2}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    pages = tmp_path / "pages.jsonl"
    pages.write_text("".join(json.dumps({"id": f"p{i}", "text": f"PAGE-{i}: a lesson about fractions."}) + "\n"
                             for i in range(N_PAGES)))
    return params, pages, tmp_path / "judged.jsonl"


def rows(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def test_killed_run_resumes_without_rejudging(setup):
    params, pages, output = setup
    env = os.environ | {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([str(Path(sys.executable).parent / "tagflow"), "--params", str(params), "edu",
                             "annotate", "--input", str(pages), "--output", str(output)],
                            cwd=params.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if output.exists() and len(rows(output)) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = rows(output)
    finished = {r["id"] for r in first if r["score"] is not None}
    assert 3 <= len(first) < N_PAGES and finished
    before = len(FakeJudge.requests)

    assert main(["--params", str(params), "edu", "annotate", "--input", str(pages), "--output", str(output)]) == 0
    second_requests = {f"p{p}" for p in FakeJudge.requests[before:]}
    assert not second_requests & finished  # nothing finished was judged again
    final = {r["id"]: r for r in rows(output)}
    assert set(final) == {f"p{i}" for i in range(N_PAGES)}
    for i in range(N_PAGES):
        row = final[f"p{i}"]
        if i == NO_SCORE:
            assert row["score"] is None and "no 'Educational score" in row["error"]
            assert row["raw"] == "The extract is a lesson."  # raw judgement kept
        else:
            assert row["score"] == i % 6 and row["raw"].endswith(f"Educational score: {i % 6}")
            assert row["annotator"] == "fake-judge" and row["error"] is None
    # 429 / 503 retried: each page refused once, then judged. A third request is a page whose retry
    # was answered just before the kill, its row not yet written (so judged again on resume).
    assert FakeJudge.requests.count(3) in (2, 3) and FakeJudge.requests.count(5) in (2, 3)
    resumed = FakeJudge.requests[before:]
    for page in (3, 5):
        if page not in FakeJudge.requests[:before]:   # refused and retried within the resumed run
            assert resumed.count(page) == 2

    # a third run judges only the page still without a score
    before = len(FakeJudge.requests)
    assert main(["--params", str(params), "edu", "annotate", "--input", str(pages), "--output", str(output)]) == 0
    assert FakeJudge.requests[before:] == [NO_SCORE]


def test_unreachable_endpoint_records_errors_and_exits_cleanly(setup, tmp_path):
    from tagflow.edu.config import JudgeConfig
    from tagflow.edu.judge import OpenAIJudge, annotate

    cfg = JudgeConfig(base_url="http://127.0.0.1:9/v1", retries=2, requests_per_second=0, concurrency=1)
    judge = OpenAIJudge(cfg, sleep=lambda s: None)
    out = tmp_path / "x.jsonl"
    stats = annotate([{"id": "a", "text": "PAGE-1"}], judge, out)
    assert stats == {"pages": 1, "already_judged": 0, "judged": 0, "failed": 1}
    row = rows(out)[0]
    assert row["score"] is None and "failed 2 times" in row["error"]
