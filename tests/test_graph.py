"""The unit graph's borders: found by sorting segments where exactly two neighbours hold them, by
intersection elsewhere, and the same either way as intersecting every pair of polygons."""

from __future__ import annotations

import itertools

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gridmap.geo.graph import border_pairs


def every_pair(geoms: np.ndarray, groups: np.ndarray | None, min_length: float) -> dict[tuple[int, int], float]:
    """The borders by brute force: every pair's boundaries intersected."""
    found = {}
    for i, j in itertools.combinations(range(len(geoms)), 2):
        if groups is not None and groups[i] != groups[j]:
            continue
        length = shapely.length(shapely.intersection(shapely.boundary(geoms[i]), shapely.boundary(geoms[j])))
        if length > min_length:
            found[(i, j)] = float(length)
    return found


@st.composite
def layouts(draw) -> tuple[np.ndarray, np.ndarray]:
    """Polygons tiling a lattice (cells merged into random, possibly scattered, polygons), some of
    them with extra vertices on their edges that their neighbours lack (T-junctions, as units
    drawn by hand have), up to two cells laid over them again (a segment held three times), and a
    group per polygon."""
    nx, ny = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    labels = draw(st.lists(st.integers(0, 9), min_size=nx * ny, max_size=nx * ny))
    cells = np.array([shapely.box(x, y, x + 1, y + 1) for x in range(nx) for y in range(ny)], dtype=object)
    geoms = np.array([shapely.coverage_union_all(cells[np.asarray(labels) == label])
                      for label in sorted(set(labels))], dtype=object)
    refined = np.array(draw(st.lists(st.booleans(), min_size=len(geoms), max_size=len(geoms))))
    geoms[refined] = shapely.segmentize(geoms[refined], 0.4)
    copies = draw(st.lists(st.integers(0, len(geoms) - 1), max_size=2))  # overlapping input: cells laid again
    geoms = np.concatenate([geoms, np.array([cells[i % len(cells)] for i in copies] + [None], dtype=object)[:-1]])
    groups = np.array(draw(st.lists(st.sampled_from("ab"), min_size=len(geoms), max_size=len(geoms))))
    return geoms, groups


@settings(max_examples=150, deadline=None)
@given(layouts(), st.booleans())
def test_borders_are_those_of_intersecting_every_pair(layout, by_group: bool) -> None:
    geoms, groups = layout
    groups = groups if by_group else None
    left, right, borders = border_pairs(geoms, groups, 1e-9)
    found = dict(zip(zip(left.tolist(), right.tolist()), shapely.length(borders).tolist()))
    expected = every_pair(geoms, groups, 1e-9)
    assert found.keys() == expected.keys()
    assert all(abs(found[pair] - expected[pair]) < 1e-9 for pair in expected)
    assert (np.diff(left * len(geoms) + right) > 0).all()  # sorted by i, then j, each pair once


def test_a_border_matched_on_one_side_only_is_measured_whole() -> None:
    """A border of which one side has a vertex more (a T-junction) shares no segment: it is found
    by intersection, its whole length."""
    tall = shapely.Polygon([(0, 0), (1, 0), (1, 1), (1, 2), (0, 2)])  # a vertex at (1, 1) ...
    wide = shapely.box(1, 0, 2, 2)  # ... and a neighbour without it
    left, right, borders = border_pairs(np.array([tall, wide]), None, 0.0)
    assert (left.tolist(), right.tolist(), shapely.length(borders).tolist()) == ([0], [1], [2.0])


def test_corners_and_groups_are_not_borders() -> None:
    squares = np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2), shapely.box(1, 0, 2, 1)])
    left, right, _ = border_pairs(squares, None, 0.0)
    assert list(zip(left.tolist(), right.tolist())) == [(0, 2), (1, 2)]  # 0 and 1 meet at a point
    left, right, _ = border_pairs(squares, np.array(["a", "a", "b"]), 0.0)
    assert len(left) == 0


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(0, 60), st.integers(0, 10_000))
def test_the_proofs_regions_are_the_walks_from_each_unit(n: int, extra: int, seed: int) -> None:
    """The proofs' regions, found once for all units, are what a walk from each unit through the
    units of non-dedicated grids finds, with the edges among them in the graph's order."""
    from gridmap.geo.graph import UnitGraph, reachable
    from gridmap.geo.proofs import Regions

    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, n, extra), rng.integers(0, n, extra)
    keep = a != b
    left, right = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    graph = UnitGraph(n, left, right, np.ones(len(left)), np.zeros(len(left)), np.zeros((n, 2)), np.ones(n), np.ones(n))
    grid_of = rng.integers(0, 4, n)
    kinds = [str(k) for k in rng.choice(["comprehensive", "dedicated"], 4)]
    regions = Regions.of(graph, grid_of, kinds)
    usable = np.array([kinds[g] != "dedicated" for g in grid_of])
    ok = usable[left] & usable[right]
    for u in range(n):
        walk = reachable(left[ok], right[ok], usable.copy(), u) if usable[u] else np.array([u])
        assert regions.region(u).tolist() == walk.tolist()
        inside = np.isin(left, walk) & np.isin(right, walk) & ok
        edges = regions.edges(u)
        assert edges[0].tolist() == left[inside].tolist() and edges[1].tolist() == right[inside].tolist()


def test_the_major_road_share_depends_on_the_border_not_on_how_it_was_found() -> None:
    """A unit in a hole of another (their border a closed ring) beside a major road along one of
    its sides. The share is the same whether the border comes from the shared segments or, after
    the inner side gains vertices the outer lacks, from intersecting the two outlines (which found
    no border at all when it intersected the outlines projected to metres)."""
    import geopandas as gpd

    from gridmap.geo.graph import build_graph

    inner = shapely.box(0.001, 0.001, 0.002, 0.002)
    outer = shapely.Polygon(shapely.box(0, 0, 0.003, 0.003).exterior.coords, [inner.exterior.coords[::-1]])
    road = gpd.GeoDataFrame(geometry=[shapely.LineString([(0.0005, 0.00205), (0.0025, 0.00205)])], crs=4490)
    shares = []
    for unit in (inner, shapely.segmentize(inner, 0.00025)):  # matched, then a T-junction on every side
        units = gpd.GeoDataFrame({"community_code": ["x", "x"]}, geometry=[outer, unit], crs=4490)
        graph = build_graph(units, major_roads=road)
        assert graph.left.tolist() == [0] and graph.right.tolist() == [1]
        shares.append(float(graph.major_share[0]))
    assert shares[0] == shares[1] and 0 < shares[0] < 1
