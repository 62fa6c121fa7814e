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
5. **Oversize units** (``_split_oversize``, :mod:`gridmap.geo.atoms`): compounds and blocks above
   the size limit are split into groups of whole buildings: by their own internal roads of any
   class first; pieces still too large are tessellated around their buildings (one cell per
   building, :mod:`gridmap.geo.tessellation`) and the buildings shared into balanced, connected
   groups by recursive bisection, each group's cells one new unit (the pieces tile the unit); a
   single tower above the limit is cut by its 单元 when the data counts them, else kept whole and
   marked ``lone_tower``. Never a line through a house. In the communities given in ``atomize``
   every block and oversize compound becomes one unit per building (building grain, see
   :mod:`gridmap.geo.grain`), a tower above the limit there too cut by its 单元 or marked. A
   building's 单元 count is its own (单元数) or the one an entrances layer gives
   (:mod:`gridmap.geo.stairwells`).
6. **Point sites** (``_point_sites``): site points (POIs without a footprint) turn the block that
   holds them into a site.
7. **Land along walls** (``_share_strips``, :mod:`gridmap.geo.strips`; ``share_land_along_walls``):
   the land of a block nearer a compound's or dedicated site's wall than any of the block's own
   buildings (the strip between a compound drawn at its wall and the road centre lines round it),
   not across a barrier and never a footprint, is cut off to join that unit in step 9; a block
   without residents is shared out whole, with the inhabited blocks beside it too: no block runs
   round several compounds into one grid.
8. **One clean coverage** (``_clean_coverage``): every unit boundary and community outline is
   noded into one arrangement and each unit rebuilt from its faces
   (:func:`gridmap.geo.coverage.clean`), so neighbours share their borders vertex for vertex;
   gaps, overlaps, crumbs and hairline strips (narrower than ``min_face_width_m``) go to the
   neighbour with the longest common border, preferring one on the same side of a barrier.
9. **Slivers** (``_absorb_slivers``): units below ``min_unit_area_m2``, and the strips' parts, join
   the neighbour (same community) with which they share the longest border, one not across a
   barrier first (a strip's part: the unit it was drawn round).
10. **Households** (``_unit_totals``, and population where given) come from buildings: a building
   inside one unit counts there; one straddling units is shared by area, rounded so that totals
   are conserved; an address point counts in the unit that holds it.
11. **Stable ids** (``_with_stable_ids``): per community, sites, compounds, then blocks, each
    north to south and west to east: community code plus a serial number.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from collections.abc import Callable

from pyproj import CRS, Transformer
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from gridmap.geo import atoms, coverage, stairwells, strips
from gridmap.geo.apportion import largest_remainder
from gridmap.geo.crs import STORAGE_EPSG, metric_crs_for_frame
from gridmap.geo.graph import pair_sums, segment_lengths, shared_segments
from gridmap.geo.fields import map_fields
from gridmap.geo.heap import with_frozen_heap
from gridmap.geo.households import HouseholdRule, estimate_households, household_problems, households_refusal
from gridmap.geo.roads import RoadRules
from gridmap.geo.border_snap import BorderZone
from gridmap.geo.shapes import points_in
from gridmap.geo.shapes import polygonal as _polygonal

AreaFn = Callable[[np.ndarray], np.ndarray]

KIND_ORDER = {"site": 0, "compound": 1, "block": 2}
NOISE_AREA_M2 = coverage.NOISE_AREA_M2  # floating-point crumbs; dropping them moves no measurable area
ROAD_OFF_OUTLINE_DEG = 1e-8  # road stretches this close to a unit's own outline are that outline (≈ 1 mm)
MIN_SHARED_DEG = 0.0  # units of a clean coverage share exact borders: any positive length is adjacency


@dataclass(frozen=True)
class UnitRules:
    """What counts as a site and which sites get a dedicated grid, the size limits and the
    household estimate (all configurable; which roads are borders is
    :class:`gridmap.geo.roads.RoadRules`).

    Sites (the ``sites`` layer) of ``site_types`` are kept whole as units, with their name and
    type. Those of ``dedicated_site_types`` at least ``dedicated_min_area_m2`` in area (per type:
    ``dedicated_min_area_by_type``) or with at least ``dedicated_min_staff`` staff (per type:
    ``dedicated_min_staff_by_type``; the ``staff_column``, 职工人数 and its aliases, when the layer
    has it) become units of kind ``site``: a dedicated grid (专属网格) each. The others (parks,
    kindergartens, small shops, small offices ...) are folded into the comprehensive grids around
    them: units of kind ``block`` that keep their ``name`` and ``site_type``. Types compare in
    lower case."""

    site_type_column: str = "type"
    site_types: tuple[str, ...] = (
        "school", "kindergarten", "hospital", "clinic", "university", "college", "townhall",
        "government", "park", "industrial", "company", "commercial", "retail", "marketplace", "office",
        "学校", "幼儿园", "医院", "卫生院", "诊所", "政府", "机关", "公园", "工业园区", "企业", "农贸市场",
        "市场", "商场", "写字楼", "商务楼宇")
    dedicated_site_types: tuple[str, ...] = (
        "school", "hospital", "university", "college", "townhall", "government", "industrial", "company",
        "marketplace", "retail", "commercial", "office",
        "学校", "医院", "卫生院", "政府", "机关", "工业园区", "企业", "农贸市场", "市场", "商场", "写字楼",
        "商务楼宇")
    dedicated_min_area_m2: float = 5000.0
    dedicated_min_area_by_type: dict[str, float] = field(default_factory=lambda: {
        "industrial": 20000.0, "工业园区": 20000.0,  # an industrial park, not a workshop
        "commercial": 50000.0, "retail": 50000.0, "商场": 50000.0})  # a shopping or business centre, not shops
    staff_column: str = "staff"
    dedicated_min_staff: int = 300
    dedicated_min_staff_by_type: dict[str, int] = field(default_factory=dict)
    min_unit_area_m2: float = 400.0
    min_face_width_m: float = 2.0  # hairline strips narrower than this join a neighbour
    share_land_along_walls: bool = True  # a block's land nearer a compound's (site's) wall than its houses joins it
    border_snap_m: float = 5.0  # barrier lines closer than this to a community border are the border
    compound_max_households: int = 500
    tessellation_target_households: int | None = None  # default: compound_max_households * 0.8
    household_rule: HouseholdRule = field(default_factory=HouseholdRule)

    def dedicated_thresholds(self, site_types, staff) -> tuple[np.ndarray, np.ndarray]:
        """Per site: the area (m²) from which it is dedicated (``inf`` for a type that never is)
        and whether its staff alone makes it dedicated (``staff`` NaN where unknown)."""
        types = pd.Series(np.asarray(site_types, dtype=object)).astype("string").str.lower().fillna("")
        eligible = types.isin({str(t).lower() for t in self.dedicated_site_types}).to_numpy()
        by_area = {str(k).lower(): float(v) for k, v in self.dedicated_min_area_by_type.items()}
        by_staff = {str(k).lower(): float(v) for k, v in self.dedicated_min_staff_by_type.items()}
        min_area = types.map(by_area).astype(float).fillna(float(self.dedicated_min_area_m2)).to_numpy()
        min_staff = types.map(by_staff).astype(float).fillna(float(self.dedicated_min_staff)).to_numpy()
        staff = np.asarray(staff, dtype=float)
        with np.errstate(invalid="ignore"):
            staff_ok = eligible & (staff >= min_staff)
        return np.where(eligible, min_area, np.inf), staff_ok

    def is_dedicated(self, site_types, area_m2, staff=None) -> np.ndarray:
        """Whether each site gets a dedicated grid: its type is dedicated and its area or its
        staff reaches that type's threshold (see the class docstring)."""
        area = np.asarray(area_m2, dtype=float)
        min_area, staff_ok = self.dedicated_thresholds(site_types, np.full(len(area), np.nan) if staff is None else staff)
        return staff_ok | (area >= min_area)


@functools.lru_cache(maxsize=32)
def _transformer_to(crs_wkt: str) -> Transformer:
    """lon/lat (EPSG:4490) → the CRS ``crs_wkt``, made once per CRS: PROJ takes about 0.1 s to
    choose the operation, and a units build asks several times (pyproj's transformers are
    thread-safe)."""
    return Transformer.from_crs(STORAGE_EPSG, crs_wkt, always_xy=True)


def metric_area_fn(crs) -> AreaFn:
    """Areas in m² of lon/lat geometries, computed in ``crs`` (topology stays in lon/lat)."""
    transformer = _transformer_to(CRS.from_user_input(crs).to_wkt())

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
    """Index of the polygon containing each point (-1 where none; the lowest where several do)."""
    pt_idx, poly_idx = points_in(polygons, points)
    result = np.full(len(points), -1, dtype=np.int64)
    result[pt_idx[::-1]] = poly_idx[::-1]  # the first match wins
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
    starts = np.r_[0, np.flatnonzero(np.diff(ti)) + 1]
    stops = np.r_[starts[1:], len(ti)]
    # most targets meet one cutter: its own geometry, no union; then one vectorised difference
    cut_by = np.array([cutters[ci[a]] if b - a == 1 else shapely.union_all(cutters[ci[a:b]])
                       for a, b in zip(starts, stops)] + [None], dtype=object)[:-1]
    out[ti[starts]] = shapely.difference(out[ti[starts]], cut_by)
    return _polygonal(out)


SLIVER_OFF_BARRIER_M = 1.0
"""A sliver's neighbour is on its side of the barriers when at least this much of their border
runs along no barrier (a touch of a few millimetres at a corner does not count)."""


def _merge_small(units: pd.DataFrame, min_area: float, area_fn: AreaFn, barriers: np.ndarray | None = None
                 ) -> pd.DataFrame:
    """Merge units below ``min_area``, and the parts of strips (``_joins`` set, step 7), into a
    same-community neighbour: the one a strip's part was drawn round (``_key`` equal to its
    ``_joins``) first, then one on their side of the
    barriers (roads, rivers, railways of ``barriers``: :data:`SLIVER_OFF_BARRIER_M` of their border
    along none), then one that is not small itself, then the one with the longest border. A
    sliver between a compound's fence and a main road joins the compound, not the block across the
    road (it did: a block then reached 52 m² across a primary road).

    The units are a clean coverage, so their shared borders are found once from their common
    segments (:func:`gridmap.geo.graph.shared_segments`); each round merges on that graph (areas
    and border lengths summed as units join, which is exact for edge-matched pieces), and the
    geometries are unioned once at the end."""
    units = units.reset_index(drop=True)
    geoms = units["geometry"].to_numpy()
    n = len(units)
    label = np.arange(n)
    unit_area = area_fn(geoms)
    joins = units["_joins"].to_numpy() if "_joins" in units else np.full(n, -1)
    key = units["_key"].to_numpy() if "_key" in units else np.full(n, -2)
    must = joins >= 0
    a, b, seg = shared_segments(geoms)
    same = units["community_code"].to_numpy()[a] == units["community_code"].to_numpy()[b]
    a, b, seg = a[same], b[same], seg[same]
    seg_length = segment_lengths(seg, area_fn.project)  # type: ignore[attr-defined]
    # along a barrier or not: asked only of the segments of small units (a unit merged away is
    # small, and so is every unit it took in)
    off_barriers = seg_length.copy()
    going = must | (unit_area < min_area)
    of_small = np.flatnonzero(going[a] | going[b])
    off_barriers[of_small[coverage.on_barriers(seg[of_small], barriers)]] = 0.0
    left, right, (shared, free) = pair_sums(a, b, n, seg_length, off_barriers)
    for _ in range(20):
        area = np.bincount(label, weights=unit_area, minlength=n)
        alive = label == np.arange(n)
        small = alive & ((area < min_area) | must)
        if not small.any():
            break
        a, b = label[left], label[right]
        between = (a != b) & (shared > 0)
        src = np.concatenate([a[between], b[between]])
        dst = np.concatenate([b[between], a[between]])
        length = np.concatenate([shared[between], shared[between]])
        off_barrier = np.concatenate([free[between], free[between]])
        cand = small[src]
        if not cand.any():
            break  # remaining small units have no neighbour in their community (islands): keep them
        frame = pd.DataFrame({"src": src[cand], "dst": dst[cand], "len": length[cand], "free": off_barrier[cand]})
        frame = frame.groupby(["src", "dst"], sort=False)[["free", "len"]].sum().reset_index()
        frame["off"] = frame["free"] >= SLIVER_OFF_BARRIER_M
        # the unit a part was drawn round, where they share a real border (not a corner's centimetres)
        frame["meant"] = (key[frame["dst"].to_numpy()] == joins[frame["src"].to_numpy()]) & frame["off"]
        frame["big"] = ~small[frame["dst"].to_numpy()]
        frame["area"] = area[frame["dst"].to_numpy()]
        # candidate merges: small -> any neighbour; a strip's part to its own unit first, then a
        # neighbour on this side of the barriers, then large targets, then the longest border
        frame = frame.sort_values(["src", "meant", "off", "big", "len", "area"],
                                  ascending=[True, False, False, False, False, False])
        best = frame.drop_duplicates("src")
        label = _merged_along(best["src"].to_numpy(), best["dst"].to_numpy(), n)[label]
    if (label == np.arange(n)).all():
        return units
    merged = np.flatnonzero(np.bincount(label, minlength=n) > 1)
    order = np.argsort(label, kind="stable")
    bounds = np.searchsorted(label[order], np.arange(n + 1))
    new_geoms = geoms.copy()
    for keep in merged:  # edge-matched pieces: a coverage union keeps every vertex
        new_geoms[keep] = shapely.coverage_union_all(geoms[order[bounds[keep]:bounds[keep + 1]]])
    units["geometry"] = new_geoms
    for column in ("households", "population"):  # households etc. move with the geometry
        if column in units:
            units[column] = np.bincount(label, weights=units[column].to_numpy(dtype=float), minlength=n)
    return units[label == np.arange(n)].reset_index(drop=True)


def _merged_along(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    """The label each of ``n`` units takes when every ``src`` joins its ``dst`` at once: each
    joined group is the unit its chain of choices ends at (the one that chose none), or for a
    ring of small units choosing each other, the lowest of them. Once a small unit merged away
    absorbed nothing in the same round, and a pair of slivers choosing each other waited for the
    other forever: 151 of Reykjavík's units stayed under the minimum area when slivers came to
    prefer a neighbour on their side of the road."""
    target = np.arange(n)
    if not len(src):
        return target
    _count, group = connected_components(sp.coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n)), directed=False)
    involved = np.unique(np.concatenate([src, dst]))
    chose = np.zeros(n, dtype=bool)
    chose[src] = True
    # per group: the unit that chose none (a group has at most one: each unit chooses one), else the lowest
    rank = np.where(chose[involved], n + involved, involved)
    order = np.lexsort((rank, group[involved]))
    first = np.unique(group[involved][order], return_index=True)[1]
    head = np.full(n, -1, dtype=np.int64)
    head[group[involved][order][first]] = involved[order][first]
    target[involved] = head[group[involved]]
    return target


def _allocate(buildings_geom: np.ndarray, counts: np.ndarray, unit_geoms: np.ndarray,
              points: np.ndarray | None = None) -> np.ndarray:
    """Per-unit totals of ``counts`` (one value per building): a footprint inside one unit counts
    there, one straddling units is shared by area, with largest-remainder rounding so each
    building's count is conserved; a building without area (an address point) counts whole in
    the unit that holds it (the first, when it lies exactly on a shared border). ``points``: a
    point inside each building (computed when not given).

    Most footprints lie inside the unit that holds their point: a point query and one prepared
    covers test per building settle them, and only the others (straddling a border, or outside
    every unit) are intersected."""
    totals = np.zeros(len(unit_geoms), dtype=np.int64)
    if len(buildings_geom) == 0 or len(unit_geoms) == 0:
        return totals
    points = shapely.point_on_surface(buildings_geom) if points is None else points
    p_idx, pu_idx = points_in(unit_geoms, points, on_border=True)
    first = np.unique(p_idx, return_index=True)[1]
    holder = np.full(len(buildings_geom), -1, dtype=np.int64)
    holder[p_idx[first]] = pu_idx[first]
    flat = shapely.area(buildings_geom) <= 0
    whole = flat & (holder >= 0)
    shapely.prepare(unit_geoms)
    check = np.flatnonzero(~flat & (holder >= 0))
    whole[check[shapely.covers(unit_geoms[holder[check]], buildings_geom[check])]] = True
    np.add.at(totals, holder[whole], counts[whole].astype(np.int64))
    straddling = np.flatnonzero(~flat & ~whole)
    b_idx, u_idx = shapely.STRtree(unit_geoms).query(buildings_geom[straddling], predicate="intersects")
    b_idx = straddling[b_idx]
    inter = shapely.area(shapely.intersection(buildings_geom[b_idx], unit_geoms[u_idx]))
    pos = inter > 0
    b_idx, u_idx, inter = b_idx[pos], u_idx[pos], inter[pos]
    buildings_straddling, group = np.unique(b_idx, return_inverse=True)
    shares = largest_remainder(counts[buildings_straddling], group, inter)
    np.add.at(totals, u_idx, shares)
    return totals


def _road_pieces(geoms: np.ndarray, road_lines: np.ndarray, area_fn: AreaFn, zone: BorderZone) -> list[list]:
    """Each oversize unit of ``geoms`` cut by the roads and paths inside it (any class: a 小区路
    between rows of buildings divides a compound naturally); a unit whole when none cuts it.
    The roads of every unit are found in one tree query.

    A road is cut only by its stretches inside the unit more than :data:`ROAD_OFF_OUTLINE_DEG`
    from the unit's outline (a road along the outline, the barrier that made it, is that
    outline), and each cut end near the outline is joined to it by a short connector to its foot
    there, or to the outline's vertex when one is that close. An overlay that cuts a road to the
    unit leaves its end a hair (1e-16°) off the outline, and the noding took such an end for a
    dangle: on Reykjavík 2,655 road ends divided nothing. The feet are shared between units (a
    road crossing the border of two oversize units ends on the same point on both sides) and
    inserted into the outline as vertices; the clean coverage of step 8 matches them with the
    units around. A road end on a community border stays loose (:func:`_border_feet`)."""
    out: list[list] = [[geom] for geom in geoms]
    if not (len(road_lines) and len(geoms)):
        return out
    unit_idx, road_idx = shapely.STRtree(road_lines).query(geoms, predicate="intersects")
    if not len(unit_idx):
        return out
    order = np.lexsort((road_idx, unit_idx))  # each unit's roads in layer order, as one at a time gave them
    unit_idx, road_idx = unit_idx[order], road_idx[order]
    tol = ROAD_OFF_OUTLINE_DEG
    cutting = np.unique(unit_idx)
    # each unit's roads as one multi-line, cut to the unit less a band along its outline: one
    # overlay per unit (a road at a time rebuilt the unit's topology for every road)
    flat, flat_of = shapely.get_parts(road_lines[road_idx], return_index=True)
    kind = shapely.get_type_id(flat)
    line = np.isin(kind, (1, 2))
    flat, flat_unit = _as_linestrings(flat[line]), unit_idx[flat_of[line]]
    present = np.unique(flat_unit)  # the units with a line among their roads, in order
    roads_of = shapely.multilinestrings(flat, indices=np.searchsorted(present, flat_unit))
    # less a band along the outline by a difference with the outline's buffer: a line buffer is
    # always valid, where a negative buffer of the unit can come out invalid
    own = geoms[present]
    inner = shapely.difference(shapely.intersection(roads_of, own),
                               shapely.buffer(shapely.boundary(own), tol, quad_segs=2))
    parts, part_of = shapely.get_parts(inner, return_index=True)
    keep = ~shapely.is_empty(parts) & np.isin(shapely.get_type_id(parts), (1, 2))
    parts, part_unit = parts[keep], present[part_of[keep]]
    if not len(parts):
        return out
    outline = shapely.boundary(geoms)
    # cut ends near the outline, and their feet on it
    ends = np.concatenate([shapely.get_point(parts, 0), shapely.get_point(parts, -1)])  # none is empty
    end_unit = np.concatenate([part_unit, part_unit])
    near = shapely.distance(ends, outline[end_unit]) < 2 * tol
    ends, end_unit = ends[near], end_unit[near]
    feet = shapely.get_coordinates(shapely.get_point(shapely.shortest_line(ends, outline[end_unit]), -1))
    ends, end_unit, feet = _border_feet(ends, end_unit, feet, zone)
    raw = feet.copy()
    # onto an outline vertex that close; else one point for all feet that close (both sides of a border)
    vertex_xy = np.unique(shapely.get_coordinates(geoms[cutting]), axis=0)
    distance, nearest = cKDTree(vertex_xy).query(feet, distance_upper_bound=tol)
    on_vertex = np.isfinite(distance)
    feet[on_vertex] = vertex_xy[nearest[on_vertex]]
    free = np.flatnonzero(~on_vertex)
    if len(free) > 1:
        first = np.arange(len(free))
        for i, j in sorted(cKDTree(feet[free]).query_pairs(tol)):  # i < j: each joins the first of its cluster
            if first[j] == j:
                first[j] = first[i]
        feet[free] = feet[free[first]]
    # a foot moved off its own unit's outline (to the vertex or foot of a unit across a sliver)
    # would leave the road's end loose again: it keeps its own place
    off = shapely.distance(shapely.points(feet), outline[end_unit]) > coverage.ON_BORDER_DEG
    feet[off] = raw[off]
    connectors = shapely.linestrings(np.stack([shapely.get_coordinates(ends), feet], axis=1))
    by_unit = pd.Series(np.arange(len(parts))).groupby(part_unit).indices
    conn_by_unit = pd.Series(np.arange(len(connectors))).groupby(end_unit).indices
    for unit, at in by_unit.items():
        geom = geoms[unit]
        conn = conn_by_unit.get(unit, np.zeros(0, dtype=np.int64))
        whole = coverage.with_vertices(geom, np.unique(feet[conn], axis=0)) if len(conn) else geom
        noded = shapely.union_all(np.concatenate([[shapely.boundary(whole)], parts[at], connectors[conn]]))
        faces = np.asarray(shapely.get_parts(shapely.polygonize([noded])), dtype=object)
        inside = shapely.contains(geom, shapely.point_on_surface(faces))
        unsure = np.flatnonzero(~inside)  # a hairline face (its point on its border) or a hole of the unit
        inside[unsure] = shapely.area(shapely.intersection(faces[unsure], geom)) > 0.5 * shapely.area(faces[unsure])
        faces = faces[inside]
        if len(faces) > 1:
            out[unit] = list(faces) + _leftover(whole, faces, area_fn)
    return out


def _as_linestrings(lines: np.ndarray) -> np.ndarray:
    """``lines`` (LineStrings and LinearRings) as LineStrings: a closed road (a ring around a
    block, as OSM draws some service roads) cuts as any other."""
    rings = np.flatnonzero(shapely.get_type_id(lines) == 2)
    if not len(rings):
        return lines
    lines = lines.copy()
    coords, index = shapely.get_coordinates(lines[rings], return_index=True)
    lines[rings] = shapely.linestrings(coords, indices=index)
    return lines


def _border_feet(ends: np.ndarray, end_unit: np.ndarray, feet: np.ndarray,
                 zone: BorderZone) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The road ends whose foot is not on a community border; those on one stay loose (their road
    divides nothing there). A foot there would be a new vertex of the border, one the units
    across it lack whenever the two communities are built apart (a rebuild of one community at
    building grain, a re-imported layer): their borders would no longer match. Joining the end
    to a vertex of the border instead was tried: the connector then runs a millimetre from the
    border for up to ``border_snap_m``, and the hairline it cuts off leaves a new vertex there
    all the same."""
    keep = ~zone.on_border(feet)
    return ends[keep], end_unit[keep], feet[keep]


def _leftover(whole, parts: np.ndarray, area_fn: AreaFn) -> list:
    """Pieces of ``whole`` that ``parts`` miss (duplicate points, noding crumbs): kept as parts of
    their own, so nothing is lost; slivers among them are merged later."""
    # the parts are faces of one noded arrangement (a coverage): their coverage union is exact;
    # when their areas add up to the whole's (to 1e-9 of it), nothing is missing
    if len(parts) and shapely.area(whole) - shapely.area(parts).sum() <= 1e-9 * shapely.area(whole):
        return []
    rest = shapely.difference(whole, shapely.coverage_union_all(parts)) if len(parts) else whole
    polys = np.asarray([p for p in shapely.get_parts(rest) if p.geom_type == "Polygon"], dtype=object)
    return list(polys[area_fn(polys) > NOISE_AREA_M2]) if len(polys) else []


@with_frozen_heap
def build_units(
    communities: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None,
    buildings: gpd.GeoDataFrame | None,
    *,
    waterways: gpd.GeoDataFrame | None = None,
    railways: gpd.GeoDataFrame | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    sites: gpd.GeoDataFrame | None = None,
    entrances: gpd.GeoDataFrame | None = None,
    rules: UnitRules | None = None,
    road_rules: RoadRules | None = None,
    code_column: str = "code",
    band: tuple[int, int] | None = None,
    atomize: frozenset[str] | set[str] = frozenset(),
    seed: int = 0,
    metric_crs: str | None = None,
) -> gpd.GeoDataFrame:
    """Tile every community with units; see the module docstring for the rules.

    Returns a GeoDataFrame in EPSG:4490 with ``unit_id, community_code, kind`` ('compound' |
    'block' | 'site'), ``name, site_type, compound_id, households, population`` (when buildings
    have it), ``buildings`` (inhabited buildings whose representative point it holds: a unit of
    two or more can be divided, one of one cannot), ``lone_tower`` (a single building above the
    size limit whose 单元 are not known), ``atomic`` (built at building grain, see ``atomize``),
    ``area_m2`` and ``geometry``.

    ``band`` (the comprehensive grid's household band) lets an oversize unit be split into the
    number of pieces the band prefers (:func:`gridmap.geo.atoms.piece_count`); without it, the
    fewest within ``compound_max_households``. ``atomize``: codes of communities built at building
    grain (every block, and every compound above the limit, one unit per building, a tower above
    the limit cut by its 单元 as anywhere; what a plan needs where coarser units left a grid
    outside the band). ``seed`` is accepted for compatibility: every
    step is deterministic. ``metric_crs``: the CRS sizes are measured in (default: the one for the
    communities' centre), given when a territory's units are built in pieces
    (:mod:`gridmap.geo.unit_pieces`), so that every piece measures as the whole would.
    ``entrances``: a layer of stairwell doors, which gives buildings without a 单元数 their 单元
    count and places the cuts between their 单元 (:func:`gridmap.geo.stairwells.attach`).

    Example
    -------
    >>> units = build_units(communities, roads, buildings, compounds=residential_areas,
    ...                     sites=sites)  # doctest: +SKIP
    >>> units.groupby("community_code").households.sum()  # doctest: +SKIP
    """
    rules = rules or UnitRules()
    road_rules = road_rules or RoadRules()
    read: stairwells.StairwellSummary | None = None
    if buildings is not None and entrances is not None:
        buildings, read = stairwells.attach(buildings, entrances)
    if code_column not in communities:
        raise ValueError(f"communities need a {code_column!r} column")
    # Topology is computed in lon/lat (EPSG:4490) so that units reuse the community's own
    # vertices exactly (a straight lon/lat edge is a curve in any projection); sizes and
    # thresholds are measured in the metric CRS.
    crs = CRS.from_user_input(metric_crs) if metric_crs else metric_crs_for_frame(communities)
    area_fn = metric_area_fn(crs)
    comm_geoms, comm_codes = _community_outlines(communities, code_column)

    zone = BorderZone.of(comm_geoms, rules.border_snap_m)  # built once: barriers and oversize units' roads
    barriers = _barrier_lines(roads, waterways, railways, comm_geoms, road_rules, zone)
    faces, face_codes = _faces(comm_geoms, comm_codes, barriers)
    site_polys, site_points = _split_sites(sites, rules)
    site_pieces = _site_pieces(site_polys, comm_geoms, comm_codes)
    compound_pieces = _compound_pieces(compounds, site_pieces, comm_geoms, comm_codes)
    units = _first_units(faces, face_codes, site_pieces, compound_pieces, area_fn)
    bld = _building_households(buildings, compound_pieces, rules)
    units = _split_oversize(units, bld, roads, zone, rules, area_fn, band, frozenset(atomize))
    units = _point_sites(units, site_points, area_fn)
    units = _share_strips(units, bld, rules, area_fn, barriers)
    units = _clean_coverage(units, comm_geoms, comm_codes, barriers, rules, area_fn)
    units = _absorb_slivers(units, rules, area_fn, barriers)
    units = _unit_totals(units, bld, area_fn)
    units = _building_counts(units, bld)
    units["atomic"] = units["community_code"].isin(atomize).to_numpy()
    out = _with_stable_ids(units, area_fn)
    out.attrs["metric_crs"] = crs.to_string()
    out.attrs["households_in_buildings"] = int(bld.households.sum())
    if read is not None:  # what the entrances layer gave (gridmap.geo.stairwells.StairwellSummary)
        out.attrs["stairwells"] = asdict(read)
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
                   zone: BorderZone) -> np.ndarray:
    """Step 1, the lines that divide a community into blocks: roads of the barrier classes,
    waterways and railways (tunnels excepted; outlines of area features), those within reach of
    the territory, with stretches within ``zone`` of a community border taken as that border
    (:meth:`gridmap.geo.border_snap.BorderZone.off`: a road centre line digitised a metre or two
    off the civil-affairs line would cut a hairline strip out of the blocks on either side; a
    road crossing the border keeps both halves, each joined to the border). Community boundaries
    themselves are added by :func:`_faces`."""
    parts = []
    if roads is not None and len(roads):
        parts.append(_lines(roads, keep=_not_tunnel(roads) & road_rules.is_barrier(roads)))
    for extra in (waterways, railways):
        if extra is not None and len(extra):
            parts.append(_lines(extra, keep=_not_tunnel(extra)))
    barriers = np.concatenate(parts) if parts else np.empty(0, dtype=object)
    extent = shapely.box(*shapely.total_bounds(comm_geoms))
    barriers = barriers[shapely.intersects(barriers, extent)]
    return zone.off(barriers)


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
    """The sites of the configured types (``site_types``), as footprints (polygons, carved out
    as units in step 3) and all of them as *marks* for the site policy of step 6
    (:func:`_point_sites`): each with a lower-case ``site_type``, its ``staff`` (NaN where the
    layer has no staff column: ``staff_column`` or an alias such as 职工人数), the area from
    which it is dedicated (``_min_area``) and whether its staff alone makes it dedicated
    (``_staff_ok``), by :meth:`UnitRules.dedicated_thresholds`; (None, None) without sites."""
    from gridmap.geo.fields import FIELD_ALIASES

    if sites is None or not len(sites):
        return None, None
    sites = sites.to_crs(STORAGE_EPSG)

    def column(name: str, canonical: str) -> str | None:  # the rule's column, else one the field table knows
        if name in sites:
            return name
        keys = {str(a).strip().casefold() for a in FIELD_ALIASES.get(canonical, ())}
        return next((c for c in sites.columns if str(c).strip().casefold() in keys), None)

    type_column, staff_column = column(rules.site_type_column, "type"), column(rules.staff_column, "staff")
    types = (sites[type_column].astype("string").str.lower()
             if type_column else pd.Series("site", index=sites.index, dtype="string"))
    wanted = sites[types.isin({str(t).lower() for t in rules.site_types}).fillna(False).to_numpy()].copy()
    wanted["site_type"] = types[wanted.index].astype(object)
    wanted["staff"] = (pd.to_numeric(wanted[staff_column], errors="coerce").astype(float)
                       if staff_column else np.nan)
    wanted["_min_area"], wanted["_staff_ok"] = rules.dedicated_thresholds(wanted["site_type"], wanted["staff"])
    is_point = np.isin(shapely.get_type_id(np.asarray(wanted.geometry.values)), (0, 4))
    wanted["_point"] = is_point
    return wanted[~is_point], wanted


def _site_pieces(site_polys: gpd.GeoDataFrame | None, comm_geoms: np.ndarray, comm_codes: np.ndarray) -> pd.DataFrame:
    """Step 3a, site footprints cut to their communities and made non-overlapping (the smaller
    site keeps a shared part)."""
    return _remove_mutual_overlaps(
        _cut_to_communities(site_polys, comm_geoms, comm_codes, ["name", "site_type"]), smaller_first=True)


def _compound_pieces(compounds: gpd.GeoDataFrame | None, site_pieces: pd.DataFrame, comm_geoms: np.ndarray,
                     comm_codes: np.ndarray) -> pd.DataFrame:
    """Step 3b, compounds cut to their communities, each piece tagged with its compound
    (``compound_id``), made non-overlapping (smaller first), minus the sites of its community:
    sites are carved out first. A compound's name is its ``name``, else its ``compound_name``
    (小区名称, as a district's 小区 layer names it: the field table reads it so)."""
    if compounds is not None and "name" not in compounds and "compound_name" in compounds:
        compounds = compounds.rename(columns={"compound_name": "name"})
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
    entrances: np.ndarray | None = None  # 单元 (stairwell) count per building, 0 where unknown
    cuts: np.ndarray | None = None  # where its 单元 strips are cut (gridmap.geo.stairwells), None: evenly


def _building_households(buildings: gpd.GeoDataFrame | None, compound_pieces: pd.DataFrame,
                         rules: UnitRules) -> _Buildings:
    """Step 4, households at the buildings (footprints or address points): the layer's own
    counts (its columns read through the field table, :mod:`gridmap.geo.fields`: 户数 is
    households), checked and never silently replaced, by the rules of
    :func:`gridmap.geo.households.checked_households` (``76户`` is 76, a shop's empty count 0; an
    empty, approximate or unreadable count is refused with the buildings named: import the layer
    with ``--estimate-missing`` to have them estimated and marked). A layer without a households
    column is estimated whole by the household rule (a building inside a compound counts as
    residential), as OSM data is. Population where the layer has it."""
    geoms = np.empty(0, dtype=object)
    households = np.zeros(0, dtype=np.int64)
    population = None
    entrances = None
    if buildings is not None and len(buildings):
        bld, mapping = map_fields(buildings.to_crs(STORAGE_EPSG))
        problems = household_problems(bld)
        if len(problems):
            labels = {target: source for source, target in mapping.renamed.items()}
            raise households_refusal(bld, problems, name="buildings", labels=labels, reimport=True)
        geoms = np.asarray(bld.geometry.values, dtype=object).copy()
        broken = ~shapely.is_valid(geoms)  # repaired only where needed: most footprints are valid
        geoms[broken] = shapely.make_valid(geoms[broken])
        points = shapely.point_on_surface(geoms)
        in_compound = np.zeros(len(bld), dtype=bool)
        if len(compound_pieces):
            in_compound = _assign_to_polygons(points, compound_pieces["geometry"].to_numpy()) >= 0
        households = estimate_households(bld, rules.household_rule, residential_mask=in_compound).to_numpy()
        if "population" in bld:
            population = pd.to_numeric(bld["population"], errors="coerce").fillna(0).round().astype(np.int64).to_numpy()
        if "entrances" in bld:
            entrances = stairwells.own_counts(bld)
        return _Buildings(geoms, points, households, population, entrances, stairwells.cuts_of(bld))
    return _Buildings(geoms, geoms, households, population, entrances)


def _split_oversize(units: pd.DataFrame, bld: _Buildings, roads: gpd.GeoDataFrame | None, zone: BorderZone,
                    rules: UnitRules, area_fn: AreaFn, band: tuple[int, int] | None,
                    atomize: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Step 5, compounds and blocks above ``compound_max_households`` split into groups of whole
    buildings (:mod:`gridmap.geo.atoms`): by their internal roads of any class first
    (:func:`_road_pieces`), pieces still too large by a balanced bisection of their buildings'
    cells, a single tower by its 单元 where the data counts them. In the communities of
    ``atomize`` every block and every oversize compound is cut down to one unit per building, a
    tower above the limit by its 单元 (compounds within the limit stay whole: that is a rule, not
    a choice). Each part is numbered
    in ``compound_part`` (NaN for units not split); a tower left whole for want of a 单元 count is
    marked in ``lone_tower``."""
    limit = rules.compound_max_households
    units = units.assign(compound_part=np.nan, lone_tower=False)
    if not (len(units) and len(bld.geoms)):
        return units
    hh = _allocate(bld.geoms, bld.households, units["geometry"].to_numpy(), bld.points)
    kind = units["kind"].to_numpy()
    fine = units["community_code"].isin(atomize).to_numpy() & (kind != "site") & ((kind == "block") | (hh > limit))
    if fine.any():
        fine &= np.bincount(_assign_to_polygons(bld.points[bld.households > 0], units["geometry"].to_numpy()) + 1,
                            minlength=len(units) + 1)[1:] >= 2
    too_big = np.flatnonzero(((kind != "site") & (hh > limit)) | fine)
    if not len(too_big):
        return units
    geoms = units["geometry"].to_numpy()
    all_roads = np.empty(0, dtype=object)
    if roads is not None and len(roads):  # the roads reaching an oversize unit, off the community borders
        lines = _lines(roads, keep=_not_tunnel(roads))
        reach = 1.5 * zone.tolerance_m / float(np.min(zone.factor))  # a connector's
        near = shapely.STRtree(lines).query(geoms[too_big], predicate="dwithin", distance=reach)[1]
        all_roads = zone.off(lines[np.unique(near)])
    by_roads = iter(_road_pieces(geoms[too_big[~fine[too_big]]], all_roads, area_fn, zone))
    owner, pieces = [], []
    for idx in too_big:
        for piece in ([geoms[idx]] if fine[idx] else next(by_roads)):
            owner.append(idx)
            pieces.append(piece)
    pieces_arr, owner_arr = np.asarray(pieces, dtype=object), np.asarray(owner)
    parts: list[list[atoms.Piece]] = [[atoms.Piece(p)] for p in pieces_arr]
    # only the buildings that reach a piece count in one (the same totals as all of them, found faster)
    reach = np.unique(shapely.STRtree(bld.geoms).query(pieces_arr, predicate="intersects")[1])
    piece_hh = _allocate(bld.geoms[reach], bld.households[reach], pieces_arr, bld.points[reach])
    for each in (False, True):
        chosen = np.flatnonzero(fine[owner_arr] == each) if each else np.flatnonzero(~fine[owner_arr] & (piece_hh > limit))
        found = atoms.split_by_buildings(pieces_arr[chosen], bld.points, bld.geoms, bld.households, bld.entrances,
                                         limit, band, area_fn, each_building=each, cuts=bld.cuts)
        for i, split in zip(chosen, found):
            parts[i] = split
    source, geometry, lone = [], [], []
    for idx, found in zip(owner, parts):
        for part in found:
            source.append(idx)
            geometry.append(part.geometry)
            lone.append(part.lone_tower_households is not None)
    pieces_frame = units.iloc[source].reset_index(drop=True)
    pieces_frame["geometry"] = np.asarray(geometry + [None], dtype=object)[:-1]
    pieces_frame["compound_part"] = pieces_frame.groupby(np.asarray(source)).cumcount().astype(float)
    pieces_frame["lone_tower"] = lone
    return pd.concat([units.drop(index=too_big), pieces_frame], ignore_index=True)


def _point_sites(units: pd.DataFrame, site_points: gpd.GeoDataFrame | None, area_fn: AreaFn) -> pd.DataFrame:
    """Step 6, the site policy (:meth:`UnitRules.is_dedicated`), given the marks of
    :func:`_split_sites` (``site_points``: every site, footprints and points):

    * a site unit (a footprint carved in step 3, this piece of it in its community) stays a
      ``site``, a dedicated grid of its own, when its area or its site's staff reaches its type's
      threshold; otherwise it is *folded*: it becomes a ``block`` of the comprehensive grids
      around it, keeping its ``name`` and ``site_type`` so maps can still show it;
    * a site given as a point (a POI without a footprint) turns the block that holds it into a
      ``site`` (with the point's type and name) when that block's area or the point's staff
      reaches the threshold; a folded point changes nothing. Compounds stay as they are."""
    if site_points is None or not len(site_points):
        return units
    units = units.reset_index(drop=True)
    geoms = units["geometry"].to_numpy()
    marks = site_points.reset_index(drop=True)
    min_area_of = dict(zip(marks["site_type"], marks["_min_area"]))
    sites = np.flatnonzero((units["kind"] == "site").to_numpy())
    if len(sites):
        # the footprint a site unit was carved from (same type; the smallest, as overlaps went to it)
        polys = marks[~marks["_point"].to_numpy(dtype=bool)]
        staff_ok = np.zeros(len(sites), dtype=bool)
        if len(polys):
            poly_geoms = np.asarray(polys.geometry.values, dtype=object)
            at, which = shapely.STRtree(poly_geoms).query(shapely.point_on_surface(geoms[sites]), predicate="within")
            same = units["site_type"].to_numpy(dtype=object)[sites[at]] == polys["site_type"].to_numpy(dtype=object)[which]
            found = pd.DataFrame({"at": at[same], "area": shapely.area(poly_geoms[which[same]]),
                                  "ok": polys["_staff_ok"].to_numpy(dtype=bool)[which[same]]})
            first = found.sort_values(["at", "area"], kind="stable").drop_duplicates("at")
            staff_ok[first["at"].to_numpy()] = first["ok"].to_numpy()
        min_area = np.array([min_area_of.get(t, np.inf) for t in units["site_type"].to_numpy(dtype=object)[sites]])
        folded = sites[~(staff_ok | (area_fn(geoms[sites]) >= min_area))]
        units.loc[folded, "kind"] = "block"
    points = marks[marks["_point"].to_numpy(dtype=bool)]
    if len(points):
        hit = _assign_to_polygons(np.asarray(points.geometry.values, dtype=object), geoms)
        names = points["name"].to_numpy(dtype=object) if "name" in points else np.full(len(points), None)
        for i, unit_idx in enumerate(hit):
            if unit_idx < 0 or units.at[unit_idx, "kind"] != "block" or pd.notna(units.at[unit_idx, "site_type"]):
                continue  # outside every unit, a compound or a site, or a site folded here already
            if points["_staff_ok"].iat[i] or area_fn(geoms[[unit_idx]])[0] >= points["_min_area"].iat[i]:
                units.at[unit_idx, "kind"] = "site"
                units.at[unit_idx, "site_type"] = points["site_type"].iat[i]
                units.at[unit_idx, "name"] = names[i]
    return units


def _share_strips(units: pd.DataFrame, bld: _Buildings, rules: UnitRules, area_fn: AreaFn,
                  barriers: np.ndarray) -> pd.DataFrame:
    """Step 7, land along walls (:mod:`gridmap.geo.strips`; off unless ``share_land_along_walls``):
    the land of a block nearer a compound's or dedicated site's wall (of its community, not across
    a barrier) than the block's own buildings, never a footprint, is cut off and marked to join
    that unit in step 9 (``_joins``: its ``_key``); a block without residents is shared out
    whole, with the inhabited units beside it as well. Named places folded into blocks (a park, a
    square) keep theirs."""
    units = units.reset_index(drop=True)
    units["_key"] = np.arange(len(units))
    units["_joins"] = -1
    if not rules.share_land_along_walls:
        return units
    geoms = units["geometry"].to_numpy()
    homes = bld.households > 0
    inhabited = _holds_buildings(geoms, bld.geoms[homes], bld.points[homes])
    kind = units["kind"].to_numpy()
    shared = strips.share_strips(geoms, units["community_code"].to_numpy(),
                                 (kind == "block") & units["site_type"].isna().to_numpy(), inhabited,
                                 (kind == "compound") | (kind == "site"), buildings=bld.geoms[homes],
                                 points=bld.points[homes], footprints_anywhere=bld.geoms,
                                 project=area_fn.project, barriers=barriers)  # type: ignore[attr-defined]
    if not shared.strips:
        return units
    out = units.iloc[shared.source].reset_index(drop=True)
    out["geometry"] = shared.geometry
    out["_joins"] = shared.joins
    out.loc[out["_joins"].to_numpy() >= 0, "_key"] = -3  # a part is no unit's: none is meant to join it
    return out


def _holds_buildings(geoms: np.ndarray, footprints: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Whether each unit holds a building: its point, or a share of its footprint (a tower cut by
    its 单元 has its point in one piece only). Only footprints not inside the unit of their point
    are asked the second way."""
    held = np.zeros(len(geoms), dtype=bool)
    if not len(footprints):
        return held
    holder = _assign_to_polygons(points, geoms)
    held[holder[holder >= 0]] = True
    shapely.prepare(geoms)
    placed = np.flatnonzero(holder >= 0)
    straddling = np.concatenate([placed[~shapely.covers(geoms[holder[placed]], footprints[placed])],
                                 np.flatnonzero(holder < 0)])
    straddling = straddling[shapely.area(footprints[straddling]) > 0]
    if len(straddling):
        b_idx, unit_idx = shapely.STRtree(geoms).query(footprints[straddling], predicate="intersects")
        overlap = shapely.area(shapely.intersection(geoms[unit_idx], footprints[straddling[b_idx]])) > 0
        held[unit_idx[overlap]] = True
    return held


def _clean_coverage(units: pd.DataFrame, comm_geoms: np.ndarray, comm_codes: np.ndarray, barriers: np.ndarray,
                    rules: UnitRules, area_fn: AreaFn) -> pd.DataFrame:
    """Step 8, one clean coverage of every community (:func:`gridmap.geo.coverage.clean`): shared
    borders vertex for vertex, no gap, no overlap, no crumb or hairline strip, nothing outside
    its community; then one row per polygon part."""
    units = units.reset_index(drop=True)
    units["geometry"] = coverage.clean(units["geometry"].to_numpy(), units["community_code"].to_numpy(),
                                       project=area_fn.project, min_width_m=rules.min_face_width_m,  # type: ignore[attr-defined]
                                       territory=comm_geoms, territory_groups=comm_codes, barriers=barriers)
    return _explode(units, area_fn)


def _absorb_slivers(units: pd.DataFrame, rules: UnitRules, area_fn: AreaFn, barriers: np.ndarray | None
                    ) -> pd.DataFrame:
    """Step 9, units below ``min_unit_area_m2`` (and the strips' parts) join their longest-border neighbour, a border off
    the ``barriers`` first (:func:`_merge_small`), repeated while a union comes out in pieces (a
    contact shorter than ``MIN_SHARED_DEG``), at most three times."""
    for _ in range(3):
        units = _merge_small(units, rules.min_unit_area_m2, area_fn, barriers)
        if (shapely.get_type_id(units["geometry"].to_numpy()) == 3).all():
            break
        units = _explode(units, area_fn)
    return units


def _unit_totals(units: pd.DataFrame, bld: _Buildings, area_fn: AreaFn) -> pd.DataFrame:
    """Step 10, households (and population) of every unit from its buildings (:func:`_allocate`:
    a straddling building is shared by area, totals conserved), and its area in m²."""
    unit_geoms = units["geometry"].to_numpy()
    units["households"] = _allocate(bld.geoms, bld.households, unit_geoms, bld.points)
    if bld.population is not None:
        units["population"] = _allocate(bld.geoms, bld.population, unit_geoms, bld.points)
    units["area_m2"] = area_fn(unit_geoms)
    return units


def _building_counts(units: pd.DataFrame, bld: _Buildings) -> pd.DataFrame:
    """Step 10b, how many inhabited buildings each unit holds (by representative point): whether a
    unit could be divided at building grain, which the plan's proofs must know."""
    counts = np.zeros(len(units), dtype=np.int64)
    inhabited = bld.households > 0 if len(bld.geoms) else np.zeros(0, dtype=bool)
    if inhabited.any():
        at = _assign_to_polygons(bld.points[inhabited], units["geometry"].to_numpy())
        np.add.at(counts, at[at >= 0], 1)
    units["buildings"] = counts
    units["lone_tower"] = units["lone_tower"].fillna(False).astype(bool) if "lone_tower" in units else False
    return units


def _with_stable_ids(units: pd.DataFrame, area_fn: AreaFn) -> gpd.GeoDataFrame:
    """Step 11, stable ids: per community, sites, then compounds, then blocks, each north to south
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
               "households", *(["population"] if "population" in units else []), "buildings", "lone_tower",
               "atomic", "area_m2", "geometry"]
    return gpd.GeoDataFrame(units[columns], geometry="geometry", crs=STORAGE_EPSG)
