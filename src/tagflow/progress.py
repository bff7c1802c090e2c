"""Periodic progress lines (count, rate, ETA) that read well in `dvc repro` logs and CI output,
where a redrawn bar would not."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, name: str, total: int, unit: str = "items", every: float = 10.0):
        self.name, self.total, self.unit, self.every = name, total, unit, every
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
        print(f"[{self.name}] {self.count}/{self.total} {self.unit}  {rate:.2f} {self.unit}/s  "
              f"elapsed {elapsed:.0f}s  eta {eta:.0f}s", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.count < self.total or time.monotonic() - self.last > 0.5:
            self._line()
