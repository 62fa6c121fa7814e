"""Conflicts inside departmental grid layers: what a merge report lists per department and grid.

For each department's layer: overlaps between its own grids, gaps (parts of the territory none
of its grids covers), slivers (thin pieces where borders almost but not quite agree, gathered per
pair of grids rather than reported crumb by crumb), grids that cross community boundaries (with
the share in each community) and parts outside the territory.

Layers of identical geometry are examined once: departments often adopt another department's
grids (the urban-management lattice, the comprehensive layer, one grid per community), and their
conflicts differ only in the department's name and its grid ids. Findings are therefore kept by
position in the layer and rendered with each department's own ids at the end.

Pure geometry (lon/lat, EPSG:4490); no database, no web.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.geo import coverage
from gridmap.geo.shapes import LocalScale, layer_fingerprint, polygonal

WORKERS = max(os.cpu_count() or 1, 1)


@dataclass(frozen=True)
class Finding:
    """One conflict of a layer, with grids named by their position in the layer."""

    kind: str                  # overlap | gap | sliver | crosses_community | outside
    members: tuple[int, ...]   # positions of the grids involved
    area_m2: float
    geometry: object
    pieces: int = 1
    width_m: float = 0.0
    shares: tuple[tuple[str, float], ...] = ()  # (community code, share) for crosses_community

    def render(self, department: str, ids: np.ndarray) -> dict:
        """The report row for one department, with its own grid ids."""
        names = [str(ids[m]) for m in self.members]
        if self.kind == "overlap":
            detail = f"grids {names[0]} and {names[1]} of {department} overlap"
        elif self.kind == "gap":
            detail = f"part of the territory no grid of {department} covers"
        elif self.kind == "outside":
            detail = f"{department} grids reach outside the territory"
        elif self.kind == "crosses_community":
            shares = ", ".join(f"{code} {share:.0%}" for code, share in self.shares)
            detail = f"grid {names[0]} lies in {len(self.shares)} communities: {shares}"
        else:
            where = f"between grids {', '.join(sorted(names))}" if names else "along the edge of the layer"
            detail = (f"thin slivers {where} ({self.pieces} pieces, {self.width_m:.1f} m wide on average): "
                      "borders that almost but not quite agree")
        grids = sorted(names) if self.kind == "sliver" else names
        return {"department": department, "kind": self.kind, "grids": grids, "area_m2": self.area_m2,
                "detail": detail, "geometry": self.geometry}


class _Territory:
    """The territory and its communities, prepared for one thread.

    A prepared GEOS geometry builds its indexes lazily and must not be shared between threads
    (sharing one crashed the interpreter now and then), so each worker thread gets its own copies.
    """

    def __init__(self, territory, community_geoms: np.ndarray, community_cores: np.ndarray,
                 community_codes: np.ndarray):
        self.territory = shapely.from_wkb(shapely.to_wkb(territory))
        self.communities = shapely.from_wkb(shapely.to_wkb(community_geoms))
        self.cores = shapely.from_wkb(shapely.to_wkb(community_cores))
        self.codes = community_codes
        self.tree = shapely.STRtree(self.cores)
        shapely.prepare(self.cores)
        shapely.prepare(self.territory)


def community_cores(community_geoms: np.ndarray, scale: LocalScale, sliver_width_m: float) -> np.ndarray:
    """Each community eroded by half the sliver width: a grid reaching into a community only by a
    strip thinner than a sliver does not meet its core, so only grids meeting two or more cores
    need their pieces measured."""
    metric = scale.metric(community_geoms)
    eroded = shapely.buffer(metric, -sliver_width_m / 2, quad_segs=2)
    return shapely.transform(eroded, lambda c: c / np.array([scale.mx, scale.my]))


@dataclass(frozen=True)
class Thresholds:
    tolerance_m2: float
    sliver_width_m: float


def _neighbours(query_idx: np.ndarray, tree_idx: np.ndarray, count: int) -> list[tuple[int, ...]]:
    """For ``count`` query geometries, the tuple of tree positions each one met."""
    order = np.argsort(query_idx, kind="stable")
    split = np.searchsorted(query_idx[order], np.arange(1, count))
    return [tuple(int(v) for v in part) for part in np.split(tree_idx[order], split)]


def classify_pieces(kind: str, pieces: np.ndarray, members: list[tuple[int, ...]], scale: LocalScale,
              limits: Thresholds) -> list[Finding]:
    """Pieces of one kind as findings: wide pieces above the tolerance each on their own, thin
    ones (slivers) gathered per set of grids involved."""
    if len(pieces) == 0:
        return []
    areas = scale.area(pieces)
    widths = scale.width(pieces)
    thin = widths < limits.sliver_width_m
    found = [Finding(kind, members[i], float(areas[i]), pieces[i])
             for i in np.flatnonzero(~thin & (areas >= limits.tolerance_m2))]
    slim = np.flatnonzero(thin & (areas > 0))
    if len(slim) == 0:
        return found
    keys = pd.Series([tuple(sorted(members[i])) for i in slim])
    group = pd.factorize(keys)[0]
    totals = np.bincount(group, weights=areas[slim])
    counts = np.bincount(group)
    mean_width = np.bincount(group, weights=widths[slim]) / counts
    order = np.argsort(group, kind="stable")
    parts, owner = shapely.get_parts(pieces[slim[order]], return_index=True)
    shapes = shapely.multipolygons(parts, indices=group[order][owner])
    firsts = np.unique(group, return_index=True)[1]
    for g in np.flatnonzero(totals >= limits.tolerance_m2):
        found.append(Finding("sliver", keys.iloc[firsts[g]], float(totals[g]), shapes[g],
                             pieces=int(counts[g]), width_m=float(mean_width[g])))
    return found


def overlapping_pairs(geoms: np.ndarray, tree: shapely.STRtree | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (i < j) of grids whose interiors meet: grids that overlap, one inside another
    (touching its border or not) and duplicates; grids that merely share a border are no pair.

    Only a grid whose edges GEOS's coverage validation flags can be in such a pair (an edge of one
    of the two runs inside the other, or the two have the same edges twice), so only the
    flagged grids' neighbours are examined: none in a layer that tiles (0.04 s to know it, against
    0.13 s for the ``overlaps`` query on 410 grids), and the interiors of the pairs found are
    compared by one relate each."""
    flagged = np.flatnonzero(~shapely.is_empty(shapely.coverage_invalid_edges(geoms)))
    if not len(flagged):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    tree = tree if tree is not None else shapely.STRtree(geoms)
    query, other = tree.query(geoms[flagged], predicate="intersects")
    query = flagged[query]
    apart = query != other
    pairs = np.unique(np.stack([np.minimum(query[apart], other[apart]), np.maximum(query[apart], other[apart])],
                               axis=1), axis=0)
    meet = shapely.relate_pattern(geoms[pairs[:, 0]], geoms[pairs[:, 1]], "T********")
    return pairs[meet, 0], pairs[meet, 1]


def layer_conflicts(geoms: np.ndarray, where: _Territory, scale: LocalScale,
                    limits: Thresholds) -> tuple[list[Finding], float]:
    """Every conflict of one layer, and the area (m²) of the territory it leaves uncovered."""
    tree = shapely.STRtree(geoms)
    found: list[Finding] = []

    # overlaps: pairs whose interiors meet (grids that merely share a border do not count)
    left, right = overlapping_pairs(geoms, tree)
    inter = polygonal(shapely.intersection(geoms[left], geoms[right]))
    nonempty = ~shapely.is_empty(inter)
    parts, which = shapely.get_parts(inter[nonempty], return_index=True)
    pairs = [(int(a), int(b)) for a, b in zip(left[nonempty][which], right[nonempty][which])]
    found += classify_pieces("overlap", parts, pairs, scale, limits)

    # gaps and parts outside: the layer's union, by coverage union where its grids tile without
    # overlapping (ten times faster), else by overlay; only the grids the territory does not cover
    # can reach outside it, so only their union is cut by it (on the demo's layers, 69–127 of
    # 196–449 grids: 0.11–0.19 s a layer before)
    union = coverage.union(geoms)
    gaps = shapely.get_parts(polygonal(np.array([shapely.difference(where.territory, union)]))[0])
    beyond = ~shapely.covers(where.territory, geoms)
    outside = (shapely.get_parts(polygonal(np.array([
        shapely.difference(coverage.union(geoms[beyond]), where.territory)]))[0])
        if beyond.any() else np.empty(0, dtype=object))
    # the grids around each gap (asked from the grids' side: a few hundred prepared grids against
    # thousands of crumbs is cheaper than preparing every crumb)
    n_idx, g_idx = shapely.STRtree(gaps).query(geoms, predicate="dwithin", distance=1e-7)
    found += classify_pieces("gap", gaps, _neighbours(g_idx, n_idx, len(gaps)), scale, limits)
    o_idx, n_idx = tree.query(outside, predicate="intersects")
    found += classify_pieces("outside", outside, _neighbours(o_idx, n_idx, len(outside)), scale, limits)
    uncovered_m2 = float(scale.area(gaps).sum())

    # grids across communities, with the share in each: only grids meeting two community cores
    gi, ci = where.tree.query(geoms, predicate="intersects")
    meets = np.bincount(gi, minlength=len(geoms))
    todo = meets[gi] >= 2
    gi, ci = gi[todo], ci[todo]
    if len(gi):
        parts = polygonal(shapely.intersection(geoms[gi], where.communities[ci]))
        frame = pd.DataFrame({"g": gi, "c": where.codes[ci], "a": scale.area(parts), "w": scale.width(parts)})
        real = frame[(frame["a"] >= limits.tolerance_m2) & (frame["w"] >= limits.sliver_width_m)]
        real = real[real.groupby("g")["g"].transform("size") >= 2]
        for g, sub in real.groupby("g", sort=True):
            total = float(sub["a"].sum())
            shares = tuple((c, a / total) for c, a in zip(sub["c"], sub["a"]))
            found.append(Finding("crosses_community", (int(g),), total, geoms[g], shares=shares))
    return found, uncovered_m2


def find_conflicts(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, territory, scale: LocalScale, *,
                   tolerance_m2: float, sliver_width_m: float, code_column: str = "code",
                   workers: int = WORKERS) -> tuple[list[dict], dict[str, float]]:
    """Overlaps, gaps, slivers, community crossings and parts outside, for every department.

    ``grids`` has ``department``, ``grid_id`` and lon/lat geometry. Returns the report rows and
    the area (m²) each department leaves uncovered (for its coverage share). Distinct layers are
    examined on ``workers`` threads, this one among them (shapely releases the GIL inside its
    array functions)."""
    return start_conflicts(grids, communities, territory, scale, tolerance_m2=tolerance_m2,
                           sliver_width_m=sliver_width_m, code_column=code_column,
                           background=max(workers, 1) - 1).result()


class ConflictSearch:
    """:func:`find_conflicts` under way: its layers are examined on background threads from the
    start, and :meth:`result` examines those still waiting on the calling thread too, so a caller
    that had other work to do first lends its core to the last layers instead of idling. (The
    merge starts it with one background thread beside its own work, which needs both cores;
    the conflicts' last layers, 0.7–1.0 s of them on the demo's 19 layers, then had one core
    idle while the merge waited.)"""

    def __init__(self, layers: list[tuple[str, np.ndarray, np.ndarray]], examine, background: int):
        self._layers = layers
        self._examine = examine
        self._prints = [layer_fingerprint(geoms) for _, _, geoms in layers]
        distinct = {fp: geoms for fp, (_, _, geoms) in zip(self._prints, layers)}
        waiting = sorted(distinct.items(), key=lambda item: -int(shapely.get_num_coordinates(item[1]).sum()))
        self._waiting: queue.SimpleQueue = queue.SimpleQueue()  # the costliest layers first: a short tail
        for item in waiting:
            self._waiting.put(item)
        self._results: dict[bytes, tuple[list[Finding], float]] = {}
        threads = min(background, len(distinct))
        self._pool = ThreadPoolExecutor(threads) if threads else None
        self._running = [self._pool.submit(self._examine_waiting) for _ in range(threads)] if self._pool else []

    def _examine_waiting(self) -> None:
        while True:
            try:
                fp, geoms = self._waiting.get_nowait()
            except queue.Empty:
                return
            self._results[fp] = self._examine(geoms)

    def result(self) -> tuple[list[dict], dict[str, float]]:
        """The report rows and the uncovered areas (as :func:`find_conflicts`), once every layer is done."""
        self._examine_waiting()
        for running in self._running:
            running.result()  # (an error in a background thread is raised here)
        if self._pool is not None:
            self._pool.shutdown()
        rows: list[dict] = []
        uncovered: dict[str, float] = {}
        for (department, ids, _), fp in zip(self._layers, self._prints):
            findings, uncovered[department] = self._results[fp]
            rows += [f.render(department, ids) for f in findings]
        return rows, uncovered


def start_conflicts(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, territory, scale: LocalScale, *,
                    tolerance_m2: float, sliver_width_m: float, code_column: str = "code",
                    background: int = 1) -> ConflictSearch:
    """:func:`find_conflicts` started on ``background`` threads (0: all of it in
    :meth:`ConflictSearch.result`)."""
    limits = Thresholds(tolerance_m2, sliver_width_m)
    comm_geoms = np.asarray(communities.geometry.values, dtype=object)
    comm_codes = communities[code_column].astype(str).to_numpy()
    cores = community_cores(comm_geoms, scale, sliver_width_m)
    local = threading.local()

    def examine(geoms: np.ndarray) -> tuple[list[Finding], float]:
        if not hasattr(local, "where"):
            local.where = _Territory(territory, comm_geoms, cores, comm_codes)
        # own copies: the caller may be preparing the same geometry objects in other threads
        return layer_conflicts(shapely.from_wkb(shapely.to_wkb(geoms)), local.where, scale, limits)

    layers = [(str(d), layer["grid_id"].to_numpy(), np.asarray(layer.geometry.values, dtype=object))
              for d, layer in grids.groupby("department", sort=False)]
    return ConflictSearch(layers, examine, background)
