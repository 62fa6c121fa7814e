"""Per-step progress lines for long-running commands, so nothing ever runs in silence.

Lines go to stderr (stdout stays clean for data such as ``gridmap db url``) and carry the
elapsed time, e.g. ``[gridmap] 3/5 loading buildings ... done (2.1 s)``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    """Announce numbered steps of a job; ``quiet=True`` silences it (library use)."""

    def __init__(self, total: int | None = None, *, quiet: bool = False, stream: TextIO | None = None):
        self.total = total
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.count = 0

    def _prefix(self) -> str:
        if self.total:
            return f"[gridmap] {self.count}/{self.total} "
        return "[gridmap] "

    def say(self, message: str) -> None:
        """Print one free-standing line."""
        if not self.quiet:
            print(f"[gridmap] {message}", file=self.stream, flush=True)

    @contextmanager
    def step(self, message: str) -> Iterator[None]:
        """Announce a step, then report it done with its duration (or failed)."""
        self.count += 1
        started = time.perf_counter()
        if not self.quiet:
            print(f"{self._prefix()}{message} ...", file=self.stream, flush=True)
        try:
            yield
        except BaseException:
            if not self.quiet:
                print(f"{self._prefix()}{message} FAILED", file=self.stream, flush=True)
            raise
        if not self.quiet:
            took = time.perf_counter() - started
            print(f"{self._prefix()}{message} done ({took:.1f} s)", file=self.stream, flush=True)


QUIET = Progress(quiet=True)
