"""A building's stairwells (单元) from an entrances layer: how many it has, and where.

A building is cut into its 单元 (a tower above the units' size limit, a building of a
micro-grid that misses its band) only when the data say how many it has. A district's buildings
layer may carry that count (单元数); where it does not, an **entrances layer** can: points at
the stairwells' doors, as OpenStreetMap maps them (``entrance=staircase`` nodes on a building's
outline) or a district survey gives them (单元门 points). This module reads such a layer against
the buildings (:func:`attach`):

* a door belongs to the building whose footprint is nearest, within :data:`ENTRANCE_REACH_M` (a
  door mapped on the outline is on it, a surveyed point can be a metre or two off); a door farther
  from every building, or as near to two of them (a door in the wall two buildings share), is left
  out and counted;
* doors that do not lead to a stairwell are left out: OpenStreetMap's ``entrance`` values
  :data:`NOT_STAIRWELLS` (service, emergency, garage ...) and a survey's door types (类型, read as
  ``type``) :data:`NOT_STAIRWELL_TYPES` (车库, 商铺, 消防通道 ...);
* a stairwell with two doors (front and back) counts once: the doors of one building that carry
  the same stairwell label (单元号, ``ref``) are one 单元; an unlabelled door joins the labelled
  stairwell less than :data:`SAME_STAIRWELL_M` from it along the building's long axis, and the
  other unlabelled doors less than that apart are one; all the unlabelled doors of a point block
  (点式楼: its long side less than :data:`POINT_BLOCK_RATIO` times its depth, where front and back
  doors can lie far apart along the "long" axis) are one, unless labelled ones tell it more;
* the count fills the building's ``entrances`` where its own is missing or 0. A building's own
  count wins; where the layer disagrees with it, that is counted in the summary;
* where the 单元 count is the layer's (or agrees with it), the building's strips are cut halfway
  between neighbouring stairwells, not evenly (``entrance_cuts``: fractions of the footprint's
  length along its long axis, :func:`gridmap.geo.atoms.stairwell_strips`), and its households are
  shared between its 单元 by their strips' shares of the footprint (:func:`households_by_stairwell`),
  as units share a building that straddles them; cut evenly, evenly;
* where every stairwell's label has a number and the numbers are 1 to the count (1单元, 2单元 …),
  the strips carry those numbers (``entrance_parts``, in the order of the axis), so that "3栋2单元"
  is the stairwell whose door says 2单元, whichever end of the building it stands at; otherwise
  strips are numbered along the axis.

Pure geometry: frames in, frames out; no database, no web.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap.geo.apportion import largest_remainder
from gridmap.geo.atoms import FootprintAxis
from gridmap.geo.crs import STORAGE_EPSG
from gridmap.geo.fields import column_for
from gridmap.geo.shapes import LocalScale

ENTRANCE_REACH_M = 3.0
"""A door belongs to a building at most this far away (metres): on the outline when mapped on it,
a metre or two off it when surveyed with a phone."""
TIE_M = 0.05
"""Two buildings this much nearer or farther (metres) are as near: the door is in a shared wall."""
SAME_STAIRWELL_M = 4.0
"""Unlabelled doors of one building closer than this along its long axis are one stairwell (its
front and back doors); stairwells of Chinese housing are 10–20 m apart."""
POINT_BLOCK_RATIO = 1.5
"""A footprint whose long side is less than this times its depth is a point block (点式楼): its
unlabelled doors are one stairwell's."""
NOT_STAIRWELLS = frozenset({"service", "emergency", "exit", "garage", "delivery", "shop", "no", "cellar"})
"""OpenStreetMap ``entrance`` values that are not a stairwell's door."""
NOT_STAIRWELL_TYPES = frozenset({"车库", "车库门", "车库入口", "商铺", "商铺门", "店铺", "门面", "消防通道", "消防门",
                                 "消防出口", "安全出口", "地下室", "地下车库", "设备间", "配电房", "货梯",
                                 *NOT_STAIRWELLS})
"""A survey's door types (its 类型 column, stored as ``type``) that are not a stairwell's door."""
LABEL_COLUMNS = ("单元号", "单元编号", "单元名称", "单元", "stairwell", "ref", "entrances")
"""Columns of an entrances layer that name the stairwell a door leads to (the first present). The
last is a door layer's 单元 column as stored: an import names every layer's fields by the field
table, where 单元 stands for a building's count (``entrances``)."""
KIND_COLUMN = "entrance"
"""The column of an entrances layer saying what kind of door it is (OpenStreetMap's key)."""
CUTS_COLUMN = "entrance_cuts"
"""The buildings' column of cut positions (a tuple of fractions, or None): see the module docstring."""
PARTS_COLUMN = "entrance_parts"
"""The buildings' column of strip numbers in the order of the axis (a tuple, or None)."""
READ_MARGIN_DEG = 1e-4
"""How far (about 10 m) beyond an area its doors and buildings are read: a door a few metres
outside, and the building that may be nearer to it, count as they would in a read of everything."""


@dataclass(frozen=True)
class StairwellSummary:
    """What an entrances layer gave: its doors, how many were counted, how many left out and why,
    and the buildings whose 单元 count it supplied or contradicted."""

    doors: int = 0
    counted: int = 0
    far: int = 0
    shared_wall: int = 0
    not_stairwell: int = 0
    buildings: int = 0
    disagree: int = 0

    def en(self) -> str:
        out = (f"entrances layer: {self.counted} of {self.doors} doors counted; 单元 counts for {self.buildings} "
               "buildings without their own")
        left = [f"{n} {what}" for n, what in ((self.far, f"with no building within {ENTRANCE_REACH_M:g} m"),
                                             (self.shared_wall, "as near to two buildings"),
                                             (self.not_stairwell, "not a stairwell's door")) if n]
        if left:
            out += "; left out: " + ", ".join(left)
        if self.disagree:
            out += f"; {self.disagree} buildings keep their own 单元数, which the layer's doors contradict"
        return out

    def zh(self) -> str:
        out = f"单元门图层：{self.doors} 个门中计入 {self.counted} 个；为 {self.buildings} 栋无单元数的楼栋补充了单元数"
        left = [f"{n} 个{what}" for n, what in ((self.far, f"{ENTRANCE_REACH_M:g} 米内没有楼栋"),
                                              (self.shared_wall, "与两栋楼一样近"),
                                              (self.not_stairwell, "不是单元门")) if n]
        if left:
            out += "；未计入：" + "、".join(left)
        if self.disagree:
            out += f"；{self.disagree} 栋楼保留自己的单元数（与图层中的门数不符）"
        return out


def own_count_column(buildings: pd.DataFrame) -> str | None:
    """The buildings' own 单元 count column: ``entrances`` or a name the field table knows (单元数 …),
    by the field table's rule (:func:`gridmap.geo.fields.column_for`)."""
    return column_for(buildings.columns, "entrances")


def own_counts(buildings: pd.DataFrame) -> np.ndarray:
    """Each building's own 单元 count (0 where unknown, missing or not a number)."""
    column = own_count_column(buildings)
    if column is None:
        return np.zeros(len(buildings), dtype=np.int64)
    return pd.to_numeric(buildings[column], errors="coerce").fillna(0).clip(lower=0).round().to_numpy(dtype=np.int64)


def cuts_of(buildings: pd.DataFrame) -> np.ndarray:
    """Each building's cut positions (``entrance_cuts``; None where there are none)."""
    return _tuples(buildings, CUTS_COLUMN)


def parts_of(buildings: pd.DataFrame) -> np.ndarray:
    """Each building's strip numbers in the order of its axis (``entrance_parts``; None: 1, 2 …)."""
    return _tuples(buildings, PARTS_COLUMN)


def _tuples(buildings: pd.DataFrame, column: str) -> np.ndarray:
    """A column of tuples set by :func:`attach`, or None for every building without it."""
    if column not in buildings:
        return np.full(len(buildings), None, dtype=object)
    return buildings[column].to_numpy(dtype=object)


def attach(buildings: gpd.GeoDataFrame, entrances: gpd.GeoDataFrame | None
           ) -> tuple[gpd.GeoDataFrame, StairwellSummary]:
    """``buildings`` with their 单元 counts (``entrances``, replacing an own column named 单元数 …)
    completed from the ``entrances`` layer's doors, and the cuts between stairwells
    (``entrance_cuts``), by the rules of the module docstring; the summary says what the layer
    gave. Without a layer (None or empty) the buildings come back as they are."""
    if entrances is None or not len(entrances) or not len(buildings):
        return buildings, StairwellSummary(doors=0 if entrances is None else len(entrances))
    own = own_counts(buildings)
    column = own_count_column(buildings)
    doors = entrances.to_crs(STORAGE_EPSG) if entrances.crs is not None else entrances.set_crs(STORAGE_EPSG)
    door_points = _door_points(np.asarray(doors.geometry.values, dtype=object))
    footprints = np.asarray((buildings.to_crs(STORAGE_EPSG) if buildings.crs is not None else buildings)
                            .geometry.values, dtype=object).copy()
    broken = ~(shapely.is_missing(footprints) | shapely.is_valid(footprints))
    footprints[broken] = shapely.make_valid(footprints[broken])  # repaired as units repair them
    stairwell = _is_stairwell(doors)
    building, far, shared = _nearest_buildings(door_points, footprints)
    use = stairwell & (building >= 0)
    labels = _labels(doors)
    found = np.zeros(len(buildings), dtype=np.int64)
    cuts = np.full(len(buildings), None, dtype=object)
    parts = np.full(len(buildings), None, dtype=object)
    order = np.argsort(building[use], kind="stable")
    at, xy, label = building[use][order], shapely.get_coordinates(door_points[use])[order], labels[use][order]
    bounds = np.flatnonzero(np.r_[True, at[1:] != at[:-1], True]) if len(at) else np.zeros(1, dtype=np.int64)
    for first, stop in zip(bounds[:-1], bounds[1:]):
        b = int(at[first])
        frame = FootprintAxis.of(footprints[b])
        if frame is None:  # an address point: its doors count, there is no axis to cut along
            found[b] = len(_stairwells(np.zeros(stop - first), label[first:stop], True)[0])
            continue
        point_block = frame.end - frame.start < POINT_BLOCK_RATIO * frame.depth
        positions, names = _stairwells(frame.along(xy[first:stop]), label[first:stop], point_block)
        found[b] = len(positions)
        if len(positions) > 1:
            between = frame.fraction((positions[1:] + positions[:-1]) / 2)
            if np.all(np.diff(between) > 0) and between[0] > 0 and between[-1] < 1:  # else: evenly
                cuts[b] = tuple(float(c) for c in between)
                parts[b] = _numbered(names)
    fill = (own <= 0) & (found > 0)
    counts = np.where(fill, found, own)
    keep = (found == counts) & (found > 1)
    out = buildings.drop(columns=[column]) if column is not None and column != "entrances" else buildings.copy()
    out["entrances"] = counts
    out[CUTS_COLUMN] = np.where(keep, cuts, None)
    out[PARTS_COLUMN] = np.where(keep, parts, None)
    summary = StairwellSummary(doors=len(doors), counted=int(use.sum()), far=int((stairwell & far).sum()),
                               shared_wall=int((stairwell & shared).sum()), not_stairwell=int((~stairwell).sum()),
                               buildings=int(fill.sum()), disagree=int(((own > 0) & (found > 0) & (found != own)).sum()))
    return out, summary


def households_by_stairwell(households: int, count: int, weights: np.ndarray | None = None) -> np.ndarray:
    """A building's ``households`` shared between its ``count`` 单元: evenly (the first ones take
    the remainder) when the 单元 are cut evenly, else (``weights``: each strip's share of the
    footprint, for cuts placed by doors) in proportion, with largest-remainder rounding, as units
    share a building that straddles them by area. Sums to ``households``."""
    if weights is None or len(weights) != count or not np.sum(weights) > 0:
        weights = np.ones(count)
    return largest_remainder(np.array([households]), np.zeros(count, dtype=np.int64), weights)


def _door_points(geoms: np.ndarray) -> np.ndarray:
    """A point for each door: itself, or a point on a door drawn as a line or an area (an empty
    point for a door without geometry)."""
    points = geoms.copy()
    types = shapely.get_type_id(points)  # -1: missing
    other = types > 0
    points[other] = shapely.point_on_surface(points[other])
    points[types < 0] = shapely.Point()
    return points


def _is_stairwell(doors: pd.DataFrame) -> np.ndarray:
    """Whether each door leads to a stairwell: its OpenStreetMap ``entrance`` kind is not one of
    :data:`NOT_STAIRWELLS`, and its survey type (``type``, or a column the field table reads as
    type: 类型 …) not one of :data:`NOT_STAIRWELL_TYPES`."""
    ok = np.ones(len(doors), dtype=bool)
    for column, refused in ((KIND_COLUMN, NOT_STAIRWELLS), (column_for(doors.columns, "type"), NOT_STAIRWELL_TYPES)):
        if column is not None and column in doors:
            kind = doors[column].astype("string").str.strip().str.lower()
            ok &= ~kind.isin(refused).fillna(False).to_numpy(dtype=bool)
    return ok


def _labels(doors: pd.DataFrame) -> np.ndarray:
    """Each door's stairwell label (the first of :data:`LABEL_COLUMNS` present; '' where none)."""
    column = next((c for c in LABEL_COLUMNS if c in doors), None)
    if column is None:
        return np.full(len(doors), "", dtype=object)
    return doors[column].astype("string").str.strip().fillna("").to_numpy(dtype=object)


def _nearest_buildings(points: np.ndarray, footprints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each door: the building nearest it within :data:`ENTRANCE_REACH_M` (-1: none), and
    whether it was too far from every building, or as near (within :data:`TIE_M`) to two. Measured
    in a local metric frame (an affine scaling of lon/lat at the doors' latitude)."""
    building = np.full(len(points), -1, dtype=np.int64)
    present = ~shapely.is_empty(points)
    far = ~present
    shared = np.zeros(len(points), dtype=bool)
    usable = ~(shapely.is_missing(footprints) | shapely.is_empty(footprints))
    if not present.any() or not usable.any():
        return building, far | present, shared
    scale = LocalScale.at(float(np.mean(shapely.get_y(points[present]))))
    factor = np.array([scale.mx, scale.my])
    door_m = shapely.transform(points, lambda c: c * factor)
    foot_index = np.flatnonzero(usable)
    foot_m = shapely.transform(footprints[usable], lambda c: c * factor)
    door, near = shapely.STRtree(foot_m).query(door_m, predicate="dwithin", distance=ENTRANCE_REACH_M)
    gap = shapely.distance(door_m[door], foot_m[near])
    found = pd.DataFrame({"door": door, "building": foot_index[near], "gap": gap}).sort_values(
        ["door", "gap", "building"], kind="stable")
    best = found.drop_duplicates("door")
    second = found[found.duplicated("door")].drop_duplicates("door").set_index("door")["gap"]
    tie = best["gap"].to_numpy() + TIE_M >= second.reindex(best["door"]).to_numpy(dtype=float, na_value=np.inf)
    doors = best["door"].to_numpy()
    building[doors[~tie]] = best["building"].to_numpy()[~tie]
    shared[doors[tie]] = True
    far = present & (building < 0) & ~shared
    far |= ~present
    return building, far, shared


def _stairwells(along: np.ndarray, labels: np.ndarray, point_block: bool) -> tuple[np.ndarray, list[str]]:
    """The stairwells of one building's doors: their positions along its axis (metres, in order)
    and their labels ('' for one of unlabelled doors). Doors sharing a label are one stairwell
    (at their mean position); an unlabelled door joins the labelled stairwell nearest it when that
    is less than :data:`SAME_STAIRWELL_M` away; the other unlabelled doors are one stairwell in a
    ``point_block`` with no labelled one, else one where they are less than that apart."""
    along = np.asarray(along, dtype=float)
    labels = np.asarray(labels, dtype=object)
    named = labels != ""
    spots: dict[str, list[float]] = {}
    for where, label in zip(along[named], labels[named]):
        spots.setdefault(str(label), []).append(float(where))
    centres = {label: float(np.mean(at)) for label, at in spots.items()}
    loose = []
    for where in along[~named]:
        near = min(centres, key=lambda k: abs(centres[k] - where), default=None)
        if near is not None and abs(centres[near] - where) < SAME_STAIRWELL_M:
            continue
        loose.append(float(where))
    found = [(at, label) for label, at in centres.items()]
    if loose and point_block and not centres:
        found.append((float(np.mean(loose)), ""))
    elif loose:
        ordered = np.sort(np.asarray(loose))
        group = np.cumsum(np.r_[True, np.diff(ordered) >= SAME_STAIRWELL_M]) - 1
        found += [(float(x), "") for x in np.bincount(group, weights=ordered) / np.bincount(group)]
    found.sort(key=lambda pair: pair[0])
    return np.array([at for at, _ in found], dtype=float), [label for _, label in found]


def _numbered(labels: list[str]) -> tuple[int, ...] | None:
    """The stairwells' numbers from their labels (the first run of digits: 1单元, 2, 03), in the
    order given, when they are exactly 1 to their count; else None (strips numbered along the axis)."""
    numbers = []
    for label in labels:
        digits = re.search(r"\d+", label or "")
        if digits is None:
            return None
        numbers.append(int(digits.group()))
    return tuple(numbers) if sorted(numbers) == list(range(1, len(labels) + 1)) else None


__all__ = ["ENTRANCE_REACH_M", "SAME_STAIRWELL_M", "POINT_BLOCK_RATIO", "NOT_STAIRWELLS", "CUTS_COLUMN", "StairwellSummary", "attach", "households_by_stairwell",
           "own_counts", "own_count_column", "cuts_of", "parts_of",
           "NOT_STAIRWELL_TYPES", "READ_MARGIN_DEG", "PARTS_COLUMN"]
