"""What every service shares: the champion model (loaded from the MLflow registry, re-checked
while there is none), the request-body limit, and error responses in one shape. A family's
service (services/<family>_service.py) adds only its endpoints and request/response types."""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

from starlette.responses import JSONResponse

logger = logging.getLogger("tagflow.service")

DEFAULT_RECHECK_SECONDS = 5.0


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

    def __init__(self, app: Any, max_bytes: int, note: str = "") -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.note = note  # what else limits a request, for the message

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"error": f"request body too large; the limit is {self.max_bytes:,} bytes"
                                    + (f" ({self.note})" if self.note else "")}).encode()
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


class Champion:
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
        from tagflow.core.registry import NoChampionError, load_champion
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


