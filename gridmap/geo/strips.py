"""Land along a compound's wall given to the compound: no grid winds round its neighbours.

A district office draws each 小区 at its wall and each road at its centre line, so between a
compound and the roads round it lies land where nobody lives: pavement, verge, half a
carriageway, 10–30 m wide. Where a block holds several compounds, what is left of the block once
they are carved out runs round all of them as one unit, and it can only join one grid: that grid
then winds round its neighbours' compounds (on the demo 雨城区 a grid of 300 households had a
compactness, Polsby-Popper, of 0.04, its own compounds ringed by a band that also ringed three
others). Where the block also holds a few houses outside any compound (a row of walk-ups), the
ring is theirs: at building grain one walk-up of 30 households took a ring of 5.7 ha
(compactness 0.014) on a new user's district.

:func:`share_strips` gives the land of such a block that lies nearer a compound's (or a dedicated
site's) wall than any building of the block to that compound: the way buildings get their cells
(:func:`gridmap.geo.tessellation.building_cells`: a Voronoi diagram of points along the walls and
the block's own buildings, dissolved per wall and clipped to the block). A block without
residents is shared out whole, also with the inhabited blocks beside it. Never a building's
footprint, never across a road, river or railway (a wall along one is no frontage), never into
another community; what is left stays the block. The parts join the unit they front when the
coverage is clean (the unit build's merge step): a compound's unit reaches the road centre lines
round it, as its grid would, and a school's dedicated grid takes its own pavement. Land that no
unit fronts is left to :mod:`gridmap.geo.uninhabited`. Pure geometry: lon/lat in and out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely

from gridmap.geo import coverage
from gridmap.geo.graph import segment_lengths
from gridmap.geo.shapes import LocalScale, points_in, polygonal
from gridmap.geo.tessellation import building_cells

TOUCH_DEG = 1e-7
"""Units this close (about a centimetre) touch: a compound and the block carved round it share
their border up to the overlays' rounding."""
SAMPLE_STEP_M = 10.0
"""Walls are sampled this often for the Voronoi diagram: a border between two walls' land lies
within half of it of where it belongs (20 m put the split above two compounds' common corner
10 m off it; 5 m, as for buildings, took a third more time on Reykjavík), in land nobody lives
on."""
SMOOTH_M = 2.0
"""The borders between the parts are straightened within this (a Voronoi diagram of points every
:data:`SAMPLE_STEP_M` zigzags; it took Reykjavík's clean coverage from 104,039 segments to node to
98,435: the rest of the 32% more than without the parts is their borders themselves)."""
MIN_CONTACT_M = 2.0
"""A unit fronts a block along at least this much of its outline (a corner touching is not a
frontage)."""
NOISE_M2 = 0.01
"""Parts and remainders smaller than this are floating-point crumbs, left out."""


@dataclass(frozen=True)
class SharedStrips:
    """What :func:`share_strips` did: for each output row, the input unit it came from
    (``source``), its geometry and the unit it is to join (``joins``, an input index; -1 for a
    unit, or what is left of one, that stays itself); ``strips``: how many blocks gave land,
    ``parts``: how many parts they gave."""

    source: np.ndarray
    geometry: np.ndarray
    joins: np.ndarray
    strips: int
    parts: int


def share_strips(geoms: np.ndarray, community: np.ndarray, shareable: np.ndarray, inhabited: np.ndarray,
                 walls: np.ndarray, *, buildings: np.ndarray, points: np.ndarray,
                 footprints_anywhere: np.ndarray | None = None,
                 project: Callable[[np.ndarray], np.ndarray], barriers: np.ndarray | None = None) -> SharedStrips:
    """The units ``geoms`` (lon/lat polygons, ``community`` each) with the land along their
    neighbours' walls given to those neighbours (see the module docstring).

    ``shareable``: units whose land may go (blocks that are not a named place); ``inhabited``:
    units with residents; ``walls``: units that take land from an inhabited block too (compounds,
    dedicated sites); a block without residents also gives land to the inhabited units beside it.
    ``buildings``: the inhabited buildings' footprints (or points), ``points`` a point inside
    each: a block keeps the land nearer its own buildings, and every footprint (of those and of
    ``footprints_anywhere``: every building, inhabited or not, wherever its point lies: a
    compound's building reaching over its wall, a shop) (``project``:
    lon/lat to metres, for the frontages' lengths). Where two parts meet on a community border
    they add a vertex to it, which the units across it lack when the two communities are built
    apart: a partial rebuild stitches them (:func:`gridmap.geo.coverage.stitch_borders`, as for
    every unit built apart). Every unit comes back in its place (what is left of it, when it gave land), each part
    after it, in the order of the units they join."""
    geoms = np.asarray(geoms, dtype=object)
    community = np.asarray(community, dtype=object)
    inhabited = np.asarray(inhabited, dtype=bool)
    whole = SharedStrips(np.arange(len(geoms)), geoms, np.full(len(geoms), -1), 0, 0)
    candidates = np.flatnonzero(np.asarray(shareable, dtype=bool) & ~np.asarray(walls, dtype=bool))
    takers = np.asarray(walls, dtype=bool) | inhabited
    if not len(candidates) or not takers.any():
        return whole
    strip, front, frontage = _frontages(geoms, community, candidates, np.flatnonzero(takers), project, barriers)
    keep = ~inhabited[strip] | np.asarray(walls, dtype=bool)[front]  # an inhabited block gives to walls only
    strip, front, frontage = strip[keep], front[keep], frontage[keep]
    if not len(strip):
        return whole
    scale = LocalScale.at(float(np.mean(shapely.get_y(shapely.centroid(geoms[np.unique(strip)])))))
    own, own_of = _own_buildings(geoms, strip, buildings, points)
    cut, area_of = np.unique(np.concatenate([strip, own_of]), return_inverse=True)
    part_block, own_block = area_of[:len(strip)], area_of[len(strip):]
    cells = building_cells(geoms[cut], np.concatenate([frontage, own]), area_of, step_m=SAMPLE_STEP_M, exact=False,
                           smooth_m=SMOOTH_M)
    parts, kept = cells[:len(strip)], cells[len(strip):]  # the land nearest each wall, and each own building
    anywhere = np.empty(0, dtype=object) if footprints_anywhere is None else np.asarray(footprints_anywhere, dtype=object)
    footprints = _footprints_by_block(geoms[cut], np.concatenate([own, anywhere]))[part_block]
    housed = ~shapely.is_empty(footprints)
    housed[housed] = shapely.intersects(parts[housed], footprints[housed])
    back = shapely.intersection(parts[housed], footprints[housed])  # never a building's footprint: kept
    parts[housed] = shapely.difference(parts[housed], footprints[housed])
    rest = _kept_by_block(np.concatenate([kept, back]), np.concatenate([own_block, part_block[housed]]), len(cut))
    parts = polygonal(parts)
    return _assembled(geoms, cut, part_block, parts, front, rest, scale)


def _frontages(geoms: np.ndarray, community: np.ndarray, candidates: np.ndarray, takers: np.ndarray,
               project: Callable[[np.ndarray], np.ndarray], barriers: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(block, fronting unit, frontage) where the unit fronts the block: same community, at least
    :data:`MIN_CONTACT_M` of shared border off the ``barriers`` (a unit across the road centre
    line that bounds the block touches it too, but fronts it across the road); sorted by block,
    then unit. The frontage is the unit's outline along the block, off the barriers (lines)."""
    none = np.empty(0, dtype=np.int64)
    at, near = shapely.STRtree(geoms[takers]).query(geoms[candidates], predicate="dwithin", distance=TOUCH_DEG)
    strip, front = candidates[at], takers[near]
    same = (community[strip] == community[front]) & (strip != front)
    strip, front = strip[same], front[same]
    if not len(strip):
        return none, none, np.empty(0, dtype=object)
    blocks, block_at = np.unique(strip, return_inverse=True)  # each block grown once, not once per neighbour
    contact = shapely.intersection(shapely.boundary(geoms[front]),
                                   shapely.buffer(geoms[blocks], TOUCH_DEG, quad_segs=1)[block_at])
    parts, part_pair = shapely.get_parts(contact, return_index=True)  # lines (and points, where a corner touches)
    coords, part = shapely.get_coordinates(parts, return_index=True)
    follows = np.flatnonzero(part[1:] == part[:-1])  # segment k runs from vertex follows[k] to the next
    seg = np.column_stack([coords[follows], coords[follows + 1]])
    seg_pair = part_pair[part[follows]]
    free = ~coverage.on_barriers(seg, barriers)
    length = np.bincount(seg_pair[free], weights=segment_lengths(seg[free], project), minlength=len(strip))
    fronts = np.flatnonzero(length >= MIN_CONTACT_M)
    if not len(fronts):
        return none, none, np.empty(0, dtype=object)
    kept = free & np.isin(seg_pair, fronts)
    frontage = np.empty(len(strip), dtype=object)
    frontage[fronts] = shapely.multilinestrings(shapely.linestrings(seg[kept].reshape(-1, 2, 2)),
                                                indices=np.searchsorted(fronts, seg_pair[kept]))
    order = fronts[np.lexsort((front[fronts], strip[fronts]))]
    return strip[order], front[order], frontage[order]


def _own_buildings(geoms: np.ndarray, strip: np.ndarray, buildings: np.ndarray, points: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The buildings of each block that gives land: their point in it, or a share of their
    footprint (a tower cut by its 单元 has its point in one piece). Returns the footprints and the
    block of each."""
    buildings = np.asarray(buildings, dtype=object)
    if not len(buildings):
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    blocks = np.unique(strip)
    b_idx, at = points_in(geoms[blocks], points)
    block = blocks[at]
    shapely.prepare(geoms[blocks])
    spread = b_idx[(shapely.area(buildings[b_idx]) > 0) & ~shapely.covers(geoms[block], buildings[b_idx])]
    if len(spread):  # footprints reaching into another giving block
        s_idx, s_at = shapely.STRtree(geoms[blocks]).query(buildings[spread], predicate="intersects")
        share = shapely.area(shapely.intersection(buildings[spread[s_idx]], geoms[blocks[s_at]])) > 0
        b_idx, block = np.concatenate([b_idx, spread[s_idx[share]]]), np.concatenate([block, blocks[s_at[share]]])
    pairs = np.unique(np.column_stack([block, b_idx]), axis=0)
    return buildings[pairs[:, 1]], pairs[:, 0]


def _footprints_by_block(blocks: np.ndarray, footprints: np.ndarray) -> np.ndarray:
    """The union of the building footprints reaching into each block (by some area; empty where
    none): land no part may take."""
    out = np.empty(len(blocks), dtype=object)
    out[:] = shapely.Polygon()
    footprints = np.asarray(footprints, dtype=object)
    footprints = footprints[shapely.area(footprints) > 0] if len(footprints) else footprints
    if not len(footprints):
        return out
    f_idx, b_idx = shapely.STRtree(blocks).query(footprints, predicate="intersects")
    inside = shapely.area(shapely.intersection(footprints[f_idx], blocks[b_idx])) > 0
    f_idx, b_idx = f_idx[inside], b_idx[inside]
    order = np.argsort(b_idx, kind="stable")
    f_idx, b_idx = f_idx[order], b_idx[order]
    starts = np.flatnonzero(np.r_[True, b_idx[1:] != b_idx[:-1]]) if len(b_idx) else np.zeros(0, dtype=np.int64)
    for start, stop in zip(starts, np.r_[starts[1:], len(b_idx)]):
        out[b_idx[start]] = shapely.union_all(footprints[np.unique(f_idx[start:stop])])
    return out


def _kept_by_block(pieces: np.ndarray, block: np.ndarray, count: int) -> np.ndarray:
    """What each block keeps: the union of its own buildings' cells and of the footprints taken
    back from its walls' cells (empty where it keeps nothing). Cut from one Voronoi diagram, they
    share their borders with the parts given away, so the clean that follows has little to node."""
    out = np.empty(count, dtype=object)
    out[:] = shapely.Polygon()
    pieces = polygonal(pieces)
    order = np.argsort(block, kind="stable")
    block, pieces = block[order], pieces[order]
    starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]]) if len(block) else np.zeros(0, dtype=np.int64)
    for start, stop in zip(starts, np.r_[starts[1:], len(block)]):
        members = pieces[start:stop]
        out[block[start]] = members[0] if len(members) == 1 else shapely.union_all(members)
    return polygonal(out)


def _assembled(geoms: np.ndarray, cut: np.ndarray, part_block: np.ndarray, parts: np.ndarray, front: np.ndarray,
               rest: np.ndarray, scale: LocalScale) -> SharedStrips:
    """Every unit in its place (a block that gave land: what it kept, ``rest``, by index into
    ``cut``), each part after it."""
    real = scale.area(parts) > NOISE_M2
    parts, part_block, front = parts[real], part_block[real], front[real]
    given = np.unique(part_block)
    geometry = np.asarray(geoms, dtype=object).copy()
    geometry[cut[given]] = rest[given]
    left = np.ones(len(geoms), dtype=bool)
    left[cut[given]] = scale.area(rest[given]) > NOISE_M2
    source = np.concatenate([np.flatnonzero(left), cut[part_block]])
    geometry = np.concatenate([geometry[left], parts])
    joins = np.concatenate([np.full(int(left.sum()), -1), front])
    order = np.argsort(source, kind="stable")
    return SharedStrips(source[order], geometry[order], joins[order], len(given), len(parts))


__all__ = ["SharedStrips", "share_strips", "MIN_CONTACT_M"]
