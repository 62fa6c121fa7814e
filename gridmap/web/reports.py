"""The partition report a planner looks at: a folium map of grids coloured by households (flagged
grids outlined), a histogram of households per grid against the band, and the summary.

Offline: folium's CDN links are replaced by the vendored Leaflet, either as /static URLs (served
by the app) or inlined as data: URIs (a standalone HTML file that works with no network).
"""

from __future__ import annotations

import base64
import html
import json

import folium
from branca.element import MacroElement, Template
import geopandas as gpd
import numpy as np
import pandas as pd

from gridmap.geo import kinds
from gridmap.geo.report import histogram
from gridmap.web import STATIC

LEAFLET = STATIC / "vendor" / "leaflet"
BELOW, INSIDE, ABOVE, DEDICATED, FLAGGED = "#6baed6", "#31a354", "#e6550d", "#969696", "#d7191c"


class _MetricScale(MacroElement):
    """Leaflet's scale bar in metres only (folium's ``control_scale`` adds miles beside them)."""

    _template = Template("{% macro script(this, kwargs) %}L.control.scale({metric: true, imperial: false})"
                         ".addTo({{ this._parent.get_name() }});{% endmacro %}")


def offline_map(bounds, standalone: bool) -> folium.Map:
    """An empty folium map over ``bounds`` (minx, miny, maxx, maxy; lon/lat) with no basemap, the
    vendored Leaflet (:func:`_leaflet_assets`) and a scale bar in metres."""
    js, css = _leaflet_assets(standalone)
    minx, miny, maxx, maxy = bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], tiles=None, prefer_canvas=True,
                   control_scale=False)
    m.default_js = [("leaflet", js)]
    m.default_css = [("leaflet_css", css)]
    m.add_child(_MetricScale())
    return m


def _leaflet_assets(standalone: bool) -> tuple[str, str]:
    if not standalone:
        return "/static/vendor/leaflet/leaflet.js", "/static/vendor/leaflet/leaflet.css"
    js = base64.b64encode((LEAFLET / "leaflet.js").read_bytes()).decode()
    css = base64.b64encode((LEAFLET / "leaflet.css").read_bytes()).decode()
    return f"data:text/javascript;base64,{js}", f"data:text/css;base64,{css}"


def grid_colour(households: float, kind: str, lo: int, hi: int) -> str:
    if kind == kinds.DEDICATED:
        return DEDICATED
    if households < lo:
        return BELOW
    if households > hi:
        return ABOVE
    return INSIDE


TOOLTIP_LABELS = (("网格", "grid"), ("名称", "name"), ("类型", "kind"), ("场所类型", "site type"), ("户数", "households"),
                  ("紧凑度", "compactness"), ("问题", "flags"))
TOOLTIP_STYLE = "html:not([lang=en]) .en, html[lang=en] .zh {display:none}"
"""The map shows one language: Chinese unless its page says English (a map opened alone: Chinese)."""


def _both(zh: str, en: str) -> str:
    """A text of the map's tooltip in both languages, HTML-escaped (the tooltip writes it into the
    page as HTML, and a reason can quote a name); TOOLTIP_STYLE shows one."""
    return f'<span class="zh">{html.escape(str(zh))}</span><span class="en">{html.escape(str(en))}</span>'


def partition_map(grids: gpd.GeoDataFrame, flags: pd.DataFrame, lo: int, hi: int, *, standalone: bool = False,
                  basemap_url: str | None = None, basemap_attribution: str = "") -> folium.Map:
    """Grids coloured by households against [lo, hi]; flagged grids outlined in red."""
    frame = grids.to_crs(4326).copy()
    # every text of the tooltip in both languages, one shown at a time: the page sets the map's
    # language (its iframe's <html lang>, see i18n.js), and TOOLTIP_STYLE hides the other
    if "reason_zh" not in flags:
        flags = flags.assign(reason_zh=flags["reason"] if "reason" in flags else "")
    if len(flags):
        reasons = flags.groupby("grid_code").apply(
            lambda r: _both("; ".join(r["reason_zh"].fillna(r["reason"]).astype(str)), "; ".join(r["reason"].astype(str))))
    else:
        reasons = pd.Series(dtype=str)
    frame["flags"] = frame["grid_code"].map(reasons).astype(object).fillna("")  # (no flags: NaN floats)
    frame["colour"] = [grid_colour(h, k, lo, hi) for h, k in zip(frame["households"], frame["kind"])]
    minx, miny, maxx, maxy = frame.total_bounds
    m = offline_map(frame.total_bounds, standalone)
    m.get_root().header.add_child(folium.Element(f"<style>{TOOLTIP_STYLE}</style>"))
    if basemap_url:
        folium.TileLayer(basemap_url, attr=basemap_attribution or " ").add_to(m)
    # a dedicated grid is told by its institution's name and type (:mod:`gridmap.geo.grid_names`)
    frame["grid_name"] = (frame["grid_name"].astype(object).where(frame["grid_name"].notna(), "").map(str).map(html.escape)
                          if "grid_name" in frame else "")
    site_types = frame["site_type"] if "site_type" in frame else pd.Series(None, index=frame.index, dtype=object)
    frame["site"] = [_both(*_site_type_names(t)) if isinstance(t, str) and t else "" for t in site_types]
    frame["kind_name"] = [_both(*kinds.GRID_KIND_NAMES.get(k, (k, k))) for k in frame["kind"]]
    keep = ["grid_code", "grid_name", "community_code", "kind", "kind_name", "site", "households", "compactness",
            "flags", "colour", "geometry"]
    data = json.loads(frame[keep].assign(compactness=frame["compactness"].round(3)).to_json())
    folium.GeoJson(
        data, name="grids",
        style_function=lambda f: {
            "fillColor": f["properties"]["colour"], "fillOpacity": 0.55,
            "color": FLAGGED if f["properties"]["flags"] else "#333333",
            "weight": 3 if f["properties"]["flags"] else 0.8,
            "dashArray": "6 4" if f["properties"]["flags"] else None},
        tooltip=folium.GeoJsonTooltip(["grid_code", "grid_name", "kind_name", "site", "households", "compactness", "flags"],
                                      aliases=[_both(zh, en) for zh, en in TOOLTIP_LABELS]),
    ).add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    return m


def households_histogram_svg(households: np.ndarray, lo: int, hi: int, *, width: int = 640, height: int = 220,
                             bins: dict | None = None) -> str:
    """An SVG histogram of households per comprehensive grid, with the band shaded (the bins of
    the plan's report when given, else computed the same way)."""
    bins = bins or histogram(np.asarray(households, dtype=float), lo, hi)
    edges = np.asarray(bins["edges"], dtype=float)
    counts = np.asarray(bins["counts"], dtype=int)
    step = edges[1] - edges[0] if len(edges) > 1 else 5.0
    pad, plot_w, plot_h = 36, width - 46, height - 50
    sx = plot_w / edges[-1]
    sy = plot_h / max(counts.max() if len(counts) else 1, 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="户数分布 households per grid">',
             f'<rect x="{pad + lo * sx:.1f}" y="10" width="{(hi - lo) * sx:.1f}" height="{plot_h}" fill="#e5f5e0"/>']
    for left, count in zip(edges[:-1], counts):
        colour = BELOW if left + step <= lo else ABOVE if left >= hi else INSIDE
        h = count * sy
        parts.append(f'<rect class="bar" x="{pad + left * sx:.1f}" y="{10 + plot_h - h:.1f}" '
                     f'width="{max(step * sx - 1, 1):.1f}" height="{h:.1f}" fill="{colour}"><title>'
                     f'{left:.0f}–{left + step:.0f}: {count}</title></rect>')
    parts.append(f'<line x1="{pad}" y1="{10 + plot_h}" x2="{pad + plot_w}" y2="{10 + plot_h}" stroke="#333"/>')
    tick_step = next(t for t in (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10**9) if edges[-1] / t <= 8)
    for tick in np.arange(0, edges[-1] + 1e-9, tick_step):
        parts.append(f'<text x="{pad + tick * sx:.1f}" y="{height - 22}" font-size="11" text-anchor="middle">{tick:.0f}</text>')
    parts.append(f'<text x="{pad + plot_w / 2:.0f}" y="{height - 5}" font-size="12" text-anchor="middle" '
                 f'data-zh="每个网格的户数（区间 {lo}–{hi}）" data-en="households per grid (band {lo}–{hi})">'
                 f'每个网格的户数（区间 {lo}–{hi}）</text>')
    parts.append(f'<text x="4" y="16" font-size="11">{int(counts.max() if len(counts) else 0)}</text></svg>')
    return "".join(parts)


SUMMARY_LABELS = {
    "units": ("单元数", "units"), "grids": ("网格数", "grids"), "comprehensive": ("综合网格", "comprehensive grids"),
    "dedicated": ("专属网格", "dedicated grids"), "dedicated_share": ("专属网格占比", "share of grids dedicated"),
    "dedicated_by_type": ("专属网格（按类型）", "dedicated grids by site type"),
    "folded_sites": ("并入综合网格的场所", "sites folded into comprehensive grids"),
    "smallest_unit_m2": ("最小单元面积（平方米）", "smallest unit (m²)"),
    "island_grids": ("因社区不相连而分块的网格", "grids in pieces because their community is in pieces (islands)"),
    "min_households": ("户数下限", "minimum households"),
    "max_households": ("户数上限", "maximum households"), "in_band": ("区间内网格", "grids in the band"),
    "in_band_share": ("区间内占比", "share in the band"), "households_min": ("最少户数", "fewest households"),
    "households_median": ("户数中位数", "median households"), "households_max": ("最多户数", "most households"),
    "mean_compactness": ("平均紧凑度", "mean compactness"), "not_contiguous": ("不连续网格", "grids not contiguous"),
    "proven_infeasible": ("已证明不可达", "proven infeasible"), "seed": ("随机种子", "seed"),
    "flags": ("问题计数", "flags by kind"),
}
FLAG_NAMES = {"infeasible_band": ("无法达到户数区间", "infeasible band"), "below_min": ("低于下限", "below minimum"),
              "above_max": ("高于上限", "above maximum"), "not_contiguous": ("不连续", "not contiguous"),
              "island": ("社区岛屿或飞地", "island or exclave of its community")}


def _said(zh: str, en: str, tag: str = "span", attrs: str = "") -> str:
    """An element in the page's language: Chinese first, English on the switch (gridmap's i18n.js
    swaps the text of every element carrying data-zh/data-en)."""
    zh, en = str(zh), str(en)
    return (f'<{tag}{attrs} data-zh="{html.escape(zh, quote=True)}" data-en="{html.escape(en, quote=True)}">'
            f"{html.escape(zh)}</{tag}>")


def _i18n_script(standalone: bool) -> str:
    """The language switch's script: the app's own, or inlined in a file that must work alone."""
    if not standalone:
        return '<script src="/static/js/i18n.js"></script>'
    return "<script>" + (STATIC / "js" / "i18n.js").read_text(encoding="utf-8").replace("</", "<\\/") + "</script>"


# the page's look: gridmap's header bar, a page that scrolls, at 390 px as well as on a desk
PAGE_STYLE = """*{box-sizing:border-box}
body{font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",system-ui,sans-serif;margin:0}
header{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:.3rem .6rem;padding:.4rem 1rem;
background:#1f4e79;color:#fff;min-height:3rem}
header h1{font-size:1.2rem;margin:0}header h1 a{color:#fff;text-decoration:none}
header nav{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center}
header nav a,header nav button{color:#fff;background:none;border:1px solid #fff8;border-radius:3px;padding:.2rem .6rem;
cursor:pointer;text-decoration:none;font-size:.9rem;font-family:inherit}
main{margin:1rem 2rem}@media (max-width:700px){main{margin:.6rem}header{padding:.3rem .5rem}header h1{font-size:1rem}}
h2.plan-title{font-size:1.3rem}
table{border-collapse:collapse;font-size:.85rem}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}
.legend span.swatch{display:inline-block;width:1rem;height:1rem;vertical-align:middle;margin:0 .3rem 0 1rem}
svg{max-width:100%;height:auto}
form#login{max-width:20rem}form#login label{display:block;margin:.4rem 0}form#login input{width:100%;padding:.3rem}
#message.error{color:#922}"""


def _header(heading_zh: str, heading_en: str, nav: str, *, standalone: bool) -> str:
    home = (_said("网格地图", "gridmap") if standalone
            else f'<a href="/">{_said("网格地图", "gridmap")}</a>')
    return (f"<header><h1>{home} · {_said(heading_zh, heading_en)}</h1>"
            f'<nav>{nav}<button id="lang-switch" type="button" aria-label="language">English</button></nav></header>')


def _planner_link(plan_id, territory) -> str:
    if plan_id is None:
        return ""
    query = (f"territory={html.escape(str(territory))}&amp;" if territory else "") + f"plan={int(plan_id)}"
    return f'<a id="to-planner" href="/planner?{query}">{_said("返回网格规划", "Back to the planner")}</a>'


def refusal_page(status: int, plan_id: int) -> str:
    """What a browser gets instead of a report it may not read: a page in the chosen language with
    the app's sign-in form (the component the other pages use). A planner signed in on another
    page of this tab has the token in session storage: the page asks again with it at once; one who
    signs in here gets the report here, with no detour through the planner."""
    from gridmap.api.pages import TEMPLATES

    if status == 404:
        zh, en = f"没有编号为 {plan_id} 的方案。", f"There is no plan {plan_id}."
    elif status == 401:
        zh, en = "此方案是草稿，只有登录的规划人员可以查看。", "This plan is a draft: only signed-in planners may read it."
    else:
        zh, en = "您的账号无权查看此方案。", "Your account may not read this plan."
    form = "" if status == 404 else str(TEMPLATES.env.get_template("_sign_in.html").module.sign_in_form())
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>网格方案报告 · Plan report</title>
<style>{PAGE_STYLE}</style></head>
<body data-status="{status}" data-plan="{int(plan_id)}">{_header("网格方案报告", "Plan report", _planner_link(plan_id, None), standalone=False)}
<main><p id="refusal">{_said(zh, en)}</p>
{form}<p id="message" role="status"></p></main>
{_i18n_script(False)}<script src="/static/js/plan-report.js"></script></body></html>"""


def _profile_section(report: dict, lo: int, hi: int) -> str:
    """The rules the plan was made with (its profile), when the report names them."""
    pr = report.get("profile")
    if not pr:
        return ""
    band, micro = pr.get("band") or [lo, hi], pr.get("micro_band") or ["—", "—"]
    name, scheme = html.escape(str(pr.get("name", ""))), str(pr.get("code_scheme", ""))
    return (f'<section id="profile"><h2>{_said("规则", "Rules")}</h2><p><strong>{name}</strong> · '
            f'{_said(pr.get("title_zh", "") or pr.get("title_en", ""), pr.get("title_en", "") or pr.get("title_zh", ""))}</p>'
            "<p>" + _said(f"每个网格 {band[0]}–{band[1]} 户，微网格 {micro[0]}–{micro[1]} 户，网格编码 {scheme}",
                          f"{band[0]}–{band[1]} households per grid, {micro[0]}–{micro[1]} per micro-grid, "
                          f"grid codes {scheme}") + "</p></section>")


def _merge_section(report: dict) -> str:
    """A merged plan's (多网合一) summary, conflict counts and downloads."""
    if "merge" not in report:
        return ""
    m = report["merge"]
    conflict_rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{v}</td></tr>" for k, v in m.get("conflicts", {}).items())
    plan_id = report.get("plan_id")
    links = (f'<p><a href="/api/plans/{plan_id}/conflicts?format=gpkg">conflicts.gpkg</a> · '
             f'<a href="/api/plans/{plan_id}/conflicts?format=csv">conflicts.csv</a> · '
             f'<a href="/api/plans/{plan_id}/crosswalk?format=csv">crosswalk.csv</a> · '
             f'<a href="/api/plans/{plan_id}/crosswalk?format=gpkg">crosswalk.gpkg</a></p>') if plan_id else ""
    text_en = m.get("text", "")
    try:
        text_zh = (f"{m['old_grids']} 个网格（{m['departments']} 类）→ {m['unified_grids']} 个统一网格；每名网格员职责 "
                   f"{m['duties_min']}/{float(m['duties_median']):.0f}/{m['duties_max']} 项（最少/中位/最多）")
    except (KeyError, TypeError, ValueError):
        text_zh = text_en
    return (f'<section id="merge"><h2>{_said("多网合一", "Merge")}</h2><p>{_said(text_zh, text_en)}</p>'
            f'<table><tr><th>{_said("冲突", "conflict")}</th><th>{_said("数量", "count")}</th></tr>{conflict_rows}</table>'
            f"{links}</section>")


def _site_type_names(raw: object) -> tuple[str, str]:
    from gridmap.geo.site_types import VOCABULARY

    known = VOCABULARY.get(str(raw).strip().lower()) if raw is not None else None
    return (known.zh, known.en) if known is not None else (str(raw), str(raw))


def partition_report_html(grids: gpd.GeoDataFrame, report: dict, flags: pd.DataFrame, *, title: str | tuple[str, str],
                          standalone: bool = False, basemap_url: str | None = None,
                          basemap_attribution: str = "", territory: str | None = None) -> str:
    """A full HTML page: summary, histogram, map and the flag list, in the reader's language
    (Chinese first, the same switch as the app's pages; ``title`` is one text or (Chinese,
    English)); served by the app, a link back to the planner."""
    s = report["summary"]
    lo, hi = int(s["min_households"]), int(s["max_households"])
    title_zh, title_en = (title, title) if isinstance(title, str) else title
    m = partition_map(grids, flags, lo, hi, standalone=standalone, basemap_url=basemap_url,
                      basemap_attribution=basemap_attribution)
    map_html = (f'<iframe title="map" style="width:100%;height:70vh;border:1px solid #ccc" '
                f'srcdoc="{html.escape(m.get_root().render(), quote=True)}"></iframe>')
    comp = grids[grids["kind"] == kinds.COMPREHENSIVE]
    hist = households_histogram_svg(comp["households"].to_numpy(), lo, hi, bins=report.get("histogram"))
    if "reason_zh" not in flags:
        flags = flags.assign(reason_zh="")
    rows = "".join(f"<tr><td><code>{html.escape(str(r.grid_code))}</code></td>"
                   f"<td>{_said(*FLAG_NAMES.get(r.flag, (r.flag, r.flag)))}</td>"
                   f"<td>{_said(r.reason_zh or r.reason, r.reason)}</td></tr>"
                   for r in flags.itertuples())

    def shown(value) -> tuple[str, str]:
        if isinstance(value, dict):
            names = [FLAG_NAMES.get(k) or _site_type_names(k) for k in value]
            return (", ".join(f"{zh}: {v}" for (zh, _), v in zip(names, value.values())) or "—",
                    ", ".join(f"{en}: {v}" for (_, en), v in zip(names, value.values())) or "—")
        if isinstance(value, float):  # 384, not 384.000; 0.905 stays
            text = f"{value:.3f}".rstrip("0").rstrip(".")
            return text, text
        return str(value), str(value)

    summary_rows = "".join(f"<tr><th>{_said(*SUMMARY_LABELS.get(k, (k, k)))}</th>"
                           f"<td>{_said(*shown(v))}</td></tr>" for k, v in s.items())
    profile_html, merge_html = _profile_section(report, lo, hi), _merge_section(report)
    nav = "" if standalone else _planner_link(report.get("plan_id"), territory)
    legend = "".join(f'<span class="swatch" style="{style}"></span>{_said(zh, en)}' for style, zh, en in (
        (f"background:{BELOW}", f"低于下限 {lo}", f"below {lo}"), (f"background:{INSIDE}", "区间内", "in band"),
        (f"background:{ABOVE}", f"高于上限 {hi}", f"above {hi}"), (f"background:{DEDICATED}", "专属网格", "dedicated"),
        (f"border:2px dashed {FLAGGED}", "有问题", "flagged")))
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title_zh if title_zh == title_en else f"{title_zh} · {title_en}")}</title>
<style>{PAGE_STYLE}</style></head>
<body>{_header("网格方案报告", "Plan report", nav, standalone=standalone)}
<main><h2 class="plan-title" id="title">{_said(title_zh, title_en)}</h2>
<p class="legend">{legend}</p>
{merge_html}<section id="map">{map_html}</section>
<section id="histogram"><h2>{_said("户数分布", "Households per grid")}</h2>{hist}</section>
<section id="summary"><h2>{_said("概况", "Summary")}</h2><table>{summary_rows}</table></section>
{profile_html}<section id="flags"><h2>{_said(f"问题清单（{len(flags)}）", f"Flags ({len(flags)})")}</h2><table><tr>
<th>{_said("网格", "grid")}</th><th>{_said("问题", "flag")}</th><th>{_said("原因", "reason")}</th></tr>{rows}</table></section>
</main>{_i18n_script(standalone)}
</body></html>"""
