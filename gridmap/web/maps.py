"""Folium map builders for stations and incidents, shared by the notebook API and the pages the
app serves (``/maps/stations``, ``/maps/incidents``). Offline like the reports: Leaflet and
leaflet.heat come from the vendored copies (as /static URLs, or inlined for a standalone file).

Inputs are plain GeoDataFrames / aggregates, so a notebook can build the same maps from
``gm.coverage(...)`` or its own frames.
"""

from __future__ import annotations

import base64
import html
import json

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium import plugins

from gridmap.web import STATIC
from gridmap.web.reports import offline_map

VENDOR = STATIC / "vendor"
TYPE_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
                "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6", "#ff7f00"]
RAMP = ["#fff5eb", "#fdd0a2", "#fdae6b", "#fd8d3c", "#e6550d", "#a63603"]
METRIC_NAMES = {"per_1000_households": ("每千户事件数", "incidents per 1,000 households"),
                "overdue_rate": ("超期率", "overdue rate"), "median_hours": ("处置中位时长（小时）", "median handling hours")}


def _base(bounds, standalone: bool) -> folium.Map:
    minx, miny, maxx, maxy = bounds
    m = offline_map(bounds, standalone)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    return m


def _legend(m: folium.Map, title: str, rows: list[tuple[str, str]]) -> None:
    items = "".join(f'<div><span style="display:inline-block;width:12px;height:12px;background:{c};'
                    f'margin-right:4px"></span>{label}</div>' for c, label in rows)
    m.get_root().html.add_child(folium.Element(
        f'<div class="gridmap-legend" style="position:fixed;bottom:28px;right:12px;z-index:1000;background:#fffe;'
        f'padding:6px 8px;font:12px sans-serif;border-radius:4px"><b>{title}</b>{items}</div>'))


DISPLAY_DEGREES = 1e-6
"""Coordinates drawn on a page are rounded to this (about 0.1 m): a map needs no more, and
full doubles made the schools map 40% larger, every byte of it written, compressed and read."""


def _features(frame: gpd.GeoDataFrame, columns: list[str]) -> dict:
    """``columns`` of ``frame`` (lon/lat) as a GeoJSON FeatureCollection dict, coordinates rounded
    to :data:`DISPLAY_DEGREES` for drawing only, which folium embeds as it is (a GeoJSON string it
    would parse again: on Reykjavík's schools map the string and its parsing were half the page's
    time). Text is HTML-escaped: folium's tooltips write it into the page as HTML, and a station's
    name is whatever its importer typed."""
    decimals = round(-np.log10(DISPLAY_DEGREES))
    shown = frame[[*columns, frame.geometry.name]].copy()
    for column in columns:
        if shown[column].dtype == object or pd.api.types.is_string_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: html.escape(v) if isinstance(v, str) else v)
    shown[frame.geometry.name] = shapely.transform(np.asarray(frame.geometry.values, dtype=object),
                                                   lambda xy: np.round(xy, decimals))
    return gpd.GeoDataFrame(shown, geometry=frame.geometry.name, crs=frame.crs).to_geo_dict(drop_id=True)


def stations_map(grids: gpd.GeoDataFrame, stations: gpd.GeoDataFrame, service_areas: gpd.GeoDataFrame | None = None,
                 *, type_names: dict[str, tuple[str, str]] | None = None, standalone: bool = False) -> folium.Map:
    """Grids, stations by type and their walking service areas, with a layer control and a legend
    (names in Chinese and English)."""
    type_names = type_names or {}
    frame = grids.to_crs(4326)
    m = _base(frame.total_bounds, standalone)
    folium.GeoJson(_features(frame, ["grid_code", "households"]), name="网格 Grids",
                   style_function=lambda f: {"color": "#333", "weight": 1, "fillOpacity": 0.05},
                   tooltip=folium.GeoJsonTooltip(["grid_code", "households"], aliases=["网格 grid", "户数 households"])
                   ).add_to(m)
    kinds = sorted(stations["station_type"].unique()) if len(stations) else []
    colour = {k: TYPE_COLOURS[i % len(TYPE_COLOURS)] for i, k in enumerate(kinds)}
    if service_areas is not None and len(service_areas):
        areas = service_areas.to_crs(4326)
        folium.GeoJson(_features(areas, ["station_type", "name"]),
                       name="步行服务范围 Walking service areas",
                       style_function=lambda f: {"color": colour.get(f["properties"]["station_type"], "#888"),
                                                 "weight": 1, "fillOpacity": 0.12}).add_to(m)
    points = stations.to_crs(4326)
    for kind in kinds:  # one layer of circles a type (a marker element each took 0.3 s on Reykjavík's schools)
        zh, en = type_names.get(kind, (kind, kind))
        of_kind = points[points["station_type"] == kind]
        labelled = of_kind.assign(label=[f"{name} · {zh} {en}" for name in of_kind["name"]])
        folium.GeoJson(_features(labelled, ["label"]), name=f"{zh} {en}",
                       marker=folium.CircleMarker(radius=5, color=colour[kind], fill=True, fill_opacity=0.9),
                       tooltip=folium.GeoJsonTooltip(["label"], labels=False)).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    _legend(m, "服务站点 Stations", [(colour[k], " ".join(type_names.get(k, (k, k)))) for k in kinds] or
            [("#cccccc", "无站点：用 gridmap stations import 导入 None: import them with gridmap stations import")])
    return m


def incidents_map(choropleth: dict, heat_cells: list[list[float]], clusters: list[dict], *,
                  metric: str = "per_1000_households", monthly: dict[str, list[dict]] | None = None,
                  standalone: bool = False) -> folium.Map:
    """A per-grid choropleth of ``metric``, incident clusters, a heat map, and (with ``monthly``:
    month → clusters) a month slider that shows one month at a time."""
    frame = gpd.GeoDataFrame.from_features(choropleth["features"], crs=4326)
    m = _base(frame.total_bounds, standalone)
    values = sorted(v for v in frame[metric].dropna()) if metric in frame else []
    cuts = [values[min(len(values) - 1, int(q * len(values)))] for q in (0.2, 0.4, 0.6, 0.8, 0.95)] if values else []
    cuts = sorted(set(cuts))  # equal quantiles (many grids alike) would repeat a class

    def fill(value) -> str:
        if value is None or value != value:
            return "#eeeeee"
        return RAMP[sum(value > c for c in cuts)]

    zh, en = METRIC_NAMES[metric]
    folium.GeoJson(choropleth, name=f"{zh} {en}",
                   style_function=lambda f: {"color": "#555", "weight": 0.6, "fillOpacity": 0.75,
                                             "fillColor": fill(f["properties"].get(metric))},
                   tooltip=folium.GeoJsonTooltip(["grid_code", "incidents", metric],
                                                 aliases=["网格 grid", "事件 incidents", f"{zh} {en}"])).add_to(m)
    # the clusters as one layer of circles, each its size (a marker element each: 547 of them took
    # most of the page's time on Reykjavík's demo incidents)
    cluster_features = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [c["lon"], c["lat"]]},
         "properties": {"label": f"{int(c['count'])} 件 incidents · {int(c['open'])} 未结 open",
                        "radius": round(4 + 3 * (c["count"] ** 0.5) ** 0.5, 2)}} for c in clusters]}
    if clusters:
        cluster_layer = folium.GeoJson(cluster_features, name="事件聚合 Incident clusters",
                                       marker=folium.CircleMarker(color="#b30000", fill=True, fill_opacity=0.6),
                                       style_function=lambda f: {"radius": f["properties"]["radius"]},
                                       tooltip=folium.GeoJsonTooltip(["label"], labels=False)).add_to(m)
    else:  # the layer stays in the control, empty
        cluster_layer = folium.FeatureGroup(name="事件聚合 Incident clusters").add_to(m)
    heat = plugins.HeatMap([[y, x, w] for y, x, w in heat_cells], name="热力图 Heat map", radius=18, show=False)
    heat.default_js = [("leaflet-heat.js", _asset("leaflet-heat/leaflet-heat.js", "text/javascript", standalone))]
    heat.add_to(m)
    if monthly:
        _month_slider(m, monthly, cluster_layer)
    folium.LayerControl(collapsed=False).add_to(m)
    if "incidents" not in frame or not frame["incidents"].fillna(0).astype(float).any():
        _legend(m, f"{zh} {en}", [("#eeeeee", "无事件 No incidents")])
    else:
        _legend(m, f"{zh} {en}", [(RAMP[0], f"≤ {cuts[0]}" if cuts else "—")] +
                [(RAMP[i + 1], f"> {c}") for i, c in enumerate(cuts)])
    return m


def _asset(path: str, mime: str, standalone: bool) -> str:
    if not standalone:
        return f"/static/vendor/{path}"
    return f"data:{mime};base64,{base64.b64encode((VENDOR / path).read_bytes()).decode()}"


def _month_slider(m: folium.Map, monthly: dict[str, list[dict]], all_months: folium.map.Layer) -> None:
    """A slider over the months: at its start the clusters of the whole period (``all_months``),
    at each month that month's clusters instead (the whole period's taken off the map, so one
    month reads on its own), and a button that plays the months in turn (time animation)."""
    months = sorted(monthly)
    data = {k: [[c["lat"], c["lon"], int(c["count"])] for c in monthly[k]] for k in months}
    m.get_root().html.add_child(folium.Element(
        '<div class="gridmap-months" style="position:fixed;top:12px;left:60px;z-index:1000;background:#fffe;'
        'padding:6px 8px;font:12px sans-serif;border-radius:4px">月份 Month: <b id="gridmap-month">全部 All</b><br>'
        f'<input id="gridmap-month-slider" type="range" min="0" max="{len(months)}" value="0" '
        'style="width:220px"> <button id="gridmap-month-play" type="button" title="逐月播放 Play the months">▶</button>'
        '</div>'))
    script = """
    window.addEventListener('load', function () {  // after folium has created the map
      var data = %s, months = %s, map = %s, whole = %s, layer = L.layerGroup().addTo(map), timer = null;
      function show(i) {  // 0: the whole period; i: the i-th month alone
        layer.clearLayers();
        if (i === 0) {
          if (!map.hasLayer(whole)) map.addLayer(whole);
          document.getElementById('gridmap-month').textContent = '全部 All';
        } else {
          if (map.hasLayer(whole)) map.removeLayer(whole);
          var month = months[i - 1];
          data[month].forEach(function (c) {
            L.circleMarker([c[0], c[1]], {radius: 3 + 2 * Math.sqrt(c[2]), color: '#08519c', fillOpacity: 0.6})
              .bindTooltip(month + ': ' + c[2] + ' 件 incidents').addTo(layer);
          });
          document.getElementById('gridmap-month').textContent = month;
        }
        document.getElementById('gridmap-month-slider').value = i;
      }
      document.getElementById('gridmap-month-slider').addEventListener('input', function (e) { show(+e.target.value); });
      document.getElementById('gridmap-month-play').addEventListener('click', function () {
        if (timer) { clearInterval(timer); timer = null; return; }
        var i = 1; timer = setInterval(function () { show(i); i += 1; if (i > months.length) { clearInterval(timer); timer = null; } }, 900);
      });
    });
    """ % (json.dumps(data), json.dumps(months), m.get_name(), all_months.get_name())
    m.get_root().script.add_child(folium.Element(script))


__all__ = ["stations_map", "incidents_map", "TYPE_COLOURS", "METRIC_NAMES"]
