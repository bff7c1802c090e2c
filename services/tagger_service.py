"""HTTP service that tags documents with thesaurus concepts using the promoted (champion) model.

    bentoml serve services.tagger_service:Tagger --host 127.0.0.1 --port 3000   # from the project root

Endpoints (all POST, JSON in and out; the Swagger UI is at `/`):
  /tag        {"text": "...", "top_n": 10}  -> {"keywords": [{uri, label, score}], "model": {name, version}}
  /tag_batch  {"texts": ["...", ...], "top_n": 10} -> {"results": [{"keywords": [...]}, ...], "model": ...}
  /info       {} -> which model version is loaded (or why none is), and the request limits
BentoML adds GET /readyz, /livez, /healthz and /metrics.

The model comes from the MLflow registry ($MLFLOW_TRACKING_URI): the version holding the
`champion` alias of `registry.model_name` (params.yaml in the working directory; the environment
variable TAGFLOW_MODEL_NAME overrides it). It is loaded once at start-up. With no champion yet the
service still starts and answers 503 with instructions; it looks at the registry again on later
requests (at most every TAGFLOW_CHAMPION_RECHECK_SECONDS, default 5), so promoting a model needs no
restart. Replacing an already loaded champion does need a restart (a deliberate deploy step).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Annotated, Any

import bentoml
from pydantic import AfterValidator, BaseModel, Field
from starlette.responses import JSONResponse

logger = logging.getLogger("tagflow.service")

MAX_TEXT_CHARS = 200_000      # per request: one text, or all texts of a batch together
MAX_TOP_N = 50
MAX_BATCH_TEXTS = 32
# The raw body is refused before it is parsed. JSON can spend up to 12 bytes on one character
# (an escaped surrogate pair), so 4 MiB admits any body whose text is within MAX_TEXT_CHARS.
MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_RECHECK_SECONDS = 5.0


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("text is empty or only whitespace; send the document's text")
    return text


Text = Annotated[str, Field(strict=True, description=f"document text, at most {MAX_TEXT_CHARS:,} characters"),
                 AfterValidator(_not_blank)]
TopN = Annotated[int, Field(strict=True, ge=1, le=MAX_TOP_N,
                            description="keywords to return (default: tagger.top_n in params.yaml)")]


class Keyword(BaseModel):
    uri: str
    label: str
    score: float


class ModelRef(BaseModel):
    name: str
    version: str


class TagResult(BaseModel):
    keywords: list[Keyword]
    model: ModelRef


class DocumentKeywords(BaseModel):
    keywords: list[Keyword]


class BatchResult(BaseModel):
    results: list[DocumentKeywords]
    model: ModelRef


def _error(status: int, message: str) -> JSONResponse:
    # Same shape as BentoML's own validation errors ({"error": ..., "detail": [...]}).
    return JSONResponse({"error": message}, status_code=status)


def _too_large(chars: int) -> JSONResponse:
    return _error(413, f"text too large: {chars:,} characters; the limit is {MAX_TEXT_CHARS:,} "
                       "characters per request (split the document or send it in several requests)")


class BodySizeLimit:
    """ASGI middleware: refuse request bodies over `max_bytes` with 413 before anything parses them.

    BentoML 1.4 has no request-size setting (api_server.max_request_size was removed), and
    uvicorn reads bodies of any size."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"error": f"request body too large; the limit is {self.max_bytes:,} bytes "
                                    f"(and {MAX_TEXT_CHARS:,} characters of text)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            # The server (h11/httptools) never delivers more than the declared length.
            if not declared.isdigit() or int(declared) > self.max_bytes:
                return await self._refuse(send)
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
            if size > self.max_bytes:
                return await self._refuse(send)
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


def resolve_model_name() -> str:
    env = os.environ.get("TAGFLOW_MODEL_NAME", "").strip()
    if env:
        return env
    from tagflow.config import load_config
    return load_config().registry.model_name


def _default_top_n() -> int:
    from pathlib import Path
    if not Path("params.yaml").exists():   # served elsewhere with TAGFLOW_MODEL_NAME: the documented default
        return 10
    from tagflow.config import load_config
    return load_config().tagger.top_n       # a broken params.yaml stops the start-up with its message


class _Champion:
    """The loaded champion, or the reason there is none; reloads lazily while there is none."""

    def __init__(self, model_name: str, recheck_seconds: float) -> None:
        self.model_name = model_name
        self.recheck_seconds = recheck_seconds
        self.model: Any = None
        self.version: str | None = None
        self.missing_reason: str | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def try_load(self, at_startup: bool = False) -> None:
        from tagflow.registry import NoChampionError, load_champion
        with self._lock:
            if self.model is not None:
                return
            self._checked_at = time.monotonic()
            try:
                model, version = load_champion(self.model_name)
            except NoChampionError as exc:
                self._set_missing(str(exc))
                return
            except Exception as exc:
                # At start-up a broken registry or model must stop the service loudly; later, while
                # waiting for a champion, a registry hiccup is reported as 503 and retried.
                if at_startup:
                    raise
                logger.exception("loading the champion of %s failed", self.model_name)
                self._set_missing(f"could not load the champion of {self.model_name!r}: {exc}")
                return
            self.model, self.version, self.missing_reason = model, str(version), None
            logger.info("loaded %s version %s (champion)", self.model_name, self.version)

    def _set_missing(self, reason: str) -> None:
        if reason != self.missing_reason:     # log once per reason, not on every re-check
            logger.warning("serving without a model: %s", reason)
        self.missing_reason = reason

    def get(self) -> Any:
        if self.model is None and time.monotonic() - self._checked_at >= self.recheck_seconds:
            self.try_load()
        return self.model


@bentoml.service(name="tagger", traffic={"timeout": 600})   # long documents on CPU take minutes
class Tagger:
    def __init__(self) -> None:
        recheck = float(os.environ.get("TAGFLOW_CHAMPION_RECHECK_SECONDS", DEFAULT_RECHECK_SECONDS))
        self.default_top_n = min(_default_top_n(), MAX_TOP_N)
        self.champion = _Champion(resolve_model_name(), recheck)
        # NoChampionError is tolerated (the service starts and says so); any other failure
        # (unreachable registry, broken model) stops the start-up with its own message.
        self.champion.try_load(at_startup=True)

    def _predict(self, texts: list[str], top_n: int) -> list[list[Keyword]] | JSONResponse:
        model = self.champion.get()
        if model is None:
            return _error(503, self.champion.missing_reason or "no champion model is loaded")
        import pandas as pd
        rows = model.predict(pd.DataFrame({"text": texts}), params={"top_n": top_n})
        rows = list(rows)
        if len(rows) != len(texts):
            raise RuntimeError(f"model returned {len(rows)} results for {len(texts)} texts")
        return [[Keyword(uri=k["uri"], label=k["label"], score=float(k["score"])) for k in list(row)[:top_n]]
                for row in rows]

    def _model_ref(self) -> ModelRef:
        return ModelRef(name=self.champion.model_name, version=self.champion.version)

    @bentoml.api(route="/tag")
    def tag(self, text: Text, top_n: TopN | None = None) -> TagResult:
        """Keywords (thesaurus concepts) for one document, best first."""
        if len(text) > MAX_TEXT_CHARS:
            return _too_large(len(text))
        result = self._predict([text], top_n or self.default_top_n)
        if isinstance(result, JSONResponse):
            return result
        return TagResult(keywords=result[0], model=self._model_ref())

    @bentoml.api(route="/tag_batch")
    def tag_batch(self, texts: Annotated[list[Text], Field(min_length=1, max_length=MAX_BATCH_TEXTS)],
                  top_n: TopN | None = None) -> BatchResult:
        """Keywords for several documents in one call (results in the order of `texts`)."""
        total = sum(len(t) for t in texts)
        if total > MAX_TEXT_CHARS:
            return _too_large(total)
        result = self._predict(texts, top_n or self.default_top_n)
        if isinstance(result, JSONResponse):
            return result
        return BatchResult(results=[DocumentKeywords(keywords=k) for k in result], model=self._model_ref())

    @bentoml.api(route="/info")
    def info(self) -> dict:
        """Which model is served (version null while no champion exists) and the request limits."""
        self.champion.get()
        return {
            "model": {"name": self.champion.model_name, "version": self.champion.version},
            "ready": self.champion.model is not None,
            "reason": self.champion.missing_reason,
            "limits": {"max_text_chars": MAX_TEXT_CHARS, "max_top_n": MAX_TOP_N,
                       "max_batch_texts": MAX_BATCH_TEXTS, "max_body_bytes": MAX_BODY_BYTES},
        }


Tagger.add_asgi_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
