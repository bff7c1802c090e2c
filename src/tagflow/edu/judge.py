"""The LLM judge: scores pages for educational value with the FineWeb-Edu additive five-point
rubric, through any OpenAI-compatible chat endpoint or a local transformers model.

Resumable and auditable: every judgement is appended to the output JSONL as soon as it returns
(flushed and synced), with the raw answer kept beside the parsed score. A rerun reads the file
first and judges only the pages without a score (a killed run loses at most the requests in
flight; a torn last line is dropped). Requests are rate limited (`requests_per_second`), run
`concurrency` at a time, and retried with backoff on HTTP 429, 5xx and transport errors."""
from __future__ import annotations

import json
import os
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Protocol

from ..core.errors import TagflowError
from ..core.log import Progress, get_logger
from .config import JudgeConfig
from .data import page_id

log = get_logger("edu_judge")

# The FineWeb-Edu annotation prompt (HuggingFaceFW/fineweb-edu), additive 5-point scale.
PROMPT = """Below is an extract from a web page. Evaluate whether the page has a high educational value and could be useful in an educational setting for teaching from primary school to grade school levels using the additive 5-point scoring system described below. Points are accumulated based on the satisfaction of each criterion:

- Add 1 point if the extract provides some basic information relevant to educational topics, even if it includes some irrelevant or non-academic content like advertisements and promotional material.
- Add another point if the extract addresses certain elements pertinent to education but does not align closely with educational standards. It might mix educational content with non-educational material, offering a superficial overview of potentially useful topics, or presenting information in a disorganized manner and incoherent writing style.
- Award a third point if the extract is appropriate for educational use and introduces key concepts relevant to school curricula. It is coherent though it may not be comprehensive or could include some extraneous information. It may resemble an introductory section of a textbook or a basic tutorial that is suitable for learning but has notable limitations like treating concepts that are too complex for grade school students.
- Grant a fourth point if the extract highly relevant and beneficial for educational purposes for a level not higher than grade school, exhibiting a clear and consistent writing style. It could be similar to a chapter from a textbook or a tutorial, offering substantial educational content, including exercises and solutions, with minimal irrelevant information, and the concepts aren't too advanced for grade school students. The content is coherent, focused, and valuable for structured learning.
- Bestow a fifth point if the extract is outstanding in its educational value, perfectly suited for teaching either at primary school or grade school. It follows detailed reasoning, the writing style is easy to follow and offers profound and thorough insights into the subject matter, devoid of any non-educational or complex content.

The extract:
{text}

After examining the extract:
- Briefly justify your total score, up to 100 words.
- Conclude with the score using the format: "Educational score: <total points>\""""
MAX_PAGE_CHARS = 20_000  # longer pages are cut (the prompt budget of a typical endpoint)
_SCORE = re.compile(r"educational score:\s*\**\s*([0-5])\b", re.IGNORECASE)


class JudgeError(TagflowError, RuntimeError):
    """The judge endpoint failed for a page after its retries, or refused the request."""


def parse_score(answer: str) -> int | None:
    """The last `Educational score: N` (N in 0-5) in the answer, None when there is none."""
    found = _SCORE.findall(answer or "")
    return int(found[-1]) if found else None


def messages(text: str) -> list[dict]:
    return [{"role": "user", "content": PROMPT.format(text=text[:MAX_PAGE_CHARS])}]


class RateLimiter:
    """At most `per_second` starts per second across threads (0: unlimited)."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_at = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = self.clock()
            start = max(now, self.next_at)
            self.next_at = start + self.interval
        if start > now:
            self.sleep(start - now)


class Judge(Protocol):
    model: str

    def judge(self, texts: list[str]) -> list[str | Exception]: ...


class OpenAIJudge:
    """POST {base_url}/chat/completions (greedy); the key, if any, from $OPENAI_API_KEY."""

    def __init__(self, cfg: JudgeConfig, sleep: Callable[[float], None] = time.sleep):
        import httpx

        self.cfg, self.model, self.sleep = cfg, cfg.model, sleep
        headers = {}
        if os.environ.get("OPENAI_API_KEY"):
            headers["Authorization"] = f"Bearer {os.environ['OPENAI_API_KEY']}"
        self.client = httpx.Client(base_url=cfg.base_url.rstrip("/"), headers=headers, timeout=300)
        self.limiter = RateLimiter(cfg.requests_per_second)

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        try:
            return min(float(retry_after), 30.0) if retry_after else min(0.5 * 2 ** attempt, 30.0)
        except ValueError:
            return min(0.5 * 2 ** attempt, 30.0)

    def one(self, text: str) -> str:
        import httpx

        body = {"model": self.cfg.model, "messages": messages(text), "temperature": 0.0,
                "max_tokens": self.cfg.max_new_tokens}
        error = "no attempt made"
        for attempt in range(max(1, self.cfg.retries)):
            self.limiter.wait()
            retry_after = None
            try:
                resp = self.client.post("/chat/completions", json=body)
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 429 or resp.status_code >= 500:
                    error, retry_after = f"HTTP {resp.status_code}: {resp.text[:200]}", resp.headers.get("retry-after")
                elif resp.status_code >= 400:
                    raise JudgeError(f"judge endpoint {self.cfg.base_url} refused the request: "
                                     f"HTTP {resp.status_code} {resp.text[:200]}")
                else:
                    try:
                        return resp.json()["choices"][0]["message"]["content"] or ""
                    except (KeyError, IndexError, TypeError, ValueError) as exc:
                        raise JudgeError(f"judge endpoint {self.cfg.base_url} answered without "
                                         f"choices[0].message.content: {exc!r}") from exc
            if attempt + 1 < self.cfg.retries:
                log.info("judge: %s; retry %d of %d", error, attempt + 1, self.cfg.retries - 1)
                self.sleep(self._backoff(attempt, retry_after))
        raise JudgeError(f"judge endpoint {self.cfg.base_url} failed {self.cfg.retries} times: {error}")

    def judge(self, texts: list[str]) -> list[str | Exception]:
        from concurrent.futures import ThreadPoolExecutor

        def safe(text: str) -> str | Exception:
            try:
                return self.one(text)
            except JudgeError as exc:  # one page's failure is recorded, the others go on
                return exc
        with ThreadPoolExecutor(max_workers=max(1, min(self.cfg.concurrency, len(texts)))) as pool:
            return list(pool.map(safe, texts))


class TransformersJudge:
    """A local chat model (greedy), batch by batch: offline, or for a small judge."""

    def __init__(self, cfg: JudgeConfig):
        from ..core.models import load_causal_lm

        self.cfg, self.model = cfg, cfg.model
        self.tok, self.lm = load_causal_lm(cfg.model)

    def judge(self, texts: list[str]) -> list[str | Exception]:
        from ..core.generation import generate_chat

        return generate_chat(self.tok, self.lm, [messages(t) for t in texts],
                             max_new_tokens=self.cfg.max_new_tokens, batch_size=len(texts))


def make_judge(cfg: JudgeConfig) -> Judge:
    return TransformersJudge(cfg) if cfg.kind == "transformers" else OpenAIJudge(cfg)


# ---------------------------------------------------------------- resumable output

def read_judgements(path: str | Path) -> dict[str, dict]:
    """id -> its last judgement in the output file; a torn (unparseable) line is skipped."""
    path, out = Path(path), {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a killed run
        if isinstance(row, dict) and "id" in row:
            out[str(row["id"])] = row
    return out


def _drop_torn_tail(path: Path) -> None:
    """A run killed mid-line leaves a partial last line: cut it so appends start clean."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    from ..core.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_bytes(data[: data.rfind(b"\n") + 1])


def annotate(pages: list[dict], judge: Judge, output: str | Path, batch_size: int = 8) -> dict:
    """Judge every page of `pages` ({"id", "text"}) not yet scored in `output`; returns counts."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    _drop_torn_tail(output)
    finished = {pid for pid, row in read_judgements(output).items() if row.get("score") is not None}
    todo = [p for p in pages if p["id"] not in finished]
    log.info("%d pages: %d already judged, %d to judge with %s", len(pages), len(pages) - len(todo),
             len(todo), judge.model)
    progress = Progress("edu_judge", len(todo), unit="pages")
    scored = failed = 0
    with output.open("a", encoding="utf-8") as fh:
        for start in range(0, len(todo), max(1, batch_size)):
            batch = todo[start:start + max(1, batch_size)]
            for page, answer in zip(batch, judge.judge([p["text"] for p in batch])):
                error = str(answer) if isinstance(answer, Exception) else None
                raw = None if error else answer
                score = None if error else parse_score(raw)
                if score is None and not error:
                    error = "no 'Educational score: N' in the answer"
                scored, failed = scored + (score is not None), failed + (score is None)
                row = {"id": page["id"], "text_sha1": page_id(page["text"]), "text": page["text"],
                       "score": score, "raw": raw, "error": error, "annotator": judge.model,
                       "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            progress.update(start + len(batch))
    progress.done()
    stats = {"pages": len(pages), "already_judged": len(pages) - len(todo), "judged": scored, "failed": failed}
    log.info("judge: %s", stats)
    return stats
