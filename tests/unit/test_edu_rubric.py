"""The LLM judge's pure parts: the rubric prompt, score parsing, the rate limiter (a fake clock),
and reading back a killed run's output."""
from __future__ import annotations

import json

from tagflow.edu.judge import PROMPT, RateLimiter, messages, parse_score, read_judgements


def test_prompt_is_the_additive_five_point_rubric():
    text = messages("A page about fractions.")[0]["content"]
    assert "additive 5-point scoring system" in text
    assert text.count("point") >= 5 and "A page about fractions." in text
    assert PROMPT.rstrip().endswith('"Educational score: <total points>"')


def test_parse_score_takes_the_last_marked_score():
    assert parse_score("Nice page.\nEducational score: 3") == 3
    assert parse_score("educational score:   **4**") == 4
    assert parse_score("Educational score: 2 ... on reflection, Educational score: 1") == 1
    assert parse_score("I would give it 3 points") is None
    assert parse_score("Educational score: 7") is None
    assert parse_score("") is None


class FakeClock:
    def __init__(self):
        self.now, self.slept = 100.0, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_rate_limiter_spaces_requests():
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        limiter.wait()
    assert clock.slept == [0.25, 0.25, 0.25]  # first goes at once, then one every 1/4 s
    clock.now += 10  # idle: the next request goes at once again
    limiter.wait()
    assert clock.slept == [0.25, 0.25, 0.25]
    unlimited = RateLimiter(0, clock=clock, sleep=clock.sleep)
    unlimited.wait()
    unlimited.wait()
    assert len(clock.slept) == 3


def test_read_judgements_skips_a_torn_last_line_and_keeps_the_latest(tmp_path):
    out = tmp_path / "judged.jsonl"
    rows = [{"id": "a", "score": None, "error": "HTTP 500"}, {"id": "b", "score": 2},
            {"id": "a", "score": 4}]
    out.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"id": "c", "sco')
    got = read_judgements(out)
    assert sorted(got) == ["a", "b"] and got["a"]["score"] == 4
    assert read_judgements(tmp_path / "absent.jsonl") == {}
