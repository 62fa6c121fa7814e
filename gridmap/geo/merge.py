"""Merge the grid layers many departments drew on their own into one layer (多网合一).

What a merge delivers (docs/domain.md, "Merging departmental grids"):

1. **Conflicts**, per department and grid, each with geometry, area and the grids involved:
   overlaps inside a layer, gaps in its coverage, slivers (thin pieces where borders almost but
   not quite agree), grids crossing community boundaries, parts outside the territory, and a
   layer offset as a whole (above all one digitised on a GCJ-02 basemap and never converted),
   with the corrected layer offered.
2. **A unified plan**: every unit of the territory assigned to one grid by the partition rules;
   unit borders where departments' grids change are made expensive to keep inside a grid, so
   the plan follows what departments keep together and splits few departmental grids.
3. **A crosswalk** both ways with area and household shares.
4. **Duties** per unified grid: the union of the duties of the departmental grids that
   substantially cover it, tagged with their department, filtered by the access list.

Assignment of units to departmental grids is by largest overlap (the areal-interpolation step
``maup.assign`` does), computed once for all layers with a spatial index; a unit lying wholly
inside a grid skips the intersection.

``merge_layers`` runs one function per step: offsets found and corrected (``_correct_offsets``);
conflicts inside each layer, in a background thread (:func:`gridmap.geo.conflicts.start_conflicts`);
the departmental grid of each unit (``_departmental_grids_of_units``); the unified plan
(:func:`gridmap.geo.partition.partition`, with ``_keep_together_factor`` on the unit borders);
then ``_crosswalks``, ``_duties``, ``_coverage_shares`` and ``_summary``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.geo.conflicts import WORKERS, start_conflicts
from gridmap.geo.crs import STORAGE_EPSG, metric_crs_for_frame
from gridmap.geo.graph import UnitGraph, build_graph
from gridmap.geo.offsets import BorderReference, corrected, find_offsets
from gridmap.geo.partition import PartitionResult, PartitionRules, partition, with_band
from gridmap.geo.roads import RoadRules
from gridmap.geo.shapes import LocalScale, layer_fingerprint
from gridmap.geo.shapes import polygonal as _polygonal
from gridmap.geo.tasks import SERIAL, Runner
from gridmap.geo.units import AreaFn, metric_area_fn

CONFLICT_KINDS = ("overlap", "gap", "sliver", "crosses_community", "outside", "offset")


@dataclass(frozen=True)
class MergeRules:
    """Thresholds of the merge (all configurable)."""

    tolerance_m2: float = 50.0          # conflicts smaller than this are digitising noise
    sliver_width_m: float = 8.0         # pieces thinner than this (mean width) are slivers
    duty_threshold: float = 0.25        # share of a unified grid an old grid must cover to pass its duties
    keep_together_weight: float = 4.0   # how strongly unit borders inside departmental grids are kept
    offset_min_m: float = 25.0          # a whole-layer shift below this is not reported
    fix_offsets: bool = True            # merge with the corrected layer when a layer is offset


@dataclass
class MergeResult:
    """The unified plan and everything the merge found on the way."""

    units: gpd.GeoDataFrame
    grids: gpd.GeoDataFrame
    crosswalk: pd.DataFrame
    reverse_crosswalk: pd.DataFrame
    conflicts: gpd.GeoDataFrame
    duties: pd.DataFrame
    excluded_duties: pd.DataFrame
    coverage: pd.DataFrame
    corrected_layers: dict[str, gpd.GeoDataFrame]
    partition: PartitionResult
    summary: dict

    def __repr__(self) -> str:
        return f"<MergeResult {self.summary['text']}; {len(self.conflicts)} conflicts>"


# -- input ---------------------------------------------------------------------------------------
def normalise_layers(layers: dict[str, gpd.GeoDataFrame] | gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One GeoDataFrame (EPSG:4490) with department, grid_id, name, duties (list), worker."""
    if isinstance(layers, dict):
        frames = []
        for department, frame in layers.items():
            frames.append(frame.to_crs(STORAGE_EPSG).assign(department=str(department)))
        if not frames:
            raise ValueError("no departmental layers given")
        combined = pd.concat(frames, ignore_index=True)
    else:
        if "department" not in layers:
            raise ValueError("a single layer needs a 'department' column")
        combined = layers.to_crs(STORAGE_EPSG).copy()
    combined = gpd.GeoDataFrame(combined, geometry=combined.geometry.name, crs=STORAGE_EPSG)
    if "grid_id" not in combined:
        raise ValueError("departmental grids need a 'grid_id' column")
    combined["grid_id"] = combined["grid_id"].astype(str)
    if combined.duplicated(["department", "grid_id"]).any():
        dup = combined[combined.duplicated(["department", "grid_id"], keep=False)][["department", "grid_id"]]
        raise ValueError(f"grid_id repeats within a department: {dup.drop_duplicates().head(5).values.tolist()}")
    for column in ("name", "worker"):
        if column not in combined:
            combined[column] = None
    if "duties" not in combined:
        combined["duties"] = [[] for _ in range(len(combined))]
    combined["duties"] = [_duty_list(d) for d in combined["duties"]]
    geoms = shapely.make_valid(np.asarray(combined.geometry.values, dtype=object))
    combined = combined.set_geometry(gpd.GeoSeries(_polygonal(geoms), index=combined.index, crs=STORAGE_EPSG))
    combined = combined[~combined.geometry.is_empty]
    return combined[["department", "grid_id", "name", "duties", "worker", "geometry"]].reset_index(drop=True)


def _duty_list(value) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.replace("；", ";").replace(",", ";").split(";") if v.strip()]
    return [str(v) for v in value]


# -- assignment, crosswalk, duties -----------------------------------------------------------------
def overlay_units(units: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, unit_area_m2: np.ndarray, *,
                  workers: int | None = None) -> pd.DataFrame:
    """Area (m²) of every unit × departmental grid overlap, and the share of the unit it covers.

    A unit lying wholly inside a grid skips the intersection; shares are ratios of lon/lat areas
    (exact for a ratio at this scale) and metres come from the unit's own metric area. Grids of
    identical shape (departments that adopted the same lattice or another department's grids:
    common in practice) are overlaid once and the rows repeated for each of them. ``workers``
    threads share the work (default: every core when there are enough grids to be worth it).
    """
    u_geoms = np.asarray(units.geometry.values, dtype=object)
    shapes, first, which = np.unique(shapely.to_wkb(np.asarray(grids.geometry.values, dtype=object)),
                                      return_index=True, return_inverse=True)
    if workers is None:
        workers = WORKERS if len(first) >= 64 else 1
    distinct = _overlay_in_threads(u_geoms, np.asarray(grids.geometry.values, dtype=object)[first], unit_area_m2,
                                   workers)
    owners = pd.DataFrame({"grid": np.arange(len(grids)), "shape": which.ravel()})
    frame = distinct.rename(columns={"grid": "shape"}).merge(owners, on="shape", how="inner")
    return frame[["unit", "grid", "fraction", "area_m2"]].sort_values(["grid", "unit"], kind="stable").reset_index(drop=True)


def _overlay_in_threads(u_geoms: np.ndarray, g_geoms: np.ndarray, unit_area_m2: np.ndarray,
                        workers: int) -> pd.DataFrame:
    """``_overlay_distinct`` on all cores: the grids are dealt round-robin into a few chunks (so
    costly jittered grids spread evenly) and each thread works on its own copy of the units,
    because prepared geometries build their indexes lazily and must not be shared by threads."""
    if workers <= 1:
        return _overlay_distinct(u_geoms, g_geoms, unit_area_m2, shapely.point_on_surface(u_geoms))
    chunks = 2 * workers
    wkb = shapely.to_wkb(u_geoms)
    interior = shapely.point_on_surface(u_geoms)  # plain points: safe to share between threads

    def work(k: int) -> pd.DataFrame:
        frame = _overlay_distinct(shapely.from_wkb(wkb), g_geoms[k::chunks], unit_area_m2, interior)
        frame["grid"] = frame["grid"].to_numpy() * chunks + k
        return frame

    with ThreadPoolExecutor(workers) as pool:
        return pd.concat(list(pool.map(work, range(chunks))), ignore_index=True)


def _overlay_distinct(u_geoms: np.ndarray, g_geoms: np.ndarray, unit_area_m2: np.ndarray,
                      interior: np.ndarray) -> pd.DataFrame:
    """``overlay_units`` on distinct grid shapes, in one thread (``interior``: a point inside each unit)."""
    tree = shapely.STRtree(u_geoms)
    gi, ui = tree.query(g_geoms, predicate="intersects")
    shapely.prepare(g_geoms)
    # a grid covers a unit only if it holds the unit's interior point (a point-in-polygon test
    # first), and a grid lies inside a unit only if it is the smaller of the two
    inside = np.zeros(len(gi), dtype=bool)
    maybe = np.flatnonzero(shapely.intersects(g_geoms[gi], interior[ui]))
    inside[maybe] = shapely.covers(g_geoms[gi[maybe]], u_geoms[ui[maybe]])
    fraction = np.ones(len(gi))
    shapely.prepare(u_geoms)
    smaller = np.flatnonzero(~inside & (shapely.area(g_geoms)[gi] <= shapely.area(u_geoms)[ui]))
    holds = np.zeros(len(gi), dtype=bool)
    holds[smaller] = shapely.covers(u_geoms[ui[smaller]], g_geoms[gi[smaller]])  # a small grid inside a unit
    fraction[holds] = shapely.area(g_geoms[gi[holds]]) / shapely.area(u_geoms[ui[holds]])
    partial = np.flatnonzero(~inside & ~holds)
    touching = shapely.touches(g_geoms[gi[partial]], u_geoms[ui[partial]])  # a shared border, no area
    fraction[partial[touching]] = 0.0
    partial = partial[~touching]
    if len(partial):
        fraction[partial] = (shapely.area(shapely.intersection(g_geoms[gi[partial]], u_geoms[ui[partial]]))
                             / shapely.area(u_geoms[ui[partial]]))
    frame = pd.DataFrame({"unit": ui, "grid": gi, "fraction": np.clip(fraction, 0.0, 1.0)})
    frame = frame[frame["fraction"] > 0]
    frame["area_m2"] = frame["fraction"] * unit_area_m2[frame["unit"].to_numpy()]
    return frame


def merge_layers(
    layers: dict[str, gpd.GeoDataFrame] | gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    *,
    min_households: int | None = None,
    max_households: int | None = None,
    access_list: set[str] | list[str] | None = None,
    tolerance_m2: float | None = None,
    rules: MergeRules | None = None,
    partition_rules: PartitionRules | None = None,
    road_rules: RoadRules | None = None,
    roads: gpd.GeoDataFrame | None = None,
    seed: int = 0,
    code_column: str = "code",
    runner: Runner = SERIAL,
) -> MergeResult:
    """Merge departmental grid layers over ``units`` into one plan; see the module docstring. The
    unified grids follow ``partition_rules`` (band overridden by ``min_households``/``max_households``
    when given), borders preferred along ``road_rules``' major roads. The unified plan's pieces
    (communities and their neighbours) are cut on ``runner`` (:mod:`gridmap.geo.tasks`: a Dask
    cluster's, ``gridmap.distributed.runner_for``), as a partition's are; the answer is the same
    wherever they run. The overlays of the departments' grids with the units stay here, on
    threads (GEOS releases the GIL).

    Example
    -------
    >>> result = merge_layers({"综治": zz, "城管": cg, "党建": dj}, units, communities)  # doctest: +SKIP
    >>> result.summary["text"]  # doctest: +SKIP
    '213 grids of 19 kinds → 44 unified grids; 34 duties per grid worker (median)'
    >>> result.conflicts.explore(column="kind")  # doctest: +SKIP
    """
    laps = _Laps()
    rules = rules or MergeRules()
    if tolerance_m2 is not None:
        rules = dataclasses.replace(rules, tolerance_m2=tolerance_m2)
    grids = normalise_layers(layers)
    units = units.to_crs(STORAGE_EPSG).reset_index(drop=True)
    # the unit graph (for the partition) and the conflicts (for the report only) are computed in
    # background threads, mostly inside GEOS, which releases the GIL, beside the stages here. The
    # conflicts take one thread: with two they finished during the assignment, competing with it
    # for the cores, and left a core idle during the partition (single-threaded); with one they run
    # on beside the partition, and this thread takes the layers still waiting when it gets to them
    background = ThreadPoolExecutor(1)
    prules = with_band(partition_rules, min_households, max_households)
    graph_ready = background.submit(build_graph, units, major_roads=(road_rules or RoadRules()).major(roads))
    communities, territory, scale, area_fn = _territory(communities)
    grids, corrected_layers, conflict_rows = _correct_offsets(grids, units, communities, scale, rules)
    laps.lap("offsets")
    pending = start_conflicts(grids, communities, territory, scale, tolerance_m2=rules.tolerance_m2,
                              sliver_width_m=rules.sliver_width_m, code_column=code_column, background=1)
    background.shutdown(wait=False)
    over, departments, signature = _departmental_grids_of_units(units, grids, area_fn)
    laps.lap("assignment")
    graph = graph_ready.result()
    plan = partition(units, seed=seed, rules=prules, graph=graph, edge_factor=_keep_together_factor(graph, signature, rules),
                     runner=runner)
    laps.lap("partition")
    found, uncovered_m2 = pending.result()
    conflicts = _conflict_frame(conflict_rows + found)
    laps.lap("conflicts_wait")
    crosswalk, reverse = _crosswalks(over, units, grids, plan)
    duties, excluded = _duties(reverse, grids, rules.duty_threshold, access_list)
    coverage = _coverage_shares(grids, departments, uncovered_m2, float(scale.area([territory])[0]))
    laps.lap("crosswalk_duties")
    summary = _summary(grids, departments, plan, crosswalk, duties, excluded, conflicts, corrected_layers, laps.timings)
    return MergeResult(units=plan.units, grids=plan.grids, crosswalk=crosswalk.reset_index(drop=True),
                       reverse_crosswalk=reverse.reset_index(drop=True), conflicts=conflicts, duties=duties,
                       excluded_duties=excluded.reset_index(drop=True), coverage=coverage,
                       corrected_layers=corrected_layers, partition=plan, summary=summary)


def _territory(communities: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, object, LocalScale, AreaFn]:
    """The communities in EPSG:4490, their union (the territory), the local metres-per-degree
    scale at its centre (for conflict sizes) and the unit-area function of its metric CRS."""
    communities = communities.to_crs(STORAGE_EPSG)
    area_fn = metric_area_fn(metric_crs_for_frame(communities))
    territory = shapely.union_all(np.asarray(communities.geometry.values, dtype=object))
    scale = LocalScale.at(float(shapely.get_y(shapely.centroid(territory))))
    return communities, territory, scale, area_fn


class _Laps:
    """Wall-clock seconds of each stage of a merge, for the summary's ``timings_s``."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        """Record the time since the previous lap (or the start) as ``stage``."""
        now = time.perf_counter()
        self.timings[stage] = round(now - self._last, 3)
        self._last = now


def _correct_offsets(grids: gpd.GeoDataFrame, units: gpd.GeoDataFrame, communities: gpd.GeoDataFrame,
                     scale: LocalScale, rules: MergeRules
                     ) -> tuple[gpd.GeoDataFrame, dict[str, gpd.GeoDataFrame], list[dict]]:
    """Whole-layer offsets, found first so that every later step sees the corrected layer: each
    department's layer is matched against the unit and community borders (:func:`find_offsets`);
    an offset layer is reported as one conflict (its outline, once per distinct layer) and,
    with ``fix_offsets``, replaced by its corrected copy. Returns the grids to merge, the
    corrected layers by department and the offset conflicts."""
    reference = BorderReference(np.concatenate([
        shapely.boundary(np.asarray(units.geometry.values, dtype=object)),
        shapely.boundary(np.asarray(communities.geometry.values, dtype=object))]), scale.mx)
    by_department = [(str(d), layer) for d, layer in grids.groupby("department", sort=False)]
    offsets = find_offsets([(d, np.asarray(layer.geometry.values, dtype=object)) for d, layer in by_department],
                           reference, min_shift_m=rules.offset_min_m, workers=WORKERS)
    conflict_rows: list[dict] = []
    corrected_layers: dict[str, gpd.GeoDataFrame] = {}
    fixed_parts = []
    outlines: dict[bytes, object] = {}  # one union per distinct offset layer
    for department, layer in by_department:
        offset = offsets.get(department)
        if offset is None:
            fixed_parts.append(layer)
            continue
        repaired = corrected(layer, offset)
        corrected_layers[department] = repaired
        geoms = np.asarray(layer.geometry.values, dtype=object)
        key = layer_fingerprint(geoms)
        outline = outlines[key] if key in outlines else outlines.setdefault(key, shapely.union_all(geoms))
        conflict_rows.append({"department": department, "kind": "offset", "grids": list(layer["grid_id"]),
                              "area_m2": float(scale.area([outline])[0]), "detail": offset.detail, "geometry": outline})
        fixed_parts.append(repaired if rules.fix_offsets else layer)
    grids = gpd.GeoDataFrame(pd.concat(fixed_parts, ignore_index=True), geometry="geometry", crs=STORAGE_EPSG)
    return grids, corrected_layers, conflict_rows


def _departmental_grids_of_units(units: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, area_fn: AreaFn
                                 ) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """Which departmental grid holds each unit, by largest overlap: the overlay rows (with
    their department), the departments in input order, and the signature matrix (unit ×
    department: the index of the grid holding the unit, -1 where the department has none)."""
    over = overlay_units(units, grids, area_fn(np.asarray(units.geometry.values, dtype=object)))
    over["department"] = grids["department"].to_numpy()[over["grid"].to_numpy()]
    best = over.sort_values("area_m2", ascending=False).drop_duplicates(["unit", "department"])
    departments = list(dict.fromkeys(grids["department"]))
    signature = np.full((len(units), len(departments)), -1, dtype=np.int64)
    dep_index = {d: i for i, d in enumerate(departments)}
    signature[best["unit"].to_numpy(), best["department"].map(dep_index).to_numpy()] = best["grid"].to_numpy()
    return over, departments, signature


def _keep_together_factor(graph: UnitGraph, signature: np.ndarray, rules: MergeRules) -> np.ndarray | float:
    """The unified plan's edge preference: a unit border costs more to keep inside a grid by
    ``keep_together_weight`` times the share of departments whose grids change across it, so the
    plan follows what departments keep together."""
    differing = (signature[graph.left] != signature[graph.right]).mean(axis=1) if signature.shape[1] else 0.0
    return 1.0 + rules.keep_together_weight * differing


def _conflict_frame(rows: list[dict]) -> gpd.GeoDataFrame:
    """All conflicts as one GeoDataFrame (with its columns even when there are none)."""
    return gpd.GeoDataFrame(rows or {"department": [], "kind": [], "grids": [], "area_m2": [], "detail": [],
                                     "geometry": []},
                            geometry="geometry", crs=STORAGE_EPSG)


def _crosswalks(over: pd.DataFrame, units: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, plan: PartitionResult
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The crosswalk both ways, from the unit × departmental grid overlaps: each old grid's
    area and households in each unified grid (with its shares of the old grid), and each unified
    grid's pieces of old grids (with their share of the unified grid's area)."""
    households = units["households"].to_numpy(dtype=float)
    grid_code = plan.units["grid_code"].to_numpy()
    over["grid_code"] = grid_code[over["unit"].to_numpy()]
    over["households"] = households[over["unit"].to_numpy()] * over["fraction"]
    over["grid_id"] = grids["grid_id"].to_numpy()[over["grid"].to_numpy()]
    pairs = over.groupby(["department", "grid_id", "grid_code"], sort=False)[["area_m2", "households"]].sum().reset_index()
    totals = pairs.groupby(["department", "grid_id"])[["area_m2", "households"]].transform("sum")
    pairs["area_share"] = pairs["area_m2"] / totals["area_m2"]
    pairs["household_share"] = np.where(totals["households"] > 0, pairs["households"] / totals["households"].where(totals["households"] > 0, 1), np.nan)
    crosswalk = pairs[["department", "grid_id", "grid_code", "area_share", "household_share", "area_m2", "households"]]
    unified_area = plan.grids.set_index("grid_code")["area_m2"]
    reverse = pairs[["grid_code", "department", "grid_id", "area_m2", "households"]].copy()
    reverse["share_of_unified"] = reverse["area_m2"] / reverse["grid_code"].map(unified_area)
    return crosswalk, reverse


def _duties(reverse: pd.DataFrame, grids: gpd.GeoDataFrame, threshold: float,
            access_list: set[str] | list[str] | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The duties of each unified grid: those of every departmental grid covering at least
    ``threshold`` of it, tagged with their department; with an access list, the duties not on it
    are set apart with the reason."""
    duties_of = dict(zip(zip(grids["department"], grids["grid_id"]), grids["duties"]))
    duty_rows = []
    for row in reverse[reverse["share_of_unified"] >= threshold].itertuples():
        for duty in duties_of.get((row.department, row.grid_id), []):
            duty_rows.append((row.grid_code, row.department, duty))
    all_duties = pd.DataFrame(duty_rows, columns=["grid_code", "department", "duty"]).drop_duplicates()
    if access_list is not None:
        allowed = set(access_list)
        excluded = all_duties[~all_duties["duty"].isin(allowed)].assign(reason="not on the access list (准入事项清单)")
        duties = all_duties[all_duties["duty"].isin(allowed)]
    else:
        excluded = all_duties.iloc[0:0].assign(reason=pd.Series(dtype=str))
        duties = all_duties
    return duties.sort_values(["grid_code", "department", "duty"]).reset_index(drop=True), excluded


def _coverage_shares(grids: gpd.GeoDataFrame, departments: list[str], uncovered_m2: dict[str, float],
                     territory_area: float) -> pd.DataFrame:
    """How many grids each department drew and the share of the territory they cover."""
    return pd.DataFrame([
        {"department": d, "grids": int((grids["department"] == d).sum()),
         "coverage_share": max(0.0, 1.0 - uncovered_m2[d] / territory_area)}
        for d in departments])


def _summary(grids: gpd.GeoDataFrame, departments: list[str], plan: PartitionResult, crosswalk: pd.DataFrame,
             duties: pd.DataFrame, excluded: pd.DataFrame, conflicts: gpd.GeoDataFrame,
             corrected_layers: dict[str, gpd.GeoDataFrame], timings: dict[str, float]) -> dict:
    """The merge in figures: grids before and after, duties per unified grid (min, median, max),
    old grids split, conflicts by kind, offset layers, the partition's summary, stage timings,
    and one line of text."""
    per_grid = duties.groupby("grid_code").size().reindex(plan.grids["grid_code"], fill_value=0)
    split_old = crosswalk.groupby(["department", "grid_id"])["grid_code"].nunique()
    summary = {
        "old_grids": int(len(grids)), "departments": len(departments), "unified_grids": int(len(plan.grids)),
        "duties_min": int(per_grid.min()) if len(per_grid) else 0,
        "duties_median": float(per_grid.median()) if len(per_grid) else 0.0,
        "duties_max": int(per_grid.max()) if len(per_grid) else 0,
        "distinct_duties": int(duties["duty"].nunique()), "excluded_duties": int(excluded["duty"].nunique()),
        "old_grids_split": int((split_old > 1).sum()),
        "conflicts": conflicts["kind"].value_counts().to_dict() if len(conflicts) else {},
        "offset_layers": sorted(corrected_layers),
        "partition": plan.report["summary"],
        "timings_s": timings,
    }
    summary["text"] = (f"{summary['old_grids']} grids of {summary['departments']} kinds → {summary['unified_grids']} "
                       f"unified grids; {summary['duties_min']}/{summary['duties_median']:.0f}/{summary['duties_max']} "
                       f"duties per grid worker (min/median/max)")
    return summary
