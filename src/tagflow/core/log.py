"""Logging and progress. Library code logs through `logging.getLogger("tagflow.<module>")`; the
CLI sends those records to stderr as `[module] message` lines, and Prefect shows them in the flow
run's logs because `tagflow` is one of its extra loggers (see `configure`).

Progress is periodic lines (count, rate, ETA) that read well in `dvc repro` logs and CI output,
where a redrawn bar would not."""
from __future__ import annotations

import logging
import os
import sys
import time


def get_logger(name: str) -> logging.Logger:
    """`tagflow.core.models` -> logger `tagflow.models`: short names in the `[name]` prefix."""
    short = name.split(".")[-1] if name.startswith("tagflow.") else name
    return logging.getLogger(f"tagflow.{short}")


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (pytest's capture, a redirected stream)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


class _ShortName(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.short = record.name.removeprefix("tagflow.")
        return super().format(record)


TELEMETRY_OFF = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "GX_ANALYTICS_ENABLED": "false",
                 "DO_NOT_TRACK": "true", "BENTOML_DO_NOT_TRACK": "true", "HF_HUB_DISABLE_TELEMETRY": "1",
                 "DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}


def configure(level: int = logging.INFO) -> None:
    """Send tagflow's records to stderr (once), and let Prefect's flow-run logs include them."""
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "tagflow")
    # Outside a flow run (e.g. `tagflow models`) these records just go to stderr, silently.
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    # The ephemeral API server needs more than Prefect's default 20 s on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # Telemetry off however a command is started (the Makefile sets these too, but a plain
    # `dvc repro` with the venv active runs `tagflow` without it). A site can still opt in.
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
    root = logging.getLogger("tagflow")
    root.setLevel(level)
    if not any(getattr(h, "_tagflow", False) for h in root.handlers):
        handler = _Stderr()
        handler.setFormatter(_ShortName("[%(short)s] %(message)s"))
        handler._tagflow = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False  # Prefect re-emits extra loggers itself; no second copy via root


class Progress:
    def __init__(self, name: str, total: int, unit: str = "items", every: float = 10.0):
        self.log = get_logger(name)
        self.total, self.unit, self.every = total, unit, every
        self.start = self.last = time.monotonic()
        self.count = 0

    def update(self, count: int) -> None:
        self.count = count
        now = time.monotonic()
        if now - self.last >= self.every or count >= self.total:
            self.last = now
            self._line()

    def _line(self) -> None:
        elapsed = time.monotonic() - self.start
        rate = self.count / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.count) / rate if rate > 0 else float("nan")
        self.log.info("%d/%d %s  %.2f %s/s  elapsed %.0fs  eta %.0fs", self.count, self.total,
                      self.unit, rate, self.unit, elapsed, eta)

    def done(self) -> None:
        if self.count < self.total or time.monotonic() - self.last > 0.5:
            self._line()
