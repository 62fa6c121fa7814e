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
    """The grids of pieces already cut in one run, by what the piece is: its units (by id) with
    their households, which of them border each other and how strongly the cut should keep them
    together (edge weights to four significant digits), its seed key, and how it is cut (rules,
    seed, exact mode). A piece met again with the same units, households and borders is answered
    with the grids it got before, read back by unit id, whatever order its units come in now and
    whatever float noise its measures picked up on the way (the same unit read back from the
    database after a neighbour's rebuild: centroids 3e-7 m apart, its edges in another order).

    One memo serves the partitions of one run: ``gridmap partition`` partitions again after
    rebuilding some communities at building grain, and cuts only the pieces whose units changed."""

    def __init__(self) -> None:
        self._cut: dict[bytes, list[np.ndarray]] = {}

    @staticmethod
    def key(task: PieceTask, unit_ids: np.ndarray, rules: object, seed: int, small_exact: bool) -> bytes:
        """The digest of what the cut of ``task`` depends on (``unit_ids``: its units' ids in its
        local order; ``rules``: the partition's ``PartitionRules``, whose repr names every setting)."""
        order = np.argsort(unit_ids, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        a, b = rank[task.graph.left], rank[task.graph.right]
        low, high = np.minimum(a, b), np.maximum(a, b)
        edges = np.lexsort((high, low))
        h = hashlib.blake2b(digest_size=20)
        h.update(repr((task.seed_key, seed, small_exact, rules)).encode("utf-8"))
        h.update("\x1f".join(unit_ids[order]).encode("utf-8"))
        for array in (np.asarray(task.households, dtype=np.float64)[order], low[edges], high[edges],
                      _significant(task.edge_weight[edges], 4)):
            h.update(np.ascontiguousarray(array).tobytes())
        return h.digest()

    def get(self, key: bytes, unit_ids: np.ndarray) -> list[np.ndarray] | None:
        """The grids (local indices, for units ``unit_ids`` in the piece's local order) of the piece
        cut before under ``key``; None if it was not."""
        parts = self._cut.get(key)
        if parts is None:
            return None
        local = {unit: i for i, unit in enumerate(unit_ids)}
        return [np.array(sorted(local[unit] for unit in part), dtype=np.int64) for part in parts]

    def put(self, key: bytes, unit_ids: np.ndarray, parts: list[np.ndarray]) -> None:
        """Keep the grids ``parts`` (local indices) of the piece ``key``, by unit id."""
        self._cut[key] = [unit_ids[np.asarray(part, dtype=np.int64)] for part in parts]


def _significant(values: np.ndarray, digits: int) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (0 stays 0)."""
    values = np.asarray(values, dtype=np.float64)
    scale = np.where(values == 0, 1.0, 10.0 ** (digits - 1 - np.floor(np.log10(np.abs(np.where(values == 0, 1.0,
                                                                                                   values))))))
    return np.round(values * scale) / scale


__all__ = ["PieceTask", "PieceMemo", "seed_key"]
