"""Which roads divide a community into blocks and which are major: one rule, read by the units
(barriers) and by the partition (grid borders preferred along major roads).

A road layer carries its class in one column (``highway`` in OpenStreetMap). A layer without
that column is a layer of unclassified roads: every road is a barrier and none is major.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np

_LINKS = ("motorway_link", "trunk_link", "primary_link", "secondary_link", "tertiary_link")


@dataclass(frozen=True)
class RoadRules:
    """The road classes a city treats as block borders (``barrier_classes``) and as the borders
    grids should rather follow (``major_classes``), read from ``class_column``."""

    class_column: str = "highway"
    barrier_classes: tuple[str, ...] = (
        "motorway", "trunk", "primary", "secondary", "tertiary", "unclassified", "residential",
        "living_street", "road", *_LINKS)
    major_classes: tuple[str, ...] = ("motorway", "trunk", "primary", "secondary", *_LINKS[:4])

    def _of_classes(self, roads: gpd.GeoDataFrame, classes: tuple[str, ...], without_column: bool) -> np.ndarray:
        if self.class_column not in roads:
            return np.full(len(roads), without_column)
        return roads[self.class_column].astype("string").isin(classes).fillna(False).to_numpy(dtype=bool)

    def is_barrier(self, roads: gpd.GeoDataFrame) -> np.ndarray:
        """One boolean per road: does it divide blocks? (All do when the layer has no classes.)"""
        return self._of_classes(roads, self.barrier_classes, True)

    def major(self, roads: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
        """The major roads of ``roads`` (None when there are none, or no classes to tell)."""
        if roads is None or not len(roads):
            return None
        chosen = roads[self._of_classes(roads, self.major_classes, False)]
        return chosen if len(chosen) else None


__all__ = ["RoadRules"]
