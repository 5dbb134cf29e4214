"""Progress for long runs: a bar with rate and ETA on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Reports `done` of `total` to a stream (stderr by default)."""

    def __init__(
        self,
        total: int,
        label: str,
        *,
        stream: TextIO | None = None,
        every_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.every = every_seconds if not self.tty else 0.1
        self.clock = clock
        self.started = clock()
        self.last_report = float("-inf")
        self.reported: int | None = None
        self.done = 0

    def line(self) -> str:
        """The current state in words: count, percent, rate and ETA."""
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = self.done / elapsed
        percent = 100.0 * self.done / self.total if self.total else 100.0
        left = (self.total - self.done) / rate if rate > 0 and self.total > self.done else 0.0
        return f"{self.label}: {self.done}/{self.total} ({percent:.0f}%), {rate:,.0f}/s, ETA {left:.0f}s"

    def update(self, done: int, *, force: bool = False) -> None:
        """Record progress and report it when due (always at the end, or when forced)."""
        self.done = done
        now = self.clock()
        finished = done >= self.total
        if self.reported == done or not (force or finished or now - self.last_report >= self.every):
            return
        self.last_report = now
        self.reported = done
        if self.tty:
            filled = int(30 * done / self.total) if self.total else 30
            self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.line()}\033[K")
            if finished:
                self.stream.write("\n")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
