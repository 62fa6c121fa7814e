"""Departmental grid layers that look like the real thing, generated over a real territory.

Real departmental layers are not public. This generator reproduces what happens in practice,
deterministically for a seed, and records every conflict it injects so tests can check that the
merge report finds each one (and nothing on a clean layer). Patterns:

* ``governance``  — comprehensive governance grids drawn with another band and seed (clean);
* ``cells``       — urban-management cells of about 10,000 m² (万米单元网格), clipped to the territory;
* ``community``   — party building: simply one grid per community (clean);
* ``hand``        — hand-digitised: every border jittered (slivers), a few grids pushed into
  their neighbours (overlaps), a few holes (gaps);
* ``offset``      — digitised on a GCJ-02 basemap and never converted (inside China), or on a
  misregistered basemap (a constant shift elsewhere: GCJ-02 does not shift outside China);
* ``ignores``     — drawn without regard to community boundaries (large blocks across them).

``departmental_layers`` returns 19 layers for the departments a seed city merged, each pattern
used by several, with duty codes per department.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.geo.crs import STORAGE_EPSG, in_china, wgs84_to_gcj02_geoms
from gridmap.geo.partition import partition
from gridmap.geo.shapes import polygonal

DEPARTMENTS = [
    ("zongzhi", "综治"), ("chengguan", "城管"), ("dangjian", "党建"), ("minzheng", "民政"), ("yingji", "应急"),
    ("shichang", "市场监管"), ("huanbao", "生态环境"), ("xiaofang", "消防"), ("weijian", "卫健"), ("xinfang", "信访"),
    ("gongan", "公安"), ("sifa", "司法"), ("jiaoyu", "教育"), ("renshe", "人社"), ("tongji", "统计"),
    ("zhujian", "住建"), ("shuiwu", "水务"), ("jiaotong", "交通"), ("wenlv", "文旅"),
]
PATTERNS = ["governance", "cells", "community", "hand", "offset", "ignores"]


@dataclass
class Injected:
    """A conflict the generator put in on purpose: the report must find it."""

    department: str
    kind: str
    geometry: object
    detail: str


@dataclass
class GeneratedLayers:
    layers: dict[str, gpd.GeoDataFrame]
    patterns: dict[str, str]
    injected: list[Injected] = field(default_factory=list)
    duties: dict[str, list[str]] = field(default_factory=dict)


def _metres_per_degree(geoms) -> tuple[float, float]:
    lat = float(np.mean(shapely.get_y(shapely.centroid(np.asarray(geoms, dtype=object)))))
    return 111_320.0 * math.cos(math.radians(lat)), 110_574.0


def _frame(geoms, department: str, duties: list[str], prefix: str) -> gpd.GeoDataFrame:
    geoms = np.asarray(geoms, dtype=object)
    keep = ~shapely.is_empty(geoms)
    geoms = geoms[keep]
    return gpd.GeoDataFrame({"grid_id": [f"{prefix}{i + 1:03d}" for i in range(len(geoms))],
                             "name": [f"{department}网格{i + 1}" for i in range(len(geoms))],
                             "duties": [list(duties) for _ in range(len(geoms))],
                             "worker": [f"{department}网格员{i + 1}" for i in range(len(geoms))]},
                            geometry=geoms, crs=STORAGE_EPSG)


def governance(units: gpd.GeoDataFrame, seed: int, band: tuple[int, int]) -> np.ndarray:
    result = partition(units, min_households=band[0], max_households=band[1], seed=seed)
    return np.asarray(result.grids.geometry.values, dtype=object)


def cells(territory, cell_m: float = 100.0) -> np.ndarray:
    """Square cells of ``cell_m`` metres (≈ 10,000 m²) clipped to the territory."""
    mx, my = _metres_per_degree([territory])
    minx, miny, maxx, maxy = territory.bounds
    dx, dy = cell_m / mx, cell_m / my
    xs, ys = np.meshgrid(np.arange(minx, maxx, dx), np.arange(miny, maxy, dy))
    boxes = shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + dx, ys.ravel() + dy)
    boxes = boxes[shapely.intersects(boxes, territory)]
    clipped = shapely.intersection(boxes, territory)
    return clipped[shapely.area(clipped) > 0]


def jitter(geoms: np.ndarray, rng: np.random.Generator, metres: float) -> np.ndarray:
    """Move every vertex by up to ``metres`` with a smooth random field of its own per grid (so a
    ring stays closed), so that neighbours' shared borders no longer agree: thin overlaps and gaps."""
    mx, my = _metres_per_degree(geoms)
    out = []
    for g in geoms:
        phase = rng.uniform(0, 2 * math.pi, 4)
        wave = rng.uniform(30.0, 80.0, 2)

        def move(c: np.ndarray, phase=phase, wave=wave) -> np.ndarray:
            x, y = c[:, 0] * mx, c[:, 1] * my
            dx = metres * np.sin(2 * math.pi * x / wave[0] + phase[0]) * np.cos(2 * math.pi * y / wave[1] + phase[1])
            dy = metres * np.sin(2 * math.pi * y / wave[1] + phase[2]) * np.cos(2 * math.pi * x / wave[0] + phase[3])
            return c + np.column_stack([dx / mx, dy / my])

        dense = shapely.segmentize(g, 15.0 / mx)
        out.append(shapely.make_valid(shapely.transform(dense, move)))
    return polygonal(np.asarray(out, dtype=object))


def departmental_layers(units: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, *, seed: int = 0,
                        count: int = 19) -> GeneratedLayers:
    """``count`` departmental layers over the territory of ``communities`` (see module docstring)."""
    rng = np.random.default_rng(seed)
    comm_geoms = np.asarray(communities.to_crs(STORAGE_EPSG).geometry.values, dtype=object)
    territory = shapely.union_all(comm_geoms)
    mx, my = _metres_per_degree(comm_geoms)
    out = GeneratedLayers(layers={}, patterns={})
    clean_governance = governance(units, seed + 1, (250, 450))
    for i, (code, name) in enumerate(DEPARTMENTS[:count]):
        pattern = PATTERNS[i % len(PATTERNS)]
        duties = [f"{code.upper()}-{k + 1:02d}" for k in range(2 + i % 3)]
        out.duties[name] = duties
        out.patterns[name] = pattern
        prefix = f"{code[:2].upper()}"
        if pattern == "governance":
            geoms = clean_governance if i == 0 else governance(units, seed + 10 + i, (200 + 20 * (i % 4), 420 + 40 * (i % 3)))
        elif pattern == "cells":  # cut to communities: a clean layer (crossing is the "ignores" pattern)
            geoms = np.concatenate([cells(c, 100.0 + 10 * (i % 3)) for c in comm_geoms])
        elif pattern == "community":
            geoms = comm_geoms
        elif pattern == "hand":
            base = clean_governance
            geoms = jitter(base, rng, 3.0)
            # a few grids pushed 25 m into their neighbours: overlaps
            for j in rng.choice(len(geoms), size=min(2, len(geoms)), replace=False):
                grown = shapely.buffer(geoms[j], 25.0 / mx)
                overlap = shapely.difference(shapely.intersection(grown, territory), shapely.buffer(base[j], 1.0 / mx))
                geoms[j] = shapely.intersection(grown, territory)
                if overlap.area > 0:
                    out.injected.append(Injected(name, "overlap", overlap, f"grid {j + 1} pushed 25 m outward"))
            # a few holes of ~40 m radius in the middle of grids: gaps
            for j in rng.choice(len(geoms), size=min(2, len(geoms)), replace=False):
                centre = shapely.point_on_surface(base[j])
                hole = shapely.intersection(shapely.buffer(centre, 40.0 / mx), shapely.buffer(base[j], -5.0 / mx))
                if hole.area > 0:
                    # out of every grid over it: a neighbour pushed outward above may cover it
                    # too, and the hole would be no gap in the layer
                    over = np.flatnonzero(shapely.intersects(geoms, hole))
                    geoms[over] = shapely.difference(geoms[over], hole)
                    out.injected.append(Injected(name, "gap", hole, f"hole cut into grid {j + 1}"))
            out.injected.append(Injected(name, "sliver", None, "every border jittered by up to 3 m"))
        elif pattern == "offset":
            base = clean_governance
            coords = shapely.get_coordinates(np.array([territory]))
            if np.mean(in_china(coords[:, 0], coords[:, 1])) > 0.5:
                geoms = wgs84_to_gcj02_geoms(base)
                detail = "digitised on a GCJ-02 basemap and left unconverted"
            else:
                shift = np.array([320.0 / mx, -140.0 / my])
                geoms = shapely.transform(base, lambda c: c + shift)
                detail = "digitised on a basemap misregistered by 350 m"
            out.injected.append(Injected(name, "offset", None, detail))
        else:  # ignores community boundaries: ~700 m blocks laid over the whole territory
            geoms = cells(territory, 700.0)
            pieces = shapely.STRtree(comm_geoms)
            for k, g in enumerate(geoms):
                hit = pieces.query(g, predicate="intersects")
                areas = shapely.area(shapely.intersection(comm_geoms[hit], g)) * mx * my
                if (areas > 2000).sum() >= 2:
                    out.injected.append(Injected(name, "crosses_community", g, f"block {k + 1} spans communities"))
        out.layers[name] = _frame(polygonal(np.asarray(geoms, dtype=object)), name, duties, prefix)
    return out


def combined(generated: GeneratedLayers) -> gpd.GeoDataFrame:
    """All layers as one GeoDataFrame with a ``department`` column."""
    return gpd.GeoDataFrame(pd.concat([f.assign(department=d) for d, f in generated.layers.items()],
                                      ignore_index=True), geometry="geometry", crs=STORAGE_EPSG)
