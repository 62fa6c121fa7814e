"""The wall map: one community's grids on an A4 or A3 sheet (PDF or PNG), as the community office
pins it on the wall and the grid worker carries it.

Each grid is filled so that no two neighbours share a colour and labelled with its code and
households; the community's outline, its roads and water are drawn for orientation; a legend lists
every grid (code, name, households and how far it lies outside the household band, worker), with
a scale bar, a north arrow, the plan's version and the print date. Rendered by matplotlib's
non-interactive Agg/PDF backends with a CJK font found on the machine (Debian: fonts-noto-cjk).
The map is drawn in the community's own metric CRS (its CGCS2000 Gauss-Krüger zone in China, a UTM zone
elsewhere), so the scale bar is true.

What the sheet shows is read by :mod:`gridmap.services.printing`; :func:`print_wall_map` reads
and draws (the CLI, the API and the planner's print button call it); :func:`render` only draws.
"""

from __future__ import annotations

import io
import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

import sqlalchemy as sa

from gridmap.errors import Invalid
from gridmap.geo.crs import crs_name_zh, metric_crs_for_frame
from gridmap.geo.kinds import DEDICATED, GRID_KIND_NAMES
from gridmap.services.printing import FORMATS, WallMapData, WallMapRequest, gather
from gridmap.store.plans import Plan

PAPERS_MM: dict[str, tuple[float, float]] = {"A4": (210.0, 297.0), "A3": (297.0, 420.0)}
"""Paper sizes (short side, long side) in millimetres (ISO 216)."""
PNG_DPI = 200
MM_PER_INCH = 25.4
PT_PER_MM = 72 / MM_PER_INCH
MARGIN_MM = 10.0
PALETTE = ("#fbb4ae", "#b3cde3", "#ccebc5", "#decbe4", "#fed9a6", "#ffffcc", "#e5d8bd", "#fddaec")
"""Fills of neighbouring grids (ColorBrewer Pastel1): light enough for black labels and pencil notes."""
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
                "Source Han Sans SC", "SimHei", "Microsoft YaHei", "PingFang SC")
NICE_LENGTHS_M = (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000)

TEXT = {
    "title": {"zh": "{name} 网格划分图", "en": "Grids of {name}"},
    "subtitle": {"zh": "{territory} · 第 {version} 版{status} · {grids} 个网格 · {households} 户",
                 "en": "{territory} · plan version {version}{status} · {grids} grids · {households} households"},
    "draft": {"zh": "（草案）", "en": " (draft)"},
    "code": {"zh": "网格编码", "en": "Code"},
    "name": {"zh": "名称", "en": "Name"},
    "households": {"zh": "户数", "en": "Households"},
    "band": {"zh": "户数标准 {lo}–{hi}", "en": "Band {lo}–{hi}"},
    "worker": {"zh": "网格员", "en": "Worker"},
    "in_band": {"zh": "符合", "en": "in band"},
    "below": {"zh": "少 {n}", "en": "{n} below"},
    "above": {"zh": "多 {n}", "en": "{n} above"},
    "dedicated": dict(zip(("zh", "en"), GRID_KIND_NAMES[DEDICATED])),
    "unit_households": {"zh": "{n} 户", "en": "{n} hh"},
    "footer": {"zh": "gridmap 打印于 {day} · 坐标系 {crs} · 比例尺见图", "en": "Printed by gridmap on {day} · {crs} · see scale bar"},
    "micro": {"zh": "虚线：微网格", "en": "dashed: micro-grids"},
    "north": {"zh": "北", "en": "N"},
}


class WallMapError(Invalid):
    """A wall map that cannot be drawn (no grids, unknown paper or format, no CJK font)."""


@dataclass(frozen=True)
class WallMapSheet:
    """What goes on the sheet besides the grids (taken from a :class:`WallMapData`)."""

    community_name: str
    territory_name: str
    plan_version: int
    plan_status: str
    band: tuple[int, int]
    paper: str
    format: str
    lang: str
    printed_on: date

    @classmethod
    def of(cls, data: WallMapData, printed_on: date | None = None) -> "WallMapSheet":
        r = data.request
        return cls(data.community_name, data.place_name or data.plan.territory_name, data.plan.version,
                   data.plan.status, data.band, r.paper, r.format, r.lang, printed_on or date.today())


@dataclass(frozen=True)
class WallMap:
    """A printed sheet and what a download calls it."""

    content: bytes
    filename: str
    media_type: str
    plan: Plan
    grids: int


@dataclass(frozen=True)
class Label:
    """One grid's label on the map: where (map CRS) and what, at which size in points."""

    code: str
    text: str
    x: float
    y: float
    size_pt: float


def say(key: str, lang: str, **values) -> str:
    """A sheet text in ``lang`` (zh or en)."""
    return TEXT[key]["en" if lang == "en" else "zh"].format(**values)


def neighbour_colours(geoms: np.ndarray) -> np.ndarray:
    """Index into :data:`PALETTE` for each polygon so that no two touching polygons share one
    (greedy, most-connected first; grids of one community need four or five)."""
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left != right
    neighbours: list[set[int]] = [set() for _ in range(len(geoms))]
    for a, b in zip(left[keep], right[keep]):
        neighbours[a].add(int(b))
    colours = np.full(len(geoms), -1)
    for i in sorted(range(len(geoms)), key=lambda k: -len(neighbours[k])):
        used = {colours[n] for n in neighbours[i]}
        colours[i] = next(c for c in range(len(geoms) + 1) if c not in used)
    return colours % len(PALETTE)


def band_status(households: float, kind: str, band: tuple[int, int], lang: str) -> str:
    """``in band`` / ``N below`` / ``N above`` (dedicated grids are outside the rule)."""
    if kind == "dedicated":
        return say("dedicated", lang)
    lo, hi = band
    if households < lo:
        return say("below", lang, n=int(round(lo - households)))
    if households > hi:
        return say("above", lang, n=int(round(households - hi)))
    return say("in_band", lang)


def sheet_size_mm(paper: str, extent: tuple[float, float, float, float]) -> tuple[float, float]:
    """(width, height) of the sheet: landscape when the community is wider than tall."""
    if paper not in PAPERS_MM:
        raise WallMapError(f"unknown paper {paper!r}; choose from {', '.join(PAPERS_MM)}",
                           f"纸张 {paper!r} 不支持，可选 {'、'.join(PAPERS_MM)}")
    short, long = PAPERS_MM[paper]
    minx, miny, maxx, maxy = extent
    return (long, short) if (maxx - minx) > (maxy - miny) else (short, long)


def nice_scale_length(map_width_m: float) -> int:
    """A round length for the scale bar, about a fifth of the map's width."""
    target = map_width_m / 5
    return max((n for n in NICE_LENGTHS_M if n <= target), default=NICE_LENGTHS_M[0])


def short_codes(codes: list[str], community_code: str) -> list[str]:
    """The grid codes as the map labels them: without the community's code in front (all grids on
    the sheet share it; the legend gives the full codes), else whole."""
    cut = len(community_code)
    return [c[cut:] if community_code and c.startswith(community_code) and len(c) > cut else c for c in codes]


def grid_labels(grids: gpd.GeoDataFrame, mm_per_m: float, lang: str, community_code: str = "") -> list[Label]:
    """A label per grid at the centre of the largest circle inside it (so labels of neighbours do
    not collide), sized to fit that circle on paper (4–11 pt)."""
    circles = shapely.maximum_inscribed_circle(grids.geometry.values, tolerance=0.5)
    centres = shapely.get_point(circles, 0)
    radii_mm = shapely.length(circles) * mm_per_m
    codes = short_codes([str(c) for c in grids["grid_code"]], community_code)
    labels = []
    for code, households, centre, radius_mm in zip(codes, grids["households"], centres, radii_mm):
        second = say("unit_households", lang, n=int(round(households or 0)))
        width_chars = max(len(code), len(second), 3) * 0.62
        size_mm = min(2 * radius_mm * 0.9 / width_chars, 2 * radius_mm * 0.9 / 2.6)
        size = max(4.0, min(11.0, size_mm * PT_PER_MM))
        labels.append(Label(code, f"{code}\n{second}", shapely.get_x(centre), shapely.get_y(centre), size))
    return labels


MICRO_LABEL_PT = 5.0
"""A micro-grid's label: the last digits of its code, small, where its area has room for them."""


def microgrid_labels(microgrids: gpd.GeoDataFrame, mm_per_m: float) -> list[Label]:
    """Each micro-grid's short code (the digits below its grid's code, ``003``) at a point inside
    it, where the micro-grid is at least about three labels wide on the sheet (map CRS in metres);
    a code that is not below a grid's (no ``grid_code`` prefix) is shown whole."""
    out = []
    if "microgrid_code" not in microgrids:
        return out
    area_mm2 = microgrids.geometry.area.to_numpy() * mm_per_m ** 2
    points = microgrids.geometry.representative_point()
    for code, grid, area, point in zip(microgrids["microgrid_code"].astype(str),
                                       microgrids.get("grid_code", pd.Series([""] * len(microgrids))).astype(str),
                                       area_mm2, points):
        short = code[len(grid):] if grid and code.startswith(grid) and len(code) > len(grid) else code
        room = (MICRO_LABEL_PT / PT_PER_MM) * 0.6 * len(short)  # the label's width, mm
        if area >= 9 * room * room:
            out.append(Label(code, short, point.x, point.y, MICRO_LABEL_PT))
    return out


def _font_family() -> list[str]:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    found = [f for f in CJK_FAMILIES if f in installed]
    if not found:
        raise WallMapError("no CJK font is installed for the wall map (Debian: apt install fonts-noto-cjk)",
                           "未安装中文字体，无法打印网格图（Debian：apt install fonts-noto-cjk）")
    return found + ["DejaVu Sans"]


LEGEND_COLUMNS = (("code", 0.30), ("name", 0.24), ("households", 0.11), ("band", 0.21), ("worker", 0.14))
"""The legend's columns and their shares of a legend column's width (after the swatch)."""
LEGEND_COLUMN_MAX_MM = 120.0
"""A legend column is at most this wide (a portrait sheet's one column would spread the row apart)."""


def legend_table(grids: gpd.GeoDataFrame, sheet: WallMapSheet) -> tuple[list[str], list[float], list[tuple[str, ...]]]:
    """The legend's header, column widths and one row per grid (code, name, households, band
    status, worker), whole (the drawing fits each to its column: :func:`fitted`); the name and
    worker columns are left out when no grid has one."""
    names = grids["grid_name"].fillna("").astype(str)
    workers = grids["worker"].fillna("").astype(str)
    values = {"code": grids["grid_code"].astype(str).tolist(), "name": names.tolist(),
              "households": [f"{int(round(h))}" for h in grids["households"].fillna(0)],
              "band": [band_status(h, k, sheet.band, sheet.lang) for h, k in zip(grids["households"].fillna(0),
                                                                                 grids["kind"])],
              "worker": workers.tolist()}
    keep = [(key, share) for key, share in LEGEND_COLUMNS
            if not (key == "name" and not names.str.len().any()) and not (key == "worker" and not workers.str.len().any())]
    total = sum(share for _, share in keep)
    header = [say(key, sheet.lang, lo=sheet.band[0], hi=sheet.band[1]) for key, _ in keep]
    rows = list(zip(*(values[key] for key, _ in keep)))
    return header, [share / total for _, share in keep], rows


def print_wall_map(engine: sa.Engine, request: WallMapRequest,
                   authorize: Callable[[sa.Connection, Plan], None] | None = None) -> WallMap:
    """Read what the community's sheet shows (``authorize(conn, plan)`` may refuse) and draw it."""
    data = gather(engine, request, authorize)
    media = "application/pdf" if request.format == "pdf" else "image/png"
    return WallMap(render(data), data.filename, media, data.plan, len(data.grids))


def render(data: WallMapData, printed_on: date | None = None) -> bytes:
    """The sheet as PDF or PNG bytes: the grids (grid_code, grid_name, kind, households, worker),
    the community's outline, and roads, water and micro-grids where there are any."""
    sheet = WallMapSheet.of(data, printed_on)
    grids, community, roads, water = data.grids, data.outline, data.roads, data.water
    microgrids = data.microgrids if len(data.microgrids) else None
    if grids.empty:
        raise WallMapError("the plan has no grids in this community", "该方案在此社区内没有网格")
    if sheet.format not in FORMATS:
        raise WallMapError(f"unknown format {sheet.format!r}; choose from {', '.join(FORMATS)}",
                           f"格式 {sheet.format!r} 不支持，可选 {'、'.join(FORMATS)}")
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrow, Rectangle

    crs = metric_crs_for_frame(grids)
    grids_m = grids.to_crs(crs).reset_index(drop=True)
    outline_m = community.to_crs(crs)
    extent = tuple(grids_m.total_bounds)
    width_mm, height_mm = sheet_size_mm(sheet.paper, extent)
    landscape = width_mm > height_mm
    header_mm, footer_mm = 22.0, 8.0
    legend_share = 0.30
    body_w = width_mm - 2 * MARGIN_MM
    body_h = height_mm - 2 * MARGIN_MM - header_mm - footer_mm
    if landscape:
        map_box = (MARGIN_MM, MARGIN_MM + footer_mm, body_w * (1 - legend_share) - 4, body_h)
        legend_box = (MARGIN_MM + body_w * (1 - legend_share), MARGIN_MM + footer_mm, body_w * legend_share, body_h)
    else:
        legend_h = body_h * legend_share
        map_box = (MARGIN_MM, MARGIN_MM + footer_mm + legend_h + 4, body_w, body_h - legend_h - 4)
        legend_box = (MARGIN_MM, MARGIN_MM + footer_mm, body_w, legend_h)

    fig = Figure(figsize=(width_mm / MM_PER_INCH, height_mm / MM_PER_INCH))
    family = _font_family()
    fig.set_layout_engine(None)

    def axes_at(box):
        x, y, w, h = box
        return fig.add_axes((x / width_mm, y / height_mm, w / width_mm, h / height_mm))

    ax = axes_at(map_box)
    ax.set_axis_off()
    ax.set_aspect("equal")
    minx, miny, maxx, maxy = extent
    pad = 0.04 * max(maxx - minx, maxy - miny, 1.0)
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    # fit the extent to the box's shape so that aspect "equal" keeps the box filled and the scale known
    box_ratio = map_box[2] / map_box[3]
    if (maxx - minx) / (maxy - miny) > box_ratio:
        extra = ((maxx - minx) / box_ratio - (maxy - miny)) / 2
        miny, maxy = miny - extra, maxy + extra
    else:
        extra = ((maxy - miny) * box_ratio - (maxx - minx)) / 2
        minx, maxx = minx - extra, maxx + extra
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)
    mm_per_m = map_box[2] / (maxx - minx)

    colours = neighbour_colours(grids_m.geometry.values)
    grids_m.plot(ax=ax, color=[PALETTE[c] for c in colours], edgecolor="#333333", linewidth=0.8, zorder=1)
    clip = shapely.box(minx, miny, maxx, maxy)
    if water is not None and not water.empty:
        w = water.to_crs(crs).clip(clip)
        polys = w[w.geom_type.isin(["Polygon", "MultiPolygon"])]
        lines = w[~w.geom_type.isin(["Polygon", "MultiPolygon"])]
        if not polys.empty:
            polys.plot(ax=ax, color="#a6cee3", alpha=0.7, linewidth=0, zorder=2)
        if not lines.empty:
            lines.plot(ax=ax, color="#4a90c2", linewidth=0.8, zorder=2)
    if roads is not None and not roads.empty:
        shown = roads.to_crs(crs).clip(clip)
        inside = shown.clip(outline_m)
        if len(shown):
            shown.plot(ax=ax, color="#d0d0d0", linewidth=0.3, zorder=2)  # beyond the community: faint
        if len(inside):
            inside.plot(ax=ax, color="#7a7a7a", linewidth=0.4, zorder=2)
    buildings = data.buildings
    if buildings is not None and not buildings.empty:  # the houses, inside the community only
        houses = buildings.to_crs(crs).clip(outline_m)
        houses = houses[houses.geom_type.isin(["Polygon", "MultiPolygon"])]
        if len(houses):
            houses.plot(ax=ax, color="#8c8c8c", linewidth=0, zorder=2.5)
    if microgrids is not None and not microgrids.empty:
        micro_m = microgrids.to_crs(crs)
        micro_m.boundary.plot(ax=ax, color="#555555", linewidth=0.3, linestyle=(0, (2, 2)), zorder=3)
        for label in microgrid_labels(micro_m, mm_per_m):
            ax.text(label.x, label.y, label.text, ha="center", va="center", fontsize=label.size_pt, family=family,
                    color="#444444", zorder=3.5)
    grids_m.boundary.plot(ax=ax, color="#333333", linewidth=0.8, zorder=4)
    outline_m.boundary.plot(ax=ax, color="#b2182b", linewidth=2.0, zorder=5)
    for label in grid_labels(grids_m, mm_per_m, sheet.lang, data.request.community):
        ax.text(label.x, label.y, label.text, ha="center", va="center", fontsize=label.size_pt, family=family,
                zorder=6, linespacing=1.1,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.6, "linewidth": 0})

    # scale bar (bottom left) and north arrow (top right), in map units
    length = nice_scale_length(maxx - minx)
    x0, y0 = minx + 0.04 * (maxx - minx), miny + 0.04 * (maxy - miny)
    bar_h = 0.008 * (maxy - miny)
    for i in range(2):
        ax.add_patch(Rectangle((x0 + i * length / 2, y0), length / 2, bar_h, facecolor="#000000" if i == 0 else "white",
                               edgecolor="#000000", linewidth=0.6, zorder=7))
    ax.text(x0, y0 + 2.2 * bar_h, "0", fontsize=6, ha="center", family=family, zorder=7)
    ax.text(x0 + length, y0 + 2.2 * bar_h, f"{length} m" if length < 1000 else f"{length / 1000:g} km", fontsize=6,
            ha="center", family=family, zorder=7)
    nx, ny = maxx - 0.05 * (maxx - minx), maxy - 0.12 * (maxy - miny)
    arrow = 0.06 * (maxy - miny)
    ax.add_patch(FancyArrow(nx, ny, 0, arrow, width=arrow * 0.12, head_width=arrow * 0.35, head_length=arrow * 0.35,
                            length_includes_head=True, color="#000000", zorder=7))
    ax.text(nx, ny + arrow * 1.15, say("north", sheet.lang), ha="center", va="bottom", fontsize=8, family=family,
            zorder=7)

    # header, footer
    households = int(round(grids["households"].fillna(0).sum()))
    top = 1 - MARGIN_MM / height_mm
    fig.text(MARGIN_MM / width_mm, top, say("title", sheet.lang, name=sheet.community_name), va="top", fontsize=18,
             family=family, weight="bold")
    status = say("draft", sheet.lang) if sheet.plan_status == "draft" else ""
    fig.text(MARGIN_MM / width_mm, top - 10 / height_mm,
             say("subtitle", sheet.lang, territory=sheet.territory_name, version=sheet.plan_version, status=status,
                 grids=len(grids), households=households), va="top", fontsize=9, family=family, color="#333333")
    fig.text(MARGIN_MM / width_mm, MARGIN_MM / height_mm,
             say("footer", sheet.lang, day=sheet.printed_on.isoformat(),
                 crs=crs.name if sheet.lang == "en" else crs_name_zh(crs.name)),
             fontsize=6, family=family, color="#555555")

    _draw_legend(fig, axes_at(legend_box), grids, colours, sheet, family, micro=microgrids is not None
                 and not microgrids.empty, legend_box=legend_box)
    out = io.BytesIO()
    fig.savefig(out, format=sheet.format, dpi=PNG_DPI if sheet.format == "png" else 72,
                metadata={"Title": say("title", sheet.lang, name=sheet.community_name), "Creator": "gridmap"}
                if sheet.format == "pdf" else {"Title": say("title", sheet.lang, name=sheet.community_name)})
    return out.getvalue()


def _draw_legend(fig, ax, grids: gpd.GeoDataFrame, colours: np.ndarray, sheet: WallMapSheet, family: list[str], *,
                 micro: bool, legend_box: tuple[float, float, float, float]) -> None:
    """The table of grids: a colour swatch, code, name, households, band status and worker per row,
    in as many columns as the box needs, the font shrunk (down to 4.5 pt) to fit."""
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    lang = sheet.lang
    header, shares, rows = legend_table(grids, sheet)
    keys = [key for key, _ in LEGEND_COLUMNS if say(key, lang, lo=sheet.band[0], hi=sheet.band[1]) in header]
    _, _, box_w_mm, box_h_mm = legend_box
    size_pt = 7.5
    while True:
        row_mm = size_pt / PT_PER_MM * 1.5
        per_column = max(1, int((box_h_mm - 2 * row_mm) // row_mm))
        columns = math.ceil(len(rows) / per_column)
        column_w_mm = box_w_mm / columns
        if column_w_mm >= size_pt / PT_PER_MM * 8 * len(shares) or size_pt <= 4.5:
            break
        size_pt -= 0.5
    widths = np.array([0.06] + [0.94 * share for share in shares])  # the swatch, then the table's columns
    row_h = row_mm / box_h_mm
    span = min(1 / columns, LEGEND_COLUMN_MAX_MM / box_w_mm)  # a column's share of the box, at most 120 mm
    for column in range(columns):
        xs = column * span + np.concatenate([[0], np.cumsum(widths[:-1])]) * span
        y = 1 - row_h
        for text, x in zip(header, xs[1:]):
            ax.text(x, y, text, fontsize=size_pt, family=family, weight="bold", va="center")
        room_em = widths[1:] * span * box_w_mm / (size_pt / PT_PER_MM) - 0.5  # each column's width, less a gap
        for i in range(column * per_column, min(len(rows), (column + 1) * per_column)):
            y -= row_h
            ax.add_patch(_swatch(xs[0], y - row_h * 0.35, widths[0] * span * 0.8, row_h * 0.7, PALETTE[colours[i]]))
            for text, x, room, key in zip(rows[i], xs[1:], room_em, keys):
                ax.text(x, y, fitted(text, room) if key in ("name", "worker") else text,  # never a code or figure
                        fontsize=size_pt, family=family, va="center")
    if micro:
        ax.text(0, 0, say("micro", lang), fontsize=size_pt, family=family, va="bottom", color="#555555")


def text_width_em(text: str) -> float:
    """About how wide ``text`` prints, in ems: a Chinese character (or a full-width one) one em,
    others little more than half."""
    return sum(1.0 if unicodedata.east_asian_width(c) in ("W", "F") else 0.6 for c in text)


def fitted(text: str, room_em: float) -> str:
    """``text`` cut to ``room_em`` ems, ending in "…" where cut (a long dedicated grid's name ran
    into the households column: 成都市棕北中学5校区0…)."""
    if text_width_em(text) <= room_em:
        return text
    out = ""
    for c in text:
        if text_width_em(out + c) + 1.0 > room_em:
            break
        out += c
    return out + "…"


def _swatch(x: float, y: float, w: float, h: float, colour: str):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, facecolor=colour, edgecolor="#333333", linewidth=0.4)


__all__ = ["PAPERS_MM", "WallMapError", "WallMapSheet", "WallMap", "Label", "print_wall_map", "render", "neighbour_colours",
           "grid_labels", "short_codes", "band_status", "legend_table", "sheet_size_mm", "nice_scale_length"]
