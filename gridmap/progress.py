"""Per-step progress lines for long-running commands, so nothing ever runs in silence.

Lines go to stderr (stdout stays clean for data such as ``gridmap db url``), in English and
Chinese as the CLI's refusals are (``English / 中文``), and carry the elapsed time, e.g.
``[gridmap] 3/5 storing 4887 units / 存储 4887 个单元 ... done 完成 (2.1 s)``.
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

    def say(self, en: str, zh: str) -> None:
        """Print one free-standing line, in English (``en``) and Chinese (``zh``)."""
        if not self.quiet:
            print(f"[gridmap] {en} / {zh}", file=self.stream, flush=True)

    @contextmanager
    def step(self, en: str, zh: str) -> Iterator[None]:
        """Announce a step (in English and Chinese), then report it done with its duration (or
        failed)."""
        message = f"{en} / {zh}"
        self.count += 1
        started = time.perf_counter()
        if not self.quiet:
            print(f"{self._prefix()}{message} ...", file=self.stream, flush=True)
        try:
            yield
        except BaseException:
            if not self.quiet:
                print(f"{self._prefix()}{message} FAILED 失败", file=self.stream, flush=True)
            raise
        if not self.quiet:
            took = time.perf_counter() - started
            print(f"{self._prefix()}{message} done 完成 ({took:.1f} s)", file=self.stream, flush=True)


QUIET = Progress(quiet=True)
