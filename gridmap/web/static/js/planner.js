// The grid planner: units coloured by grid on a canvas-rendered Leaflet map; paint, lasso, merge,
// split and cut; a live panel; undo/redo; save with the draft's version (409 → conflict message);
// validation, diff against the published plan, publish. No basemap is needed.
(function () {
  "use strict";
  var T = function (zh, en) { return window.gridmapT(zh, en); };
  var $ = function (id) { return document.getElementById(id); };
  var PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                 "#9c755f", "#bab0ac", "#86bcb6", "#d37295", "#8cd17d", "#b6992d", "#499894", "#f1ce63"];

  var state = {
    token: null, user: null, plan: null, version: null, band: [300, 500], status: null,
    units: {},          // unit id -> {layer, feature, grid, saved, community, households, label:[lat,lng], compound}
    grids: {},          // code -> {community, kind, households, compactness, parts, unit_count, border, labelMarker}
    selected: null, tool: "select", undo: [], redo: [], splitPick: {}, cutUnit: null, cutPoints: [], cutLine: null,
    preview: {}, previewTimer: null, diffLayer: null, problemLayer: null,
  };
  var map, unitLayer, borderLayer, labelLayer, canvas;

  // -- helpers --------------------------------------------------------------------------------------
  function colour(code) {
    var h = 0;
    for (var i = 0; i < code.length; i++) h = (h * 31 + code.charCodeAt(i)) >>> 0;
    return PALETTE[h % PALETTE.length];
  }
  function message(zh, en, kind) {
    var el = $("message");
    window.gridmapSay(el, zh, en);
    el.className = kind || "info";
  }
  function api(method, path, body) {
    var headers = { "Accept": "application/json" };
    if (state.token) headers["Authorization"] = "Bearer " + state.token;
    var init = { method: method, headers: headers };
    if (body instanceof URLSearchParams) { init.body = body; }
    else if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    return fetch(path, init).then(function (r) {
      return r.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
        if (r.status === 401 && state.token) { signOut(); }
        return { ok: r.ok, status: r.status, data: data };
      });
    });
  }
  function detail(res) {
    var d = res.data && res.data.detail;
    return typeof d === "string" ? d : JSON.stringify(d);
  }

  // -- sign in ------------------------------------------------------------------------------------
  function signedIn(token, user) {
    state.token = token; state.user = user;
    try { sessionStorage.setItem("gridmap.token", token); } catch (e) { /* ignore */ }
    $("login").hidden = true; $("logout").hidden = false;
    $("who").textContent = user.display_name || user.username;
    loadTerritories();
  }
  function signOut() {
    if (state.token) api("POST", "/api/auth/logout");
    state.token = null; state.user = null;
    try { sessionStorage.removeItem("gridmap.token"); } catch (e) { /* ignore */ }
    $("login").hidden = false; $("logout").hidden = true; $("who").textContent = "";
  }
  $("login").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var form = new URLSearchParams({ username: $("username").value, password: $("password").value });
    api("POST", "/api/auth/token", form).then(function (res) {
      if (!res.ok) { message("用户名或密码错误", "Wrong user name or password", "error"); return; }
      message("已登录", "Signed in", "ok");
      signedIn(res.data.access_token, res.data.user);
    });
  });
  $("logout").addEventListener("click", signOut);

  // -- territory and plan ---------------------------------------------------------------------------
  function loadTerritories() {
    return api("GET", "/api/territories").then(function (res) {
      var select = $("territory");
      select.innerHTML = "";
      (res.data || []).filter(function (t) { return t.level !== "community"; }).forEach(function (t) {
        var opt = document.createElement("option");
        opt.value = t.code; opt.textContent = t.name + " " + t.code;
        select.appendChild(opt);
      });
      var wanted = new URLSearchParams(location.search).get("territory");
      var planned = (res.data || []).filter(function (t) { return t.plans > 0; })[0];
      var byCode = {};
      (res.data || []).forEach(function (t) { byCode[t.code] = t; });
      (state.user ? state.user.roles : []).some(function (r) {  // the user's own area, or the nearest plan above it
        for (var t = byCode[r.territory]; t; t = byCode[t.parent_code]) {
          if (t.plans > 0 && t.level !== "community") { planned = t; return true; }
        }
        return false;
      });
      if (wanted) select.value = wanted;
      else if (planned) select.value = planned.code;
      return loadPlans();
    });
  }
  function loadPlans(preferId) {
    return api("GET", "/api/territories/" + $("territory").value + "/plans").then(function (res) {
      var select = $("plan");
      select.innerHTML = "";
      var plans = (res.data || []).slice().reverse();
      plans.forEach(function (p) {
        var opt = document.createElement("option");
        opt.value = p.id;
        var zh = { draft: "草稿", published: "已发布", history: "历史" }[p.status] || p.status;
        window.gridmapSay(opt, "v" + p.version + " · " + zh + " · " + p.grids + " 个网格",
                          "v" + p.version + " · " + p.status + " · " + p.grids + " grids");
        opt.dataset.status = p.status;
        select.appendChild(opt);
      });
      var wanted = preferId || new URLSearchParams(location.search).get("plan");
      var draft = plans.filter(function (p) { return p.status === "draft"; })[0];
      var published = plans.filter(function (p) { return p.status === "published"; })[0];
      if (wanted && plans.some(function (p) { return String(p.id) === String(wanted); })) select.value = wanted;
      else if (draft && state.token) select.value = draft.id;
      else if (published) select.value = published.id;
      else return;
      return loadPlan(+select.value);
    });
  }
  $("territory").addEventListener("change", function () { loadPlans(); });
  $("plan").addEventListener("change", function () { loadPlan(+$("plan").value); });
  $("new-draft").addEventListener("click", function () {
    api("POST", "/api/territories/" + $("territory").value + "/drafts", { source: "published" }).then(function (res) {
      if (!res.ok) { message("无法新建草稿：" + detail(res), "Cannot create a draft: " + detail(res), "error"); return; }
      message("已新建草稿 v" + res.data.version, "Draft v" + res.data.version + " created", "ok");
      loadPlans(res.data.plan_id);
    });
  });

  function loadPlan(planId) {
    message("正在载入方案…", "Loading the plan…", "info");
    return Promise.all([api("GET", "/api/plans/" + planId + "/state"),
                        api("GET", "/api/plans/" + planId + "/units?simplify=0.5"),
                        api("GET", "/api/plans/" + planId + "/grids")]).then(function (r) {
      if (!r[0].ok || !r[1].ok) { message("无法载入方案：" + detail(r[0].ok ? r[1] : r[0]),
                                          "Cannot load the plan: " + detail(r[0].ok ? r[1] : r[0]), "error"); return; }
      state.plan = planId; state.version = r[0].data.version; state.status = r[0].data.status;
      state.band = [r[0].data.summary.min_households, r[0].data.summary.max_households];
      state.undo = []; state.redo = []; state.selected = null; state.splitPick = {}; state.preview = {};
      history.replaceState(null, "", "/planner?territory=" + $("territory").value + "&plan=" + planId);
      drawUnits(r[1].data); drawGrids(r[2].data, true);
      showSummary(r[0].data.summary); updatePanel(); updatePending();
      window.gridmapSay($("plan-info"), "版本 " + state.version + " · " + (state.status === "draft" ? "草稿，可编辑" : "只读"),
                        "version " + state.version + " · " + (state.status === "draft" ? "draft, editable" : "read only"));
      if (unitLayer.getLayers().length) map.fitBounds(unitLayer.getBounds());
      message("方案已载入：" + Object.keys(state.units).length + " 个单元",
              "Plan loaded: " + Object.keys(state.units).length + " units", "ok");
      document.body.dataset.planLoaded = String(planId);
    });
  }

  // -- drawing ------------------------------------------------------------------------------------
  function unitStyle(u) {
    var picked = state.splitPick[u.id] || state.cutUnit === u.id;
    var selected = u.grid === state.selected;
    return { renderer: canvas, smoothFactor: 1.5, color: picked ? "#000" : "#ffffff", weight: picked ? 2 : 0.5,
             fillColor: colour(u.grid), fillOpacity: selected ? 0.85 : (u.grid !== u.saved ? 0.7 : 0.45) };
  }
  function drawUnits(fc) {
    unitLayer.clearLayers(); state.units = {};
    fc.features.forEach(addUnit);
  }
  function addUnit(feature) {
    var p = feature.properties;
    var u = { id: p.unit_id, grid: p.grid_code, saved: p.grid_code, community: p.community_code,
              households: p.households, compound: p.compound_id, kind: p.kind,
              label: [p.label.coordinates[1], p.label.coordinates[0]] };
    u.layer = L.geoJSON(feature, { smoothFactor: 1.5, style: function () { return unitStyle(u); } });
    u.layer.eachLayer(function (l) {
      l.unitId = u.id;
      l.on("click", function (ev) { L.DomEvent.stopPropagation(ev); onUnitClick(u, ev); });
      l.bindTooltip(function () {
        return T("单元 ", "unit ") + u.id + " · " + u.households + T(" 户", " households") + " · " + u.grid;
      }, { sticky: true });
    });
    unitLayer.addLayer(u.layer);
    state.units[u.id] = u;
  }
  function restyle(ids) {
    (ids || Object.keys(state.units)).forEach(function (id) {
      var u = state.units[id];
      if (u) u.layer.setStyle(unitStyle(u));
    });
  }
  function drawGrids(fc, replaceAll) {
    if (replaceAll) { borderLayer.clearLayers(); labelLayer.clearLayers(); state.grids = {}; }
    fc.features.forEach(function (f) {
      var p = f.properties, old = state.grids[p.grid_code];
      if (old) { borderLayer.removeLayer(old.border); labelLayer.removeLayer(old.labelMarker); }
      var g = { code: p.grid_code, community: p.community_code, kind: p.kind, households: p.households,
                compactness: p.compactness, parts: p.parts, unit_count: p.unit_count };
      g.border = L.geoJSON(f, { style: { renderer: canvas, color: "#222", weight: 2.5, fill: false }, interactive: false });
      borderLayer.addLayer(g.border);
      var ll = p.label ? [p.label.coordinates[1], p.label.coordinates[0]] : null;
      g.labelMarker = L.marker(ll || [0, 0], { interactive: false, icon: L.divIcon({ className: "grid-label",
        html: "<b>" + p.grid_code.slice(-3) + "</b><br>" + p.households, iconSize: null }) });
      if (ll) labelLayer.addLayer(g.labelMarker);
      state.grids[p.grid_code] = g;
    });
  }
  function removeGrid(code) {
    var g = state.grids[code];
    if (!g) return;
    borderLayer.removeLayer(g.border); labelLayer.removeLayer(g.labelMarker);
    delete state.grids[code];
  }

  // -- local edits (undo/redo) ----------------------------------------------------------------------
  function editable() {
    if (state.status !== "draft") { message("这不是草稿：请先新建草稿", "This is not a draft: create a draft first", "error"); return false; }
    return true;
  }
  function applyChange(change, backwards) {  // change: list of {id, from, to}
    var ids = [];
    change.forEach(function (c) { state.units[c.id].grid = backwards ? c.from : c.to; ids.push(c.id); });
    restyle(ids); afterLocalChange();
  }
  function move(ids, target) {
    if (!editable()) return;
    var t = state.grids[target];
    var community = t ? t.community : null;
    var change = [];
    ids.forEach(function (id) {
      var u = state.units[id];
      if (!u || u.grid === target) return;
      if (community && u.community !== community) return;
      change.push({ id: u.id, from: u.grid, to: target });
    });
    if (!change.length) {
      if (ids.length) message("这些单元不在目标网格所属社区内，或已在该网格中",
                              "Those units are outside the grid's community or already in it", "warn");
      return;
    }
    state.undo.push(change); state.redo = [];
    applyChange(change, false);
  }
  $("undo").addEventListener("click", function () {
    var c = state.undo.pop(); if (!c) return; state.redo.push(c); applyChange(c, true);
  });
  $("redo").addEventListener("click", function () {
    var c = state.redo.pop(); if (!c) return; state.undo.push(c); applyChange(c, false);
  });
  document.addEventListener("keydown", function (ev) {
    if ((ev.ctrlKey || ev.metaKey) && ev.key === "z") { ev.preventDefault(); $(ev.shiftKey ? "redo" : "undo").click(); }
    if ((ev.ctrlKey || ev.metaKey) && ev.key === "s") { ev.preventDefault(); $("save").click(); }
  });
  function pendingUnits() {
    return Object.keys(state.units).map(function (k) { return state.units[k]; })
      .filter(function (u) { return u.grid !== u.saved; });
  }
  function pendingOperations() {
    var byTarget = {};
    pendingUnits().forEach(function (u) { (byTarget[u.grid] = byTarget[u.grid] || []).push(u.id); });
    return Object.keys(byTarget).sort().map(function (code) {
      var op = { op: "assign", units: byTarget[code], grid: code };
      if (!state.grids[code]) op.kind = "comprehensive";
      return op;
    });
  }
  function updatePending() {
    var n = pendingUnits().length;
    $("pending").textContent = String(n);
    $("pending").className = n ? "badge dirty" : "badge";
  }
  function afterLocalChange() {
    updatePending(); updatePanel();
    clearTimeout(state.previewTimer);
    state.previewTimer = setTimeout(preview, 350);
  }

  // -- the live panel -----------------------------------------------------------------------------------
  function localStats(code) {
    var hh = 0, n = 0;
    Object.keys(state.units).forEach(function (k) {
      var u = state.units[k];
      if (u.grid === code) { hh += u.households; n += 1; }
    });
    return { households: hh, units: n };
  }
  function updatePanel() {
    var code = state.selected;
    $("grid-code").textContent = code || "—";
    if (!code) { ["grid-households", "grid-units", "grid-compactness", "grid-contiguity", "grid-community"]
      .forEach(function (id) { $(id).textContent = "—"; }); $("band-state").textContent = "";
      $("band-bar").style.width = "0"; return; }
    var s = localStats(code), g = state.grids[code] || {}, p = state.preview[code] || {};
    $("grid-households").textContent = String(s.households);
    $("grid-units").textContent = String(s.units);
    var lo = state.band[0], hi = state.band[1];
    var kind = g.kind || "comprehensive";
    var inBand = kind === "dedicated" || (s.households >= lo && s.households <= hi);
    window.gridmapSay($("band-state"), kind === "dedicated" ? "专属网格" : (inBand ? "在 " + lo + "–" + hi + " 户之间" :
      (s.households < lo ? "低于 " + lo + " 户" : "超过 " + hi + " 户")), kind === "dedicated" ? "dedicated grid" :
      (inBand ? "within " + lo + "–" + hi : (s.households < lo ? "below " + lo : "above " + hi)));
    $("band-state").className = inBand ? "ok" : "bad";
    $("band-bar").style.width = Math.min(100, 100 * s.households / (hi * 1.2)) + "%";
    $("band-bar").className = inBand ? "ok" : "bad";
    var compact = p.compactness !== undefined ? p.compactness : g.compactness;
    var parts = p.parts !== undefined ? p.parts : g.parts;
    $("grid-compactness").textContent = compact === undefined || compact === null ? "—" : Number(compact).toFixed(3);
    window.gridmapSay($("grid-contiguity"), parts > 1 ? "不连续（" + parts + " 块）" : "连续",
                      parts > 1 ? "not contiguous (" + parts + " pieces)" : "contiguous");
    $("grid-contiguity").className = parts > 1 ? "bad" : "ok";
    $("grid-community").textContent = g.community || "";
  }
  function showSummary(s) {
    if (!s) return;
    window.gridmapSay($("plan-summary"),
      s.grids + " 个网格（综合 " + s.comprehensive + "，专属 " + s.dedicated + "）；" + s.in_band + "/" + s.comprehensive +
      " 个综合网格在户数区间内；" + s.not_contiguous + " 个不连续",
      s.grids + " grids (" + s.comprehensive + " comprehensive, " + s.dedicated + " dedicated); " + s.in_band + "/" +
      s.comprehensive + " comprehensive grids in the band; " + s.not_contiguous + " not contiguous");
  }
  function preview() {
    var ops = pendingOperations();
    if (!ops.length || !state.plan) { state.preview = {}; updatePanel(); return; }
    api("POST", "/api/plans/" + state.plan + "/edits", { version: state.version, operations: ops, dry_run: true })
      .then(function (res) {
        if (!res.ok) return;
        state.preview = {};
        res.data.grids.forEach(function (g) { state.preview[g.code] = g; });
        showSummary(res.data.summary); updatePanel();
      });
  }

  // -- tools ----------------------------------------------------------------------------------------
  var HINTS = {
    select: ["点击单元以选中其网格", "Click a unit to select its grid"],
    paint: ["点击单元，将其涂入当前网格", "Click units to paint them into the selected grid"],
    lasso: ["按住鼠标拖出套索，套中的单元涂入当前网格", "Drag a lasso: the units inside go to the selected grid"],
    merge: ["点击另一个网格的单元，把那个网格并入当前网格", "Click a unit of another grid to merge that grid into the selected one"],
    split: ["点击当前网格中的单元选出新网格，然后点“完成拆分”", "Click units of the selected grid for the new grid, then Finish split"],
    cut: ["先点击要切分的单元，再点击画出切线（至少两点，从单元外穿过单元），然后点“完成切线”",
          "Click the unit to cut, then click points of a line across it (from outside to outside), then Finish line"],
  };
  function setTool(tool) {
    state.tool = tool;
    document.querySelectorAll(".tool").forEach(function (b) { b.classList.toggle("active", b.dataset.tool === tool); });
    window.gridmapSay($("tool-hint"), HINTS[tool][0], HINTS[tool][1]);
    $("finish-split").hidden = tool !== "split"; $("finish-cut").hidden = tool !== "cut";
    state.splitPick = {}; clearCut(); restyle();
    if (tool === "lasso") map.dragging.disable(); else map.dragging.enable();
    map.getContainer().style.cursor = tool === "select" ? "" : "crosshair";
  }
  document.querySelectorAll(".tool").forEach(function (b) {
    b.addEventListener("click", function () { setTool(b.dataset.tool); });
  });
  function needSelection() {
    if (!state.selected) { message("请先选择一个网格（选择工具）", "Select a grid first (Select tool)", "warn"); return false; }
    return true;
  }
  function onUnitClick(u, ev) {
    if (state.tool === "cut") {
      if (!state.cutUnit) {
        state.cutUnit = u.id; restyle([u.id]);
        message("已选中单元 " + u.id + "：现在画切线", "Unit " + u.id + " chosen: now draw the line", "info");
      } else addCutPoint(ev.latlng);
      return;
    }
    if (state.tool === "select" || !state.selected) { selectGrid(u.grid); return; }
    if (state.tool === "paint") { move([u.id], state.selected); return; }
    if (state.tool === "merge") {
      if (u.grid === state.selected) return;
      var other = u.grid;
      var ids = Object.keys(state.units).filter(function (k) { return state.units[k].grid === other; }).map(Number);
      move(ids, state.selected);
      message("已将网格 " + other + " 并入 " + state.selected, "Grid " + other + " merged into " + state.selected, "ok");
      return;
    }
    if (state.tool === "split") {
      if (u.grid !== state.selected) return;
      if (state.splitPick[u.id]) delete state.splitPick[u.id]; else state.splitPick[u.id] = true;
      restyle([u.id]);
    }
  }
  function selectGrid(code) {
    var before = state.selected;
    state.selected = code;
    restyle(Object.keys(state.units).filter(function (k) {
      var g = state.units[k].grid; return g === code || g === before; }));
    updatePanel();
  }
  function nextCode(community) {
    var codes = Object.keys(state.grids).concat(Object.keys(state.units).map(function (k) { return state.units[k].grid; }))
      .filter(function (c) { return c.indexOf(community) === 0; });
    var width = Math.max.apply(null, codes.map(function (c) { return c.length; }).concat([community.length + 3]));
    var max = 0;
    codes.forEach(function (c) { if (c.length === width) max = Math.max(max, parseInt(c.slice(community.length), 10) || 0); });
    var seq = String(max + 1);
    while (community.length + seq.length < width) seq = "0" + seq;
    return community + seq;
  }
  $("finish-split").addEventListener("click", function () {
    var ids = Object.keys(state.splitPick).map(Number);
    var total = localStats(state.selected).units;
    if (!ids.length || ids.length >= total) {
      message("请选出部分（而非全部）单元", "Pick some but not all of the grid's units", "warn"); return;
    }
    var code = nextCode(state.units[ids[0]].community);
    state.grids[code] = state.grids[code] || { code: code, community: state.units[ids[0]].community, kind: "comprehensive" };
    state.splitPick = {};
    move(ids, code);
    delete state.grids[code];   // not saved yet: created by the save
    selectGrid(code);
    message("新网格 " + code + "（保存后生效）", "New grid " + code + " (created on save)", "ok");
  });

  // lasso
  var lasso = null;
  function pointInPolygon(pt, poly) {
    var inside = false;
    for (var i = 0, j = poly.length - 1; i < poly.length; j = i++) {
      var xi = poly[i].lng, yi = poly[i].lat, xj = poly[j].lng, yj = poly[j].lat;
      if (((yi > pt[0]) !== (yj > pt[0])) && (pt[1] < (xj - xi) * (pt[0] - yi) / (yj - yi) + xi)) inside = !inside;
    }
    return inside;
  }
  function lassoStart(ev) {
    if (state.tool !== "lasso") return;
    lasso = L.polyline([ev.latlng], { color: "#c0392b", weight: 2, dashArray: "4 4", interactive: false }).addTo(map);
  }
  function lassoMove(ev) { if (lasso) lasso.addLatLng(ev.latlng); }
  function lassoEnd() {
    if (!lasso) return;
    var ring = lasso.getLatLngs();
    map.removeLayer(lasso); lasso = null;
    if (ring.length < 3 || !needSelection()) return;
    var ids = Object.keys(state.units).filter(function (k) { return pointInPolygon(state.units[k].label, ring); }).map(Number);
    move(ids, state.selected);
  }

  // cut
  function clearCut() {
    var unit = state.cutUnit;
    state.cutUnit = null;
    if (unit && state.units[unit]) restyle([unit]);
    state.cutPoints = [];
    if (state.cutLine) { map.removeLayer(state.cutLine); state.cutLine = null; }
  }
  function addCutPoint(latlng) {
    state.cutPoints.push(latlng);
    if (!state.cutLine) state.cutLine = L.polyline([], { color: "#c0392b", weight: 3, interactive: false }).addTo(map);
    state.cutLine.setLatLngs(state.cutPoints);
  }
  $("finish-cut").addEventListener("click", function () {
    if (!editable()) return;
    if (state.cutPoints.length < 2) { message("切线至少需要两个点", "A cut line needs two points or more", "warn"); return; }
    var line = { type: "LineString", coordinates: state.cutPoints.map(function (p) { return [p.lng, p.lat]; }) };
    var target = state.units[state.cutUnit];
    if (!target) { message("请先点击要切分的单元", "Click the unit to cut first", "warn"); return; }
    var ops = pendingOperations().concat([{ op: "cut", unit: target.id, line: line }]);
    save(ops, function (data) {
      if (!data.new_units) return;
      unitLayer.removeLayer(target.layer); delete state.units[target.id];
      data.new_units.features.forEach(addUnit);
      message("单元 " + target.id + " 已切分为 " + data.new_units.features.length + " 个单元",
              "Unit " + target.id + " cut into " + data.new_units.features.length + " units", "ok");
    });
    clearCut();
  });

  // -- save, validate, diff, publish ----------------------------------------------------------------
  function save(ops, then) {
    if (!editable()) return;
    ops = ops || pendingOperations();
    if (!ops.length) { message("没有需要保存的修改", "Nothing to save", "info"); return; }
    api("POST", "/api/plans/" + state.plan + "/edits", { version: state.version, operations: ops, with_geometry: true })
      .then(function (res) {
        if (res.status === 409) {
          var d = res.data || {};
          message("保存冲突：草稿已被他人修改（您的版本 " + d.your_version + "，当前版本 " + d.current_version +
                  "）。请重新载入后再编辑。", "Conflict: someone else saved this draft (your version " + d.your_version +
                  ", current " + d.current_version + "). Reload and apply your change again.", "error conflict");
          return;
        }
        if (!res.ok) { message("保存失败：" + detail(res), "Save failed: " + detail(res), "error"); return; }
        var data = res.data;
        state.version = data.version;
        Object.keys(state.units).forEach(function (k) { state.units[k].saved = state.units[k].grid; });
        data.removed.forEach(removeGrid);
        drawGrids(data.features || { features: [] }, false);
        state.preview = {}; state.undo = []; state.redo = [];
        showSummary(data.summary);
        if (then) then(data);
        restyle(); updatePending(); updatePanel();
        window.gridmapSay($("plan-info"), "版本 " + state.version + " · 草稿，可编辑", "version " + state.version + " · draft, editable");
        if (!then) message("已保存（版本 " + data.version + "，" + data.elapsed_ms + " 毫秒）",
                           "Saved (version " + data.version + ", " + data.elapsed_ms + " ms)", "ok");
      });
  }
  $("save").addEventListener("click", function () { save(); });

  $("validate").addEventListener("click", function () {
    if (!state.plan) return;
    api("GET", "/api/plans/" + state.plan + "/validate").then(function (res) {
      var list = $("problems");
      list.innerHTML = "";
      if (!res.ok) { message("校验失败：" + detail(res), "Validation failed: " + detail(res), "error"); return; }
      res.data.problems.forEach(function (p) {
        var li = document.createElement("li");
        li.className = "problem " + p.severity;
        window.gridmapSay(li, p.message_zh, p.message_en);
        li.addEventListener("click", function () {
          if (p.bbox) map.fitBounds([[p.bbox[1], p.bbox[0]], [p.bbox[3], p.bbox[2]]], { maxZoom: 17 });
          if (p.grid_code) selectGrid(p.grid_code);
        });
        list.appendChild(li);
      });
      message("校验完成：" + res.data.errors + " 个错误，" + res.data.warnings + " 个提示",
              "Validated: " + res.data.errors + " errors, " + res.data.warnings + " warnings",
              res.data.errors ? "error" : "ok");
    });
  });

  $("diff").addEventListener("click", function () {
    if (!state.plan) return;
    if (state.diffLayer) { map.removeLayer(state.diffLayer); state.diffLayer = null; $("diff-summary").textContent = ""; return; }
    api("GET", "/api/plans/" + state.plan + "/diff").then(function (res) {
      if (!res.ok) { message("无法对比：" + detail(res), "Cannot diff: " + detail(res), "error"); return; }
      var colours = { added: "#2ca02c", changed: "#ff7f0e", removed: "#d62728" };
      state.diffLayer = L.geoJSON(res.data.features, { interactive: false, style: function (f) {
        return { renderer: canvas, color: colours[f.properties.change], weight: 4, fillOpacity: 0.15,
                 dashArray: f.properties.change === "removed" ? "6 4" : null };
      } }).addTo(map);
      var d = res.data;
      window.gridmapSay($("diff-summary"), "与已发布方案相比：新增 " + d.added.length + "，删除 " + d.removed.length +
        "，变更 " + d.changed.length + " 个网格；移动 " + d.units_moved + " 个单元（再点一次关闭）",
        "Against the published plan: " + d.added.length + " added, " + d.removed.length + " removed, " +
        d.changed.length + " changed grids; " + d.units_moved + " units moved (click again to hide)");
    });
  });

  $("publish").addEventListener("click", function () {
    if (!editable()) return;
    if (pendingUnits().length) { message("请先保存修改再发布", "Save your changes before publishing", "warn"); return; }
    if (!window.confirm(T("发布此草稿？当前已发布方案将转为历史。", "Publish this draft? The published plan becomes history."))) return;
    api("POST", "/api/plans/" + state.plan + "/publish", { version: state.version }).then(function (res) {
      if (res.status === 409) { message("无法发布：" + detail(res), "Cannot publish: " + detail(res), "error conflict"); return; }
      if (!res.ok) { message("发布失败：" + detail(res), "Publish failed: " + detail(res), "error"); return; }
      var published = res.data;
      loadPlans(state.plan).then(function () {
        message("已发布：方案 v" + published.version + " 现为已发布方案", "Published: plan v" + published.version +
                " is now the published plan", "ok");
      });
    });
  });

  // -- map ------------------------------------------------------------------------------------------
  function basemap() {  // configured on the server; none by default
    var layers = [];
    try { layers = JSON.parse($("map").dataset.basemaps || "[]"); } catch (e) { layers = []; }
    layers.forEach(function (b) {
      L.tileLayer(b.url, { subdomains: b.subdomains || "abc", maxZoom: b.maxZoom || 19, attribution: b.attribution || "" })
        .addTo(map);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    canvas = L.canvas({ padding: 0.1, tolerance: 2 });
    // one canvas for everything: a second one (e.g. for the lasso line) would lie on top and swallow clicks
    map = L.map("map", { preferCanvas: true, renderer: canvas, zoomSnap: 0.25, boxZoom: false }).setView([64.13, -21.9], 12);
    basemap();
    unitLayer = L.featureGroup().addTo(map);
    borderLayer = L.featureGroup().addTo(map);
    labelLayer = L.featureGroup();
    map.on("zoomend", function () {
      if (map.getZoom() >= 15) { if (!map.hasLayer(labelLayer)) map.addLayer(labelLayer); }
      else if (map.hasLayer(labelLayer)) map.removeLayer(labelLayer);
    });
    map.on("mousedown", lassoStart);
    map.on("mousemove", lassoMove);
    map.on("mouseup", lassoEnd);
    map.on("click", function (ev) { if (state.tool === "cut" && state.cutUnit) addCutPoint(ev.latlng); });
    setTool("select");
    var token = null;
    try { token = sessionStorage.getItem("gridmap.token"); } catch (e) { /* ignore */ }
    if (token) {
      state.token = token;
      api("GET", "/api/auth/me").then(function (res) { if (res.ok) signedIn(token, res.data); else signOut(); });
    } else {
      loadTerritories();
    }
  });
  window.gridmapPlanner = state;  // for tests and the console
  window.gridmapPlannerMap = function () { return map; };
})();
