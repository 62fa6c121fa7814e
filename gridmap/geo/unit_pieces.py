"""A territory's units built in pieces, on a cluster: groups of neighbouring communities, each
built where the runner puts it (:mod:`gridmap.geo.tasks`; a Dask cluster through
:mod:`gridmap.distributed`), then joined.

Units never cross a community border, so communities can be built apart: each piece gets its
communities and only the input features that reach them (a margin around their bounds), and
measures in the whole territory's metric CRS, so its units are the ones a build of the whole
would make. Two things differ at the seams between pieces, and are settled here:

* a border between two pieces is noded from each side on its own: each side may have a vertex
  the other lacks (where one side's barrier meets the border). :func:`coverage.stitch_borders`
  gives each side the other's vertices, as a partial rebuild does with the stored neighbours;
* a building counts in the community that holds its representative point (the rule a partial
  rebuild follows too), so a building straddling a seam counts whole on its point's side, where
  a single build would share it by area with the unit across the border.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.geo import coverage, stairwells
from gridmap.geo.crs import STORAGE_EPSG, metric_crs_for_frame
from gridmap.geo.shapes import points_in
from gridmap.geo.tasks import SERIAL, Runner, run_pieces
from gridmap.geo.units import build_units

PIECES_PER_WORKER = 2
"""Pieces per worker: each piece's seam costs a stitch, and its build has fixed costs, so a few
large pieces are better than many small ones."""
MAX_PIECE_BUILDINGS = 100_000
"""At most about this many buildings in one piece, on any number of workers (one included). A
build's memory grows with its territory: its clean coverage nodes every unit border at once,
about 25 kB a unit (measured 2026-12-05: RSS rose 0.42 GB over the clean of 16,696 generated
units). A piece of 100,000 buildings makes about 16,000 such units, well under a gigabyte; a
city of a million units is built as some sixty pieces one after another, in bounded memory,
where one build would need tens of gigabytes. Territories below it (Reykjavík has 32,354
buildings) are built whole, as before."""
MARGIN_DEG = 0.01
"""Input features within this much (about 1 km) of a piece's bounds go with it: every step of a
build looks no further than a few metres past its communities."""
NEAR_SEAM_DEG = 1e-4
"""Units built before that lie within this much (about 10 m) of a new piece's bounds are the
ones its seams are stitched against: every vertex of the others is farther than that from the
new units, far beyond the stitching's reach (:data:`gridmap.geo.coverage.SAME_POINT_DEG`)."""

LAYERS = ("roads", "buildings", "waterways", "railways", "compounds", "sites")


def piece_count(buildings: int, workers: int) -> int:
    """How many pieces a territory of ``buildings`` is built in on ``workers``: enough to keep
    every worker busy (:data:`PIECES_PER_WORKER` each; one piece on one worker) and none above
    :data:`MAX_PIECE_BUILDINGS`."""
    busy = workers * PIECES_PER_WORKER if workers > 1 else 1
    return max(busy, math.ceil(buildings / MAX_PIECE_BUILDINGS))


def build_units_in_pieces(communities: gpd.GeoDataFrame, roads: gpd.GeoDataFrame | None,
                          buildings: gpd.GeoDataFrame | None, *, runner: Runner = SERIAL,
                          code_column: str = "code", **options) -> gpd.GeoDataFrame:
    """:func:`gridmap.geo.units.build_units` of ``communities`` in pieces on ``runner``
    (:func:`piece_count`: in one piece, the plain build, when it has one worker and the territory
    is below :data:`MAX_PIECE_BUILDINGS`, or there is one community). ``options``: build_units'
    other arguments (waterways, railways, compounds, sites, entrances, rules, road_rules, band,
    atomize). The units are the whole build's except at the seams (module docstring); ``attrs`` as
    build_units'. An entrances layer is read against the whole buildings layer once, before it is
    cut into pieces (:func:`gridmap.geo.stairwells.attach`)."""
    entrances = options.pop("entrances", None)
    read = None
    if buildings is not None and entrances is not None:
        buildings, read = stairwells.attach(buildings, entrances)
    layers = {"roads": roads, "buildings": buildings, **{k: options.pop(k, None) for k in LAYERS[2:]}}
    count = min(len(communities), piece_count(0 if buildings is None else len(buildings), runner.workers))
    if count <= 1:
        return _said(build_units(communities, layers["roads"], layers["buildings"], code_column=code_column,
                                 waterways=layers["waterways"], railways=layers["railways"],
                                 compounds=layers["compounds"], sites=layers["sites"], **options), read)
    communities = communities.to_crs(STORAGE_EPSG).reset_index(drop=True)
    layers = {k: None if v is None else v.to_crs(STORAGE_EPSG).reset_index(drop=True) for k, v in layers.items()}
    crs = options.pop("metric_crs", None) or metric_crs_for_frame(communities).to_string()  # every piece measures alike
    owner = None if layers["buildings"] is None else _owners(communities, layers["buildings"])
    groups = neighbouring_groups(communities, owner, count)
    pieces = _pieces(communities, layers, owner, groups)
    sizes = np.array([0 if p["buildings"] is None else len(p["buildings"]) for p in pieces], dtype=float) + 1
    built = run_pieces(runner, _build_batch, pieces, sizes, what=("communities' units", "社区单元"),
                       code_column=code_column, metric_crs=crs, options=options)
    return _said(_joined(built), read)


def _said(units: gpd.GeoDataFrame, read: stairwells.StairwellSummary | None) -> gpd.GeoDataFrame:
    """``units`` with what the entrances layer gave in ``attrs["stairwells"]``, as build_units keeps it."""
    if read is not None:
        units.attrs["stairwells"] = asdict(read)
    return units


def neighbouring_groups(communities: gpd.GeoDataFrame, owner: np.ndarray | None, count: int) -> list[np.ndarray]:
    """``count`` groups of communities lying together (runs along a Hilbert curve of their centres:
    consecutive cells of the curve are neighbours, so a run is one area where the communities are
    laid out evenly), each with about the same number of buildings (the work of a build grows
    with them). ``owner``: for each building, the position of its community (:func:`_owners`)."""
    centres = shapely.get_coordinates(shapely.point_on_surface(np.asarray(communities.geometry.values, dtype=object)))
    lo, span = centres.min(axis=0), np.maximum(np.ptp(centres, axis=0), 1e-12)
    cells = np.minimum((centres - lo) / span * 1024, 1023).astype(np.int64)
    order = np.argsort([_hilbert(int(x), int(y)) for x, y in cells], kind="stable")
    weight = np.ones(len(communities))
    if owner is not None and len(owner):
        weight += np.bincount(owner[owner >= 0], minlength=len(communities))
    cumulative = np.cumsum(weight[order])
    cuts = np.searchsorted(cumulative, cumulative[-1] * np.arange(1, count) / count)
    return [part for part in np.split(order, cuts) if len(part)]


def _hilbert(x: int, y: int, side: int = 1024) -> int:
    """The position of cell (x, y) along the Hilbert curve filling a ``side`` × ``side`` square."""
    d, s = 0, side // 2
    while s > 0:
        rx, ry = int(x & s > 0), int(y & s > 0)
        d += s * s * ((3 * rx) ^ ry)
        if ry == 0:  # rotate the quadrant
            if rx == 1:
                x, y = side - 1 - x, side - 1 - y
            x, y = y, x
        s //= 2
    return d


def _owners(communities: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> np.ndarray:
    """For each building, the position of the community holding its representative point (-1: none)."""
    points = shapely.point_on_surface(np.asarray(buildings.geometry.values, dtype=object))
    at, which = points_in(np.asarray(communities.geometry.values, dtype=object), points)
    owner = np.full(len(buildings), -1, dtype=np.int64)
    owner[at[::-1]] = which[::-1]  # the first community, where a point lies on a shared border
    return owner


def _pieces(communities: gpd.GeoDataFrame, layers: dict[str, gpd.GeoDataFrame | None], owner: np.ndarray | None,
            groups: list[np.ndarray]) -> list[dict]:
    """Each group's piece: its communities, its buildings (those whose point lies in them,
    ``owner`` as :func:`_owners`) and the other layers' features within :data:`MARGIN_DEG` of its
    bounds. One spatial index a layer serves every piece: rebuilt for each, the index of a city's
    millions of buildings would cost more than the pieces' builds."""
    trees = {name: shapely.STRtree(np.asarray(frame.geometry.values, dtype=object))
             for name, frame in layers.items() if name != "buildings" and frame is not None and len(frame)}
    piece_of = np.full(len(communities), -1, dtype=np.int64)
    for i, group in enumerate(groups):
        piece_of[group] = i
    if owner is not None:
        building_piece = np.where(owner >= 0, piece_of[np.maximum(owner, 0)], -1)
        order = np.argsort(building_piece, kind="stable")
        starts = np.searchsorted(building_piece[order], np.arange(len(groups) + 1))
    pieces = []
    for i, group in enumerate(groups):
        own = communities.iloc[group]
        box = shapely.box(*own.total_bounds).buffer(MARGIN_DEG, join_style="mitre")
        piece: dict = {"communities": own}
        for name, frame in layers.items():
            if name == "buildings" and frame is not None:
                piece[name] = frame.iloc[order[starts[i]:starts[i + 1]]]
            elif name in trees:
                positions = np.sort(trees[name].query(box, predicate="intersects"))
                piece[name] = frame.iloc[positions]
                if name == "compounds":
                    piece["compound_positions"] = positions  # a compound's id is its place in the whole layer
            else:
                piece[name] = frame
        pieces.append(piece)
    return pieces


def _build_batch(batch: list[dict], *, code_column: str, metric_crs: str, options: dict) -> list[gpd.GeoDataFrame]:
    """Build the units of each piece of ``batch`` (a task on a worker)."""
    return [_whole_layer_compound_ids(
        build_units(p["communities"], p["roads"], p["buildings"], waterways=p["waterways"], railways=p["railways"],
                    compounds=p["compounds"], sites=p["sites"], code_column=code_column, metric_crs=metric_crs,
                    **options), p.get("compound_positions")) for p in batch]


def _whole_layer_compound_ids(units: gpd.GeoDataFrame, positions: np.ndarray | None) -> gpd.GeoDataFrame:
    """A piece's units with the whole build's ``compound_id``: build_units numbers a compound by
    its place in the layer it was given (``c<n>``), and a piece is given part of the layer
    (``positions``: where each of its compounds stands in the whole), so without this two
    compounds of two pieces could share an id."""
    if positions is None or not len(units):
        return units
    ids = units["compound_id"]
    named = ids.notna().to_numpy()
    if named.any():
        local = ids[named].str.slice(1).astype(np.int64).to_numpy()
        units = units.copy()
        units.loc[named, "compound_id"] = ["c%d" % n for n in np.asarray(positions)[local]]
    return units


SEAM_REPAIR_DEG = 1e-6
"""How far around an edge the stitching left unmatched its units are cleaned again (about 0.1 m)."""
SEAM_SNAP_DEG = 1e-9
"""Vertices this close (about 0.1 mm) are one point to that cleaning."""


def _matched(geoms: np.ndarray) -> np.ndarray:
    """``geoms`` with the edges the stitching left unmatched made to match. Where a seam meets a
    border between two units of one piece at a point each side computed a hair apart (seen on a
    generated district of 576 communities: 2 of 9,393 units), the stitching can give the two units
    that point in different orders; the units around such an edge are cleaned again by GEOS's
    coverage cleaner (:func:`shapely.coverage_clean`), which snaps those vertices together and
    leaves every other vertex where it is. Raises ValueError where that does not make one clean
    coverage (nothing half-matched is ever returned)."""
    edges = shapely.coverage_invalid_edges(geoms)
    unmatched = np.flatnonzero(~shapely.is_empty(edges))
    if not len(unmatched):
        return geoms
    zone = shapely.buffer(shapely.union_all(edges[unmatched]), SEAM_REPAIR_DEG)
    near = shapely.STRtree(geoms).query(zone, predicate="intersects")
    geoms = geoms.copy()
    cleaned = shapely.coverage_clean(geoms[near], snapping_distance=SEAM_SNAP_DEG)
    if (shapely.get_type_id(cleaned) != shapely.get_type_id(geoms[near])).any() or shapely.is_empty(cleaned).any():
        raise ValueError(f"the seams between the pieces could not be matched around {len(unmatched)} units")
    geoms[near] = cleaned
    if not shapely.coverage_is_valid(geoms):
        raise ValueError(f"the seams between the pieces could not be matched around {len(unmatched)} units")
    return geoms


def _joined(built: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """The pieces' units as one frame, their seams stitched vertex for vertex (each piece against
    the units built before it near its bounds, :data:`NEAR_SEAM_DEG`; :func:`_matched` where
    that left an edge unmatched), in unit id order."""
    geoms = [np.asarray(units.geometry.values, dtype=object).copy() for units in built]
    bounds = [shapely.bounds(g) for g in geoms]
    for i in range(1, len(geoms)):
        box = shapely.total_bounds(geoms[i]) if len(geoms[i]) else np.full(4, np.nan)  # empty units: no bounds
        if np.isnan(box).any():
            continue  # a piece without units (its communities degenerate): no seam to stitch
        lo_x, lo_y, hi_x, hi_y = box
        near = [(j, np.flatnonzero((b[:, 0] <= hi_x + NEAR_SEAM_DEG) & (b[:, 2] >= lo_x - NEAR_SEAM_DEG) &
                                   (b[:, 1] <= hi_y + NEAR_SEAM_DEG) & (b[:, 3] >= lo_y - NEAR_SEAM_DEG)))
                for j, b in enumerate(bounds[:i])]
        near = [(j, at) for j, at in near if len(at)]
        if not near:
            continue
        kept = np.concatenate([geoms[j][at] for j, at in near])
        geoms[i], revised = coverage.stitch_borders(geoms[i], kept)
        where = np.concatenate([np.column_stack([np.full(len(at), j), at]) for j, at in near])
        for k, geometry in revised.items():
            j, at = where[k]
            geoms[j][at] = geometry
    out = gpd.GeoDataFrame(pd.concat(built, ignore_index=True), geometry="geometry", crs=STORAGE_EPSG)
    out = out.set_geometry(gpd.GeoSeries(_matched(np.concatenate(geoms)), index=out.index, crs=STORAGE_EPSG))
    out = out.sort_values("unit_id", kind="stable").reset_index(drop=True)
    out.attrs = {"metric_crs": built[0].attrs.get("metric_crs"),
                 "households_in_buildings": int(sum(b.attrs.get("households_in_buildings", 0) for b in built))}
    return out


__all__ = ["build_units_in_pieces", "neighbouring_groups", "piece_count", "PIECES_PER_WORKER", "MAX_PIECE_BUILDINGS",
           "MARGIN_DEG", "NEAR_SEAM_DEG"]
