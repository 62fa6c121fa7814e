"""Micro-grids (微网格): each comprehensive grid divided into groups of the profile's
``micro_band`` households (50–80 in the default profile) made of whole buildings, and inside a big
building of its 单元 (stairwells): the fourth level of the 四级网络 community → grid → micro-grid →
building.

How (:func:`divide`):

1. every building belongs to the grid holding its representative point;
2. each grid is tiled with one cell per building (:func:`gridmap.geo.tessellation.building_cells`,
   a clean coverage of the grid), so groups of cells tile the grid exactly and no micro-grid
   reaches outside its grid;
3. the atoms are the buildings' cells; a building with a 单元 count (``entrances``) and more
   households than the band's maximum is cut into one strip per 单元 across its long axis
   (:func:`gridmap.geo.atoms.stairwell_strips`), its households shared evenly (by the strips'
   shares of its footprint where doors placed the cuts, :mod:`gridmap.geo.stairwells`). Where whole
   buildings leave a grid outside the band, every building with a 单元 count is cut (the finer
   atoms are kept grid by grid where they do better). A building above the maximum without a 单元
   count is a micro-grid of its own, flagged ``building_above_max`` with that reason;
4. the atoms of each grid are grouped by the partition's own method (recursive spanning-tree
   bisection with repair, :func:`gridmap.geo.partition.assign_grids`, whose last repair is the
   exact search of :mod:`gridmap.geo.exact` on grids of up to 40 atoms) on their adjacency graph,
   with the micro band: every micro-grid is contiguous and as many as possible are in the band;
5. codes are the grid's code + ``CodeScheme.micro_digits`` digits (15 + 3 by default), in
   reading order inside the grid; the report says which micro-grids miss the band and why (the
   proofs of :mod:`gridmap.geo.report`, valid for the grid's atoms).

A comprehensive grid without buildings is one micro-grid (flagged ``no_buildings``). Dedicated
grids are not divided. Pure: GeoDataFrames in, GeoDataFrames out (EPSG:4490).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.errors import Invalid
from gridmap.geo import coverage, stairwells
from gridmap.geo.atoms import stairwell_strips
from gridmap.geo.band import violation
from gridmap.geo.codes import BEIJING_15, CodeScheme
from gridmap.geo.conflicts import overlapping_pairs
from gridmap.geo.crs import STORAGE_EPSG, metric_crs_for_frame
from gridmap.geo.graph import UnitGraph, build_graph
from gridmap.geo.partition import PartitionRules, assign_grids, with_band
from gridmap.geo.profile import PRESETS
from gridmap.geo.report import FLAG_COLUMNS, grid_statistics, histogram
from gridmap.geo.shapes import points_in, polygonal
from gridmap.geo.terms import MICRO_TERMS
from gridmap.geo.tessellation import building_cells
from gridmap.geo.units import metric_area_fn
from gridmap.geo.tasks import SERIAL, Runner


UNIT_ROW_SUFFIX_RE = " [0-9]+单元$"
"""What :func:`unit_row_name` appends to a building's name, as a regular expression (POSIX, the
same in Python and PostgreSQL): a reader strips it to find the building of a 单元's row."""


def unit_row_name(building: str, unit: int) -> str:
    """The name of 单元 ``unit`` (1-based) of a building cut by its stairwells: ``3栋 2单元``."""
    return f"{building} {unit}单元"

CRUMB_SHARE = 1e-6  # a part under this share of its atom, after the snap to the noding grid, is a crumb

MICRO_COLUMNS = ["microgrid_code", "grid_code", "households", "building_count", "atom_count", "area_m2",
                 "compactness", "parts", "flag", "reason", "reason_zh", "geometry"]
BUILDING_COLUMNS = ["building_id", "building_name", "grid_code", "microgrid_code", "part", "parts", "households",
                    "geometry"]


@dataclass
class MicroResult:
    """``microgrids`` (one row per micro-grid: code, parent grid, households, buildings, area,
    compactness, parts, flag and its reason in both languages, geometry), ``buildings`` (one row
    per building or 单元 strip: which micro-grid holds it, its households and its cell),
    ``report`` (summary and flags) and ``flags``."""

    microgrids: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    report: dict
    flags: pd.DataFrame

    @property
    def grids(self) -> gpd.GeoDataFrame:
        """The micro-grids (so a result reads like a :class:`~gridmap.geo.partition.PartitionResult`)."""
        return self.microgrids

    @property
    def units(self) -> gpd.GeoDataFrame:
        """The atoms (buildings and 单元 strips) with their micro-grid."""
        return self.buildings

    def __repr__(self) -> str:
        s = self.report["summary"]
        return (f"<MicroResult {s['microgrids']} micro-grids in {s['grids']} grids from {s['buildings']} buildings; "
                f"{s['in_band']} ({s['in_band_share']:.0%}) in [{s['min_households']}, {s['max_households']}]; "
                f"{len(self.flags)} flags>")


def _labels(buildings: gpd.GeoDataFrame) -> np.ndarray:
    """A readable name per building: its 楼栋号 (with its compound) where the data has one."""
    ids = buildings["building_id"].astype(str).to_numpy()
    if "building_name" in buildings:
        names = buildings["building_name"].astype("string").fillna("").to_numpy(dtype=object)
        if "compound_name" in buildings:
            estates = buildings["compound_name"].astype("string").fillna("").to_numpy(dtype=object)
            names = np.array([f"{e}{n}" if n and e and not n.startswith(e) else n for e, n in zip(estates, names)],
                             dtype=object)
        return np.where(names != "", names, ids)
    return ids


def divide(grids: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, *, band: tuple[int, int] | None = None,
           code_scheme: CodeScheme = BEIJING_15, rules: PartitionRules | None = None, seed: int = 0,
           runner: Runner = SERIAL, entrances: gpd.GeoDataFrame | None = None) -> MicroResult:
    """Divide ``grids`` (``grid_code`` and geometry; ``kind`` ``dedicated`` rows are skipped) into
    micro-grids of ``band`` households from ``buildings`` (``households``; optional ``entrances``
    (单元数), ``building_id``, ``building_name``, ``compound_name``; polygons or points), coded
    below each grid by ``code_scheme``. See the module docstring for the method.

    ``band`` defaults to the default profile's ``micro_band`` (gridmap.geo.profile: the one
    place a band is defined); callers with a territory pass their profile's. ``runner`` says where
    the grids' buildings are grouped (:mod:`gridmap.geo.tasks`): the answer is the same anywhere.
    ``entrances``: a layer of stairwell doors, which gives buildings without a 单元数 their 单元
    count and places the cuts between their 单元 (:func:`gridmap.geo.stairwells.attach`).

    Example
    -------
    >>> result = divide(plan.grids, buildings, band=(50, 80))  # doctest: +SKIP
    >>> result.microgrids[["microgrid_code", "households"]]  # doctest: +SKIP
    """
    lo, hi = PRESETS["default"].micro_band if band is None else band
    if not 0 < lo <= hi:
        raise Invalid(f"the micro-grid band {lo}–{hi} is not a band",
                      f"微网格户数区间 {lo}–{hi} 无效：下限须为正数且不大于上限")
    rules = with_band(rules or PartitionRules(), lo, hi)
    for column in ("grid_code",):
        if column not in grids:
            raise Invalid(f"grids need a {column!r} column", f"网格缺少 {column!r} 列")
    if "households" not in buildings:
        raise Invalid("buildings need a 'households' column (户数)", "楼栋缺少户数（households）列")
    grids = grids.to_crs(STORAGE_EPSG) if grids.crs is not None else grids.set_crs(STORAGE_EPSG)
    if "kind" in grids:
        grids = grids[grids["kind"].astype(str) != "dedicated"]
    grids = grids.reset_index(drop=True)
    buildings = buildings.to_crs(STORAGE_EPSG) if buildings.crs is not None else buildings.set_crs(STORAGE_EPSG)
    buildings = buildings.reset_index(drop=True)
    read: stairwells.StairwellSummary | None = None
    if entrances is not None:
        buildings, read = stairwells.attach(buildings, entrances)
    if "building_id" not in buildings:
        buildings = buildings.assign(building_id=np.arange(len(buildings)))
    grid_geoms = np.asarray(grids.geometry.values, dtype=object)
    codes = grids["grid_code"].astype(str).to_numpy()
    if len(set(codes)) != len(codes):
        raise Invalid("grid codes must be unique", "网格编码不能重复")
    broken = ~shapely.is_valid(grid_geoms)
    if broken.any():  # a self-crossing outline, as a hand-drawn grid can be: repaired, as building cells do
        grid_geoms = grid_geoms.copy()
        grid_geoms[broken] = polygonal(shapely.make_valid(grid_geoms[broken]))
    _refuse_overlaps(grid_geoms, codes)

    # 1. the grid of every building (its representative point; on a shared border the first grid)
    footprints = np.asarray(buildings.geometry.values, dtype=object)
    points = shapely.point_on_surface(footprints)
    hit_b, hit_g = points_in(grid_geoms, points, on_border=True)  # sorted: the first grid first
    grid_of = np.full(len(buildings), -1, dtype=np.int64)
    first = np.unique(hit_b, return_index=True)[1]
    grid_of[hit_b[first]] = hit_g[first]
    inside = np.flatnonzero(grid_of >= 0)
    blds = buildings.iloc[inside].reset_index(drop=True)
    grid_of = grid_of[inside]
    households = pd.to_numeric(blds["households"], errors="coerce").fillna(0).clip(lower=0).round().astype(np.int64).to_numpy()
    counts, cuts, parts = stairwells.own_counts(blds), stairwells.cuts_of(blds), stairwells.parts_of(blds)
    names = _labels(blds)

    # 2. one cell per building, the cells of a grid tiling it
    cells = building_cells(grid_geoms, np.asarray(blds.geometry.values, dtype=object), grid_of)

    # 3–4. atoms and their groups: whole buildings (单元 strips above the maximum), then, where a
    # grid misses the band, every building with a 单元 count cut into its 单元
    coarse = _atoms(blds, cells, grid_of, codes, households, counts, names, (counts > 1) & (households > hi),
                    cuts, parts)
    coarse_label = _group(coarse, rules, seed, runner)
    chosen_atoms, chosen_label = coarse, coarse_label
    can_split = (counts > 1) & (households <= hi)
    if can_split.any():
        misses = _misses(coarse, coarse_label, lo, hi)
        retry = np.unique(grid_of[can_split])
        retry = retry[np.isin(codes[retry], [c for c, m in misses.items() if m > 0])]
        if len(retry):
            fine = _atoms(blds, cells, grid_of, codes, households, counts, names,
                          (counts > 1) & ((households > hi) | np.isin(grid_of, retry)), cuts, parts)
            fine = fine[fine["grid_code"].isin(set(codes[retry]))].reset_index(drop=True)
            fine_label = _group(fine, rules, seed, runner)
            fine_misses = _misses(fine, fine_label, lo, hi)
            better = {codes[g] for g in retry if fine_misses.get(codes[g], 0) < misses.get(codes[g], 0)}
            if better:
                keep_c = ~coarse["grid_code"].isin(better).to_numpy()
                keep_f = fine["grid_code"].isin(better).to_numpy()
                chosen_atoms = pd.concat([coarse[keep_c], fine[keep_f]], ignore_index=True)
                chosen_label = np.concatenate([coarse_label[keep_c], fine_label[keep_f] + coarse_label.max() + 1])
    atoms = gpd.GeoDataFrame(chosen_atoms, geometry="geometry", crs=STORAGE_EPSG)
    label = _dense(chosen_label)

    # 5. the micro-grids, their codes and the report
    result = _assemble(grids, grid_geoms, codes, atoms, label, lo, hi, code_scheme, seed)
    if read is not None:  # what the entrances layer gave, for a caller without a progress line
        result.report["stairwells"] = asdict(read)
    return result


def _refuse_overlaps(grid_geoms: np.ndarray, codes: np.ndarray) -> None:
    """Grids whose insides meet (a grid drawn twice, one inside another) cannot each be divided:
    a building and its land would be in two grids' micro-grids. Refused, naming the first pairs."""
    a, b = overlapping_pairs(grid_geoms)  # the merge's test: interiors meet
    if len(a):
        pairs = ", ".join(f"{codes[i]}/{codes[j]}" for i, j in list(zip(a, b))[:5])
        raise Invalid(f"grids overlap ({len(a)} pairs: {pairs}): micro-grids divide grids that tile their territory",
                      f"网格互相重叠（{len(a)} 对：{pairs}）：微网格只能在互不重叠的网格内划分")


def _one_coverage(atoms: np.ndarray, grid_of: np.ndarray, grid_geoms: np.ndarray, codes: np.ndarray, crs) -> np.ndarray:
    """The atoms (building cells and 单元 strips, ``grid_of``: their grid's code) made one clean
    coverage of the grids (:func:`gridmap.geo.coverage.clean`, on the noding grid of the units):
    the cells of two neighbouring grids are cut from two Voronoi diagrams and a strip's cuts put
    points on its cell's outline that the cell next to it lacks; cleaned, every micro-grid (a union
    of atoms) meets its neighbours vertex for vertex, in its grid and the next, and stays valid
    once projected (an export CRS). Without it, 1,576 of 雨城区's 2,452 micro-grids had an edge
    that matched no neighbour's (GEOS's coverage validation, 2026-12-05)."""
    cleaned = coverage.clean(atoms, grid_of.astype(object), project=metric_area_fn(crs).project,  # type: ignore[attr-defined]
                             territory=grid_geoms, territory_groups=codes.astype(object))
    lost = shapely.is_empty(cleaned)  # an atom under the clean's crumb size (0.01 m²), all given away
    cleaned[lost] = shapely.set_precision(atoms[lost], coverage.NODING_GRID_DEG)
    return _without_crumbs(cleaned)


def _without_crumbs(geoms: np.ndarray) -> np.ndarray:
    """``geoms`` without the crumbs the noding grid can make: a neck narrower than the grid
    collapses and leaves a sliver as a part of its own (a 单元 strip cut a hair from its cell's
    corner: a micro-grid in two pieces on the high-rise district); parts under
    :data:`CRUMB_SHARE` of their polygon are dropped, a gap narrower than the grid."""
    snapped = np.asarray(geoms, dtype=object).copy()
    for i in np.flatnonzero(shapely.get_num_geometries(snapped) > 1):
        parts = np.asarray(shapely.get_parts(snapped[i]), dtype=object)
        area = shapely.area(parts)
        big = parts[area >= CRUMB_SHARE * area.sum()]
        snapped[i] = big[0] if len(big) == 1 else shapely.MultiPolygon(list(big))
    return snapped


def _atoms(blds: gpd.GeoDataFrame, cells: np.ndarray, grid_of: np.ndarray, codes: np.ndarray, households: np.ndarray,
           entrances: np.ndarray, names: np.ndarray, split: np.ndarray, cuts: np.ndarray,
           parts: np.ndarray) -> pd.DataFrame:
    """One row per atom: a building's cell, or one 单元 strip of it where ``split`` (cut where
    ``cuts`` says, evenly where it is None; numbered as ``parts`` says, along the axis where it is
    None: :mod:`gridmap.geo.stairwells`)."""
    rows = {"unit_id": [], "building_index": [], "part": [], "parts": [], "households": [], "geometry": []}
    footprints = np.asarray(blds.geometry.values, dtype=object)
    for i in range(len(blds)):
        if cells[i] is None or shapely.is_empty(cells[i]):
            continue
        if split[i]:
            count = int(entrances[i])
            strips = stairwell_strips(cells[i], footprints[i], count, cuts[i])
            strips = list(strips) + [None] * (count - len(strips))  # a strip the cell was too narrow for
            weights = None if cuts[i] is None else np.array(
                [0.0 if s is None else shapely.area(shapely.intersection(s, footprints[i])) for s in strips])
            shares = stairwells.households_by_stairwell(int(households[i]), count, weights)
            placed = [(k, s, h) for k, (s, h) in enumerate(zip(strips, shares)) if s is not None and not s.is_empty]
            if len(placed) < count:  # a strip left empty (a narrow cell): its households go to the others
                lost = int(sum(h for k, (s, h) in enumerate(zip(strips, shares)) if s is None or s.is_empty))
                placed = [(k, s, h + (lost if j == 0 else 0)) for j, (k, s, h) in enumerate(placed)]
            number = parts[i] if parts[i] is not None and len(parts[i]) == count else range(1, count + 1)
            for k, strip, share in placed:
                rows["unit_id"].append(unit_row_name(names[i], number[k]))
                rows["building_index"].append(i)
                rows["part"].append(int(number[k]))
                rows["parts"].append(count)
                rows["households"].append(int(share))
                rows["geometry"].append(strip)
        else:
            rows["unit_id"].append(str(names[i]))
            rows["building_index"].append(i)
            rows["part"].append(0)
            rows["parts"].append(1)
            rows["households"].append(int(households[i]))
            rows["geometry"].append(cells[i])
    frame = pd.DataFrame(rows)
    index = frame["building_index"].to_numpy(dtype=np.int64)
    frame["grid_code"] = codes[grid_of[index]] if len(frame) else []
    frame["building_id"] = blds["building_id"].to_numpy()[index] if len(frame) else []
    frame["community_code"] = frame["grid_code"]  # the partition's graph links atoms of one grid only
    frame["kind"] = "block"
    frame["unit_id"] = _unique(frame["unit_id"].astype(str).to_numpy())
    return frame


def _unique(names: np.ndarray) -> np.ndarray:
    """Names made unique with a suffix (two buildings of one name)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        n = seen.get(name, 0)
        seen[name] = n + 1
        out.append(name if n == 0 else f"{name}#{n + 1}")
    return np.array(out, dtype=object)


def _group(atoms: pd.DataFrame, rules: PartitionRules, seed: int, runner: Runner = SERIAL) -> np.ndarray:
    """A micro-grid label per atom: the partition's bisection and repair, on the atoms' graph,
    each grid's atoms apart from the others."""
    if len(atoms) == 0:
        return np.zeros(0, dtype=np.int64)
    frame = gpd.GeoDataFrame(atoms, geometry="geometry", crs=STORAGE_EPSG)
    graph = build_graph(frame)
    return assign_grids(frame, graph, rules, seed=seed, small_pieces_exact=True, runner=runner).grid_of


def _misses(atoms: pd.DataFrame, label: np.ndarray, lo: int, hi: int) -> dict[str, float]:
    """Per grid code: households by which its micro-grids miss the band, in all."""
    if len(atoms) == 0:
        return {}
    sums = pd.Series(atoms["households"].to_numpy(dtype=float)).groupby(label).sum()
    grid = pd.Series(atoms["grid_code"].to_numpy()).groupby(label).first()
    return pd.Series(violation(sums.to_numpy(), lo, hi), index=grid.to_numpy()).groupby(level=0).sum().to_dict()


def _dense(label: np.ndarray) -> np.ndarray:
    return np.unique(label, return_inverse=True)[1].astype(np.int64) if len(label) else label


def _assemble(grids: gpd.GeoDataFrame, grid_geoms: np.ndarray, codes: np.ndarray, atoms: gpd.GeoDataFrame,
              label: np.ndarray, lo: int, hi: int, code_scheme: CodeScheme, seed: int) -> MicroResult:
    crs = metric_crs_for_frame(grids) if len(grids) else metric_crs_for_frame(atoms)
    with_buildings = set(atoms["grid_code"])  # once: a set per grid cost 3 s on 雨城区's 421 grids
    empty_grids = [g for g, code in enumerate(codes) if code not in with_buildings]
    if empty_grids:  # a grid without buildings: one micro-grid, the whole grid
        extra = gpd.GeoDataFrame({"unit_id": [f"{codes[g]} (no buildings)" for g in empty_grids],
                                  "building_index": -1, "part": 0, "parts": 1, "households": 0,
                                  "grid_code": codes[empty_grids], "community_code": codes[empty_grids], "kind": "block"},
                                 geometry=list(grid_geoms[empty_grids]), crs=STORAGE_EPSG)
        top = int(label.max()) + 1 if len(label) else 0
        atoms = pd.concat([atoms, extra], ignore_index=True)
        label = np.concatenate([label, top + np.arange(len(empty_grids))])
    atoms = gpd.GeoDataFrame(atoms, geometry="geometry", crs=STORAGE_EPSG)
    if len(atoms) == 0:
        return _empty(lo, hi)
    cut_on = np.asarray(atoms.geometry.values, dtype=object)  # the atoms as they were grouped
    atoms = atoms.set_geometry(_one_coverage(cut_on, atoms["grid_code"].to_numpy(), grid_geoms, codes, crs),
                               crs=STORAGE_EPSG)
    micro = grid_statistics(atoms[["households", "geometry"]], label, crs)
    micro["grid_code"] = atoms.groupby(label)["grid_code"].first().to_numpy()
    building = atoms["building_index"].to_numpy()
    micro["building_count"] = pd.Series(building).groupby(label).agg(lambda b: len(set(b) - {-1})).to_numpy()
    micro["atom_count"] = micro.pop("unit_count")
    metric = shapely.centroid(np.asarray(micro.to_crs(crs).geometry.values, dtype=object))
    x, y = shapely.get_x(metric), shapely.get_y(metric)
    micro_code = np.empty(len(micro), dtype=object)
    for code, rows in micro.groupby("grid_code").indices.items():
        try:
            micro_code[rows] = code_scheme.micro_codes(code, x[rows], y[rows])
        except ValueError as exc:
            raise Invalid(f"{exc}: give the code scheme more micro_digits",
                          f"网格 {code} 的微网格有 {len(rows)} 个，超出 {code_scheme.micro_digits} 位序号的容量："
                          "请增加编码规则的 micro_digits") from None
    micro["microgrid_code"] = micro_code
    code_of = micro_code[label]
    atoms["microgrid_code"] = code_of
    # the report: the partition's, with micro-grids as grids and atoms as units (proofs included),
    # on the graph the atoms were grouped on: the clean gives a crumb at a corner where four cells
    # meet to one of them, and two cells that met at a point share a border of a few centimetres
    # (seen 7–62 cm on the high-rise district), a link no grouping used, with which a proof failed
    units = atoms.assign(grid_code=code_of)[["unit_id", "households", "grid_code", "community_code", "geometry"]]
    micro["kind"] = "comprehensive"
    graph = build_graph(gpd.GeoDataFrame(units.assign(geometry=cut_on), geometry="geometry", crs=STORAGE_EPSG))
    flags = _grid_by_grid_flags(units, micro.assign(grid_code=micro_code), graph, lo, hi)
    comprehensive = micro["households"].to_numpy()
    flags = _own_reasons(flags, atoms, micro, code_of, lo, hi)
    first_flag = flags.drop_duplicates("grid_code").set_index("grid_code")
    micro["flag"] = micro["microgrid_code"].map(first_flag["flag"])
    micro["reason"] = micro["microgrid_code"].map(first_flag["reason"])
    micro["reason_zh"] = micro["microgrid_code"].map(first_flag["reason_zh"])
    micro = gpd.GeoDataFrame(micro.sort_values("microgrid_code").reset_index(drop=True)[MICRO_COLUMNS],
                             geometry="geometry", crs=STORAGE_EPSG)
    summary = _summary(micro, atoms, grids, flags, lo, hi, seed)
    flags = flags.rename(columns={"grid_code": "microgrid_code"})
    report = {"summary": summary, "flags": flags.to_dict(orient="records"),
              "histogram": histogram(comprehensive, lo, hi)}
    return MicroResult(micro, _buildings(atoms), report, flags)


def _grid_by_grid_flags(units: pd.DataFrame, micro: pd.DataFrame, graph: UnitGraph, lo: int, hi: int) -> pd.DataFrame:
    """The partition's report (:func:`gridmap.geo.report.plan_report`: band reasons and proofs),
    grid by grid: the atoms of one grid form their own graph (micro-grids never cross a grid), and
    the report's walks stay as small as a grid."""
    grid_of_atom = units["community_code"].to_numpy()
    new_index = np.full(graph.n, -1, dtype=np.int64)
    frames = []
    edge_grid = grid_of_atom[graph.left]
    edges_of = pd.Series(np.arange(len(graph.left))).groupby(edge_grid).indices if len(graph.left) else {}
    for code, rows in pd.Series(np.arange(len(units))).groupby(grid_of_atom).indices.items():
        new_index[rows] = np.arange(len(rows))
        e = edges_of.get(code, np.zeros(0, dtype=np.int64))
        sub = UnitGraph(n=len(rows), left=new_index[graph.left[e]], right=new_index[graph.right[e]],
                        length_m=graph.length_m[e], major_share=graph.major_share[e], xy=graph.xy[rows],
                        area_m2=graph.area_m2[rows], perimeter_m=graph.perimeter_m[rows])
        local_units = units.iloc[rows].reset_index(drop=True)
        local_micro = micro[micro["grid_code"].isin(set(local_units["grid_code"]))]
        frames.append(_report_flags(local_units, local_micro, sub, lo, hi))
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FLAG_COLUMNS)


def _report_flags(units: pd.DataFrame, micro: pd.DataFrame, graph: UnitGraph, lo: int, hi: int) -> pd.DataFrame:
    """The flags of :func:`gridmap.geo.report.plan_report` (the same reasons and proofs, in the
    micro-grid's words: :data:`gridmap.geo.terms.MICRO_TERMS`), without its summary and histogram."""
    from gridmap.geo import report

    micro = micro.sort_values("grid_code").reset_index(drop=True)
    index = {code: i for i, code in enumerate(micro["grid_code"])}
    grid_of = units["grid_code"].map(index).to_numpy(dtype=np.int64)
    kinds = micro["kind"].tolist()
    households = units["households"].to_numpy(dtype=float)
    totals = micro["households"].to_numpy(dtype=float)
    outside = (totals < lo) | (totals > hi)
    reasons = report._band_reasons(graph, units["unit_id"].astype(str).to_numpy(), households, grid_of, kinds, totals,
                                   outside, lo, hi, MICRO_TERMS)
    return report._flags(micro, reasons, outside, totals, lo, hi, terms=MICRO_TERMS)


def _own_reasons(flags: pd.DataFrame, atoms: gpd.GeoDataFrame, micro: gpd.GeoDataFrame, code_of: np.ndarray,
                 lo: int, hi: int) -> pd.DataFrame:
    """The partition's reasons said in the micro-grid's terms: a lone building above the maximum
    with no 单元 count (``building_above_max``), a grid without buildings (``no_buildings``)."""
    rows = flags.to_dict(orient="records")
    by_code = dict(zip(micro["microgrid_code"], micro["households"]))
    atom_count = pd.Series(code_of).value_counts()
    out = [r for r in rows]
    for code, group in atoms.groupby(code_of):
        if atom_count[code] != 1:
            continue
        row = group.iloc[0]
        if row["building_index"] == -1:
            out = [r for r in out if r["grid_code"] != code]
            out.append({"grid_code": code, "flag": "no_buildings",
                        "reason": f"grid {row['grid_code']} has no buildings: one micro-grid covers it",
                        "reason_zh": f"网格 {row['grid_code']} 内没有楼栋：整个网格为一个微网格"})
        elif by_code[code] > hi and int(row["parts"]) == 1:
            out = [r for r in out if r["grid_code"] != code]
            out.append({"grid_code": code, "flag": "building_above_max",
                        "reason": f"building {row['unit_id']} alone has {by_code[code]:.0f} households (> {hi}) and "
                                  "the data give no 单元 (stairwell) count to split it by (a 单元数 column, or an "
                                  "entrances layer of its stairwell doors): a micro-grid of its own",
                        "reason_zh": f"楼栋 {row['unit_id']} 独自就有 {by_code[code]:.0f} 户（超过 {hi} 户），数据中没有"
                                     "单元数可供再分（楼栋的“单元数”字段，或单元门图层）：单独作为一个微网格"})
    frame = pd.DataFrame(out, columns=FLAG_COLUMNS)
    return frame.sort_values("grid_code", kind="stable").reset_index(drop=True)


def _summary(micro: gpd.GeoDataFrame, atoms: gpd.GeoDataFrame, grids: gpd.GeoDataFrame, flags: pd.DataFrame,
             lo: int, hi: int, seed: int) -> dict:
    hh = micro["households"]
    inhabited = micro[micro["flag"] != "no_buildings"]
    in_band = inhabited["households"].between(lo, hi)
    return {"grids": int(micro["grid_code"].nunique()), "microgrids": int(len(micro)),
            "buildings": int(atoms.loc[atoms["building_index"] >= 0, "building_index"].nunique()),
            "atoms": int(len(atoms)), "split_buildings": int(atoms.loc[atoms["part"] > 0, "building_index"].nunique()),
            "min_households": lo, "max_households": hi, "in_band": int(in_band.sum()),
            "in_band_share": float(in_band.mean()) if len(inhabited) else 1.0,
            "households": int(hh.sum()), "households_min": int(hh.min()) if len(hh) else 0,
            "households_median": float(hh.median()) if len(hh) else 0.0, "households_max": int(hh.max()) if len(hh) else 0,
            "flags": flags["flag"].value_counts().to_dict(), "seed": seed}


def _buildings(atoms: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    real = atoms[atoms["building_index"] >= 0]
    return gpd.GeoDataFrame({
        "building_id": real["building_id"].to_numpy(), "building_name": real["unit_id"].to_numpy(),
        "grid_code": real["grid_code"].to_numpy(), "microgrid_code": real["microgrid_code"].to_numpy(),
        "part": real["part"].to_numpy(), "parts": real["parts"].to_numpy(),
        "households": real["households"].to_numpy()}, geometry=list(real.geometry.values), crs=STORAGE_EPSG)


def _empty(lo: int, hi: int) -> MicroResult:
    micro = gpd.GeoDataFrame({c: [] for c in MICRO_COLUMNS if c != "geometry"}, geometry=[], crs=STORAGE_EPSG)
    buildings = gpd.GeoDataFrame({c: [] for c in BUILDING_COLUMNS if c != "geometry"}, geometry=[], crs=STORAGE_EPSG)
    summary = {"grids": 0, "microgrids": 0, "buildings": 0, "atoms": 0, "split_buildings": 0, "min_households": lo,
               "max_households": hi, "in_band": 0, "in_band_share": 1.0, "households": 0, "households_min": 0,
               "households_median": 0.0, "households_max": 0, "flags": {}, "seed": 0}
    return MicroResult(micro, buildings, {"summary": summary, "flags": [], "histogram": {}},
                       pd.DataFrame(columns=["microgrid_code", "flag", "reason", "reason_zh"]))


__all__ = ["MicroResult", "divide", "stairwell_strips", "MICRO_COLUMNS"]
