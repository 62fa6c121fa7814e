"""Generated layouts for property tests and scaling benchmarks (deterministic for a seed).

``street_grid_layout`` makes the raw inputs of ``build_units`` (communities, roads, buildings,
compounds); ``centreline_layout`` the same with community borders on road centre lines (as
Chinese civil-affairs boundaries are drawn), the road layer digitised a metre off them; ``unit_grid`` makes units directly (rectangular blocks with random households),
for partition scaling runs of 1k-100k units. Coordinates are placed near Ya'an (103°E, 30°N)
in EPSG:4490 so that the metric CRS is a CGCS2000 Gauss-Krüger zone, as for real Chinese data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely

from gridmap.geo.crs import STORAGE_EPSG

ORIGIN = (103.0, 30.0)
M_PER_DEG_LAT = 110_574.0


def _to_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lat = ORIGIN[1] + y / M_PER_DEG_LAT
    lon = ORIGIN[0] + x / (111_320.0 * math.cos(math.radians(ORIGIN[1])))
    return lon, lat


def _geo(geoms: np.ndarray) -> np.ndarray:
    return shapely.transform(geoms, lambda c: np.column_stack(_to_lonlat(c[:, 0], c[:, 1])))


@dataclass
class Layout:
    communities: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    compounds: gpd.GeoDataFrame


def community_code(i: int) -> str:
    return f"511802{1 + i // 999:03d}{1 + i % 999:03d}"


def street_grid_layout(seed: int, *, communities_x: int = 2, size_m: float = 600.0, streets: int = 4,
                       compounds: int = 3, buildings_per_block: int = 4) -> Layout:
    """Communities side by side, each cut by random streets, with compounds and buildings."""
    rng = np.random.default_rng(seed)
    comm_geoms, codes, road_geoms, classes = [], [], [], []
    bld_geoms, hh, comp_geoms = [], [], []
    for c in range(communities_x):
        x0 = c * size_m
        comm_geoms.append(shapely.box(x0, 0, x0 + size_m, size_m))
        codes.append(community_code(c))
        spacing = size_m / (streets + 1)  # jittered, never closer than 0.6 spacing: no slivers between
        xs = x0 + spacing * (np.arange(1, streets + 1) + rng.uniform(-0.2, 0.2, streets))
        ys = spacing * (np.arange(1, streets + 1) + rng.uniform(-0.2, 0.2, streets))
        for xv in xs:
            road_geoms.append(shapely.LineString([(xv, 0), (xv, size_m)]))
            classes.append(rng.choice(["primary", "residential", "footway"], p=[0.3, 0.5, 0.2]))
        for yv in ys:
            road_geoms.append(shapely.LineString([(x0, yv), (x0 + size_m, yv)]))
            classes.append(rng.choice(["secondary", "residential", "service"], p=[0.3, 0.5, 0.2]))
        for _ in range(compounds):
            cx, cy = rng.uniform(x0 + 60, x0 + size_m - 60), rng.uniform(60, size_m - 60)
            w, h = rng.uniform(30, 110, 2)
            comp_geoms.append(shapely.box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        n = buildings_per_block * (streets + 1) ** 2
        bx = rng.uniform(x0 + 5, x0 + size_m - 25, n)
        by = rng.uniform(5, size_m - 25, n)
        sizes = rng.uniform(8, 20, n)
        bld_geoms.extend(shapely.box(bx, by, bx + sizes, by + sizes))
        hh.extend(rng.integers(0, 60, n))
    communities = gpd.GeoDataFrame({"code": codes, "name": [f"社区{i + 1}" for i in range(len(codes))]},
                                   geometry=_geo(np.array(comm_geoms, dtype=object)), crs=STORAGE_EPSG)
    roads = gpd.GeoDataFrame({"highway": classes}, geometry=_geo(np.array(road_geoms, dtype=object)), crs=STORAGE_EPSG)
    buildings = gpd.GeoDataFrame({"building": "apartments", "households": np.array(hh, dtype=np.int64)},
                                 geometry=_geo(np.array(bld_geoms, dtype=object)), crs=STORAGE_EPSG)
    compounds_gdf = gpd.GeoDataFrame({"name": [f"小区{i + 1}" for i in range(len(comp_geoms))]},
                                     geometry=_geo(np.array(comp_geoms, dtype=object)), crs=STORAGE_EPSG)
    return Layout(communities, roads, buildings, compounds_gdf)


def centreline_layout(seed: int, *, nx: int = 3, ny: int = 3, size_m: float = 420.0, inner: int = 2,
                      jitter_m: float = 0.8) -> Layout:
    """Communities whose borders follow road centre lines, as Chinese civil-affairs data has them:
    each border is a wavy line both neighbours share, and the main roads along it are digitised
    separately, a metre or so off it; inner streets end on the border roads, overshoot them or
    stop short by up to 2 m. Buildings of 16–130 households in rows (high-rise and walk-up)."""
    rng = np.random.default_rng(seed)

    def wavy(p0: tuple[float, float], p1: tuple[float, float], step: float = 40.0, amp: float = 1.5) -> np.ndarray:
        n = max(int(math.hypot(p1[0] - p0[0], p1[1] - p0[1]) // step), 1)
        t = np.linspace(0, 1, n + 1)
        dx, dy = p1[0] - p0[0], p1[1] - p0[1]
        length = math.hypot(dx, dy)
        offset = rng.normal(0, amp, n + 1)
        offset[0] = offset[-1] = 0
        return np.column_stack([p0[0] + dx * t - dy / length * offset, p0[1] + dy * t + dx / length * offset])

    edges = [shapely.LineString(wavy((i * size_m, j * size_m), (i * size_m, (j + 1) * size_m)))
             for i in range(nx + 1) for j in range(ny)]
    edges += [shapely.LineString(wavy((i * size_m, j * size_m), ((i + 1) * size_m, j * size_m)))
              for j in range(ny + 1) for i in range(nx)]
    faces = shapely.get_parts(shapely.polygonize([shapely.union_all(edges)]))
    comm = sorted(faces, key=lambda f: (-round(f.centroid.y), round(f.centroid.x)))
    roads, classes = [], []
    for edge in edges:  # the main road along each border, digitised on its own
        xy = shapely.get_coordinates(shapely.segmentize(edge, 23.0))
        step = np.diff(xy, axis=0)
        step = np.vstack([step, step[-1:]])
        normal = np.column_stack([-step[:, 1], step[:, 0]]) / np.hypot(step[:, 0], step[:, 1])[:, None]
        roads.append(shapely.LineString(xy + normal * rng.normal(0, jitter_m, (len(xy), 1))))
        classes.append(str(rng.choice(["primary", "secondary", "trunk"])))
    buildings, households = [], []
    for face in comm:
        x0, y0, x1, y1 = face.bounds
        for k in range(inner):
            xv = x0 + (x1 - x0) * (k + 1) / (inner + 1) + rng.uniform(-20, 20)
            roads.append(shapely.LineString([(xv, y0 + rng.uniform(-2, 2)), (xv, y1 + rng.uniform(-2, 2))]))
            classes.append("residential")
            yv = y0 + (y1 - y0) * (k + 1) / (inner + 1) + rng.uniform(-20, 20)
            roads.append(shapely.LineString([(x0 + rng.uniform(-2, 2), yv), (x1 + rng.uniform(-2, 2), yv)]))
            classes.append("tertiary")
        for bx in np.arange(x0 + 12, x1 - 30, 34.0):
            for by in np.arange(y0 + 12, y1 - 20, 30.0):
                if rng.random() < 0.6:
                    buildings.append(shapely.box(bx, by, bx + rng.uniform(12, 22), by + rng.uniform(10, 14)))
                    households.append(int(rng.choice([16, 24, 36, 48, 66, 90, 130])))
    codes = [community_code(k) for k in range(len(comm))]
    return Layout(
        gpd.GeoDataFrame({"code": codes, "name": [f"社区{k + 1}" for k in range(len(codes))]},
                         geometry=_geo(np.array(comm, dtype=object)), crs=STORAGE_EPSG),
        gpd.GeoDataFrame({"highway": classes}, geometry=_geo(np.array(roads, dtype=object)), crs=STORAGE_EPSG),
        gpd.GeoDataFrame({"building": "apartments", "households": np.array(households, dtype=np.int64)},
                         geometry=_geo(np.array(buildings, dtype=object)), crs=STORAGE_EPSG),
        gpd.GeoDataFrame({"name": []}, geometry=gpd.GeoSeries([], crs=STORAGE_EPSG), crs=STORAGE_EPSG))


def unit_grid(n_units: int, *, seed: int = 0, units_per_community: int = 1000, block_m: float = 80.0,
              mean_households: float = 80.0) -> gpd.GeoDataFrame:
    """About ``n_units`` rectangular units in square communities, households lognormal-random."""
    rng = np.random.default_rng(seed)
    side = max(int(round(math.sqrt(units_per_community))), 1)
    per = side * side
    n_comm = max(int(math.ceil(n_units / per)), 1)
    comm_side = int(math.ceil(math.sqrt(n_comm)))
    ix, iy = np.meshgrid(np.arange(side), np.arange(side))
    ix, iy = ix.ravel(), iy.ravel()
    geoms, codes, ids = [], [], []
    for c in range(n_comm):
        cx, cy = (c % comm_side) * side * block_m, (c // comm_side) * side * block_m
        boxes = shapely.box(cx + ix * block_m, cy + iy * block_m, cx + (ix + 1) * block_m, cy + (iy + 1) * block_m)
        geoms.append(boxes)
        code = community_code(c)
        codes.append(np.full(per, code, dtype=object))
        ids.append(np.array([f"{code}-{i + 1:04d}" for i in range(per)], dtype=object))
    geoms = np.concatenate(geoms)
    sigma = 0.8
    households = rng.lognormal(math.log(mean_households) - sigma ** 2 / 2, sigma, len(geoms)).round().astype(np.int64)
    households = np.minimum(households, 450)
    return gpd.GeoDataFrame({"unit_id": np.concatenate(ids), "community_code": np.concatenate(codes),
                             "kind": "block", "households": households},
                            geometry=_geo(geoms), crs=STORAGE_EPSG)
