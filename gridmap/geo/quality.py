"""Checks of the grid rules on real results (used by tests, reports and the planner's validate).

Each check returns the problems it finds as plain rows, empty when the rule holds:
coverage (units tile their community: no gap, no overlap), compounds kept whole, contiguity of
every grid, households conserved, and grids inside their community.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.geo.graph import build_graph


def coverage_problems(units: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, *, code_column: str = "code",
                      tolerance: float = 1e-6) -> pd.DataFrame:
    """Per community: relative area of gaps and of overlaps between its units (rows only above
    ``tolerance``), and units that reach outside their community.

    Ratios are taken in lon/lat (EPSG:4490), where units and communities share their vertices:
    projecting first would bend straight lon/lat edges and report the bend as a gap.
    """
    area = shapely.area
    rows = []
    comm = communities.to_crs(4490).set_index(code_column)
    u = units.to_crs(4490)
    for code, group in u.groupby("community_code"):
        if code not in comm.index:
            rows.append((code, "unknown_community", 1.0))
            continue
        polygon = comm.loc[code, "geometry"]
        whole = float(area(np.array([polygon]))[0])
        geoms = np.asarray(group.geometry.values, dtype=object)
        union = shapely.union_all(geoms)
        gap = float(area(np.array([shapely.difference(polygon, union)]))[0]) / whole
        outside = float(area(np.array([shapely.difference(union, polygon)]))[0]) / whole
        overlap = (float(area(geoms).sum()) - float(area(np.array([union]))[0])) / whole
        for kind, value in (("gap", gap), ("outside", outside), ("overlap", overlap)):
            if value > tolerance:
                rows.append((code, kind, value))
    missing = set(comm.index) - set(u["community_code"])
    rows += [(code, "gap", 1.0) for code in sorted(missing)]
    return pd.DataFrame(rows, columns=["community_code", "problem", "relative_area"])


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
