"""The household band: the one definition of "a comprehensive grid is the right size".

A city sets a band of households per comprehensive grid (300–500 by default; 50–80 for
micro-grids). These functions are the rule's arithmetic, used alike by the partition (how many
grids a piece gets), its repair steps (how far a plan is from the band), the proofs (whether the
band can be met at all) and the report:

* :func:`violation`: how far totals lie outside the band (0 inside it);
* :func:`choose_grid_count`: how many grids a connected piece with ``total`` households needs,
  and why no count puts every grid in the band when none does;
* :func:`candidate_counts`: other feasible counts worth trying;
* :func:`band_grouping_exists`: whether households can be grouped into band-sized groups at all.
"""

from __future__ import annotations

import math

import numpy as np

from gridmap.geo.terms import GRID_TERMS, Terms


def violation(total, lo: float, hi: float):
    """How many households ``total`` lies below ``lo`` or above ``hi`` (0 inside the band);
    element-wise for arrays.

    >>> violation(np.array([250.0, 400.0, 620.0]), 300, 500).tolist()
    [50.0, 0.0, 120.0]
    """
    return np.maximum(lo - total, 0) + np.maximum(total - hi, 0)


def choose_grid_count(total: float, lo: float, hi: float, target: float | None = None, *,
                      terms: Terms = GRID_TERMS) -> tuple[int, str | None, str | None]:
    """Number of grids for a connected piece with ``total`` households, and why it misses the band
    when it must: (k, reason in English, reason in Chinese, in the level's ``terms``), the reasons
    None when the band can be met.

    >>> choose_grid_count(1200, 300, 500)[0]
    3
    >>> choose_grid_count(160, 300, 500)[1]
    'its connected piece (the non-dedicated units joined to it) holds 160 households in all, below the minimum 300'
    """
    target = target or (lo + hi) / 2
    if total < lo:
        return (1, f"its connected piece (the {terms.region_units} joined to it) holds {total:.0f} households in "
                   f"all, below the minimum {lo}",
                f"它所在的连片区域（与它相连的{terms.region_units_zh}）总共只有 {total:.0f} 户，低于下限 {lo} 户")
    k_min = math.ceil(total / hi)
    k_max = math.floor(total / lo)
    if k_min <= k_max:
        return int(min(max(round(total / target), k_min), k_max)), None, None

    def miss(k: int) -> float:  # no k puts every grid in the band: the smallest total miss
        share = total / k
        return k * (max(lo - share, 0) + max(share - hi, 0))

    k = min((k_max, k_min), key=lambda kk: (miss(kk), kk)) if k_max >= 1 else k_min
    per_max, per_min = total / max(k_max, 1), total / k_min
    return (max(int(k), 1),
            f"its connected piece (the {terms.region_units} joined to it) holds {total:.0f} households, which "
            f"cannot be divided into {terms.grids} of {lo}–{hi}: {_count(k_max, terms)} would hold {per_max:.0f}"
            f"{' each' if k_max > 1 else ''}, {_count(k_min, terms)} {per_min:.0f}{' each' if k_min > 1 else ''}",
            f"它所在的连片区域（与它相连的{terms.region_units_zh}）共 {total:.0f} 户，无法分成每个 {lo}–{hi} 户的"
            f"{terms.grid_zh}：分成 {k_max} 个，每个 {per_max:.0f} 户；分成 {k_min} 个，每个 {per_min:.0f} 户")


def _count(k: int, terms: Terms) -> str:
    """``one grid``, ``3 grids`` (in the level's words)."""
    return f"one {terms.grid}" if k == 1 else f"{k} {terms.grids}"


def candidate_counts(total: float, lo: float, hi: float, k: int) -> list[int]:
    """Other grid counts worth trying for a piece: the feasible range around ``k``."""
    k_min = max(math.ceil(total / hi), 1)
    k_max = max(math.floor(total / lo), 1)
    return [c for c in (k - 1, k + 1, k - 2, k + 2) if k_min <= c <= k_max]


def band_grouping_exists(households: np.ndarray, lo: float, hi: float) -> bool:
    """Whether the inhabited units' households can be shared into groups each within [lo, hi]
    (contiguity ignored: when even this fails, no plan puts every grid in the band).

    Depth-first over the feasible grid counts, heaviest unit first, each unit into an open group
    with room (groups of equal sum are interchangeable, so only one of them is tried).

    >>> band_grouping_exists(np.array([417, 180, 60, 18]), 300, 500)
    False
    >>> band_grouping_exists(np.array([250, 250, 200, 150]), 300, 500)
    True
    """
    values = sorted((float(v) for v in households if v > 0), reverse=True)
    total = sum(values)
    if not values:
        return True
    if values[0] > hi:
        return False
    suffix = np.cumsum(values[::-1])[::-1].tolist() + [0.0]
    for k in range(max(math.ceil(total / hi), 1), math.floor(total / lo) + 1):
        failed: set[tuple[int, tuple[float, ...]]] = set()  # states known to lead nowhere

        def place(i: int, sums: tuple[float, ...]) -> bool:
            if i == len(values):
                return all(v >= lo for v in sums)
            # the units left must be able to lift every group to the minimum
            if sum(max(lo - v, 0.0) for v in sums) > suffix[i] or (i, sums) in failed:
                return False
            for g in range(k):  # sums are kept in descending order
                if sums[g] + values[i] > hi or (g and sums[g] in sums[:g]):
                    continue  # no room, or a group of the same sum was already tried
                grown = list(sums)
                grown[g] += values[i]
                if place(i + 1, tuple(sorted(grown, reverse=True))):
                    return True
            failed.add((i, sums))
            return False

        if place(0, (0.0,) * k):
            return True
    return False


__all__ = ["violation", "choose_grid_count", "candidate_counts", "band_grouping_exists"]
