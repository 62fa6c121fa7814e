"""The labelled-synthetic incidents' places (gridmap.geo.incident_demo) from a district's own
layers, not only OSM's."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from gridmap.geo.incident_demo import places


def test_places_come_from_a_road_layer_without_osm_classes() -> None:
    """A district's road layer classes its roads its own way (道路等级 = 主干路, 小区路 …, no
    ``highway``): every road is then a place for road and path incidents, on the roads."""
    buildings = gpd.GeoDataFrame({"households": [40, 60]}, geometry=[shapely.box(103.0, 30.0, 103.0002, 30.0002),
                                                                     shapely.box(103.001, 30.0, 103.0012, 30.0002)],
                                 crs=4490)
    roads = gpd.GeoDataFrame({"道路等级": ["主干路", "小区路"]},
                             geometry=[shapely.LineString([(103.0, 30.001), (103.01, 30.001)]),
                                       shapely.LineString([(103.0, 30.0), (103.0, 30.01)])], crs=4490)
    found = places(buildings, roads, None, seed=1)
    lines = shapely.union_all(np.asarray(roads.to_crs(4326).geometry.values, dtype=object))
    for kind in ("roads", "paths"):
        points = shapely.points(found.points[kind])
        assert len(points) > 0 and bool(np.all(shapely.distance(points, lines) < 1e-9)), kind
    assert found.weights["homes"].tolist() == [40.0, 60.0]
