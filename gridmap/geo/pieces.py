"""The connected pieces a partition cuts into grids, each on its own (:mod:`gridmap.geo.partition`).

A piece carries everything its cut needs (:class:`PieceTask`), so it can be cut anywhere
(:mod:`gridmap.geo.tasks`) and, being the same piece, is cut the same way: its random stream is
seeded by the piece's own name (:func:`seed_key`), not by where it sits among the territory's units,
and a :class:`PieceMemo` answers a piece met again in the same run without cutting it twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from gridmap.geo.graph import UnitGraph


@dataclass
class PieceTask:
    """One connected piece to cut into grids, with all it needs and nothing of the rest: its own
    graph (local indices), households and edge weights, and ``seed_key`` (:func:`seed_key`), which
    seeds its random stream (so the answer does not depend on which other pieces were cut, or
    where)."""

    graph: UnitGraph
    households: np.ndarray
    edge_weight: np.ndarray
    seed_key: int


def seed_key(members: np.ndarray, unit_ids: np.ndarray | None) -> int:
    """The number that seeds a piece's random stream: from the smallest ``unit_id`` among its
    ``members`` (a piece's own name, whatever else the territory holds or in which order its units
    come), or its first member's index where units have no ids."""
    if unit_ids is None:
        return int(members[0])
    digest = hashlib.blake2b(min(unit_ids[members]).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class PieceMemo:
    """The grids of pieces already cut in one run, by everything the cut depends on: the piece's
    unit ids, every array of its graph, its households, edge weights and seed key (a piece is
    built in the order of its units' ids, so the same piece is the same bytes whatever order its
    units came in), and how it was cut (rules, seed, exact mode). A piece met again is answered
    with the grids it got before, which a fresh cut would give too: the memo only saves time.

    One memo serves the partitions of one run: ``gridmap partition`` partitions again after
    rebuilding some communities at building grain, and cuts only the pieces whose units changed
    (a neighbour of a rebuilt community whose border took new vertices is cut again: its graph's
    measures moved by float noise)."""

    def __init__(self) -> None:
        self._cut: dict[bytes, list[np.ndarray]] = {}

    @staticmethod
    def key(task: PieceTask, unit_ids: np.ndarray, rules: object, seed: int, small_exact: bool) -> bytes:
        """The digest of what the cut of ``task`` depends on (``unit_ids``: its units' ids in its
        local order; ``rules``: the partition's ``PartitionRules``, whose repr names every setting)."""
        h = hashlib.blake2b(digest_size=20)
        g = task.graph
        h.update(repr((g.n, task.seed_key, seed, small_exact, rules)).encode("utf-8"))
        h.update("\x1f".join(unit_ids).encode("utf-8"))
        for array in (g.left, g.right, g.length_m, g.major_share, g.xy, g.area_m2, g.perimeter_m, task.households,
                      task.edge_weight):
            contiguous = np.ascontiguousarray(array)
            h.update(repr((contiguous.dtype.str, contiguous.shape)).encode("ascii"))
            h.update(contiguous.tobytes())
        return h.digest()

    def get(self, key: bytes) -> list[np.ndarray] | None:
        """The grids (local indices) of the piece cut before under ``key``; None if it was not."""
        return self._cut.get(key)

    def put(self, key: bytes, parts: list[np.ndarray]) -> None:
        """Keep the grids ``parts`` (local indices) of the piece ``key``."""
        self._cut[key] = parts


__all__ = ["PieceTask", "PieceMemo", "seed_key"]
