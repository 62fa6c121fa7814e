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


@given(st.floats(min_value=1e-12, max_value=3.9e-10), st.floats(min_value=0.0, max_value=6.28))
@settings(max_examples=40, deadline=None)
def test_stitching_a_border_point_computed_twice_makes_one_vertex_not_a_spike(offset: float, angle: float) -> None:
    """A kept unit's vertex ``p`` on a community border, and the rebuilt units across it meeting at
    ``q``, the same crossing computed again a hair (< 4e-10°) away: stitched, the rebuilt units
    take ``p`` (as every one of them had ``q``), where inserting ``p`` beside ``q`` made a ring go
    to ``p`` and back (a self-intersection, seen on 雨城区 after a rebuild at building grain)."""
    p = (103.0148336917, 29.9866338555)
    q = (p[0] + offset * np.cos(angle), p[1] + offset * np.sin(angle))
    kept = np.array([shapely.Polygon([(103.0, 29.98), p, (103.0, 29.99)])], dtype=object)
    new = np.array([shapely.Polygon([(103.0, 29.98), (103.03, 29.98), q]),
                    shapely.Polygon([q, (103.03, 29.98), (103.03, 29.99), (103.0, 29.99)])], dtype=object)
    stitched, revised = coverage.stitch_borders(new, kept)
    assert shapely.is_valid(stitched).all()
    assert len(coverage.problems(np.concatenate([kept, stitched]))) == 0
    assert not revised  # the kept unit is not changed: its vertex was there first
    assert all(p in list(g.exterior.coords) and q not in list(g.exterior.coords) for g in stitched)


def test_a_kept_vertex_beside_a_sharp_corner_is_inserted_into_one_edge_only() -> None:
    """A kept unit's border has two vertices a hair apart (``a``, then ``b`` 1e-10° east); the
    rebuilt unit across it is a thin wedge with its sharp corner at ``a``, so ``b`` lies within
    reach of both of the wedge's edges at ``a``. Stitched, ``b`` goes into the border edge it lies
    on, not into both (which made the ring go to ``b`` and back: a fold, seen on 雨城区)."""
    a = (103.01, 29.98)
    b = (103.01 + 1e-10, 29.98)
    c = (103.02, 29.98)
    kept = np.array([shapely.Polygon([(103.0, 29.98), a, b, c, (103.02, 29.99), (103.0, 29.99)])], dtype=object)
    wedge = np.array([shapely.Polygon([a, (103.02, 29.9799), c])], dtype=object)
    stitched, _ = coverage.stitch_borders(wedge, kept)
    assert shapely.is_valid(stitched[0])
    assert list(stitched[0].exterior.coords).count(b) == 1
    assert len(coverage.problems(np.concatenate([kept, stitched]))) == 0


def test_only_the_outer_vertices_of_the_rebuilt_units_go_into_the_kept_border() -> None:
    """Two rebuilt units share an inner edge that meets the community border at ``a``, with a
    vertex ``b`` on it a hair (5e-11°) before the border. The kept unit across the border takes
    ``a`` (a vertex of the rebuilt side's border) and not ``b``, which lies within reach of its
    edge but on no border of the two sets (seen on 雨城区: four mismatched borders)."""
    x0, x1, y = 103.0, 103.02, 29.98
    a = (103.01, y)
    b = (103.01, y - 5e-11)
    kept = np.array([shapely.Polygon([(x0, y), (x1, y), (x1, y + 0.01), (x0, y + 0.01)])], dtype=object)
    west = shapely.Polygon([(x0, y), (x0, y - 0.01), (103.01, y - 0.01), b, a])
    east = shapely.Polygon([a, b, (103.01, y - 0.01), (x1, y - 0.01), (x1, y)])
    new = np.array([west, east], dtype=object)
    assert len(coverage.problems(new)) == 0
    stitched, revised = coverage.stitch_borders(new, kept)
    border = list(revised[0].exterior.coords)
    assert a in border and b not in border
    assert len(coverage.problems(np.concatenate([stitched, [revised[0]]]))) == 0


def test_a_crossing_rounded_a_grid_step_off_the_other_builds_edge_is_stitched() -> None:
    """Two builds each snap-round their own vertices: a border crossing one found can lie a little
    more than one grid step (1e-10°) off the other's edge between its own rounded ends. Seen on a
    generated city of a million units built in pieces, at 1.002–1.019e-10°; the edges stayed
    unmatched and the build failed. The crossing is taken into the other side's edge."""
    y0, y1, x = 30.6381, 30.6391, 103.2237
    kept = np.array([shapely.Polygon([(x, y0), (x, y1), (x - 0.001, y1), (x - 0.001, y0)])], dtype=object)
    crossing = (x + 1.02e-10, 30.6385)  # the new side's own vertex, on its side of the seam
    south = shapely.Polygon([(x, y0), (x + 0.001, y0), (x + 0.001, 30.6385), crossing])
    north = shapely.Polygon([crossing, (x + 0.001, 30.6385), (x + 0.001, y1), (x, y1)])
    new = np.array([south, north], dtype=object)
    stitched, revised = coverage.stitch_borders(new, kept)
    assert crossing in list(revised[0].exterior.coords)  # both sides' edges now have it: vertex for vertex
    assert shapely.is_empty(shapely.coverage_invalid_edges(np.concatenate([stitched, [revised[0]]]))).all()
    assert shapely.is_valid(stitched).all() and revised[0].is_valid


def test_a_notch_narrower_than_the_snap_keeps_the_rebuilt_unit_valid() -> None:
    """A rebuilt unit with a notch 4e-10° wide right at a kept unit's vertex: snapping both sides
    of the notch onto that vertex would make the ring touch itself, so they stay where they are
    and the stitched units are valid (a review's case)."""
    kept = np.array([shapely.box(0, 0, 2, 1)], dtype=object)
    e = 2e-10
    notched = shapely.Polygon([(0, 0), (1 - e, 0), (1, -1), (1 + e, 0), (2, 0), (2, -2), (0, -2)])
    stitched, revised = coverage.stitch_borders(np.array([notched], dtype=object), kept)
    assert notched.is_valid and shapely.is_valid(stitched).all()
    assert all(shapely.is_valid(g) for g in revised.values())


def _segments(lines: np.ndarray) -> np.ndarray:
    coords, line = shapely.get_coordinates(lines, return_index=True)
    same = line[1:] == line[:-1]
    seg = np.hstack([coords[:-1][same], coords[1:][same]])
    flip = (seg[:, 0] > seg[:, 2]) | ((seg[:, 0] == seg[:, 2]) & (seg[:, 1] > seg[:, 3]))
    seg[flip] = seg[flip][:, [2, 3, 0, 1]]
    return seg


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(1, 4), st.integers(1, 4)),
                min_size=1, max_size=12),
       st.booleans())
def test_the_noding_is_given_every_segment_once_and_makes_the_same_faces(boxes, holed) -> None:
    """faces_of nodes each segment once (an edge two neighbours share, a stretch where boxes
    overlap): the linework it is given is the boundaries' point set with no segment twice, and its
    faces are those of noding every boundary whole, on layouts of touching, overlapping and
    nested boxes, one with a hole."""
    geoms = [shapely.box(x, y, x + w, y + h) for x, y, w, h in boxes]
    if holed:  # a polygon with a hole, and a box filling the hole exactly
        geoms += [shapely.Polygon([(0, 0), (9, 0), (9, 9), (0, 9)], [[(3, 3), (3, 5), (5, 5), (5, 3)]]),
                  shapely.box(3, 3, 5, 5)]
    geoms = np.array(geoms, dtype=object)
    lines = coverage.distinct_linework(geoms)
    seg = _segments(lines)
    assert len(np.unique(seg, axis=0)) == len(seg)  # no segment twice
    assert shapely.equals(shapely.union_all(lines), shapely.union_all(shapely.boundary(geoms)))  # the same points
    whole = shapely.union_all(shapely.boundary(geoms), grid_size=coverage.NODING_GRID_DEG)
    expected = sorted(shapely.to_wkt(shapely.normalize(shapely.get_parts(shapely.polygonize([whole])))))
    assert sorted(shapely.to_wkt(shapely.normalize(coverage.faces_of(geoms)))) == expected


def test_units_sharing_their_edges_hand_the_noding_half_their_segments() -> None:
    """A 3 × 2 tiling of squares has 24 ring segments and 17 edges: the noding is given 17."""
    squares = np.array([shapely.box(x, y, x + 1, y + 1) for x in range(3) for y in range(2)], dtype=object)
    assert len(_segments(coverage.distinct_linework(squares))) == 17
    assert len(coverage.faces_of(squares)) == 6


def test_points_in_polygons_are_the_tree_querys_pairs_sorted_lowest_polygon_first() -> None:
    """shapes.points_in finds the pairs a point query finds (inside, or on the outline too), sorted
    by point and polygon: a point on the border of two polygons meets the lower-numbered first."""
    from gridmap.geo.shapes import points_in

    polygons = np.array([shapely.box(1, 0, 2, 1), shapely.box(0, 0, 1, 1), shapely.box(5, 5, 6, 6)], dtype=object)
    points = shapely.points([(0.5, 0.5), (1.0, 0.5), (3, 3), (1.5, 0.2), (5, 5.5)])
    inside = points_in(polygons, points)
    assert [list(a) for a in inside] == [[0, 3], [1, 0]]  # the border points are in neither
    on = points_in(polygons, points, on_border=True)
    assert [list(a) for a in on] == [[0, 1, 1, 3, 4], [1, 0, 1, 0, 2]]
    for predicate, found in (("within", inside), ("intersects", on)):
        p, g = shapely.STRtree(polygons).query(points, predicate=predicate)
        assert sorted(zip(p.tolist(), g.tolist())) == list(zip(*[a.tolist() for a in found]))
    # an invalid polygon (two parts that overlap, as a user's grid or community can be) holds the
    # points in the overlap too: a prepared one counts ring crossings and would say it does not
    overlapping = np.array([shapely.MultiPolygon([shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3)])], dtype=object)
    several = shapely.points([(1.5, 1.5), (1.6, 1.6), (1.7, 1.4), (0.5, 0.5), (2.5, 2.5)])  # three in the overlap
    for on_border in (False, True):
        assert points_in(overlapping, several, on_border=on_border)[0].tolist() == [0, 1, 2, 3, 4]
    folded = np.array([shapely.from_wkt("POLYGON ((0 4, 4 4, 0 4, 0 2, 0 4))")], dtype=object)  # no area
    assert len(points_in(folded, shapely.points([(1, 3.9), (0.1, 3), (2, 4.1)]))[0]) == 0
