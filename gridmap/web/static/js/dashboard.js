// The incident dashboard: a per-grid choropleth, incident clusters and a heat layer, all
// aggregated on the server, with filters whose counts update together, and a month-by-month play.
// Every string it shows exists in Chinese and English: elements carry data-zh/data-en (through
// gridmapSay) and the Leaflet controls, whose labels are strings, are relabelled on gridmap:lang.
(function () {
  "use strict";
  var T = function (zh, en) { return window.gridmapT(zh, en); };
  var $ = function (id) { return document.getElementById(id); };
  var RAMP = ["#fff5eb", "#fdd0a2", "#fdae6b", "#fd8d3c", "#e6550d", "#a63603"];
  var NO_DATA = "#eeeeee";
  var MONTHS_EN = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                   "October", "November", "December"];
  var MAX_ZOOM = 18;      // single buildings; beyond that there is nothing more to see
  var ZOOM_OUT_LEVELS = 3; // how far out of the whole territory one may zoom
  var state = { territories: [], choropleth: null, clusters: null, heat: null, playing: null, requests: 0,
                stepMs: 1500, bounds: null };
  var map, canvas;

  // A sign-in made on another page of this tab (the people or report page) is used here too: the
  // needs, resources and projects lists are read with a role in the territory.
  function headers() {
    var h = { "Accept": "application/json" }, token = null;
    try { token = sessionStorage.getItem("gridmap.token"); } catch (e) { /* private mode */ }
    if (token) h.Authorization = "Bearer " + token;
    return h;
  }
  // -- sign in, here or on another page of this tab (the same form and token as the other pages) --
  function showSignedIn(user) {
    $("login").hidden = !!user; $("logout").hidden = !user;
    window.gridmapPlain($("who"), user ? (user.display_name || user.username) : "");
  }
  function forget() {
    try { sessionStorage.removeItem("gridmap.token"); } catch (e) { /* ignore */ }
    showSignedIn(null);
  }
  function loginMessage(zh, en) {
    if (zh) window.gridmapSay($("login-message"), zh, en); else window.gridmapPlain($("login-message"), "");
  }
  (function () {
    if (!headers().Authorization) { showSignedIn(null); return; }
    fetch("/api/auth/me", { headers: headers() }).then(function (r) {
      if (!r.ok) { forget(); return; }
      return r.json().then(showSignedIn);
    }, function () { /* offline: the form stays as it is */ });
  })();
  $("login").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var body = new URLSearchParams({ username: $("username").value, password: $("password").value });
    fetch("/api/auth/token", { method: "POST", body: body, headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (r.status === 401) { loginMessage("用户名或密码错误", "Wrong user name or password"); return; }
        if (!r.ok) {
          loginMessage("无法登录：" + (data.detail_zh || data.detail || r.status), "Cannot sign in: " + (data.detail_en || data.detail || r.status));
          return;
        }
        $("password").value = ""; loginMessage();
        try { sessionStorage.setItem("gridmap.token", data.access_token); } catch (e) { /* private mode */ }
        showSignedIn(data.user);
        refresh();  // the lists and the scorecard, now with the sign-in
      });
    }, function () { loginMessage("无法连接服务器", "The server cannot be reached"); });
  });
  $("logout").addEventListener("click", function () {
    var h = headers();
    if (h.Authorization) fetch("/api/auth/logout", { method: "POST", headers: h }).catch(function () { /* expires anyway */ });
    forget();
    refresh();
  });

  // What only a sign-in may read: without one it is not asked for (a 401 in the console for every
  // signed-out visit), the answer being known
  function signedInJson(path) {
    if (!headers().Authorization) return Promise.resolve({ ok: false, status: 401, data: null });
    return fetch(path, { headers: headers() })
      .then(function (r) { return r.json().then(function (data) { return { ok: r.ok, status: r.status, data: data }; }); });
  }
  function get(path) {
    return fetch(path, { headers: headers() }).then(function (r) {
      if (!r.ok) throw new Error(path + ": HTTP " + r.status);
      return r.json();
    });
  }
  function iso(d) { return d.toISOString().slice(0, 10); }
  // the date inputs are whole UTC days, "to" included: the API's end is exclusive, so the end
  // sent is the next day's midnight (not 23:59:59, which would lose the day's last second)
  function dayAfter(value) {
    var d = new Date(value + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + 1);
    return iso(d);
  }
  function query(extra, withoutDates) {
    var q = new URLSearchParams();
    [["category", "category"], ["status", "status"], ["street", "street"], ["community", "community"]].forEach(function (p) {
      if ($(p[0]).value) q.set(p[1], $(p[0]).value);
    });
    if (!withoutDates) {
      if ($("start").value) q.set("start", $("start").value + "T00:00:00Z");
      if ($("end").value) q.set("end", dayAfter($("end").value) + "T00:00:00Z");
    }
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
    if (!$("territory").value) { document.body.dataset.ready = "true"; return Promise.resolve(); }  // nothing published
    document.body.dataset.ready = "false";
    var zoom = Math.round(map.getZoom());
    return Promise.all([get(base() + "summary?" + query()), get(base() + "choropleth?" + query({ metric: $("metric").value })),
                        get(base() + "clusters?" + query({ zoom: zoom })), get(base() + "heat?" + query({ zoom: zoom }))])
      .then(function (r) {
        if (ticket !== state.requests) return;  // a newer filter won
        showCounts(r[0]); drawChoropleth(r[1]); loadLists(ticket); loadScorecard(ticket);
        if (Math.round(map.getZoom()) !== zoom) return refresh();  // just fitted a new territory: cells for its zoom
        drawClusters(r[2]); drawHeat(r[3]);
        document.body.dataset.ready = "true";
        document.body.dataset.total = String(r[0].total);
      });
  }

  // The territory's needs, resources and projects (the lists), and each grid's in its tooltip;
  // without a sign-in holding a role in the territory, a note says where to sign in.
  var NEED_STATUS = { open: ["待办", "open"], matched: ["已匹配", "matched"], in_project: ["项目中", "in a project"],
                      met: ["已满足", "met"], closed: ["已关闭", "closed"], referred: ["已转事件", "referred"] };
  var PROJECT_STATUS = { planned: ["计划中", "planned"], active: ["实施中", "active"], done: ["已完成", "done"],
                         cancelled: ["已取消", "cancelled"] };
  function byStatus(counts, names) {
    var keys = Object.keys(counts || {}).filter(function (k) { return counts[k]; });
    if (!keys.length) return ["—", "—"];
    return [keys.map(function (k) { return (names[k] || [k])[0] + " " + counts[k]; }).join("，"),
            keys.map(function (k) { return (names[k] || [k, k])[1] + " " + counts[k]; }).join(", ")];
  }
  function loadLists(ticket) {
    var list = $("lists-figures");
    signedInJson("/api/territories/" + encodeURIComponent($("territory").value) + "/lists/summary")
      .then(function (res) {
        if (ticket !== state.requests) return;
        list.textContent = ""; state.lists = {};
        if (!res.ok) {
          window.gridmapSay($("lists-note"), res.status === 401 ? "登录后显示本辖区的清单。"
                            : "你的账号在本辖区没有角色，看不到清单。",
                            res.status === 401 ? "Sign in to see the territory's lists."
                            : "Your account has no role in this territory: its lists are not shown.");
          return;
        }
        window.gridmapPlain($("lists-note"), "");
        var d = res.data, add = function (zh, en, value) {
          var dt = document.createElement("dt"), dd = document.createElement("dd");
          window.gridmapSay(dt, zh, en);
          if (Array.isArray(value)) window.gridmapSay(dd, value[0], value[1]); else dd.textContent = String(value);
          list.appendChild(dt); list.appendChild(dd);
        };
        var open = d.totals.open_needs, urgent = d.totals.urgent_needs;
        add("待办需求", "Open needs", urgent ? [open + "（紧急 " + urgent + "）", open + " (urgent " + urgent + ")"] : open);
        add("需求按状态", "Needs by status", byStatus(d.needs_by_status, NEED_STATUS));
        add("可用资源", "Active resources", d.totals.resources);
        add("项目按状态", "Projects by status", byStatus(d.totals.projects, PROJECT_STATUS));
        d.grids.forEach(function (g) { state.lists[g.grid_code] = g; });
      }, function () { /* offline: the incident figures stand alone */ });
  }
  // Each department's answers to the community's whistles (吹哨报到): calls, arrivals in time, the
  // median minutes to acknowledge, the on-time share; for a sign-in with a role in the territory.
  function loadScorecard(ticket) {
    signedInJson("/api/territories/" + encodeURIComponent($("territory").value) + "/whistles/scorecard")
      .then(function (res) {
        if (ticket !== state.requests) return;
        var table = $("scorecard"), body = table.querySelector("tbody"), note = $("whistles-note");
        body.textContent = "";
        if (!res.ok) {
          table.hidden = true;
          window.gridmapSay(note, res.status === 401 ? "登录后显示（登录表单见上方清单处）。" : "你的账号在本辖区没有角色。",
                            res.status === 401 ? "Sign in to see it (the form is with the lists above)." : "Your account has no role in this territory.");
          return;
        }
        table.hidden = !res.data.departments.length;
        if (!res.data.departments.length) {
          window.gridmapSay(note, "本辖区尚未吹哨。", "No whistle blown in this territory yet.");
          return;
        }
        window.gridmapSay(note, "共吹哨 " + res.data.whistles + " 次", res.data.whistles + " whistles blown");
        res.data.departments.forEach(function (d) {
          var tr = document.createElement("tr");
          tr.dataset.department = d.department_code;
          window.gridmapSay(cell(tr), d.department, d.department_en);
          cell(tr, true).textContent = String(d.calls);
          cell(tr, true).textContent = d.arrived_on_time + "/" + d.calls;
          cell(tr, true).textContent = d.median_ack_minutes === null ? "—" : String(d.median_ack_minutes);
          cell(tr, true).textContent = d.on_time_share === null ? "—" : Math.round(100 * d.on_time_share) + "%";
          body.appendChild(tr);
        });
      }, function () { /* offline */ });
  }
  function listsLine(code) {
    var g = state.lists && state.lists[code];
    if (!g) return "";
    var projects = Object.keys(g.projects || {}).reduce(function (n, k) { return n + g.projects[k]; }, 0);
    return "<br>" + T("待办需求 ", "open needs ") + g.open_needs + " · " + T("资源 ", "resources ") + g.resources +
      " · " + T("项目 ", "projects ") + projects;
  }

  function cell(tr, numeric) {
    var td = document.createElement("td");
    if (numeric) td.style.textAlign = "right";
    tr.appendChild(td);
    return td;
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
    s.by_category.forEach(function (c) {  // one cell per column header: category, incidents, open
      var tr = document.createElement("tr");
      window.gridmapSay(cell(tr), c.name_zh, c.name_en);
      cell(tr, true).textContent = String(c.count);
      cell(tr, true).textContent = String(c.open);
      body.appendChild(tr);
    });
  }

  // Class breaks at quantiles of the grids' values, kept only when distinct and below the
  // largest value: every class then holds at least one grid (no "> 0, > 0, > 0").
  function breaks(values) {
    var v = values.slice().sort(function (a, b) { return a - b; });
    var max = v[v.length - 1], cuts = [];
    [0.2, 0.4, 0.6, 0.8, 0.95].forEach(function (q) {
      var c = v[Math.min(v.length - 1, Math.floor(q * v.length))];
      if (c < max && (!cuts.length || c > cuts[cuts.length - 1])) cuts.push(c);
    });
    return cuts;
  }
  function fmt(metric, value) {
    if (metric === "overdue_rate") return String(Math.round(1000 * value) / 10) + "%";
    return String(Math.round(10 * value) / 10);
  }
  function legendRow(legend, colour, zh, en) {
    var row = document.createElement("div");
    var swatch = document.createElement("span");
    swatch.style.cssText = "display:inline-block;width:1.2em;height:.8em;margin-right:.4em;border:1px solid #ccc;background:" + colour;
    var text = document.createElement("span");
    window.gridmapSay(text, zh, en);
    row.appendChild(swatch); row.appendChild(text);
    legend.appendChild(row);
  }
  function drawChoropleth(fc) {
    var metric = $("metric").value;
    var present = function (x) { return x !== null && x !== undefined; };
    var incidents = fc.features.reduce(function (n, f) { return n + (f.properties.incidents || 0); }, 0);
    var values = fc.features.map(function (f) { return f.properties[metric]; }).filter(present);
    var empty = incidents === 0 || values.length === 0;  // nothing to class: say so, draw no ramp
    var cuts = empty ? [] : breaks(values);
    var colour = function (value) {
      if (empty || !present(value)) return NO_DATA;
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
            " · " + T("中位时长 ", "median ") + (p.median_hours === null ? "—" : p.median_hours + T(" 小时", " h")) +
            listsLine(p.grid_code);
        }, { sticky: true });
      }
    }).addTo(map);
    state.choropleth.bringToBack();
    document.body.dataset.grids = String(fc.features.length);
    var legend = $("legend");
    legend.innerHTML = "";
    legend.dataset.classes = String(empty ? 0 : cuts.length + 1);
    if (!fc.features.length) {
      legendRow(legend, NO_DATA, "无数据：该辖区没有已发布的网格", "No data: this territory has no published grids");
    } else if (incidents === 0) {
      legendRow(legend, NO_DATA, "无数据：该辖区在当前筛选条件下没有事件", "No data: no incidents in this territory under these filters");
    } else if (empty) {
      legendRow(legend, NO_DATA, "无数据：没有网格能算出该指标", "No data: no grid has a value for this measure");
    } else {
      var min = Math.min.apply(null, values), max = Math.max.apply(null, values);
      for (var i = 0; i <= cuts.length; i++) {
        var lo = i ? cuts[i - 1] : min, hi = i < cuts.length ? cuts[i] : max;
        var text = lo === hi ? fmt(metric, lo) : fmt(metric, lo) + " – " + fmt(metric, hi);
        legendRow(legend, RAMP[i], text, text);
      }
      if (values.length < fc.features.length) legendRow(legend, NO_DATA, "无数据", "No data");
    }
    if (!state.bounds && fc.features.length) limitTo(state.choropleth.getBounds());  // a new territory
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
    state.heat.setLatLngs(cells.map(function (c) { return [c[0], c[1], c[2] / max]; }));
  }

  // The map stays on the territory (the extent of its published grids, which the choropleth
  // always draws whatever the filters): zoom from a few levels out of the whole territory down
  // to single buildings, panning no further than about the territory's size beyond its edges.
  function limitTo(bounds) {
    if (!bounds || !bounds.isValid()) return;
    state.bounds = bounds;
    // lift the old limits, move (without animation: an animated zoom would end after, and undo,
    // what follows), then set limits the new view already satisfies, so they move nothing
    map.setMaxBounds(null);
    map.setMinZoom(0);
    map.fitBounds(bounds, { animate: false });
    map.setMinZoom(Math.max(0, map.getZoom() - ZOOM_OUT_LEVELS));
    map.setMaxBounds(bounds.pad(1));
  }
  function fitTerritory() { if (state.bounds) map.fitBounds(state.bounds); }

  // month by month, over the months that have incidents under the other filters (first to last,
  // months in UTC as the date filters); each step shows one month once it is drawn
  function monthLabel(d) {
    window.gridmapSay($("month-label"), d.getUTCFullYear() + " 年 " + (d.getUTCMonth() + 1) + " 月",
                      MONTHS_EN[d.getUTCMonth()] + " " + d.getUTCFullYear());
  }
  function clearMonthLabel() {
    var label = $("month-label");
    label.removeAttribute("data-zh"); label.removeAttribute("data-en");  // or a language switch brings it back
    label.textContent = "";
  }
  function playButton() {
    if (state.playing) window.gridmapSay($("play"), "停止播放", "Stop");
    else window.gridmapSay($("play"), "按月播放", "Play by month");
  }
  function stopPlay() {
    if (state.playing) clearTimeout(state.playing.timer);
    state.playing = null;
    playButton();
  }
  function monthsToPlay() {
    return get(base() + "summary?" + query(null, true)).then(function (s) {
      var have = s.by_month.map(function (m) { return m.month; }).sort();
      if (!have.length) return [];
      var first = have[0].split("-"), last = have[have.length - 1];
      var list = [], y = Number(first[0]), m = Number(first[1]) - 1;  // Date.UTC carries month 12 into January
      for (var d = new Date(Date.UTC(y, m, 1)); iso(d).slice(0, 7) <= last; d = new Date(Date.UTC(y, ++m, 1))) list.push(d);
      return list;
    });
  }
  $("play").addEventListener("click", function () {
    if (state.playing) { stopPlay(); return; }
    var run = state.playing = { timer: null };
    playButton();
    monthsToPlay().then(function (list) {
      var i = 0;
      var step = function () {
        if (state.playing !== run) return;
        if (i >= list.length) { stopPlay(); return; }
        var from = list[i++], to = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + 1, 0));
        $("start").value = iso(from); $("end").value = iso(to);
        monthLabel(from);
        var next = function () { if (state.playing === run) run.timer = setTimeout(step, state.stepMs); };
        refresh().then(next, next);
      };
      step();
    }, function () { if (state.playing === run) stopPlay(); });
  });
  $("clear").addEventListener("click", function () {
    stopPlay();
    ["category", "status", "street", "community", "start", "end"].forEach(function (id) { $(id).value = ""; });
    clearMonthLabel();
    fillPlaces(); refresh();
  });
  ["start", "end"].forEach(function (id) { $(id).addEventListener("change", clearMonthLabel); });
  ["category", "status", "community", "start", "end", "metric"].forEach(function (id) {
    $(id).addEventListener("change", refresh);
  });
  $("street").addEventListener("change", function () { fillPlaces(); refresh(); });
  $("territory").addEventListener("change", function () {
    stopPlay(); fillPlaces();
    state.bounds = null;  // fitted when its grids arrive
    refresh();
  });

  // Leaflet controls take their labels as strings: build them in the current language and
  // rebuild them on a language switch
  function heatName() { return '<span data-zh="热力图" data-en="Heat map">' + T("热力图", "Heat map") + "</span>"; }
  function relabelMap() {
    if (!map) return;  // the first gridmap:lang comes before the map exists
    document.title = T("事件看板 · 网格地图", "Incident dashboard · gridmap");
    window.gridmapLabelLeaflet();  // zoom buttons (i18n.js)
    var titled = [["#fit-territory", "缩放到辖区的全部网格", "Zoom to all the territory's grids"]];
    titled.forEach(function (t) {
      var el = map.getContainer().querySelector(t[0]);
      if (el) { el.title = T(t[1], t[2]); el.setAttribute("aria-label", T(t[1], t[2])); }
    });
    // the library's name without its web link: the page loads and links to nothing outside this server
    map.attributionControl.setPrefix('<span title="' +
      T("交互式地图 JavaScript 库", "A JavaScript library for interactive maps") + '">Leaflet</span>');
    state.layers.removeLayer(state.heat);
    state.layers.addOverlay(state.heat, heatName());
  }
  document.addEventListener("gridmap:lang", relabelMap);

  var FitControl = L.Control.extend({
    options: { position: "topleft" },
    onAdd: function () {
      var box = L.DomUtil.create("div", "leaflet-bar leaflet-control gridmap-fit");
      var a = L.DomUtil.create("a", "", box);
      a.id = "fit-territory"; a.href = "#"; a.setAttribute("role", "button");
      a.style.width = "auto"; a.style.padding = "0 .5em"; a.style.whiteSpace = "nowrap";
      window.gridmapSay(a, "显示全辖区", "Fit to territory");
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.on(a, "click", function (e) { L.DomEvent.preventDefault(e); fitTerritory(); });
      return box;
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    canvas = L.canvas({ padding: 0.2 });
    map = L.map("map", { preferCanvas: true, renderer: canvas, zoomControl: false, maxZoom: MAX_ZOOM })
      .setView([64.13, -21.9], 11);
    L.control.zoom().addTo(map);
    new FitControl().addTo(map);
    var layers = [];
    try { layers = JSON.parse($("map").dataset.basemaps || "[]"); } catch (e) { layers = []; }
    layers.forEach(function (b) {
      L.tileLayer(b.url, { subdomains: b.subdomains || "abc", maxZoom: Math.min(b.maxZoom || 19, MAX_ZOOM),
                           attribution: b.attribution || "" }).addTo(map);
    });
    state.heat = L.heatLayer([], { radius: 18, blur: 15, maxZoom: 16 });
    state.layers = L.control.layers(null, null, { collapsed: false }).addTo(map);
    relabelMap();
    map.on("zoomend", function () { if (document.body.dataset.ready === "true") refresh(); });
    window.gridmapDashboardMap = function () { return map; };
    Promise.all([get("/api/territories"), get("/api/incident-categories"),
                 get("/api/dashboard/territories").catch(function () { return []; })]).then(function (r) {
      state.territories = r[0];
      var candidates = r[0].filter(function (t) { return t.level !== "community" && t.plans > 0; });
      candidates.forEach(function (t) { option($("territory"), t.code, t.name, t.name); });
      // open on the territory asked for, else the one with the most incidents (ties: the first listed)
      var incidents = {};
      r[2].forEach(function (t) { incidents[t.code] = t.incidents; });
      var busiest = candidates.reduce(function (best, t) {
        return !best || (incidents[t.code] || 0) > (incidents[best.code] || 0) ? t : best;
      }, null);
      var wanted = new URLSearchParams(location.search).get("territory");
      var known = candidates.some(function (t) { return t.code === wanted; });
      $("territory").value = known ? wanted : busiest ? busiest.code : "";
      r[1].forEach(function (c) { option($("category"), c.code, c.code + " " + c.name_zh, c.code + " " + c.name_en); });
      fillPlaces();
      return refresh();
    });
  });
  window.gridmapDashboard = state;
})();
