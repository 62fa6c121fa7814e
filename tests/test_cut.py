"""Cutting a unit keeps the coverage exact: the pieces keep the unit's vertices, nothing is
dropped where the line wiggles across the border, and the neighbours take the crossing points,
so units still match edge for edge (GEOS coverage validation, no tolerance) and stay valid once
projected to the Gauss-Krüger zone."""

from __future__ import annotations

import math

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from gridmap.geo.cut import cut_unit
from gridmap.geo.synthetic import centreline_layout, street_grid_layout
from gridmap.geo.units import build_units

LAYOUTS = {}


def units_of(kind: str):
    if kind not in LAYOUTS:
        if kind == "centreline":
            layout = centreline_layout(2)
        else:
            layout = street_grid_layout(4, communities_x=2, streets=3, compounds=3)
        LAYOUTS[kind] = np.asarray(build_units(layout.communities, layout.roads, layout.buildings,
                                               compounds=layout.compounds).geometry.values, dtype=object)
    return LAYOUTS[kind]


def apply(geoms: np.ndarray, k: int, line) -> tuple[np.ndarray, object]:
    neighbours = np.flatnonzero(shapely.intersects(geoms, geoms[k]))
    neighbours = neighbours[neighbours != k]
    cut = cut_unit(geoms[k], line, geoms[neighbours])
    out = geoms.copy()
    for i, revised in cut.revised.items():
        out[neighbours[i]] = revised
    return np.concatenate([np.delete(out, k), np.asarray(cut.pieces, dtype=object)]), cut


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["centreline", "street_grid"]), pick=st.integers(0, 10**6),
       angle=st.floats(0, math.pi), offset=st.floats(-0.3, 0.3))
def test_a_cut_keeps_the_coverage_exact(kind: str, pick: int, angle: float, offset: float) -> None:
    geoms = units_of(kind)
    assert shapely.coverage_is_valid(geoms)
    k = pick % len(geoms)
    unit = geoms[k]
    x0, y0, x1, y1 = unit.bounds
    cx, cy = unit.point_on_surface().x + offset * (x1 - x0), unit.point_on_surface().y
    reach = 2 * max(x1 - x0, y1 - y0)
    line = shapely.LineString([(cx - math.cos(angle) * reach, cy - math.sin(angle) * reach),
                               (cx + math.cos(angle) * reach, cy + math.sin(angle) * reach)])
    try:
        after, cut = apply(geoms, k, line)
    except ValueError:
        return  # the line missed the unit or did not cut it in two: nothing to check
    assert shapely.coverage_is_valid(after)
    # the pieces keep every vertex of the unit and tile it: no area lost or gained
    before = {tuple(c) for c in shapely.get_coordinates(unit).tolist()}
    kept = {tuple(c) for piece in cut.pieces for c in shapely.get_coordinates(piece).tolist()}
    assert before <= kept
    assert abs(sum(p.area for p in cut.pieces) - unit.area) <= 1e-9 * unit.area
    # valid once projected to the Gauss-Krüger zone (CGCS2000, central meridian 102°E)
    to_gk = Transformer.from_crs(4490, 4543, always_xy=True)
    projected = shapely.transform(after, lambda c: np.column_stack(to_gk.transform(c[:, 0], c[:, 1])))
    assert shapely.is_valid(projected).all()


def test_a_wiggling_line_drops_nothing() -> None:
    """A line that crosses the border back and forth near its end leaves crumbs: they join a
    piece instead of vanishing (they used to be dropped, leaving holes of a few cm²)."""
    unit = shapely.box(0, 0, 10, 10)
    neighbour = shapely.box(10, 0, 20, 10)
    wiggle = shapely.LineString([(-1, 5), (9.99999, 5), (10.00001, 5.000001), (9.999995, 5.000002), (11, 5.000003)])
    cut = cut_unit(unit, wiggle, [neighbour])
    assert len(cut.pieces) == 2
    assert abs(sum(p.area for p in cut.pieces) - unit.area) < 1e-12
    assert shapely.coverage_is_valid(np.array([*cut.pieces, cut.revised[0]], dtype=object))


def test_the_neighbour_takes_the_crossing_point() -> None:
    unit, right, far = shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), shapely.box(5, 5, 6, 6)
    cut = cut_unit(unit, shapely.LineString([(-1, 0.37), (2, 0.37)]), [right, far])
    assert sorted(cut.revised) == [0]
    assert (1.0, 0.37) in {tuple(c) for c in shapely.get_coordinates(cut.revised[0]).tolist()}
    assert cut.revised[0].equals(right)
