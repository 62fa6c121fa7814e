"""Bulk point-to-grid routing (``gridmap.geo.routing.containing``) against a brute-force check on
generated layouts: every point lands in a grid that holds it, on shared borders and corners the
smallest code wins, and points outside every grid get -1."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridmap.geo.routing import containing


@settings(max_examples=60, deadline=None)
@given(cols=st.integers(1, 5), rows=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_containing_matches_brute_force(cols: int, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    squares = np.array([shapely.box(i, j, i + 1, j + 1) for i in range(cols) for j in range(rows)])
    codes = np.array([f"{c:03d}" for c in rng.permutation(len(squares))])  # leading zeros, shuffled
    # points anywhere (some outside), a third of them snapped onto the lattice lines and corners
    x = rng.uniform(-1, cols + 1, 300)
    y = rng.uniform(-1, rows + 1, 300)
    snap = rng.random(300) < 0.33
    x[snap] = np.round(x[snap])
    y[snap[::-1]] = np.round(y[snap[::-1]])
    got = containing(x, y, squares, codes)
    points = shapely.points(x, y)
    for k, point in enumerate(points):
        holders = [i for i, square in enumerate(squares) if shapely.intersects(square, point)]
        expected = min(holders, key=lambda i: codes[i]) if holders else -1
        assert got[k] == expected, (x[k], y[k], holders)


def test_containing_handles_empty_inputs() -> None:
    assert containing(np.array([]), np.array([]), np.array([shapely.box(0, 0, 1, 1)]), np.array(["1"])).size == 0
    assert containing(np.array([0.5]), np.array([0.5]), np.array([], dtype=object), np.array([])).tolist() == [-1]
