"""A plan's report: a function of its assignment alone, the same for a fresh partition, a merge,
a copy of the published plan or a draft edited by hand.

Given every unit's grid, the grids' kinds and the household band, it says for each grid whether it
follows the rules and, where a comprehensive grid misses the band, why: a unit alone above the
maximum, a connected piece whose total cannot be divided into band-sized grids, or one of the
proofs of :mod:`gridmap.geo.proofs` (each valid for any plan of the same units). Grids with no
proof are flagged plainly (``below_min`` / ``above_max``). Every reason is in English and Chinese.

Contiguity has one definition everywhere (report, validation, the planner's panel, the SQL that
refreshes an edited grid): a grid is contiguous when the union of its units is one polygon, i.e.
its units are joined by shared borders of positive length. ``parts`` is the number of polygons
of that union.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.geo.band import choose_grid_count
from gridmap.geo.grain import divisible
from gridmap.geo.graph import UnitGraph, grouped
from gridmap.geo.proofs import Reason, Regions, below_min_proofs, hub_leaf_proofs, region_proofs
from gridmap.geo.terms import GRID_TERMS, Terms

FLAG_COLUMNS = ["grid_code", "flag", "reason", "reason_zh"]


def histogram(households: np.ndarray, lo: float, hi: float) -> dict:
    """Bins of households per comprehensive grid for the report's chart: about 30 bins of a round
    width over [0, max(largest, 1.2 × hi)], so the band always shows."""
    values = np.asarray(households, dtype=float)
    top = max(float(values.max()) if len(values) else hi, hi * 1.2)
    step = max(round(top / 30 / 5) * 5, 5)
    edges = np.arange(0, top + step, step)
    counts, _ = np.histogram(values, bins=edges)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts], "min_households": lo,
            "max_households": hi}


def _piece_reasons(graph: UnitGraph, households: np.ndarray, grid_of: np.ndarray, kinds: list[str], lo: float,
                   hi: float, terms: Terms = GRID_TERMS) -> dict[int, Reason]:
    """Grids lying in a connected piece (non-dedicated units of one community, units above the
    maximum left out, as they stand alone) whose total cannot be divided into band-sized grids."""
    usable = np.array([kinds[g] != "dedicated" for g in grid_of], dtype=bool) & (households <= hi)
    label = graph.components(usable)  # the pieces, all at once (-1: not usable)
    inside = label >= 0
    totals = np.bincount(label[inside], weights=households[inside])
    reasons: dict[int, Reason] = {}
    said: dict[int, Reason] = {}
    for piece in np.flatnonzero(totals > 0):
        _, en, zh = choose_grid_count(float(totals[piece]), lo, hi, terms=terms)
        if en:
            said[int(piece)] = Reason(en, zh)
    for piece, members in zip(said, grouped(label, np.asarray(list(said), dtype=np.int64))):
        for g in np.unique(grid_of[members]):
            reasons[int(g)] = said[piece]
    return reasons


def plan_report(units: pd.DataFrame, grids: pd.DataFrame, graph: UnitGraph, lo: float, hi: float) -> dict:
    """The report of a plan.

    ``units``: one row per unit, aligned with ``graph``'s nodes, with ``unit_id``, ``households``
    and ``grid_code``. ``grids``: one row per grid with ``grid_code``, ``kind``, ``households``,
    ``compactness`` and ``parts``. Returns ``{"summary", "flags", "histogram"}``; flags are
    records of ``grid_code, flag, reason, reason_zh``.
    """
    grids = grids.sort_values("grid_code").reset_index(drop=True)
    index = {code: i for i, code in enumerate(grids["grid_code"])}
    grid_of = units["grid_code"].map(index).to_numpy(dtype=np.int64)
    kinds = grids["kind"].tolist()
    households = units["households"].to_numpy(dtype=float)
    unit_ids = units["unit_id"].astype(str).to_numpy()
    totals = grids["households"].to_numpy(dtype=float)
    comprehensive = np.array([k == "comprehensive" for k in kinds], dtype=bool)
    outside = comprehensive & ((totals < lo) | (totals > hi))
    reasons = _band_reasons(graph, unit_ids, households, grid_of, kinds, totals, outside, lo, hi)
    reasons = _at_building_grain(reasons, units, grid_of, totals, lo, hi)
    flags = _flags(grids, reasons, outside, totals, lo, hi, _community_pieces_spanned(graph, grid_of, len(grids)))
    comp = grids[comprehensive]
    return {"summary": _summary(units, grids, comp, flags, lo, hi), "flags": flags.to_dict(orient="records"),
            "histogram": histogram(comp["households"].to_numpy(), lo, hi)}


def _band_reasons(graph: UnitGraph, unit_ids: np.ndarray, households: np.ndarray, grid_of: np.ndarray,
                  kinds: list[str], totals: np.ndarray, outside: np.ndarray, lo: float, hi: float,
                  terms: Terms = GRID_TERMS) -> dict[int, tuple[str, Reason]]:
    """Why each comprehensive grid outside the band misses it, where that can be said: ``{grid
    index: (flag, reason)}``. In order of precedence: a unit alone above the maximum
    (``above_max``); a connected piece whose total cannot be divided into band-sized grids; a hub
    with too many small leaves; a unit that no connected addition brings into the band; and the
    region arguments of :func:`gridmap.geo.proofs.region_proofs` (all ``infeasible_band``); said in
    the level's ``terms`` (:mod:`gridmap.geo.terms`: grids of units, or micro-grids of buildings
    and 单元)."""
    unit_count = np.bincount(grid_of, minlength=len(kinds))
    reasons: dict[int, tuple[str, Reason]] = {}
    alone = np.flatnonzero(outside & (unit_count == 1) & (totals > hi))
    for g, (u,) in zip(alone.tolist(), grouped(grid_of, alone)):
        reasons[int(g)] = ("above_max", Reason(
            f"{terms.unit} {unit_ids[u]} alone has {households[u]:.0f} households (> {hi}): {terms.indivisible}",
            f"{terms.unit_zh} {unit_ids[u]} 独自就有 {households[u]:.0f} 户（超过 {hi} 户）：{terms.indivisible_zh}"))
    pieces = _piece_reasons(graph, households, grid_of, kinds, lo, hi, terms)
    for g in np.flatnonzero(outside):
        if int(g) not in reasons and int(g) in pieces:
            reasons[int(g)] = ("infeasible_band", pieces[int(g)])
    hubs = hub_leaf_proofs(graph, unit_ids, households, grid_of, kinds, lo, hi, terms)
    regions = Regions.of(graph, grid_of, kinds)  # the regions of the proofs below, found once
    unexplained = [int(g) for g in np.flatnonzero(outside) if int(g) not in reasons and int(g) not in hubs]
    below = below_min_proofs(graph, unit_ids, households, grid_of, [g for g in unexplained if totals[g] < lo],
                             kinds, lo, hi, regions, terms)
    open_cases = []
    for g in np.flatnonzero(outside):
        g = int(g)
        if g in reasons:
            continue
        proof = hubs.get(g) or below.get(g)
        if proof:
            reasons[g] = ("infeasible_band", proof)
        else:
            open_cases.append(g)
    for g, proof in region_proofs(graph, unit_ids, households, grid_of, kinds, lo, hi, open_cases, regions,
                                  terms).items():
        reasons[g] = ("infeasible_band", proof)
    return reasons


def _at_building_grain(reasons: dict[int, tuple[str, Reason]], units: pd.DataFrame, grid_of: np.ndarray,
                       totals: np.ndarray, lo: float, hi: float) -> dict[int, tuple[str, Reason]]:
    """The reasons with every proof that holds only for the units as cut taken back: a proof
    (``infeasible_band``, or ``above_max`` of one unit) stands for the territory only when the
    units it reasons about cannot be divided further (:mod:`gridmap.geo.grain`). Proofs about a
    grid whose community still holds a divisible unit become plain misses that say so; a piece's
    total (which does not depend on how it is cut) stands unless a divisible unit above the
    maximum was left out of the piece. ``gridmap partition`` builds such communities at building
    grain and partitions them again, so after it no proof rests on the cut."""
    if "community_code" not in units or "kind" not in units:
        return reasons
    coarse = divisible(units)
    community = units["community_code"].astype(str).to_numpy()
    coarse_communities = set(community[coarse])
    lumpy_communities = set(community[coarse & (units["households"].to_numpy() > hi)])
    out: dict[int, tuple[str, Reason]] = {}
    for (g, (flag, reason)), members in zip(reasons.items(), grouped(grid_of, np.asarray(list(reasons), dtype=np.int64))):
        places = set(community[members])
        total_only = reason.en.startswith("total households")
        if (flag == "above_max" and len(members) == 1 and not coarse[members[0]]) \
                or (total_only and not places & lumpy_communities) \
                or not places & coarse_communities:
            out[g] = (flag, reason)
            continue
        where = ", ".join(sorted(places))
        if totals[g] < lo:
            out[g] = ("below_min", Reason(
                f"{totals[g]:.0f} households < {lo}; not proven at building grain: units of community {where} hold "
                "several buildings each and could be cut finer (gridmap partition rebuilds such communities "
                "one unit per building)",
                f"仅 {totals[g]:.0f} 户，低于 {lo} 户；未在楼栋粒度上证明不可达：社区 {where} 的单元含多栋楼，可再细分"
                "（gridmap partition 会把这类社区按楼栋重建单元）"))
        else:
            out[g] = ("above_max", Reason(
                f"{totals[g]:.0f} households > {hi}; not proven at building grain: units of community {where} hold "
                "several buildings each and could be cut finer (gridmap partition rebuilds such communities "
                "one unit per building)",
                f"有 {totals[g]:.0f} 户，超过 {hi} 户；未在楼栋粒度上证明不可达：社区 {where} 的单元含多栋楼，可再细分"
                "（gridmap partition 会把这类社区按楼栋重建单元）"))
    return out


def _community_pieces_spanned(graph: UnitGraph, grid_of: np.ndarray, n_grids: int) -> np.ndarray:
    """Per grid, how many separate pieces of its community it holds units of: the graph links
    only units of one community sharing a border, so its components are the communities' pieces
    (a community of islands or exclaves has several). 1 for a grid inside one piece."""
    piece = graph.components()
    pairs = pd.DataFrame({"g": grid_of, "p": piece}).drop_duplicates()
    return np.bincount(pairs["g"].to_numpy(), minlength=n_grids)


def _flags(grids: pd.DataFrame, reasons: dict[int, tuple[str, Reason]], outside: np.ndarray, totals: np.ndarray,
           lo: float, hi: float, pieces_spanned: np.ndarray | None = None, terms: Terms = GRID_TERMS) -> pd.DataFrame:
    """The flags, grid by grid in code order: the reason a grid misses the band (proven, or plainly
    ``below_min`` / ``above_max``), then, for a grid of several pieces, ``island`` when it spans
    separate pieces of its community (``pieces_spanned`` > 1: the community itself is islands or
    exclaves, and an uninhabited piece joined the nearest grid) or ``not_contiguous`` when its
    community is one piece (units that touch at most at a corner: to be repaired). Said in the
    level's ``terms``."""
    t = terms
    if pieces_spanned is None:
        pieces_spanned = np.ones(len(grids), dtype=np.int64)
    rows = []
    for g, code in enumerate(grids["grid_code"]):
        if g in reasons:
            flag, reason = reasons[g]
            rows.append((code, flag, reason.en, reason.zh))
        elif outside[g] and totals[g] < lo:
            rows.append((code, "below_min", f"{totals[g]:.0f} households < {lo}: no contiguous rearrangement with its "
                         f"neighbouring {t.grids} met the band ({t.units} too lumpy or joined through empty connector "
                         f"{t.units}), though none is proven impossible",
                         f"仅 {totals[g]:.0f} 户，低于 {lo} 户：与相邻{t.grid_zh}的连片调整都未能使其落入区间（{t.unit_zh}"
                         f"大小不均，或经由无人的{t.unit_zh}相连），但未证明不可达"))
        elif outside[g]:
            rows.append((code, "above_max", f"{totals[g]:.0f} households > {hi}: no contiguous rearrangement with its "
                         f"neighbouring {t.grids} met the band, though none is proven impossible",
                         f"有 {totals[g]:.0f} 户，超过 {hi} 户：与相邻{t.grid_zh}的连片调整都未能使其落入区间，但未证明不可达"))
        parts = int(grids.at[g, "parts"])
        if parts > 1 and pieces_spanned[g] > 1:
            rows.append((code, "island", f"made of {parts} separate pieces because its {t.container} is: it holds "
                         f"{t.units} of {int(pieces_spanned[g])} separate pieces of the {t.container} (islands or "
                         f"exclaves; a piece without residents joins the nearest {t.grid} of its {t.container})",
                         f"由 {parts} 块互不相连的部分组成，因为所在{t.container_zh}本身不相连：{t.grid_zh}包含"
                         f"{t.container_zh} {int(pieces_spanned[g])} 块互不相连部分（岛屿或飞地）的{t.unit_zh}；"
                         f"无人居住的部分并入本{t.container_zh}最近的{t.grid_zh}"))
        elif parts > 1:
            rows.append((code, "not_contiguous", f"made of {parts} separate pieces although its {t.container} is one "
                         f"piece ({t.units} that touch at most at a corner): move {t.units} so that the {t.grid} is "
                         "contiguous",
                         f"由 {parts} 块互不相连的部分组成，而所在{t.container_zh}是连成一片的（{t.unit_zh}之间至多只有角点"
                         f"相接）：请调整{t.unit_zh}使{t.grid_zh}连续"))
    return pd.DataFrame(rows, columns=FLAG_COLUMNS)


def _summary(units: pd.DataFrame, grids: pd.DataFrame, comp: pd.DataFrame, flags: pd.DataFrame, lo: float,
             hi: float) -> dict:
    """The plan in figures: counts of units and grids by kind, the dedicated grids' share and
    their count by site type (a dedicated grid's type is that of its site unit, ``other`` for one
    without, e.g. made dedicated by an edit), the sites folded into comprehensive grids (blocks that
    keep a ``site_type``), the band and how many comprehensive grids (``comp``) are in it, their
    households (min, median, max), mean compactness, grids in pieces (``not_contiguous``, of which
    ``island_grids`` because their community is in pieces), proven-infeasible grids and flags by
    kind."""
    in_band = comp["households"].between(lo, hi)
    dedicated = int(len(grids) - len(comp))
    kind = units["kind"].astype(str) if "kind" in units else pd.Series("block", index=units.index)
    site_type = units["site_type"] if "site_type" in units else pd.Series(None, index=units.index, dtype=object)
    sited = units.assign(_type=site_type.astype("string").fillna("other"))[kind.to_numpy() == "site"]
    dedicated_codes = grids.loc[grids["kind"] == "dedicated", "grid_code"]
    type_of = sited.groupby("grid_code")["_type"].agg(lambda t: t.mode().iat[0])
    by_type = type_of.reindex(dedicated_codes).fillna("other").value_counts()
    return {
        "units": int(len(units)), "grids": int(len(grids)), "comprehensive": int(len(comp)),
        "dedicated": dedicated, "dedicated_share": float(dedicated / len(grids)) if len(grids) else 0.0,
        "dedicated_by_type": {str(k): int(v) for k, v in by_type.items()},
        "folded_sites": int(((kind != "site") & site_type.notna().to_numpy()).sum()),
        "smallest_unit_m2": float(units["area_m2"].min()) if "area_m2" in units and len(units) else 0.0,
        "min_households": lo, "max_households": hi,
        "in_band": int(in_band.sum()), "in_band_share": float(in_band.mean()) if len(comp) else 1.0,
        "households_min": int(comp["households"].min()) if len(comp) else 0,
        "households_median": float(comp["households"].median()) if len(comp) else 0.0,
        "households_max": int(comp["households"].max()) if len(comp) else 0,
        "mean_compactness": float(grids["compactness"].mean()) if len(grids) else 0.0,
        "not_contiguous": int((grids["parts"] > 1).sum()),
        "island_grids": int((flags["flag"] == "island").sum()),
        "proven_infeasible": int((flags["flag"] == "infeasible_band").sum()),
        "flags": flags["flag"].value_counts().to_dict(),
    }


def grid_statistics(units: gpd.GeoDataFrame, labels, metric_crs) -> gpd.GeoDataFrame:
    """The statistics of the grids a labelling of ``units`` makes (one row per label, in label
    order): ``households`` and ``population`` (when units have it) summed, ``unit_count``,
    ``area_m2`` (the units' ``area_m2`` summed, or their area in ``metric_crs``), ``geometry``
    (the union of the units), ``compactness`` (Polsby-Popper of that union, its perimeter measured
    in ``metric_crs``, rounded to 4 places as stored) and ``parts`` (polygons of the union: 1 for a
    contiguous grid). The definition the SQL refreshing an edited grid mirrors."""
    frame = units.assign(_grid=np.asarray(labels))
    if "area_m2" not in frame:
        frame["area_m2"] = shapely.area(np.asarray(frame.to_crs(metric_crs).geometry.values, dtype=object))
    sums = {"households": "sum", "area_m2": "sum", "_grid": "size"}
    if "population" in frame:  # as SQL's SUM: unknown (not 0) where no unit of the grid knows it
        frame["population"] = pd.to_numeric(frame["population"], errors="coerce")
        frame["_population_known"] = frame["population"].notna()
        sums.update(population="sum", _population_known="any")
    stats = frame.groupby("_grid").agg(sums).rename(columns={"_grid": "unit_count"})
    if "_population_known" in stats:
        stats["population"] = stats["population"].where(stats.pop("_population_known"))
    # the general overlay, not a coverage union: micro-grids' 单元 strips meet within the noding grid,
    # and their coverage union stays valid in lon/lat but not always once projected (2 of 2,455 in
    # 雨城区 in EPSG:4543); the overlay cleans that. The same union_all per group as GeoPandas'
    # dissolve (the same bytes; 0.20 s against 0.39 s for 20,000 units in 1,500 grids). Not spread over a Dask cluster: shipping the
    # geometries cost more than the unions (250,000 units: 3.6 s here, 10.6 s on two workers)
    geoms = np.asarray(frame.geometry.values, dtype=object)
    members = grouped(frame["_grid"].to_numpy(), stats.index.to_numpy())
    stats["geometry"] = [shapely.union_all(geoms[m]) for m in members]
    grids = gpd.GeoDataFrame(stats.reset_index(), geometry="geometry", crs=units.crs)
    perimeter = shapely.length(np.asarray(grids.to_crs(metric_crs).geometry.values, dtype=object))
    grids["compactness"] = np.round(polsby_popper(grids["area_m2"], perimeter), 4)
    grids["parts"] = shapely.get_num_geometries(np.asarray(grids.geometry.values, dtype=object))
    return grids


def polsby_popper(area_m2, perimeter_m):
    """Compactness 4πA/P² (1 for a disc), 0 where the perimeter is 0: the one definition, which
    the SQL refreshing an edited grid mirrors."""
    area = np.asarray(area_m2, dtype=float)
    perimeter = np.asarray(perimeter_m, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(perimeter > 0, 4 * math.pi * area / perimeter ** 2, 0.0)


__all__ = ["plan_report", "grid_statistics", "histogram", "polsby_popper", "FLAG_COLUMNS"]
