"""What every service shares: the champion model (loaded from the MLflow registry, following its
alias), the start-up registry check, the inference queue (bounded, batching concurrent requests),
the request-body limit, the service's own pages, and error responses in one shape. A family's
service (services/<family>_service.py) adds only its endpoints and request/response types."""
from __future__ import annotations

import concurrent.futures
import json
import logging
import math
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable

from pydantic import AfterValidator, BaseModel, Field
from starlette.responses import JSONResponse

logger = logging.getLogger("tagflow.service")
logger.setLevel(logging.INFO)     # loads and switches are news worth a line in the service log

DEFAULT_RECHECK_SECONDS = 5.0
MAX_TEXT_CHARS = 200_000      # per request: one text, or all texts of a batch together
MAX_BATCH_TEXTS = 32
MAX_FILE_BYTES = 20 * 1024 * 1024     # an uploaded PDF or DOCX (its text: MAX_TEXT_CHARS)


def model_name(env_var: str, default: str) -> str:
    """The registered model a service serves: `env_var` if set, else the family's default name.
    Deliberately not params.yaml: a service runs wherever its model is, not in a checkout."""
    return os.environ.get(env_var, "").strip() or default


def recheck_seconds() -> float:
    return float(os.environ.get("TAGFLOW_CHAMPION_RECHECK_SECONDS", DEFAULT_RECHECK_SECONDS))


def error(status: int, message: str) -> JSONResponse:
    # Same shape as BentoML's own validation errors ({"error": ..., "detail": [...]}).
    return JSONResponse({"error": message}, status_code=status)


def too_large(chars: int, limit: int) -> JSONResponse:
    return error(413, f"text too large: {chars:,} characters; the limit is {limit:,} "
                      "characters per request (split the document or send it in several requests)")


class BodySizeLimit:
    """ASGI middleware: refuse request bodies over `max_bytes` with 413 before anything parses them.

    BentoML 1.4 has no request-size setting (api_server.max_request_size was removed), and
    uvicorn reads bodies of any size."""

    def __init__(self, app: Any, max_bytes: int, note: str = "", per_path: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.note = note  # what else limits a request, for the message
        self.per_path = per_path or {}   # other limits for some paths (file uploads)

    async def _refuse(self, send: Any, limit: int) -> None:
        body = json.dumps({"error": f"request body too large; the limit is {limit:,} bytes"
                                    + (f" ({self.note})" if self.note else "")}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.per_path.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            # The server (h11/httptools) never delivers more than the declared length.
            if not declared.isdigit() or int(declared) > limit:
                return await self._refuse(send, limit)
            return await self.app(scope, receive, send)
        # No declared length (chunked upload): read it here, bounded, then replay it to the app,
        # so the app never starts on a body that turns out too large.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":          # client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                return await self._refuse(send, limit)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


class StaticPages:
    """ASGI middleware: answer GET/HEAD on a few exact paths with fixed HTML pages (the service's
    own docs page at `/`, which replaces BentoML's Swagger page and its remote tag-manager script,
    and the librarian page). Everything else goes on to the app."""

    def __init__(self, app: Any, pages: dict[str, str]) -> None:
        self.app = app
        self.pages = {path: html.encode() for path, html in pages.items()}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        page = self.pages.get(scope.get("path", "")) if scope["type"] == "http" else None
        if page is None or scope.get("method") not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html; charset=utf-8"),
                                (b"content-length", str(len(page)).encode()),
                                (b"cache-control", b"no-cache"),
                                # nothing from elsewhere: scripts, styles and requests stay here
                                (b"content-security-policy",
                                 b"default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                 b"img-src 'self' data:; connect-src 'self'; form-action 'self'")]})
        await send({"type": "http.response.body", "body": page if scope["method"] == "GET" else b""})


# ---------------------------------------------------------------- the champion

# MLflow's HTTP client retries a dead server for minutes by default; the service decides itself
# how long to wait (start-up: a few bounded tries; later: the watcher simply tries again).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


def start_attempts() -> int:
    return max(1, int(os.environ.get("TAGFLOW_REGISTRY_START_ATTEMPTS", "3")))


def check_registry_in_child(model_name: str) -> None:
    """check_registry_at_start in a short-lived child process, so that the serve process (which
    lives as long as the service) never imports MLflow (~170 MB); exits as the check did."""
    import subprocess
    import sys

    code = ("import logging, sys; logging.basicConfig(level=logging.INFO, format='%(message)s', stream=sys.stderr); "
            "from services.common import check_registry_at_start as check; check(sys.argv[1])")
    done = subprocess.run([sys.executable, "-c", code, model_name])
    if done.returncode != 0:
        raise SystemExit(done.returncode)


def check_registry_at_start(model_name: str, attempts: int | None = None, delay: float = 2.0) -> str | None:
    """Before any worker starts: the champion's version (None: the registry answers but has no
    champion yet). A registry that does not answer after `attempts` tries raises SystemExit with
    one message, so `bentoml serve` ends with a non-zero status instead of respawning workers."""
    from tagflow.core.registry import NoChampionError, champion_version, tracking_uri

    attempts = attempts or start_attempts()
    for attempt in range(1, attempts + 1):
        try:
            return champion_version(model_name)
        except NoChampionError as exc:
            logger.warning("starting without a model: %s", exc)
            return None
        except Exception as exc:                      # unreachable, refused, broken store
            reason = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
            if attempt == attempts:
                raise SystemExit(f"tagflow service: the model registry at {tracking_uri()} did not answer "
                                 f"after {attempts} tries ({reason}); start it or set MLFLOW_TRACKING_URI, "
                                 "then start the service again") from None
            logger.warning("registry not answering (try %d of %d): %s", attempt, attempts, reason)
            time.sleep(delay)
    return None


@dataclass(frozen=True)
class Loaded:
    """One loaded registry version and what the service says about it."""
    model: Any
    version: str
    card: dict
    gate: dict
    thesaurus: Any = None       # tagflow.thesaurus.Thesaurus when the model carries one


def gate_of(tags: dict[str, str]) -> dict:
    """The registry's verdict on a version, from its gate.* / manual.* / rollback.* tags."""
    def num(key: str) -> float | None:
        try:
            return float(tags[key])
        except (KeyError, ValueError):
            return None

    gate = {"decision": tags.get("gate.decision"), "metric": tags.get("gate.metric"),
            "value": num("gate.value"), "target": num("gate.target")}
    if tags.get("manual.promoted_by"):
        gate["promoted_by_hand"] = {"by": tags["manual.promoted_by"], "why": tags.get("manual.reason")}
    if tags.get("rollback.by"):
        gate["rolled_back_to"] = {"by": tags["rollback.by"], "why": tags.get("rollback.reason")}
    notes = []
    if gate["decision"] is None:
        notes.append("no gate decision on record for this version")
    elif gate["target"] is not None and gate["target"] <= 0:
        notes.append(f"plumbing-only gate ({gate['metric']} target {gate['target']}): not a measured model")
    if gate["decision"] == "rejected":
        notes.append("this version was rejected by its gate and is champion by hand")
    gate["note"] = "; ".join(notes) or None
    return gate


def load_version(model_name: str, version: str) -> Loaded:
    import mlflow
    from mlflow import MlflowClient

    from tagflow.core.registry import tracking_uri
    from tagflow.tagger.artifact import load_card

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    tags = dict(MlflowClient(tracking_uri=uri).get_model_version(model_name, version).tags)
    model = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")
    impl = model.unwrap_python_model() if hasattr(model, "unwrap_python_model") else model
    thesaurus = getattr(getattr(impl, "tagger", None), "th", None)
    return Loaded(model=model, version=str(version), card=load_card(model), gate=gate_of(tags),
                  thesaurus=thesaurus)


class Champion:
    """The served version, following the registry's `champion` alias both ways (promotion and
    rollback). A watcher thread looks at the alias every `recheck_seconds`; a new version is
    loaded on that thread, off the request path, then swapped in with one assignment, so a
    request sees either the old version or the new one, whole."""

    def __init__(self, model_name: str, recheck_seconds: float,
                 loader: Callable[[str, str], Loaded] = load_version) -> None:
        self.model_name = model_name
        self.recheck_seconds = max(0.25, recheck_seconds)
        self.current: Loaded | None = None
        self.missing_reason: str | None = "loading the champion"
        self.switched_at: float | None = None
        self._loader = loader
        self._stop = threading.Event()
        self._last_problem: str | None = None
        self._thread: threading.Thread | None = None
        self._parent = os.getppid()

    # -- reading (request path: no registry calls, no locks)
    @property
    def ready(self) -> bool:
        return self.current is not None

    # -- the watcher
    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="champion-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def check_once(self) -> None:
        """Look at the alias once; load and swap if it names another version."""
        from tagflow.core.registry import NoChampionError, champion_version

        try:
            version = champion_version(self.model_name)
        except NoChampionError as exc:
            if self.current is None:
                self._problem(str(exc))
            else:       # keep serving what was champion; say so once
                self._problem(f"the champion alias is gone; still serving v{self.current.version}: {exc}")
            return
        except Exception as exc:
            self._problem(f"could not read the registry: {(str(exc).splitlines() or [type(exc).__name__])[0]}")
            return
        if self.current is not None and self.current.version == version:
            self._problem(None)
            return
        try:
            loaded = self._loader(self.model_name, version)
        except Exception as exc:
            logger.exception("loading %s v%s failed", self.model_name, version)
            self._problem(f"could not load the champion {self.model_name} v{version}: {exc}")
            return
        before, self.current = self.current, loaded
        self.switched_at = time.time()
        self.missing_reason = None
        self._problem(None)
        if before is None:
            logger.info("loaded %s v%s (champion)", self.model_name, version)
        else:
            logger.info("switched from v%s to v%s (%s)", before.version, version,
                        "promotion" if int(version) > int(before.version) else "rollback")

    def _problem(self, reason: str | None) -> None:
        if reason and reason != self._last_problem:     # log once per reason, not on every check
            logger.warning("%s", reason)
        self._last_problem = reason
        if self.current is None:
            self.missing_reason = reason or "loading the champion"

    def _watch(self) -> None:
        while not self._stop.is_set():
            if os.getppid() != self._parent:            # the serve process died (SIGKILL): go too
                logger.error("the serving process is gone; this worker stops")
                os.kill(os.getpid(), signal.SIGTERM)
                return
            self.check_once()
            self._stop.wait(self.recheck_seconds)


# ---------------------------------------------------------------- inference off the event loop


class Busy(Exception):
    """Too many requests in flight; `retry_after` seconds is a fair wait."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"busy: retry after {retry_after}s")
        self.retry_after = retry_after


@dataclass
class _Job:
    model: Any
    texts: list[str]
    params: dict
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)


class Batcher:
    """A bounded queue in front of one inference thread that merges concurrent requests.

    `submit` returns at once: a Future, or Busy when `max_pending` requests are already queued
    or running (backpressure: the caller answers 503 with Retry-After rather than making the
    client wait behind work it cannot get to). The thread takes the first waiting request, waits
    up to `wait_seconds` for more, and sends all requests with the same model and parameters to
    one `model.predict` call (at most `max_batch_texts` texts). The event loop never runs
    inference, so metadata endpoints answer while the model works."""

    def __init__(self, max_pending: int, max_batch_texts: int, wait_seconds: float) -> None:
        self.max_pending, self.max_batch_texts, self.wait_seconds = max_pending, max_batch_texts, wait_seconds
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._seconds_per_text = 1.0              # moving estimate, for Retry-After
        self.stats = {"batches": 0, "requests": 0, "refused": 0, "largest_batch": 0}
        self._thread = threading.Thread(target=self._run, name="inference", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._pending

    def submit(self, model: Any, texts: list[str], params: dict) -> concurrent.futures.Future:
        with self._lock:
            if self._pending >= self.max_pending:
                self.stats["refused"] += 1
                raise Busy(max(1, math.ceil(self._seconds_per_text * self._pending)))
            self._pending += 1
        job = _Job(model, texts, params)
        job.future.add_done_callback(self._done)
        self._queue.put(job)
        return job.future

    def _done(self, _future) -> None:
        with self._lock:
            self._pending -= 1

    def stop(self) -> None:
        """Fail what waits (the service is stopping) and end the thread."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(RuntimeError("the service is stopping"))
        self._queue.put(None)

    def _collect(self, first: _Job) -> list[_Job]:
        jobs, texts = [first], len(first.texts)
        deadline = time.monotonic() + self.wait_seconds
        while texts < self.max_batch_texts:
            remaining = deadline - time.monotonic()
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:                         # stop: finish this batch, then end
                self._queue.put(None)
                break
            jobs.append(job)
            texts += len(job.texts)
        return jobs

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [j for j in self._collect(first) if j.future.set_running_or_notify_cancel()]
            groups: dict[tuple, list[_Job]] = {}
            for job in jobs:                        # cancelled (timed out while waiting) jobs dropped
                key = (id(job.model), tuple(sorted(job.params.items())))
                groups.setdefault(key, []).append(job)
            for group in groups.values():
                self._predict(group)

    def _predict(self, group: list[_Job]) -> None:
        import pandas as pd

        texts = [t for job in group for t in job.texts]
        started = time.monotonic()
        try:
            rows = rows_of(group[0].model.predict(pd.DataFrame({"text": texts}), params=group[0].params))
            if len(rows) != len(texts):
                raise RuntimeError(f"model returned {len(rows)} results for {len(texts)} texts")
        except Exception as exc:
            if len(group) > 1:                      # one bad document must not fail the others
                for job in group:
                    self._predict([job])
                return
            group[0].future.set_exception(exc)
            return
        elapsed = time.monotonic() - started
        self._seconds_per_text = 0.8 * self._seconds_per_text + 0.2 * elapsed / max(1, len(texts))
        self.stats["batches"] += 1
        self.stats["requests"] += len(group)
        self.stats["largest_batch"] = max(self.stats["largest_batch"], len(group))
        at = 0
        for job in group:
            job.future.set_result(rows[at:at + len(job.texts)])
            at += len(job.texts)


def rows_of(answer: Any) -> list:
    """A pyfunc's answer as one row per text: a list as it is, a DataFrame (the edu model's) as
    one dict per row."""
    return answer.to_dict("records") if hasattr(answer, "to_dict") else list(answer)


def busy(exc: Busy) -> JSONResponse:
    response = error(503, f"the service is busy ({exc.retry_after}s of work queued); retry after "
                          f"{exc.retry_after} seconds")
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


# ---------------------------------------------------------------- requests and answers


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("text is empty or only whitespace; send the document's text")
    return text


Text = Annotated[str, Field(strict=True, description=f"document text, at most {MAX_TEXT_CHARS:,} characters"),
                 AfterValidator(_not_blank)]
Texts = Annotated[list[Text], Field(min_length=1, max_length=MAX_BATCH_TEXTS)]


UploadedFile = Annotated[Path, Field(description="a text, HTML, PDF or DOCX file")]


async def read_upload(file: Any) -> str | JSONResponse:
    """The text of an uploaded file (plain text, HTML, PDF or DOCX), or a 415/400 naming why
    not. The upload arrives as a temporary file whose name ends with the original name; it is
    removed here."""
    import asyncio

    from tagflow.core.documents import extract_text
    from tagflow.core.errors import DataError

    path = Path(file)
    try:
        return await asyncio.to_thread(extract_text, path.read_bytes(), "upload" + path.suffix)
    except DataError as exc:
        return error(415 if "not read" in str(exc) else 400, str(exc))
    finally:
        path.unlink(missing_ok=True)


class ModelRef(BaseModel):
    name: str
    version: str


# ---------------------------------------------------------------- one model family in a service


class Family:
    """One model family a service answers for: its champion (followed by the watcher) and its
    own inference queue and thread, so a slow tagger generation never holds up a topics or edu
    request. A family without a champion answers 503 naming why; the others go on serving."""

    def __init__(self, family: str, model_name: str, *, max_pending: int, batch_texts: int,
                 batch_wait: float, timeout: float) -> None:
        self.family, self.timeout = family, timeout
        self.champion = Champion(model_name, recheck_seconds())
        self.batcher = Batcher(max_pending, batch_texts, batch_wait)

    @property
    def model_name(self) -> str:
        return self.champion.model_name

    @property
    def ready(self) -> bool:
        return self.champion.ready

    def start(self, wait: bool = True) -> None:
        """Follow the alias; `wait`: load the champion first (so it is there when /readyz says
        ready), else on the watcher thread (a family /readyz does not wait for never delays the
        others' start)."""
        if wait:
            self.champion.check_once()
        self.champion.start()

    def stop(self) -> None:
        self.champion.stop()
        self.batcher.stop()

    def identity(self, loaded: Loaded) -> dict:
        """What every answer carries: the version that answered and its gate verdict."""
        return {"model": ModelRef(name=self.model_name, version=loaded.version), "gate": loaded.gate}

    def info(self) -> dict:
        loaded = self.champion.current
        return {"model": {"name": self.model_name, "version": loaded.version if loaded else None},
                "gate": loaded.gate if loaded else None, "card": loaded.card if loaded else {},
                "ready": loaded is not None, "reason": self.champion.missing_reason,
                "queue": {"pending": self.batcher.pending, "max_pending": self.batcher.max_pending,
                          **self.batcher.stats}}

    async def predict(self, texts: list[str], params: dict) -> tuple[Loaded, list] | JSONResponse:
        """(the version that answered, one row per text) from the champion's own predict, or
        the error response (413 too large, 503 no champion or busy, 504 too slow, 400 refused)."""
        import asyncio

        total = sum(len(t) for t in texts)
        if total > MAX_TEXT_CHARS:
            return too_large(total, MAX_TEXT_CHARS)
        loaded = self.champion.current          # one version for the whole request
        if loaded is None:
            return error(503, f"no {self.family} model in service ({self.model_name}): "
                              f"{self.champion.missing_reason or 'no champion model is loaded'}")
        try:
            future = self.batcher.submit(loaded.model, texts, params)
        except Busy as exc:
            return busy(exc)
        try:
            rows = await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except (asyncio.TimeoutError, concurrent.futures.CancelledError):
            future.cancel()                     # still queued: it is dropped; running: discarded
            return error(504, f"no answer within {self.timeout:g} seconds; the service is "
                              "overloaded or the document is very long (send a shorter text)")
        except Exception as exc:
            from tagflow.core.errors import TagflowError
            if isinstance(exc, TagflowError):
                return error(400, str(exc))
            raise
        return loaded, rows


def families_from_env(env_var: str, default: str, known: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of family names (e.g. which families /readyz waits for)."""
    names = tuple(n.strip() for n in (os.environ.get(env_var) or default).split(",") if n.strip())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"{env_var}: unknown famil{'y' if len(unknown) == 1 else 'ies'} "
                         f"{', '.join(unknown)}; known: {', '.join(known)}")
    return names
