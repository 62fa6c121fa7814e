"""Lines that run along a community border taken as that border (the first step of units).

A road drawn along a community boundary (its centre line a metre or two off the civil-affairs
line, the usual case in Chinese data) is that boundary: kept as well, it would cut a hairline
strip out of the blocks on either side. :class:`BorderZone` is the land within a tolerance of
every community border; :meth:`BorderZone.off` removes the stretches of lines inside it and joins
each cut end near a border onto the border with a short connector, so the blocks a road closes
stay closed.

The zone is held as one small capsule (a buffered segment) per border segment, not as one buffer
of all borders: a line is cut only by the few capsules it meets, so the work grows with the
number of lines and segments, not with their product (one buffer of a city's borders is a
polygon of tens of thousands of vertices, and cutting thousands of roads by it took seconds).
The union of the capsules is the buffer of the borders, up to the arcs' vertices.

Distances are measured in a local metric frame (metres per degree at the territory's latitude);
the lines kept keep their own coordinates exactly. Pure geometry: no database, no web.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from gridmap.geo.shapes import LocalScale

OVERSHOOT_M = 0.05  # a connector crosses the border by this much, so the noding joins them


@dataclass(frozen=True)
class BorderZone:
    """The land within ``tolerance_m`` of the community borders (see the module docstring)."""

    tolerance_m: float
    factor: np.ndarray          # metres per degree (x, y)
    segments_m: np.ndarray      # the borders' segments (two-point lines), in metres
    capsules: np.ndarray        # one buffered segment each, lon/lat

    @classmethod
    def of(cls, comm_geoms: np.ndarray, tolerance_m: float) -> "BorderZone":
        comm_geoms = np.asarray(comm_geoms, dtype=object)
        scale = LocalScale.at(float(np.mean(shapely.total_bounds(comm_geoms)[[1, 3]])))
        factor = np.array([scale.mx, scale.my])
        parts = shapely.get_parts(shapely.boundary(comm_geoms))
        coords, index = shapely.get_coordinates(parts, return_index=True)
        same = index[1:] == index[:-1]
        seg = np.concatenate([coords[:-1][same], coords[1:][same]], axis=1)
        flip = (seg[:, 0] > seg[:, 2]) | ((seg[:, 0] == seg[:, 2]) & (seg[:, 1] > seg[:, 3]))
        seg[flip] = seg[flip][:, [2, 3, 0, 1]]
        seg = np.unique(seg, axis=0)  # a border two communities share, once
        seg = seg[(seg[:, :2] != seg[:, 2:]).any(axis=1)]
        segments_m = shapely.linestrings((seg * np.tile(factor, 2)).reshape(-1, 2, 2))
        capsules = np.empty(0, dtype=object)
        if tolerance_m > 0 and len(segments_m):
            capsules = shapely.transform(shapely.buffer(segments_m, tolerance_m), lambda c: c / factor)
        return cls(tolerance_m, factor, segments_m, capsules)

    def on_border(self, points: np.ndarray, within_m: float = 1e-3) -> np.ndarray:
        """Whether each of ``points`` (k × 2, lon/lat) lies on a community border (within
        ``within_m``)."""
        on = np.zeros(len(points), dtype=bool)
        if len(points) and len(self.segments_m):
            hit, _ = shapely.STRtree(self.segments_m).query(shapely.points(points * self.factor), predicate="dwithin",
                                                            distance=within_m)
            on[hit] = True
        return on

    def off(self, lines: np.ndarray) -> np.ndarray:
        """``lines`` without their stretches inside the zone, plus a connector from each loose end
        within 1.5 × the tolerance of a border onto it (overshooting it by
        :data:`OVERSHOOT_M`: a dangle, which no face keeps). Lines that do not reach the zone are
        returned as they are."""
        lines = np.asarray(lines, dtype=object)
        if self.tolerance_m <= 0 or len(lines) == 0 or len(self.capsules) == 0:
            return lines
        line_idx, capsule_idx = shapely.STRtree(self.capsules).query(lines, predicate="intersects")
        if len(line_idx) == 0:
            return lines
        near = np.unique(line_idx)
        cut = lines.copy()
        order = np.argsort(line_idx, kind="stable")
        line_idx, capsule_idx = line_idx[order], capsule_idx[order]
        rank = np.arange(len(line_idx)) - np.searchsorted(line_idx, line_idx)
        for r in range(int(rank.max()) + 1):  # each line minus its r-th capsule, all lines at once
            at = rank == r
            cut[line_idx[at]] = shapely.difference(cut[line_idx[at]], self.capsules[capsule_idx[at]])
        parts = np.asarray(shapely.get_parts(cut[near]), dtype=object)
        parts = parts[~shapely.is_empty(parts)]
        keep = np.ones(len(lines), dtype=bool)
        keep[near] = False
        return np.concatenate([lines[keep], parts, self._connectors(parts)])

    def _connectors(self, parts: np.ndarray) -> np.ndarray:
        """Short lines from the ends of ``parts`` near a border onto it."""
        if len(parts) == 0:
            return np.empty(0, dtype=object)
        ends = np.concatenate([shapely.get_point(parts, 0), shapely.get_point(parts, -1)])
        metric_ends = shapely.transform(ends, lambda c: c * self.factor)
        end_idx, seg_idx = shapely.STRtree(self.segments_m).query_nearest(
            metric_ends, max_distance=self.tolerance_m * 1.5, all_matches=False)
        if len(end_idx) == 0:
            return np.empty(0, dtype=object)
        feet = _overshoot(shapely.shortest_line(metric_ends[end_idx], self.segments_m[seg_idx]), OVERSHOOT_M)
        far = shapely.get_coordinates(shapely.get_point(feet, -1)) / self.factor
        return shapely.linestrings(np.stack([shapely.get_coordinates(ends[end_idx]), far], axis=1))


def _overshoot(segments: np.ndarray, by: float) -> np.ndarray:
    """Two-point segments lengthened beyond their end by ``by``, so that a connector drawn onto a
    border crosses it (floating point would otherwise leave its end a hair short of the line,
    and the noding would not join them); the overshoot is a dangle, which no face keeps."""
    xy = shapely.get_coordinates(segments).reshape(-1, 2, 2)
    step = xy[:, 1] - xy[:, 0]
    length = np.hypot(step[:, 0], step[:, 1])
    ok = length > 0
    xy[ok, 1] += step[ok] / length[ok, None] * by
    return shapely.linestrings(xy)


__all__ = ["BorderZone", "OVERSHOOT_M"]
