// The incident dashboard: a per-grid choropleth, incident clusters and a heat layer, all
// aggregated on the server, with filters whose counts update together, and a month-by-month play.
(function () {
  "use strict";
  var T = function (zh, en) { return window.gridmapT(zh, en); };
  var $ = function (id) { return document.getElementById(id); };
  var RAMP = ["#fff5eb", "#fdd0a2", "#fdae6b", "#fd8d3c", "#e6550d", "#a63603"];
  var state = { territories: [], choropleth: null, clusters: null, heat: null, playing: null, requests: 0 };
  var map, canvas;

  function get(path) {
    return fetch(path, { headers: { "Accept": "application/json" } }).then(function (r) { return r.json(); });
  }
  function query(extra) {
    var q = new URLSearchParams();
    [["category", "category"], ["status", "status"], ["street", "street"], ["community", "community"]].forEach(function (p) {
      if ($(p[0]).value) q.set(p[1], $(p[0]).value);
    });
    if ($("start").value) q.set("start", $("start").value + "T00:00:00Z");
    if ($("end").value) q.set("end", $("end").value + "T23:59:59Z");
    Object.keys(extra || {}).forEach(function (k) { q.set(k, extra[k]); });
    return q.toString();
  }
  function base() { return "/api/territories/" + $("territory").value + "/incidents/"; }

  function option(select, value, zh, en) {
    var o = document.createElement("option");
    o.value = value;
    window.gridmapSay(o, zh, en);
    select.appendChild(o);
  }
  function fillPlaces() {
    var root = $("territory").value, street = $("street"), community = $("community");
    var keep = street.value;
    street.length = 1; community.length = 1;
    var byCode = {};
    state.territories.forEach(function (t) { byCode[t.code] = t; });
    var under = function (t, code) { for (; t; t = byCode[t.parent_code]) if (t.code === code) return true; return false; };
    state.territories.forEach(function (t) {
      if (t.level === "street" && under(t, root)) option(street, t.code, t.name, t.name);
    });
    street.value = keep;
    state.territories.forEach(function (t) {
      if (t.level === "community" && under(t, street.value || root)) option(community, t.code, t.name, t.name);
    });
  }

  function refresh() {
    var ticket = ++state.requests;
    document.body.dataset.ready = "false";
    var zoom = Math.round(map.getZoom());
    return Promise.all([get(base() + "summary?" + query()), get(base() + "choropleth?" + query({ metric: $("metric").value })),
                        get(base() + "clusters?" + query({ zoom: zoom })), get(base() + "heat?" + query({ zoom: zoom }))])
      .then(function (r) {
        if (ticket !== state.requests) return;  // a newer filter won
        showCounts(r[0]); drawChoropleth(r[1]); drawClusters(r[2]); drawHeat(r[3]);
        document.body.dataset.ready = "true";
        document.body.dataset.total = String(r[0].total);
      });
  }

  function showCounts(s) {
    $("count-total").textContent = String(s.total);
    $("count-open").textContent = String(s.open);
    $("count-overdue").textContent = String(s.overdue) + (s.total ? " (" + Math.round(100 * s.overdue / s.total) + "%)" : "");
    $("count-supervised").textContent = String(s.supervised);
    window.gridmapSay($("count-median"), s.median_hours === null ? "—" : s.median_hours.toFixed(1) + " 小时",
                      s.median_hours === null ? "—" : s.median_hours.toFixed(1) + " h");
    var body = $("by-category").querySelector("tbody");
    body.innerHTML = "";
    s.by_category.forEach(function (c) {
      var tr = document.createElement("tr");
      var name = document.createElement("td");
      window.gridmapSay(name, c.name_zh, c.name_en);
      var n = document.createElement("td");
      n.textContent = c.count + " / " + c.open;
      tr.appendChild(name); tr.appendChild(n); body.appendChild(tr);
    });
  }

  function breaks(values) {
    var v = values.filter(function (x) { return x !== null && x !== undefined; }).sort(function (a, b) { return a - b; });
    if (!v.length) return [];
    return [0.2, 0.4, 0.6, 0.8, 0.95].map(function (q) { return v[Math.min(v.length - 1, Math.floor(q * v.length))]; });
  }
  function drawChoropleth(fc) {
    var metric = $("metric").value;
    var cuts = breaks(fc.features.map(function (f) { return f.properties[metric]; }));
    var colour = function (value) {
      if (value === null || value === undefined) return "#eeeeee";
      var i = 0;
      while (i < cuts.length && value > cuts[i]) i++;
      return RAMP[i];
    };
    if (state.choropleth) state.choropleth.remove();
    state.choropleth = L.geoJSON(fc, {
      renderer: canvas,
      style: function (f) { return { color: "#555", weight: 0.6, fillOpacity: 0.75, fillColor: colour(f.properties[metric]) }; },
      onEachFeature: function (f, layer) {
        var p = f.properties;
        layer.bindTooltip(function () {
          return p.grid_code + " · " + p.community + "<br>" + T("事件 ", "incidents ") + p.incidents +
            " · " + T("每千户 ", "per 1,000 households ") + (p.per_1000_households === null ? "—" : p.per_1000_households) +
            "<br>" + T("超期率 ", "overdue rate ") + (p.overdue_rate === null ? "—" : Math.round(100 * p.overdue_rate) + "%") +
            " · " + T("中位时长 ", "median ") + (p.median_hours === null ? "—" : p.median_hours + " h");
        }, { sticky: true });
      }
    }).addTo(map);
    state.choropleth.bringToBack();
    document.body.dataset.grids = String(fc.features.length);
    var legend = $("legend");
    legend.innerHTML = "";
    [null].concat(cuts).forEach(function (cut, i) {
      var row = document.createElement("div");
      row.innerHTML = '<span style="display:inline-block;width:1.2em;height:.8em;background:' + RAMP[i] + '"></span> ' +
        (cut === null ? "≤ " + (cuts[0] === undefined ? "—" : cuts[0]) : "> " + cut);
      legend.appendChild(row);
    });
    if (!state.fitted && fc.features.length) { map.fitBounds(state.choropleth.getBounds()); state.fitted = true; }
  }
  function drawClusters(rows) {
    if (state.clusters) state.clusters.remove();
    state.clusters = L.featureGroup(rows.map(function (c) {
      var marker = L.circleMarker([c.lat, c.lon], { renderer: canvas, radius: 4 + 3 * Math.log(1 + c.count),
        color: c.open ? "#b30000" : "#444", weight: 1, fillColor: c.open ? "#e34a33" : "#777", fillOpacity: 0.7 });
      marker.bindTooltip(function () { return c.count + T(" 件，未结案 ", " incidents, open ") + c.open; });
      return marker;
    }));
    state.clusters.addTo(map);
    document.body.dataset.clusters = String(rows.length);
  }
  function drawHeat(cells) {
    var max = cells.reduce(function (m, c) { return Math.max(m, c[2]); }, 1);
    var points = cells.map(function (c) { return [c[0], c[1], c[2] / max]; });
    if (!state.heat) {
      state.heat = L.heatLayer(points, { radius: 18, blur: 15, maxZoom: 16 });
      state.layers.addOverlay(state.heat, T("热力图", "Heat map"));
    } else {
      state.heat.setLatLngs(points);
    }
  }

  // month by month: each step filters one month and redraws
  function months() {
    var now = new Date(), list = [];
    for (var i = 11; i >= 0; i--) {
      var d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - i, 1));
      list.push(d);
    }
    return list;
  }
  function iso(d) { return d.toISOString().slice(0, 10); }
  $("play").addEventListener("click", function () {
    if (state.playing) { clearInterval(state.playing); state.playing = null; return; }
    var list = months(), i = 0;
    var step = function () {
      if (i >= list.length) { clearInterval(state.playing); state.playing = null; return; }
      var from = list[i], to = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + 1, 0));
      $("start").value = iso(from); $("end").value = iso(to);
      window.gridmapSay($("month-label"), from.getUTCFullYear() + " 年 " + (from.getUTCMonth() + 1) + " 月",
                        from.toISOString().slice(0, 7));
      refresh();
      i += 1;
    };
    step();
    state.playing = setInterval(step, 1500);
  });
  $("clear").addEventListener("click", function () {
    ["category", "status", "street", "community", "start", "end"].forEach(function (id) { $(id).value = ""; });
    $("month-label").textContent = "";
    fillPlaces(); refresh();
  });
  ["category", "status", "community", "start", "end", "metric"].forEach(function (id) {
    $(id).addEventListener("change", refresh);
  });
  $("street").addEventListener("change", function () { fillPlaces(); refresh(); });
  $("territory").addEventListener("change", function () { state.fitted = false; fillPlaces(); refresh(); });

  document.addEventListener("DOMContentLoaded", function () {
    canvas = L.canvas({ padding: 0.2 });
    map = L.map("map", { preferCanvas: true, renderer: canvas }).setView([64.13, -21.9], 11);
    var layers = [];
    try { layers = JSON.parse($("map").dataset.basemaps || "[]"); } catch (e) { layers = []; }
    layers.forEach(function (b) {
      L.tileLayer(b.url, { subdomains: b.subdomains || "abc", maxZoom: b.maxZoom || 19, attribution: b.attribution || "" }).addTo(map);
    });
    state.layers = L.control.layers(null, null, { collapsed: false }).addTo(map);
    map.on("zoomend", function () { if (document.body.dataset.ready === "true") refresh(); });
    window.gridmapDashboardMap = function () { return map; };
    Promise.all([get("/api/territories"), get("/api/incident-categories")]).then(function (r) {
      state.territories = r[0];
      r[0].filter(function (t) { return t.level !== "community" && t.plans > 0; }).forEach(function (t) {
        option($("territory"), t.code, t.name, t.name);
      });
      var wanted = new URLSearchParams(location.search).get("territory");
      if (wanted) $("territory").value = wanted;
      r[1].forEach(function (c) { option($("category"), c.code, c.code + " " + c.name_zh, c.code + " " + c.name_en); });
      fillPlaces();
      return refresh();
    });
  });
  window.gridmapDashboard = state;
})();
