"""Independent pieces of geometry work, run one after the other or on a cluster.

A partition cuts every connected piece of a community on its own, and micro-grids divide every
grid on its own: the pieces share nothing, so they can run anywhere. This module says how the
geometry code hands them out — a :class:`Runner` maps a function over batches of pieces — without
knowing where they run: :data:`SERIAL` runs them here, in order; ``gridmap.distributed`` runs them
as tasks on a Dask cluster. Each piece carries everything it needs (its own graph, households,
the seed of its random stream), so the answer does not depend on where or in which order it ran:
a distributed run gives the serial run's grids exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")


class Runner(Protocol):
    """Where batches of independent pieces run."""

    workers: int
    """How many run at once (1: one after the other); batches are cut to keep them all busy."""

    def map(self, fn: Callable[..., list[R]], batches: Sequence[list[T]], *, what: tuple[str, str],
            **shared: Any) -> list[list[R]]:
        """``[fn(batch, **shared) for batch in batches]``, in the batches' order. ``what`` names the
        pieces (English, Chinese) for progress lines; ``shared`` goes to every batch once."""
        ...


class SerialRunner:
    """Every batch here, one after the other: the default, and the fastest for small territories."""

    workers = 1

    def map(self, fn: Callable[..., list[R]], batches: Sequence[list[T]], *, what: tuple[str, str],
            **shared: Any) -> list[list[R]]:
        return [fn(batch, **shared) for batch in batches]


SERIAL = SerialRunner()

BATCHES_PER_WORKER = 16
"""Batches per worker: enough that a worker with a heavy batch does not hold up the others (a
few pieces need long exact searches: with 4 a worker, 雨城区's micro-grid pieces ran 1.1x faster
on 2 workers; see the README's figures), few enough that each task's overhead (about a
millisecond on Dask) stays small."""


def batches(sizes: np.ndarray, workers: int) -> list[np.ndarray]:
    """Piece indices in batches of about equal total size (``sizes``: units per piece), as many
    as ``workers`` × :data:`BATCHES_PER_WORKER` (one batch of all when ``workers`` is 1), each
    batch in ascending piece order. Largest pieces first onto the lightest batch (LPT)."""
    n = len(sizes)
    if n == 0:
        return []
    count = 1 if workers <= 1 else min(n, workers * BATCHES_PER_WORKER)
    if count == 1:
        return [np.arange(n)]
    load = np.zeros(count)
    owner = np.empty(n, dtype=np.int64)
    for i in np.argsort(-np.asarray(sizes, dtype=float), kind="stable"):
        b = int(np.argmin(load))
        owner[i] = b
        load[b] += sizes[i]
    return [np.flatnonzero(owner == b) for b in range(count) if (owner == b).any()]


def run_pieces(runner: Runner, fn: Callable[..., list[R]], pieces: list[T], sizes: np.ndarray, *,
               what: tuple[str, str], **shared: Any) -> list[R]:
    """``[fn([piece], **shared)[0] for piece in pieces]``, computed in batches on ``runner``."""
    groups = batches(sizes, runner.workers)
    answers = runner.map(fn, [[pieces[i] for i in group] for group in groups], what=what, **shared)
    out: list[Any] = [None] * len(pieces)
    for group, answer in zip(groups, answers):
        for i, value in zip(group, answer):
            out[i] = value
    return out


__all__ = ["Runner", "SerialRunner", "SERIAL", "batches", "run_pieces", "BATCHES_PER_WORKER"]
