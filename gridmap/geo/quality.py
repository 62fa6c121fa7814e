"""Checks of the grid rules on real results (used by tests, reports and the planner's validate).

Each check returns the problems it finds as plain rows, empty when the rule holds:
coverage (units tile their community exactly: edges matched, no gap, no overlap), compounds kept
whole, contiguity of every grid, households conserved, and grids inside their community.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.geo import coverage
from gridmap.geo.graph import build_graph


GAP_WIDTH_DEG = 1e-9
"""Gaps and spills narrower than this (≈ 0.1 mm, ten times the noding grid) are the rounding of a
clean coverage's vertices, not holes; anything wider is reported, however small its area."""


def coverage_problems(units: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, *, code_column: str = "code",
                      id_column: str = "unit_id") -> pd.DataFrame:
    """Per community: units whose edges do not match their neighbours exactly (an overlap, a
    T-junction, a border that nearly coincides), gaps between the units or against the community
    outline, and units reaching outside it. No area tolerance: GEOS's coverage validation for the
    edges, and for gaps and spills every piece wider than ``GAP_WIDTH_DEG``.

    Rows: ``community_code, problem ('overlap' | 'gap' | 'outside' | 'unknown_community'),
    relative_area`` (of the community) and ``units`` (the units involved, where known).
    Computed in lon/lat (EPSG:4490), where units and communities share their vertices."""
    rows = []
    comm = communities.to_crs(4490).set_index(code_column)
    u = units.to_crs(4490)
    ids = u[id_column].to_numpy() if id_column in u else np.arange(len(u))
    geoms = np.asarray(u.geometry.values, dtype=object)
    misaligned = coverage.problems(geoms)
    for code, index in pd.Series(np.arange(len(u))).groupby(u["community_code"].to_numpy()):
        index = index.to_numpy()
        if code not in comm.index:
            rows.append((code, "unknown_community", 1.0, []))
            continue
        polygon = comm.loc[code, "geometry"]
        whole = float(shapely.area(polygon))
        bad = np.intersect1d(index, misaligned)
        if len(bad):
            mine = geoms[index]
            overlap = max(float(shapely.area(mine).sum() - shapely.area(shapely.union_all(mine))), 0.0) / whole
            rows.append((code, "overlap", overlap, ids[bad].tolist()))
        union = shapely.union_all(geoms[index])
        for kind, piece in (("gap", shapely.difference(polygon, union)), ("outside", shapely.difference(union, polygon))):
            parts = np.asarray(shapely.get_parts(piece), dtype=object)
            parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))] if len(parts) else parts
            if not len(parts):
                continue
            width = np.divide(2 * shapely.area(parts), shapely.length(parts), out=np.zeros(len(parts)),
                              where=shapely.length(parts) > 0)
            real = parts[width > GAP_WIDTH_DEG]
            if len(real):
                near = [ids[i] for i in index if shapely.intersects(geoms[i], shapely.union_all(real))] \
                    if kind == "outside" else []
                rows.append((code, kind, float(shapely.area(real).sum()) / whole, near))
    missing = set(comm.index) - set(u["community_code"])
    rows += [(code, "gap", 1.0, []) for code in sorted(missing)]
    return pd.DataFrame(rows, columns=["community_code", "problem", "relative_area", "units"])


def split_compounds(units: gpd.GeoDataFrame, max_households: int) -> pd.DataFrame:
    """Compounds whose units ended in more than one grid although the compound fits in one.

    A compound whose pieces do not touch (a dedicated site or a community border cuts through it)
    cannot sit in one contiguous grid and is not reported.
    """
    columns = ["community_code", "compound_id", "grids", "households"]
    if "compound_id" not in units or "grid_code" not in units:
        return pd.DataFrame(columns=columns)
    c = units[units["compound_id"].notna()]
    per = c.groupby(["community_code", "compound_id"]).agg(grids=("grid_code", "nunique"), households=("households", "sum"))
    bad = per[(per["grids"] > 1) & (per["households"] <= max_households)].reset_index()
    keep = []
    for row in bad.itertuples():
        pieces = c[(c["community_code"] == row.community_code) & (c["compound_id"] == row.compound_id)]
        graph = build_graph(pieces.reset_index(drop=True), group_column=None)
        keep.append(len(np.unique(graph.components())) == 1)
    return bad[np.array(keep, dtype=bool)] if len(bad) else pd.DataFrame(columns=columns)


def non_contiguous_grids(units: gpd.GeoDataFrame) -> list[str]:
    """Grids whose units do not form one connected piece (shared borders of positive length)."""
    graph = build_graph(units, group_column="grid_code")
    grid = units["grid_code"].to_numpy()
    bad = []
    labels = graph.components()
    for code, idx in pd.Series(np.arange(len(units))).groupby(grid):
        if len(np.unique(labels[idx.to_numpy()])) > 1:
            bad.append(code)
    return bad


def grids_crossing_communities(units: pd.DataFrame) -> list[str]:
    per = units.groupby("grid_code")["community_code"].nunique()
    return sorted(per[per > 1].index)
