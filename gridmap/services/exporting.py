"""Export a territory's plan (and on request its units, stations, incidents and merge crosswalk)
for a government GIS system: gather the layers from PostGIS, hand them to gridmap.geo.export."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from gridmap.geo.export import ExportError, ExportResult, export
from gridmap.services import reading
from gridmap.store.plans import Plan

LAYERS = ("grids", "units", "microgrids", "stations", "incidents", "crosswalk")
DROPPED_FOR_EXPORT = {"grids": ("compactness", "unit_count"), "stations": ("services",), "incidents": ("overdue",)}


@dataclass(frozen=True)
class ExportRequest:
    """What to export: the CLI, the API and the notebook API all build one of these."""

    territory: str
    format: str = "gpkg"
    crs: str = "4490"
    encoding: str = "utf-8"
    plan: str = "published"
    layers: tuple[str, ...] = ("grids",)


def parse_layers(text: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``"grids,units"`` → ("grids", "units"), checked against the layers gridmap can export."""
    if not text:
        return ("grids",)
    items = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(dict.fromkeys(i.strip().lower() for i in items if i.strip()))
    unknown = [n for n in names if n not in LAYERS]
    if unknown:
        raise ExportError(f"unknown layer(s) {', '.join(unknown)}; choose from {', '.join(LAYERS)}",
                          f"未知的图层 {'、'.join(unknown)}：可选 {'、'.join(LAYERS)}")
    return names or ("grids",)


def gather(conn: sa.Connection, request: ExportRequest) -> tuple[Plan, dict]:
    """The plan and the frames of the requested layers (PlanNotFound / TerritoryNotFound)."""
    plan = reading.plan(conn, request.territory, request.plan)
    readers = {
        "grids": lambda: reading.plan_grids(conn, plan, request.territory),
        "units": lambda: reading.plan_units(conn, plan, request.territory),
        "microgrids": lambda: reading.plan_microgrids(conn, plan, request.territory),
        "stations": lambda: reading.stations(conn, request.territory),
        "incidents": lambda: reading.incidents(conn, request.territory),
        "crosswalk": lambda: reading.crosswalk(conn, plan),
    }
    layers = {}
    for name in parse_layers(request.layers):
        frame = readers[name]()
        layers[name] = frame.drop(columns=[c for c in DROPPED_FOR_EXPORT.get(name, ()) if c in frame.columns])
    return plan, layers


def with_flags(report: dict | None, layers: dict) -> dict:
    """The grids layer with each grid's flags from the plan's ``report`` (``flag``: their codes,
    ``reason_zh`` / ``reason``: their reasons; several joined), so that a system taking the export
    sees why a grid is outside the band, as the report says, of the very grids it holds (read in
    the same snapshot: :func:`planning.report_in`)."""
    if "grids" not in layers or report is None:
        return layers
    flags = pd.DataFrame(report.get("flags", []), columns=["grid_code", "flag", "reason", "reason_zh"]).fillna("")
    said = flags.groupby("grid_code").agg({"flag": ",".join, "reason": "; ".join, "reason_zh": "；".join})
    grids = layers["grids"].drop(columns=[c for c in ("flag", "reason", "reason_zh") if c in layers["grids"]])
    return {**layers, "grids": grids.join(said, on="grid_code")}


def _read(engine: sa.Engine, request: ExportRequest, authorize=None) -> tuple[Plan, dict]:
    """The plan and its layers with the report's flags, all read in one snapshot (REPEATABLE
    READ); a report computed there is kept with the plan afterwards, unless it was edited since."""
    from gridmap.services import planning

    seen = None
    with reading.snapshot(engine) as conn:
        plan, layers = gather(conn, request)
        if authorize is not None:
            authorize(conn, plan)
        if "grids" in layers:
            seen = planning.report_in(conn, plan.id)
    if seen is not None:
        planning.keep_report(engine, seen)
    return plan, with_flags(None if seen is None else seen.report, layers)


def export_territory(engine: sa.Engine, request: ExportRequest, out: str | Path) -> ExportResult:
    """Read the layers and the report's flags in one snapshot and write them to ``out``."""
    _, layers = _read(engine, request)
    return export(layers, out, format=request.format, crs=request.crs, encoding=request.encoding)


def export_download(engine: sa.Engine, request: ExportRequest, folder: Path, authorize=None) -> tuple[Plan, ExportResult]:
    """Export for a download: read in one snapshot, let ``authorize(plan)`` refuse (a draft
    needs a role), then write into ``folder`` as ``gridmap-<territory>-v<version>-<layers>``."""
    plan, layers = _read(engine, request, authorize)
    stem = f"gridmap-{request.territory}-v{plan.version}-{'-'.join(request.layers)}"
    return plan, export(layers, folder / f"{stem}.{request.format}", format=request.format, crs=request.crs,
                        encoding=request.encoding)


__all__ = ["ExportRequest", "LAYERS", "parse_layers", "gather", "export_territory", "export_download"]
