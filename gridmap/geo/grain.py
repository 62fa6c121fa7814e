"""The grain of a plan: whether its units could be cut finer at building grain.

A proof that a grid cannot be in the band (:mod:`gridmap.geo.proofs`) reasons about units. It holds
for the territory, not just for the units as built, only when the units it speaks of cannot be
divided further under the rules: a single building, a compound within the size limit (kept whole
by rule), a dedicated site, or land without inhabited buildings. A block of several buildings,
or a piece of a compound that was split, could be cut differently; a miss next to one is not
proven until that community is built at building grain (``build_units(..., atomize=...)``: one
unit per building there) and partitioned again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from gridmap.geo.pieces import PieceMemo

if TYPE_CHECKING:
    from gridmap.geo.partition import AssignedUnits

REFINE_ROUNDS = 3  # a refined community's border vertices reach its neighbours, whose grids may change once more


def divisible(units: pd.DataFrame) -> np.ndarray:
    """Units that could be divided at building grain: two or more inhabited buildings, either a
    block or a piece of a split compound (a whole compound within the limit stays whole by rule;
    sites are dedicated), and not built at building grain already (``atomic``: there a unit of two
    buildings is one whose cells alone would be slivers, which the rules merge). Units without a
    ``buildings`` count (made elsewhere, or stored before it was kept) are taken at their own
    grain: not divisible."""
    if "buildings" not in units:
        return np.zeros(len(units), dtype=bool)
    kind = units["kind"].astype(str).to_numpy()
    piece = units["compound_part"].notna().to_numpy() if "compound_part" in units else np.zeros(len(units), bool)
    several = pd.to_numeric(units["buildings"], errors="coerce").fillna(0).to_numpy() >= 2
    atomic = units["atomic"].fillna(False).astype(bool).to_numpy() if "atomic" in units else np.zeros(len(units), bool)
    return several & (kind != "site") & ((kind == "block") | piece) & ~atomic


def communities_to_refine(units: pd.DataFrame, grids: pd.DataFrame, lo: float, hi: float) -> set[str]:
    """Codes of communities holding a comprehensive grid outside the band and a divisible unit:
    there a finer grain may reach the band, and until then no proof of the miss is valid for the
    territory. ``units`` need ``community_code, grid_code, kind, households`` (and ``buildings``,
    ``compound_part``); ``grids`` need ``grid_code, kind, households``."""
    outside = grids[(grids["kind"] == "comprehensive") & ~grids["households"].between(lo, hi)]["grid_code"]
    missing = set(units.loc[units["grid_code"].isin(outside), "community_code"].astype(str))
    split = units.loc[divisible(units), "community_code"].astype(str)
    return missing & set(split)


def partition_at_building_grain(units: pd.DataFrame, run: Callable[[pd.DataFrame, PieceMemo], AssignedUnits],
                                rebuild: Callable[[frozenset[str]], pd.DataFrame], lo: float, hi: float, *,
                                rounds: int = REFINE_ROUNDS,
                                said: Callable[[str, str], None] = lambda en, zh: None) -> AssignedUnits:
    """``run(units, memo)`` (a partition, not yet assembled:
    :func:`gridmap.geo.partition.assign_units`), then, while some community has a grid outside the
    band next to a divisible unit (:func:`communities_to_refine`), ``rebuild(codes)`` (the units
    again with those communities at building grain, and the ones refined before) and ``run`` on
    them, at most ``rounds`` times; returns the last partition, for the caller to assemble
    (``.assembled()``). The one loop behind ``gridmap partition`` and the benchmarks: how units are
    built and stored is the caller's. A round decides on the next from each unit's grid alone
    (``tally``), so only the partition kept is dissolved and reported. ``run`` passes
    ``memo`` to the partition (:class:`gridmap.geo.pieces.PieceMemo`), so each round cuts again
    only the pieces whose units changed (Reykjavík's second round: 38 of its 64 pieces from the
    memo; cutting took 1.7 s, not 2.0 s: those cut again are the refined communities', at building
    grain, the slowest, and their neighbours whose borders took new vertices)."""
    memo = PieceMemo()
    result = run(units, memo)
    refined: frozenset[str] = frozenset()
    for _ in range(rounds):
        coarse = communities_to_refine(*result.tally(), lo, hi) - refined
        if not coarse:
            break
        said(f"{len(coarse)} communities have grids outside the band with units of several buildings: "
             "rebuilding their units at building grain",
             f"{len(coarse)} 个社区有网格落在区间外且其单元含多栋楼：按楼栋粒度重建这些社区的单元")
        refined |= coarse
        result = run(rebuild(frozenset(coarse)), memo)
    return result


__all__ = ["REFINE_ROUNDS", "divisible", "communities_to_refine", "partition_at_building_grain"]
