"""Strips of land without residents shared among the units they front.

A district office draws each 小区 at its wall and each road at its centre line, so between a
compound and the roads around it lies a strip where nobody lives: pavement, verge, half a
carriageway, 10–30 m wide. Where a block holds several compounds, what is left of the block
after they are carved out is one strip running round all of them. As one unit it can only join
one grid, and that grid then winds round its neighbours' compounds: on the demo 雨城区 a grid of
300 households had a compactness (Polsby-Popper) of 0.04, its own compounds ringed by a band
that also ringed three others (:mod:`gridmap.geo.uninhabited` places such land after the cut, but
a ring in any one grid is still a ring).

:func:`share_strips` cuts each such strip into the land nearest each unit that fronts it (an
inhabited unit or a dedicated site), the way buildings get their cells
(:func:`gridmap.geo.tessellation.building_cells`: a Voronoi diagram of points along the units'
frontages, dissolved per unit and clipped to the strip). The parts tile the strip exactly, and
each is joined to the unit it fronts (by the unit build's merge step, once the coverage is
clean): a compound's unit then reaches the road centre lines round it, as its grid would, and a
school's dedicated grid takes its own pavement. Pure geometry: lon/lat in, lon/lat out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely

from gridmap.geo import coverage
from gridmap.geo.graph import segment_lengths
from gridmap.geo.tessellation import building_cells

TOUCH_DEG = 1e-7
"""Units this close (about a centimetre) touch: a compound and the strip carved round it share
their border up to the overlays' rounding."""
SAMPLE_STEP_M = 10.0
"""Frontages are sampled this often for the Voronoi diagram (5 m, as for buildings, took 0.35 s
where this takes 0.29 s on Reykjavík's 162 strips of several frontages, for cuts a few metres
apart at most in land nobody lives on)."""
MIN_CONTACT_M = 2.0
"""A unit fronts a strip along at least this much of its outline (a corner touching is not a
frontage)."""


@dataclass(frozen=True)
class SharedStrips:
    """What :func:`share_strips` did: for each output row, the input unit it came from
    (``source``), its geometry and the unit it is to join (``joins``, an input index; -1 for a
    unit that is not part of a strip); ``strips``: how many strips were shared out (cut among
    several units, or given whole to the one unit fronting it), ``parts``: into how many parts."""

    source: np.ndarray
    geometry: np.ndarray
    joins: np.ndarray
    strips: int
    parts: int


def share_strips(geoms: np.ndarray, community: np.ndarray, bare: np.ndarray, fronting: np.ndarray, *,
                 project: Callable[[np.ndarray], np.ndarray], max_width_m: float,
                 barriers: np.ndarray | None = None) -> SharedStrips:
    """The units ``geoms`` (lon/lat polygons, ``community`` each) with every strip cut among the
    units it fronts.

    A strip is a ``bare`` unit (a block without an inhabited building and not a named place, say)
    whose mean width (twice its area over its perimeter, in metres by ``project``) is under
    ``max_width_m`` and that ``fronting`` units (inhabited ones, dedicated sites) of its own
    community front: share at least :data:`MIN_CONTACT_M` of border with, not along the
    ``barriers`` (the roads, rivers and railways that made the blocks). It is cut into one
    part per such unit (the whole strip, where one fronts it), each to join that unit. Every
    other unit comes back as it is, in its place; a strip's parts come where it was, in the order
    of the units they front. ``max_width_m`` 0 cuts nothing."""
    geoms = np.asarray(geoms, dtype=object)
    community = np.asarray(community, dtype=object)
    whole = SharedStrips(np.arange(len(geoms)), geoms, np.full(len(geoms), -1), 0, 0)
    candidates = np.flatnonzero(np.asarray(bare, dtype=bool) & ~np.asarray(fronting, dtype=bool))
    homes = np.flatnonzero(fronting)
    if max_width_m <= 0 or not len(candidates) or not len(homes):
        return whole
    metric = shapely.transform(geoms[candidates], project)
    perimeter = shapely.length(metric)
    width = np.divide(2 * shapely.area(metric), perimeter, out=np.full(len(candidates), np.inf), where=perimeter > 0)
    candidates = candidates[width < max_width_m]
    strip, front, frontage = _frontages(geoms, community, candidates, homes, project, barriers)
    if not len(strip):
        return whole
    cut, area_of = np.unique(strip, return_inverse=True)
    cells = building_cells(geoms[cut], frontage, area_of, step_m=SAMPLE_STEP_M)  # the land nearest each frontage
    parts = _tiling(cells, geoms[cut], area_of)
    return _assembled(geoms, cut, area_of, cells, front, parts)


def _frontages(geoms: np.ndarray, community: np.ndarray, candidates: np.ndarray, homes: np.ndarray,
               project: Callable[[np.ndarray], np.ndarray], barriers: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(strip, fronting unit, frontage) where the unit fronts the strip: same community, at least
    :data:`MIN_CONTACT_M` of shared border off the ``barriers`` (a unit across the road centre
    line that bounds the strip touches it too, but fronts the strip across the road); sorted by
    strip, then unit. The frontage is the unit's outline along the strip, off the barriers
    (lines)."""
    none = np.empty(0, dtype=np.int64)
    at, near = shapely.STRtree(geoms[homes]).query(geoms[candidates], predicate="dwithin", distance=TOUCH_DEG)
    strip, front = candidates[at], homes[near]
    same = community[strip] == community[front]
    strip, front = strip[same], front[same]
    if not len(strip):
        return none, none, np.empty(0, dtype=object)
    contact = shapely.intersection(shapely.boundary(geoms[front]), shapely.buffer(geoms[strip], TOUCH_DEG, quad_segs=1))
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


def _tiling(cells: np.ndarray, strips: np.ndarray, area_of: np.ndarray) -> np.ndarray:
    """Which strips' cells can replace them: polygonal, and adding up to the strip's area (to
    1e-9 of it). A strip whose cells do not is kept whole (nothing is lost)."""
    polygonal = np.isin(shapely.get_type_id(cells), (3, 6)) | shapely.is_empty(cells)
    total = np.bincount(area_of, weights=np.where(polygonal, shapely.area(cells), np.nan), minlength=len(strips))
    whole = shapely.area(strips)
    ok = np.abs(total - whole) <= 1e-9 * whole
    ok &= np.bincount(area_of, weights=~polygonal, minlength=len(strips)) == 0
    return ok


def _assembled(geoms: np.ndarray, cut: np.ndarray, area_of: np.ndarray, cells: np.ndarray, front: np.ndarray,
               parts: np.ndarray) -> SharedStrips:
    """Every unit in its place, each strip that tiles replaced by its non-empty cells, each cell
    to join the unit it was drawn round."""
    replaced = np.zeros(len(geoms), dtype=bool)
    replaced[cut[parts]] = True
    keep_cell = parts[area_of] & ~shapely.is_empty(cells)
    source = np.concatenate([np.flatnonzero(~replaced), cut[area_of[keep_cell]]])
    geometry = np.concatenate([geoms[~replaced], cells[keep_cell]])
    joins = np.concatenate([np.full(int((~replaced).sum()), -1), front[keep_cell]])
    order = np.argsort(source, kind="stable")
    return SharedStrips(source[order], geometry[order], joins[order], int(parts.sum()), int(keep_cell.sum()))


__all__ = ["SharedStrips", "share_strips", "MIN_CONTACT_M"]
