"""coverage.union / dissolve: the exact coverage union where the input tiles, the general overlay
where it does not (overlaps, edges that do not match vertex for vertex)."""

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridmap.geo import coverage


def test_edge_matched_squares_union_into_one_square_with_every_vertex() -> None:
    squares = np.array([shapely.box(x, y, x + 1, y + 1) for x in range(3) for y in range(2)], dtype=object)
    out = coverage.union(squares)
    assert out.geom_type == "Polygon" and out.is_valid
    assert shapely.equals(out, shapely.box(0, 0, 3, 2))
    assert out.area == 6.0


def test_overlapping_input_falls_back_to_the_overlay() -> None:
    a, b = shapely.box(0, 0, 2, 2), shapely.box(1, 0, 3, 2)  # overlap of 2 m²: not a coverage
    out = coverage.union(np.array([a, b], dtype=object))
    assert out.is_valid and abs(out.area - 6.0) < 1e-12
    assert shapely.equals(out, shapely.box(0, 0, 3, 2))


def test_a_t_junction_falls_back_to_the_overlay() -> None:
    # the right box's left edge has a vertex at (1, 1) the left box lacks: not edge-matched
    left = shapely.box(0, 0, 1, 2)
    right = shapely.Polygon([(1, 0), (2, 0), (2, 2), (1, 2), (1, 1)])
    out = coverage.union(np.array([left, right], dtype=object))
    assert out.is_valid and out.geom_type == "Polygon" and abs(out.area - 4.0) < 1e-12


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=20, unique=True),
       st.integers(0, 3))
def test_dissolve_equals_the_overlay_per_key(cells, groups) -> None:
    geoms = np.array([shapely.box(x, y, x + 1, y + 1) for x, y in cells], dtype=object)
    keys = np.array([(x + y) % (groups + 1) for x, y in cells])
    distinct, out = coverage.dissolve(geoms, keys)
    assert distinct.tolist() == sorted(set(keys.tolist()))
    for key, geom in zip(distinct, out):
        expected = shapely.union_all(geoms[keys == key])
        assert geom.is_valid and shapely.equals(geom, expected), key
