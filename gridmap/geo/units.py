"""Units: the "relatively independent areas" (区域相对独立) that grids are made of.

A unit is a residential compound (小区), a block between barriers (roads, rivers, railways,
community boundaries), or a dedicated site (school, hospital, park ...). Units tile each
community exactly, so any assignment of units to grids has no gaps and no overlaps.

How ``build_units`` works: topology is computed in lon/lat (EPSG:4490), so that units reuse the
community's own vertices exactly; sizes and thresholds are measured in metres. One function per
step, in this order:

1. **Barriers** (``_barrier_lines``): roads of the configured classes that are not tunnels,
   waterways and railways (the outline of an area feature such as a riverbank). Barrier lines
   that run along a community border (a road centre line digitised a metre or two off the
   civil-affairs boundary, the usual case in Chinese data) are dropped within ``border_snap_m``
   of it and their cut ends joined to it, so no strip forms between the two.
2. **Faces** (``_faces``): every community boundary plus every barrier line is noded and
   polygonized in one pass. Each face belongs to the community that holds its representative
   point; faces never cross a community boundary because the boundaries are part of the noding.
3. **Sites and compounds** (``_split_sites``, ``_site_pieces``, ``_compound_pieces``,
   ``_first_units``): sites (dedicated grids' units) are carved out first, then compounds: both
   are cut to their community and kept whole even where a barrier runs through them; blocks are
   what remains of the faces.
4. **Buildings** (``_building_households``): households at each building (a footprint or an
   address point), the layer's own counts (checked: a missing or invalid one is refused, never
   silently estimated) or, for a layer without a households column, estimated by the household
   rule (a building inside a compound counts as residential); population where given.
5. **Oversize units** (``_split_oversize``): compounds and blocks above the size limit are split
   by their own structure: internal roads of any class (service roads, footpaths) first; pieces
   still too large are tessellated around their buildings (Voronoi cells of building groups) —
   never by a straight line through houses.
6. **Point sites** (``_point_sites``): site points (POIs without a footprint) turn the block that
   holds them into a site.
7. **One clean coverage** (``_clean_coverage``): every unit boundary and community outline is
   noded into one arrangement and each unit rebuilt from its faces
   (:func:`gridmap.geo.coverage.clean`), so neighbours share their borders vertex for vertex;
   gaps, overlaps, crumbs and hairline strips (narrower than ``min_face_width_m``) go to the
   neighbour with the longest common border, preferring one on the same side of a barrier.
8. **Slivers** (``_absorb_slivers``): units below ``min_unit_area_m2`` join the neighbour (same
   community) with which they share the longest border.
9. **Households** (``_unit_totals``, and population where given) come from buildings: a building
   inside one unit counts there; one straddling units is shared by area, rounded so that totals
   are conserved; an address point counts in the unit that holds it.
10. **Stable ids** (``_with_stable_ids``): per community, sites, compounds, then blocks, each
    north to south and west to east: community code plus a serial number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from collections.abc import Callable

from pyproj import Transformer

from gridmap.geo import coverage
from gridmap.geo.crs import STORAGE_EPSG, metric_crs_for_frame
from gridmap.geo.graph import border_pairs
from gridmap.geo.fields import map_fields
from gridmap.geo.households import HouseholdRule, estimate_households, household_problems, households_refusal
from gridmap.geo.roads import RoadRules
from gridmap.geo.shapes import LocalScale
from gridmap.geo.shapes import polygonal as _polygonal

AreaFn = Callable[[np.ndarray], np.ndarray]

KIND_ORDER = {"site": 0, "compound": 1, "block": 2}
NOISE_AREA_M2 = coverage.NOISE_AREA_M2  # floating-point crumbs; dropping them moves no measurable area
MIN_SHARED_DEG = 0.0  # units of a clean coverage share exact borders: any positive length is adjacency


@dataclass(frozen=True)
class UnitRules:
    """What counts as a site, the size limits and the household estimate (all configurable;
    which roads are borders is :class:`gridmap.geo.roads.RoadRules`)."""

    site_type_column: str = "type"
    site_types: tuple[str, ...] = (
        "school", "kindergarten", "hospital", "clinic", "university", "college", "townhall",
        "government", "park", "industrial", "commercial", "retail", "marketplace", "office")
    min_unit_area_m2: float = 400.0
    min_face_width_m: float = 2.0  # hairline strips narrower than this join a neighbour
    border_snap_m: float = 5.0  # barrier lines closer than this to a community border are the border
    compound_max_households: int = 500
    tessellation_target_households: int | None = None  # default: compound_max_households * 0.8
    household_rule: HouseholdRule = field(default_factory=HouseholdRule)


def metric_area_fn(crs) -> AreaFn:
    """Areas in m² of lon/lat geometries, computed in ``crs`` (topology stays in lon/lat)."""
    transformer = Transformer.from_crs(STORAGE_EPSG, crs, always_xy=True)

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    def area(geoms: np.ndarray) -> np.ndarray:
        geoms = np.asarray(geoms, dtype=object)
        if len(geoms) == 0:
            return np.zeros(0)
        return shapely.area(shapely.transform(geoms, project))

    area.project = project  # type: ignore[attr-defined]
    return area


def _lines(frame: gpd.GeoDataFrame | None, *, keep: np.ndarray | None = None) -> np.ndarray:
    if frame is None or len(frame) == 0:
        return np.empty(0, dtype=object)
    geoms = np.asarray(frame.to_crs(STORAGE_EPSG).geometry.values, dtype=object)
    if keep is not None:
        geoms = geoms[keep]
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    types = shapely.get_type_id(geoms)
    lines = geoms[np.isin(types, (1, 2, 5))]
    polys = geoms[np.isin(types, (3, 6))]  # area features (e.g. riverbanks): their outline is a border
    return np.concatenate([lines, shapely.boundary(polys)]) if len(polys) else lines


def _not_tunnel(frame: gpd.GeoDataFrame) -> np.ndarray:
    if "tunnel" not in frame:
        return np.ones(len(frame), dtype=bool)
    tunnel = frame["tunnel"].astype("string").str.lower().fillna("no")
    return ~tunnel.isin(["yes", "true", "1", "culvert", "building_passage"]).to_numpy()


def _explode(frame: pd.DataFrame, area_fn: AreaFn, geom_col: str = "geometry") -> pd.DataFrame:
    """One row per polygon part (units are contiguous by definition)."""
    geoms = np.asarray(frame[geom_col].values, dtype=object)
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        geoms = geoms.copy()
        geoms[invalid] = _polygonal(shapely.make_valid(geoms[invalid]))
    parts, index = shapely.get_parts(geoms, return_index=True)
    out = frame.iloc[index].copy()
    out[geom_col] = parts
    keep = shapely.get_type_id(parts) == 3
    keep[keep] = area_fn(parts[keep]) > NOISE_AREA_M2
    return out[keep].reset_index(drop=True)


def _assign_to_polygons(points: np.ndarray, polygons: np.ndarray) -> np.ndarray:
    """Index of the polygon containing each point (-1 where none)."""
    tree = shapely.STRtree(polygons)
    pt_idx, poly_idx = tree.query(points, predicate="within")
    result = np.full(len(points), -1, dtype=np.int64)
    result[pt_idx[::-1]] = poly_idx[::-1]  # first match wins
    return result


def _cut_to_communities(frame: gpd.GeoDataFrame | None, comm_geoms: np.ndarray, comm_codes: np.ndarray,
                        extra: list[str]) -> pd.DataFrame:
    """Pieces of ``frame``'s polygons inside each community (with the community code)."""
    columns = ["community_code", "geometry", *extra]
    if frame is None or len(frame) == 0:
        return pd.DataFrame(columns=columns)
    geoms = np.asarray(frame.to_crs(STORAGE_EPSG).geometry.values, dtype=object)
    geoms = shapely.make_valid(geoms)
    ok = np.isin(shapely.get_type_id(geoms), (3, 6, 7))
    tree = shapely.STRtree(comm_geoms)
    src, dst = tree.query(geoms, predicate="intersects")
    keep = ok[src]
    src, dst = src[keep], dst[keep]
    pieces = _polygonal(shapely.intersection(geoms[src], comm_geoms[dst]))
    out = pd.DataFrame({"community_code": comm_codes[dst], "geometry": pieces, "_src": src})
    for column in extra:
        out[column] = frame[column].to_numpy()[src] if column in frame else None
    out = out[~shapely.is_empty(pieces)]
    return out.reset_index(drop=True)


def _remove_mutual_overlaps(pieces: pd.DataFrame, *, smaller_first: bool) -> pd.DataFrame:
    """Make a set of polygons non-overlapping: the earlier (by area order) keeps shared parts."""
    if len(pieces) == 0:
        return pieces
    pieces = pieces.assign(_a=shapely.area(pieces["geometry"].to_numpy()))
    pieces = pieces.sort_values("_a", ascending=smaller_first, kind="stable").reset_index(drop=True)
    geoms = pieces["geometry"].to_numpy().copy()
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    later = right > left
    left, right = left[later], right[later]
    for j in np.unique(right):
        earlier = left[right == j]
        geoms[j] = shapely.difference(geoms[j], shapely.union_all(geoms[earlier]))
    pieces["geometry"] = _polygonal(geoms)
    pieces = pieces[~shapely.is_empty(pieces["geometry"].to_numpy())].drop(columns="_a")
    return pieces.reset_index(drop=True)


def _subtract(target: np.ndarray, target_comm: np.ndarray, cutters: np.ndarray, cutter_comm: np.ndarray) -> np.ndarray:
    """target[i] minus the union of cutters of the same community that intersect it."""
    if len(cutters) == 0 or len(target) == 0:
        return target.copy()
    tree = shapely.STRtree(cutters)
    ti, ci = tree.query(target, predicate="intersects")
    same = target_comm[ti] == cutter_comm[ci]
    ti, ci = ti[same], ci[same]
    out = target.copy()
    if len(ti) == 0:
        return out
    order = np.argsort(ti, kind="stable")
    ti, ci = ti[order], ci[order]
    bounds = np.flatnonzero(np.diff(ti)) + 1
    for group_t, group_c in zip(np.split(ti, bounds), np.split(ci, bounds)):
        t = group_t[0]
        out[t] = shapely.difference(out[t], shapely.union_all(cutters[group_c]))
    return _polygonal(out)


def shared_border_pairs(geoms: np.ndarray, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adjacent pairs (i < j) sharing a border of positive length, and that length.

    ``groups`` (e.g. community codes) restricts pairs to the same group.
    """
    # touching at a point (or a hair) is not adjacency
    left, right, borders = border_pairs(geoms, groups, MIN_SHARED_DEG)
    return left, right, shapely.length(borders)


def _merge_small(units: pd.DataFrame, min_area: float, area_fn: AreaFn) -> pd.DataFrame:
    """Merge units below ``min_area`` into the same-community neighbour with the longest border."""
    units = units.reset_index(drop=True)
    for _ in range(20):
        geoms = units["geometry"].to_numpy()
        area = area_fn(geoms)
        small = area < min_area
        if not small.any():
            break
        left, right, shared = shared_border_pairs(geoms, units["community_code"].to_numpy())
        # candidate merges: small -> any neighbour; prefer large targets, then longest border
        src = np.concatenate([left, right])
        dst = np.concatenate([right, left])
        length = np.concatenate([shared, shared])
        cand = small[src]
        src, dst, length = src[cand], dst[cand], length[cand]
        if len(src) == 0:
            break  # remaining small units have no neighbour in their community (islands): keep them
        target_big = ~small[dst]
        frame = pd.DataFrame({"src": src, "dst": dst, "len": length, "big": target_big, "area": area[dst]})
        frame = frame.sort_values(["src", "big", "len", "area"], ascending=[True, False, False, False])
        best = frame.drop_duplicates("src")
        # a small unit absorbs nothing in the same round in which it is merged away
        best = best[~best["dst"].isin(best["src"]) | best["big"]]
        if best.empty:
            best = frame.drop_duplicates("src").head(1)
        absorbed = best.groupby("dst")["src"].apply(list)
        new_geoms = geoms.copy()
        for dst_idx, srcs in absorbed.items():  # edge-matched pieces: a coverage union keeps every vertex
            new_geoms[dst_idx] = shapely.coverage_union_all(geoms[[dst_idx, *srcs]])
        drop = best["src"].to_numpy()
        # households etc. move with the geometry
        for column in ("households", "population"):
            if column in units:
                values = units[column].to_numpy(dtype=float).copy()
                np.add.at(values, best["dst"].to_numpy(), values[drop])
                units[column] = values
        units["geometry"] = new_geoms
        units = units.drop(index=drop).reset_index(drop=True)
    return units


def _allocate(buildings_geom: np.ndarray, counts: np.ndarray, unit_geoms: np.ndarray) -> np.ndarray:
    """Per-unit totals of ``counts`` (one value per building): a footprint inside one unit counts
    there, one straddling units is shared by area, with largest-remainder rounding so each
    building's count is conserved; a building without area (an address point) counts whole in
    the unit that holds it (the first, when it lies exactly on a shared border)."""
    totals = np.zeros(len(unit_geoms), dtype=np.int64)
    if len(buildings_geom) == 0 or len(unit_geoms) == 0:
        return totals
    tree = shapely.STRtree(unit_geoms)
    flat = shapely.area(buildings_geom) <= 0
    if flat.any():
        at = np.flatnonzero(flat)
        p_idx, pu_idx = tree.query(shapely.point_on_surface(buildings_geom[at]), predicate="intersects")
        first = np.unique(p_idx, return_index=True)[1]
        np.add.at(totals, pu_idx[first], counts[at[p_idx[first]]].astype(np.int64))
    b_idx, u_idx = tree.query(buildings_geom, predicate="intersects")
    keep = ~flat[b_idx]
    b_idx, u_idx = b_idx[keep], u_idx[keep]
    inter = shapely.area(shapely.intersection(buildings_geom[b_idx], unit_geoms[u_idx]))
    pos = inter > 0
    b_idx, u_idx, inter = b_idx[pos], u_idx[pos], inter[pos]
    frame = pd.DataFrame({"b": b_idx, "u": u_idx, "a": inter})
    frame["share"] = frame["a"] / frame.groupby("b")["a"].transform("sum")
    frame["exact"] = frame["share"] * counts[frame["b"].to_numpy()]
    frame["base"] = np.floor(frame["exact"]).astype(np.int64)
    frame["frac"] = frame["exact"] - frame["base"]
    remainder = (counts[frame["b"].drop_duplicates().to_numpy()] -
                 frame.groupby("b")["base"].sum().to_numpy())
    rem = pd.Series(remainder, index=frame["b"].drop_duplicates().to_numpy())
    frame = frame.sort_values(["b", "frac"], ascending=[True, False])
    frame["rank"] = frame.groupby("b").cumcount()
    frame["extra"] = (frame["rank"] < frame["b"].map(rem)).astype(np.int64)
    np.add.at(totals, frame["u"].to_numpy(), (frame["base"] + frame["extra"]).to_numpy())
    return totals


def _kmeans(points: np.ndarray, weights: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Weighted k-means labels (small, deterministic; used to group buildings for tessellation)."""
    rng = np.random.default_rng(seed)
    order = np.argsort(points[:, 0] + points[:, 1] * 1e-3)
    centres = points[order[np.linspace(0, len(points) - 1, k).astype(int)]].astype(float)
    centres += rng.normal(scale=1e-6, size=centres.shape)
    labels = np.zeros(len(points), dtype=np.int64)
    for _ in range(50):
        dist = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        labels = dist.argmin(axis=1)
        new = np.array([
            np.average(points[labels == c], axis=0, weights=np.maximum(weights[labels == c], 1e-9))
            if np.any(labels == c) else centres[c] for c in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return labels


def _split_compound(geom, road_lines: np.ndarray, b_points: np.ndarray, b_households: np.ndarray,
                    b_footprints: np.ndarray, max_households: int, target: int, area_fn: AreaFn,
                    seed: int) -> list:
    """Split one compound by its internal roads; tessellate pieces that are still too large
    around groups of buildings (Voronoi cells of building points, then every footprint moved
    whole into its group's part, so no border runs through a house)."""
    pieces = [geom]
    if len(road_lines):
        inside = road_lines[shapely.intersects(road_lines, geom)]
        if len(inside):
            noded = shapely.union_all(np.concatenate([[shapely.boundary(geom)], shapely.intersection(inside, geom)]))
            faces = np.asarray(shapely.get_parts(shapely.polygonize([noded])), dtype=object)
            faces = faces[shapely.contains(geom, shapely.point_on_surface(faces))]
            if len(faces) > 1:
                pieces = list(faces) + _leftover(geom, faces, area_fn)
    result = []
    for piece in pieces:
        within = shapely.contains(piece, b_points) if len(b_points) else np.zeros(0, dtype=bool)
        households = b_households[within].sum() if len(b_points) else 0
        if households <= max_households or within.sum() < 2:
            result.append(piece)
            continue
        k = int(np.ceil(households / target))
        k = min(k, int(within.sum()))
        pts = shapely.get_coordinates(b_points[within])
        labels = _kmeans(area_fn.project(pts), b_households[within].astype(float), k, seed)  # type: ignore[attr-defined]
        cells = shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=piece)
        cells = np.asarray(shapely.get_parts(cells), dtype=object)
        # voronoi output order is not the input order: match cells to their generating point
        owner = _assign_to_polygons(shapely.points(pts), cells)
        cell_label = np.full(len(cells), -1)
        cell_label[owner[owner >= 0]] = labels[owner >= 0]
        footprints = b_footprints[within]
        for label in np.unique(labels):
            part = shapely.intersection(shapely.union_all(cells[cell_label == label]), piece)
            own = shapely.intersection(shapely.union_all(footprints[labels == label]), piece)
            others = shapely.union_all(footprints[labels != label])
            part = shapely.difference(shapely.union(part, own), others)
            result.extend([p for p in shapely.get_parts(part) if p.geom_type == "Polygon"])
    return result + _leftover(geom, np.asarray(result, dtype=object), area_fn)


def _leftover(whole, parts: np.ndarray, area_fn: AreaFn) -> list:
    """Pieces of ``whole`` that ``parts`` miss (duplicate points, noding crumbs): kept as parts of
    their own, so nothing is lost; slivers among them are merged later."""
    rest = shapely.difference(whole, shapely.union_all(parts)) if len(parts) else whole
    polys = np.asarray([p for p in shapely.get_parts(rest) if p.geom_type == "Polygon"], dtype=object)
    return list(polys[area_fn(polys) > NOISE_AREA_M2]) if len(polys) else []


def _off_borders(barriers: np.ndarray, comm_geoms: np.ndarray, tolerance_m: float) -> np.ndarray:
    """Barrier lines without their stretches within ``tolerance_m`` of a community border, plus a
    short connector from each loose end near the border onto it.

    A road drawn along a community boundary (its centre line a metre or two off the civil-affairs
    line) is that boundary: kept as well, it would cut a hairline strip out of the blocks on
    either side. A road that crosses the border keeps both halves, each joined to the border, so
    the blocks it closes stay closed. Distances are measured in a local metric frame (metres per
    degree at the territory's latitude); the lines kept keep their own coordinates exactly."""
    if tolerance_m <= 0 or len(barriers) == 0:
        return barriers
    scale = LocalScale.at(float(np.mean(shapely.total_bounds(comm_geoms)[[1, 3]])))
    factor = np.array([scale.mx, scale.my])
    borders = shapely.union_all(shapely.transform(shapely.boundary(comm_geoms), lambda c: c * factor))
    zone = shapely.transform(shapely.buffer(borders, tolerance_m), lambda c: c / factor)
    shapely.prepare(zone)
    near = shapely.intersects(zone, barriers)
    if not near.any():
        return barriers
    parts = np.asarray(shapely.get_parts(shapely.difference(barriers[near], zone)), dtype=object)
    parts = parts[~shapely.is_empty(parts)]
    ends = np.concatenate([shapely.get_point(parts, 0), shapely.get_point(parts, -1)]) if len(parts) else parts
    metric_ends = shapely.transform(ends, lambda c: c * factor) if len(ends) else ends
    close = shapely.dwithin(metric_ends, borders, tolerance_m * 1.5) if len(ends) else np.zeros(0, dtype=bool)
    connectors = np.empty(0, dtype=object)
    if close.any():
        feet = _overshoot(shapely.shortest_line(metric_ends[close], borders), 0.05)
        far = shapely.get_coordinates(shapely.get_point(feet, -1)) / factor
        connectors = shapely.linestrings(np.stack([shapely.get_coordinates(ends[close]), far], axis=1))
    return np.concatenate([barriers[~near], parts, connectors])


def _overshoot(segments: np.ndarray, by: float) -> np.ndarray:
    """Two-point segments lengthened beyond their end by ``by``, so that a connector drawn onto a
    border crosses it (floating point would otherwise leave its end a hair short of the line,
    and the noding would not join them); the overshoot is a dangle, which no face keeps."""
    xy = shapely.get_coordinates(segments).reshape(-1, 2, 2)
    step = xy[:, 1] - xy[:, 0]
    length = np.hypot(step[:, 0], step[:, 1])
    ok = length > 0
    xy[ok, 1] += step[ok] / length[ok, None] * by
    return shapely.linestrings(xy)


def build_units(
    communities: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None,
    buildings: gpd.GeoDataFrame | None,
    *,
    waterways: gpd.GeoDataFrame | None = None,
    railways: gpd.GeoDataFrame | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    sites: gpd.GeoDataFrame | None = None,
    rules: UnitRules | None = None,
    road_rules: RoadRules | None = None,
    code_column: str = "code",
    seed: int = 0,
) -> gpd.GeoDataFrame:
    """Tile every community with units; see the module docstring for the rules.

    Returns a GeoDataFrame in EPSG:4490 with ``unit_id, community_code, kind`` ('compound' |
    'block' | 'site'), ``name, site_type, compound_id, households, population`` (when buildings
    have it), ``area_m2`` and ``geometry``.

    Example
    -------
    >>> units = build_units(communities, roads, buildings, compounds=residential_areas,
    ...                     sites=sites)  # doctest: +SKIP
    >>> units.groupby("community_code").households.sum()  # doctest: +SKIP
    """
    rules = rules or UnitRules()
    road_rules = road_rules or RoadRules()
    if code_column not in communities:
        raise ValueError(f"communities need a {code_column!r} column")
    # Topology is computed in lon/lat (EPSG:4490) so that units reuse the community's own
    # vertices exactly (a straight lon/lat edge is a curve in any projection); sizes and
    # thresholds are measured in the metric CRS.
    crs = metric_crs_for_frame(communities)
    area_fn = metric_area_fn(crs)
    comm_geoms, comm_codes = _community_outlines(communities, code_column)

    barriers = _barrier_lines(roads, waterways, railways, comm_geoms, road_rules, rules.border_snap_m)
    faces, face_codes = _faces(comm_geoms, comm_codes, barriers)
    site_polys, site_points = _split_sites(sites, rules)
    site_pieces = _site_pieces(site_polys, comm_geoms, comm_codes)
    compound_pieces = _compound_pieces(compounds, site_pieces, comm_geoms, comm_codes)
    units = _first_units(faces, face_codes, site_pieces, compound_pieces, area_fn)
    bld = _building_households(buildings, compound_pieces, rules)
    units = _split_oversize(units, bld, roads, comm_geoms, rules, area_fn, seed)
    units = _point_sites(units, site_points)
    units = _clean_coverage(units, comm_geoms, comm_codes, barriers, rules, area_fn)
    units = _absorb_slivers(units, rules, area_fn)
    units = _unit_totals(units, bld, area_fn)
    out = _with_stable_ids(units, area_fn)
    out.attrs["metric_crs"] = crs.to_string()
    out.attrs["households_in_buildings"] = int(bld.households.sum())
    return out


def _community_outlines(communities: gpd.GeoDataFrame, code_column: str) -> tuple[np.ndarray, np.ndarray]:
    """The communities' polygons in EPSG:4490 (repaired) and their codes as strings."""
    comm = communities.to_crs(STORAGE_EPSG)
    comm_geoms = shapely.make_valid(np.asarray(comm.geometry.values, dtype=object))
    comm_geoms = _polygonal(comm_geoms)
    comm_codes = comm[code_column].astype(str).to_numpy()
    return comm_geoms, comm_codes


def _barrier_lines(roads: gpd.GeoDataFrame | None, waterways: gpd.GeoDataFrame | None,
                   railways: gpd.GeoDataFrame | None, comm_geoms: np.ndarray, road_rules: RoadRules,
                   border_snap_m: float) -> np.ndarray:
    """Step 1, the lines that divide a community into blocks: roads of the barrier classes,
    waterways and railways (tunnels excepted; outlines of area features), those within reach of
    the territory, with stretches along a community border taken as that border
    (:func:`_off_borders`). Community boundaries themselves are added by :func:`_faces`."""
    parts = []
    if roads is not None and len(roads):
        parts.append(_lines(roads, keep=_not_tunnel(roads) & road_rules.is_barrier(roads)))
    for extra in (waterways, railways):
        if extra is not None and len(extra):
            parts.append(_lines(extra, keep=_not_tunnel(extra)))
    barriers = np.concatenate(parts) if parts else np.empty(0, dtype=object)
    extent = shapely.box(*shapely.total_bounds(comm_geoms))
    barriers = barriers[shapely.intersects(barriers, extent)]
    return _off_borders(barriers, comm_geoms, border_snap_m)


def _faces(comm_geoms: np.ndarray, comm_codes: np.ndarray, barriers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 2, the faces: community boundaries and barrier lines noded and polygonized in one
    pass, each face given the community that holds its representative point (faces outside
    every community are dropped). No face crosses a community boundary, since the boundaries
    are part of the noding."""
    lines = np.concatenate([shapely.boundary(comm_geoms), barriers])
    noded = shapely.union_all(lines)
    faces = np.asarray(shapely.get_parts(shapely.polygonize([noded])), dtype=object)
    invalid = ~shapely.is_valid(faces)
    faces[invalid] = _polygonal(shapely.make_valid(faces[invalid]))
    face_comm = _assign_to_polygons(shapely.point_on_surface(faces), comm_geoms)
    faces, face_comm = faces[face_comm >= 0], face_comm[face_comm >= 0]
    return faces, comm_codes[face_comm]


def _split_sites(sites: gpd.GeoDataFrame | None, rules: UnitRules
                 ) -> tuple[gpd.GeoDataFrame | None, gpd.GeoDataFrame | None]:
    """The sites of the configured types (with a lower-case ``site_type``), as footprints
    (polygons) and as points (POIs without a footprint); (None, None) without sites."""
    if sites is None or not len(sites):
        return None, None
    types = (sites[rules.site_type_column].astype("string").str.lower()
             if rules.site_type_column in sites else pd.Series("site", index=sites.index))
    wanted = sites[types.isin(rules.site_types).fillna(False).to_numpy()].copy()
    wanted["site_type"] = types[wanted.index]
    is_point = np.isin(shapely.get_type_id(np.asarray(wanted.geometry.values)), (0, 4))
    return wanted[~is_point], wanted[is_point]


def _site_pieces(site_polys: gpd.GeoDataFrame | None, comm_geoms: np.ndarray, comm_codes: np.ndarray) -> pd.DataFrame:
    """Step 3a, site footprints cut to their communities and made non-overlapping (the smaller
    site keeps a shared part)."""
    return _remove_mutual_overlaps(
        _cut_to_communities(site_polys, comm_geoms, comm_codes, ["name", "site_type"]), smaller_first=True)


def _compound_pieces(compounds: gpd.GeoDataFrame | None, site_pieces: pd.DataFrame, comm_geoms: np.ndarray,
                     comm_codes: np.ndarray) -> pd.DataFrame:
    """Step 3b, compounds cut to their communities, each piece tagged with its compound
    (``compound_id``), made non-overlapping (smaller first), minus the sites of its community:
    sites are carved out first."""
    pieces = _cut_to_communities(compounds, comm_geoms, comm_codes, ["name"])
    if len(pieces):
        pieces["compound_id"] = [f"c{src}" for src in pieces["_src"]]
        pieces = _remove_mutual_overlaps(pieces, smaller_first=True)
        pieces["geometry"] = _subtract(
            pieces["geometry"].to_numpy(), pieces["community_code"].to_numpy(),
            site_pieces["geometry"].to_numpy() if len(site_pieces) else np.empty(0, dtype=object),
            site_pieces["community_code"].to_numpy() if len(site_pieces) else np.empty(0, dtype=object))
    return pieces


def _first_units(faces: np.ndarray, face_codes: np.ndarray, site_pieces: pd.DataFrame,
                 compound_pieces: pd.DataFrame, area_fn: AreaFn) -> pd.DataFrame:
    """Step 3c, the first units: sites and compounds kept whole (even where a barrier runs
    through them), blocks what remains of the faces, one row per polygon part."""
    special = pd.concat([site_pieces.assign(kind="site"), compound_pieces.assign(kind="compound")],
                        ignore_index=True) if len(site_pieces) or len(compound_pieces) else pd.DataFrame()
    if len(special):
        block_geoms = _subtract(faces, face_codes, special["geometry"].to_numpy(), special["community_code"].to_numpy())
    else:
        block_geoms = faces
    blocks = pd.DataFrame({"community_code": face_codes, "geometry": block_geoms, "kind": "block"})
    units = pd.concat([blocks, special], ignore_index=True) if len(special) else blocks
    for column in ("name", "site_type", "compound_id"):
        if column not in units:
            units[column] = None
    return _explode(units[["community_code", "kind", "name", "site_type", "compound_id", "geometry"]], area_fn)


@dataclass(frozen=True)
class _Buildings:
    """Buildings as the later steps need them: footprints (EPSG:4490), a point inside each,
    households (real or estimated) and population (None unless the layer has it)."""

    geoms: np.ndarray
    points: np.ndarray
    households: np.ndarray
    population: np.ndarray | None


def _building_households(buildings: gpd.GeoDataFrame | None, compound_pieces: pd.DataFrame,
                         rules: UnitRules) -> _Buildings:
    """Step 4, households at the buildings (footprints or address points): the layer's own
    counts (its columns read through the field table, :mod:`gridmap.geo.fields`: 户数 is
    households), checked and never silently replaced: a households value that is empty, NaN,
    negative or not a number is refused with the buildings named (import the layer with
    ``--estimate-missing`` to have them estimated and marked). A layer without a households
    column is estimated whole by the household rule (a building inside a compound counts as
    residential), as OSM data is. Population where the layer has it."""
    geoms = np.empty(0, dtype=object)
    households = np.zeros(0, dtype=np.int64)
    population = None
    if buildings is not None and len(buildings):
        bld, mapping = map_fields(buildings.to_crs(STORAGE_EPSG))
        problems = household_problems(bld)
        if len(problems):
            labels = {target: source for source, target in mapping.renamed.items()}
            raise households_refusal(bld, problems, name="buildings", labels=labels, reimport=True)
        geoms = shapely.make_valid(np.asarray(bld.geometry.values, dtype=object))
        in_compound = np.zeros(len(bld), dtype=bool)
        if len(compound_pieces):
            in_compound = _assign_to_polygons(shapely.point_on_surface(geoms),
                                              compound_pieces["geometry"].to_numpy()) >= 0
        households = estimate_households(bld, rules.household_rule, residential_mask=in_compound).to_numpy()
        if "population" in bld:
            population = pd.to_numeric(bld["population"], errors="coerce").fillna(0).round().astype(np.int64).to_numpy()
    points = shapely.point_on_surface(geoms) if len(geoms) else geoms
    return _Buildings(geoms, points, households, population)


def _split_oversize(units: pd.DataFrame, bld: _Buildings, roads: gpd.GeoDataFrame | None, comm_geoms: np.ndarray,
                    rules: UnitRules, area_fn: AreaFn, seed: int) -> pd.DataFrame:
    """Step 5, compounds and blocks above ``compound_max_households`` split by their own
    structure (:func:`_split_compound`: internal roads of any class, then groups of buildings),
    each part numbered in ``compound_part`` (NaN for units not split)."""
    if len(units) and len(bld.geoms):
        hh = _allocate(bld.geoms, bld.households, units["geometry"].to_numpy())
        too_big = np.flatnonzero((units["kind"] != "site").to_numpy() & (hh > rules.compound_max_households))
        if len(too_big):
            all_roads = (_off_borders(_lines(roads, keep=_not_tunnel(roads)), comm_geoms, rules.border_snap_m)
                         if roads is not None and len(roads) else np.empty(0, dtype=object))
            target = rules.tessellation_target_households or int(rules.compound_max_households * 0.8)
            replacement_rows = []
            for idx in too_big:
                row = units.iloc[idx]
                near = shapely.intersects(bld.points, row.geometry)
                parts = _split_compound(row.geometry, all_roads, bld.points[near], bld.households[near],
                                        bld.geoms[near], rules.compound_max_households, target, area_fn, seed)
                for part_no, part in enumerate(parts):
                    replacement_rows.append({**row.to_dict(), "geometry": part, "compound_part": part_no})
            units = pd.concat([units.drop(index=too_big), pd.DataFrame(replacement_rows)], ignore_index=True)
    if "compound_part" not in units:
        units["compound_part"] = np.nan
    return units


def _point_sites(units: pd.DataFrame, site_points: gpd.GeoDataFrame | None) -> pd.DataFrame:
    """Step 6, sites given as points turn the block that holds them into a site (with the
    point's type and name); compounds and sites stay as they are."""
    if site_points is not None and len(site_points):
        pts = np.asarray(site_points.to_crs(STORAGE_EPSG).geometry.values, dtype=object)
        hit = _assign_to_polygons(pts, units["geometry"].to_numpy())
        for point_row, unit_idx in zip(site_points.itertuples(), hit):
            if unit_idx >= 0 and units.at[unit_idx, "kind"] == "block":
                units.at[unit_idx, "kind"] = "site"
                units.at[unit_idx, "site_type"] = getattr(point_row, "site_type", "site")
                units.at[unit_idx, "name"] = getattr(point_row, "name", None)
    return units


def _clean_coverage(units: pd.DataFrame, comm_geoms: np.ndarray, comm_codes: np.ndarray, barriers: np.ndarray,
                    rules: UnitRules, area_fn: AreaFn) -> pd.DataFrame:
    """Step 7, one clean coverage of every community (:func:`gridmap.geo.coverage.clean`): shared
    borders vertex for vertex, no gap, no overlap, no crumb or hairline strip, nothing outside
    its community; then one row per polygon part."""
    units = units.reset_index(drop=True)
    units["geometry"] = coverage.clean(units["geometry"].to_numpy(), units["community_code"].to_numpy(),
                                       project=area_fn.project, min_width_m=rules.min_face_width_m,  # type: ignore[attr-defined]
                                       territory=comm_geoms, territory_groups=comm_codes, barriers=barriers)
    return _explode(units, area_fn)


def _absorb_slivers(units: pd.DataFrame, rules: UnitRules, area_fn: AreaFn) -> pd.DataFrame:
    """Step 8, units below ``min_unit_area_m2`` join their longest-border neighbour
    (:func:`_merge_small`), repeated while a union comes out in pieces (a contact shorter than
    ``MIN_SHARED_DEG``), at most three times."""
    for _ in range(3):
        units = _merge_small(units, rules.min_unit_area_m2, area_fn)
        if (shapely.get_type_id(units["geometry"].to_numpy()) == 3).all():
            break
        units = _explode(units, area_fn)
    return units


def _unit_totals(units: pd.DataFrame, bld: _Buildings, area_fn: AreaFn) -> pd.DataFrame:
    """Step 9, households (and population) of every unit from its buildings (:func:`_allocate`:
    a straddling building is shared by area, totals conserved), and its area in m²."""
    unit_geoms = units["geometry"].to_numpy()
    units["households"] = _allocate(bld.geoms, bld.households, unit_geoms)
    if bld.population is not None:
        units["population"] = _allocate(bld.geoms, bld.population, unit_geoms)
    units["area_m2"] = area_fn(unit_geoms)
    return units


def _with_stable_ids(units: pd.DataFrame, area_fn: AreaFn) -> gpd.GeoDataFrame:
    """Step 10, stable ids: per community, sites, then compounds, then blocks, each north to south
    and west to east (centroids rounded to 0.1 m), numbered ``<community code>-0001`` on; the
    output columns in their fixed order."""
    unit_geoms = units["geometry"].to_numpy()
    centroids = area_fn.project(shapely.get_coordinates(shapely.centroid(unit_geoms)))  # type: ignore[attr-defined]
    units["_y"] = -np.round(centroids[:, 1], 1)
    units["_x"] = np.round(centroids[:, 0], 1)
    units["_k"] = units["kind"].map(KIND_ORDER)
    units = units.sort_values(["community_code", "_k", "_y", "_x"], kind="stable").reset_index(drop=True)
    units["unit_id"] = units["community_code"] + "-" + (units.groupby("community_code").cumcount() + 1).map("{:04d}".format)
    columns = ["unit_id", "community_code", "kind", "name", "site_type", "compound_id", "compound_part",
               "households", *(["population"] if "population" in units else []), "area_m2", "geometry"]
    return gpd.GeoDataFrame(units[columns], geometry="geometry", crs=STORAGE_EPSG)
