// The emergency board (/emergency, 平战结合): sign in; pick the territory; with none on, an
// administrator switches the whole territory, or grids picked on the map, into emergency mode of a
// kind; while one is on, every grid of it is coloured by its status (normal, affected, needs
// support, cleared) with a red dashed edge where its check-in is missing, workers' last positions
// are marked, the table lists the grids most in need first, and everything refreshes itself every
// 15 seconds; an administrator ends it; an ended one shows its report. Every text in Chinese and
// English (data-zh/data-en through gridmapSay, T() for strings made here).
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var say = function (el, zh, en) { window.gridmapSay(el, zh, en); };
  var T = function (zh, en) { return window.gridmapT(zh, en); };
  var localTime = window.gridmapLocalTime;
  var REFRESH_MS = 15000;
  var STATUS_COLOURS = { normal: "#a6d96a", affected: "#fdae61", needs_support: "#d7191c", cleared: "#2c7bb6" };
  var CHECKIN = { on_time: ["按时", "on time"], late: ["迟到", "late"], missing: ["未签到", "missing"],
                  waiting: ["待签到", "waiting"] };
  var state = { token: null, user: null, territory: null, emergencies: [], current: null, board: null,
                picked: {}, timer: null, ticket: 0, refreshMs: REFRESH_MS };
  window.gridmapBoard = state;

  var map = L.map("map", { zoomControl: true }).setView([30, 110], 4);
  window.gridmapBoardMap = function () { return map; };
  var basemaps = [];
  try { basemaps = JSON.parse($("map").dataset.basemaps || "[]"); } catch (e) { basemaps = []; }
  basemaps.forEach(function (b) {
    L.tileLayer(b.url, { subdomains: b.subdomains || "abc", maxZoom: b.maxZoom || 19, attribution: b.attribution || "" }).addTo(map);
  });
  // the territory's grids (for picking and for context), the emergency's grids, workers' positions
  var allGrids = L.geoJSON(null, { style: pickStyle, onEachFeature: function (f, layer) {
    layer.on("click", function () { pick(f.properties.grid_code, layer); });
  } }).addTo(map);
  var emergencyGrids = L.geoJSON(null, { style: boardStyle, onEachFeature: function (f, layer) {
    layer.bindTooltip(function () { return tooltip(f.properties.grid_code); });
  } }).addTo(map);
  var positions = L.layerGroup().addTo(map);

  function message(zh, en, kind) { var el = $("message"); if (!zh) { window.gridmapPlain(el, ""); return; } say(el, zh, en); el.className = kind || "info"; }
  function refusal(res, zh, en) {
    var d = res.data || {};
    var detail = Array.isArray(d.detail) ? d.detail.map(function (x) { return x.msg; }).join("; ") : d.detail;
    message(zh + (d.detail_zh || detail || res.status), en + (d.detail_en || detail || res.status), "error");
  }
  function api(method, path, body) {
    var headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    var init = { method: method, headers: headers };
    if (body instanceof URLSearchParams) init.body = body;
    else if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    return fetch(path, init).then(function (r) {
      return r.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
        if (r.status === 401 && state.token) signOut();
        return { ok: r.ok, status: r.status, data: data };
      });
    });
  }
  function el(tag, text) { var e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e; }

  // -- sign in --------------------------------------------------------------------------------------
  function signedIn(token, user) {
    state.token = token; state.user = user;
    try { sessionStorage.setItem("gridmap.token", token); } catch (e) { /* private mode */ }
    $("login").hidden = true; $("controls").hidden = false; $("logout").hidden = false;
    window.gridmapPlain($("who"), user.display_name || user.username);
    loadTerritories();
  }
  function signOut() {
    state.token = null; state.user = null; state.current = null; state.board = null;
    try { sessionStorage.removeItem("gridmap.token"); } catch (e) { /* ignore */ }
    stopRefresh();
    $("login").hidden = false; $("controls").hidden = true; $("start").hidden = true; $("current").hidden = true;
    $("logout").hidden = true;
    window.gridmapPlain($("who"), "");
    allGrids.clearLayers(); emergencyGrids.clearLayers(); positions.clearLayers();
    clearDetail();  // names and phones of focus households go with the one who read them
  }
  function clearDetail() { var box = $("grid-detail"); box.hidden = true; box.textContent = ""; delete box.dataset.grid; }
  $("login").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var form = new URLSearchParams({ username: $("username").value, password: $("password").value });
    api("POST", "/api/auth/token", form).then(function (res) {
      if (!res.ok) { refusal(res, "登录失败：", "Sign-in failed: "); return; }
      $("password").value = "";
      message();
      signedIn(res.data.access_token, res.data.user);
    });
  });
  $("logout").addEventListener("click", function () {
    if (state.token) api("POST", "/api/auth/logout").catch(function () { /* it expires by itself */ });
    signOut();
  });
  function administrator() {
    return ((state.user && state.user.roles) || []).some(function (r) { return r.role === "admin"; });
  }

  // -- territory, its kinds, its emergencies, its grids ----------------------------------------------
  function loadTerritories() {
    api("GET", "/api/territories").then(function (res) {
      if (!res.ok) { refusal(res, "无法读取辖区：", "Cannot read the territories: "); return; }
      var select = $("territory"), planned = function (t) { return t.plans > 0; };
      select.length = 0;
      res.data.filter(planned).forEach(function (t) {
        var o = el("option", t.name + " (" + t.code + ")"); o.value = t.code; select.appendChild(o);
      });
      var asked = new URLSearchParams(location.search).get("territory");
      if (asked && Array.prototype.some.call(select.options, function (o) { return o.value === asked; })) select.value = asked;
      else select.value = window.gridmapHomeTerritory(res.data, state.user && state.user.roles, planned) || "";
      loadTerritory();
    });
  }
  $("territory").addEventListener("change", loadTerritory);
  function loadTerritory() {
    var code = $("territory").value;
    if (!code) return;
    state.territory = code; state.picked = {}; state.current = null;
    stopRefresh();
    var base = "/api/territories/" + encodeURIComponent(code);
    Promise.all([api("GET", base + "/emergency-kinds"), api("GET", base + "/emergencies"), api("GET", base + "/plans")])
      .then(function (r) {
        var failed = r.filter(function (x) { return !x.ok; })[0];
        if (failed) { refusal(failed, "无法读取应急信息：", "Cannot read the emergencies: "); return; }
        var kinds = $("kind");
        kinds.length = 0;
        r[0].data.kinds.forEach(function (k) {  // the English name as a label: "Flood", not the API's "flood"
          var o = el("option"); o.value = k.kind; say(o, k.kind_zh, k.kind_en.charAt(0).toUpperCase() + k.kind_en.slice(1));
          kinds.appendChild(o);
        });
        state.emergencies = r[1].data;
        fillEmergencies();
        var published = (r[2].data || []).filter(function (p) { return p.status === "published"; })[0];
        allGrids.clearLayers();
        if (!published) { showSelected(); return; }
        api("GET", "/api/plans/" + published.id + "/grids").then(function (g) {
          if (!g.ok || code !== state.territory) return;
          allGrids.addData(g.data);
          if (allGrids.getLayers().length) map.fitBounds(allGrids.getBounds());
          showSelected();
        });
      });
  }
  function fillEmergencies() {
    var select = $("emergency"), on = state.emergencies.filter(function (e) { return !e.ended_at; })[0];
    select.length = 0;
    if (!on) { var none = el("option"); none.value = ""; say(none, "— 当前无应急 —", "— none on —"); select.appendChild(none); }
    state.emergencies.forEach(function (e) {
      var o = el("option"); o.value = String(e.id);
      say(o, "#" + e.id + " " + e.kind + " " + localTime(e.started_at) + (e.ended_at ? "（已结束）" : "（进行中）"),
          "#" + e.id + " " + e.kind_en + " " + localTime(e.started_at) + (e.ended_at ? " (ended)" : " (on)"));
      select.appendChild(o);
    });
    select.value = on ? String(on.id) : "";
  }
  $("emergency").addEventListener("change", showSelected);
  function showSelected() {
    var id = $("emergency").value;
    stopRefresh();
    emergencyGrids.clearLayers(); positions.clearLayers(); clearDetail();
    state.current = id ? state.emergencies.filter(function (e) { return String(e.id) === id; })[0] : null;
    $("start").hidden = !!state.current || !administrator() || state.emergencies.some(function (e) { return !e.ended_at; });
    $("current").hidden = !state.current;
    allGrids.setStyle(pickStyle);
    showPicked();
    if (!state.current) { document.body.dataset.ready = "true"; return; }
    api("GET", "/api/emergencies/" + state.current.id + "/map").then(function (res) {
      if (!res.ok || !state.current || String(state.current.id) !== id) return;
      emergencyGrids.addData(res.data);
      if (emergencyGrids.getLayers().length) map.fitBounds(emergencyGrids.getBounds().pad(0.1));
      refresh();
    });
  }

  // -- switching on: the whole territory, or grids picked on the map ----------------------------------
  function pickStyle(f) {
    var on = state.picked[f.properties.grid_code];
    return { color: on ? "#d7191c" : "#888", weight: on ? 2.5 : 0.6, fillColor: on ? "#fdae61" : "#ffffff",
             fillOpacity: on ? 0.5 : (state.current ? 0 : 0.05), interactive: !state.current };
  }
  function pick(code, layer) {
    if (state.current || $("start").hidden) return;
    if (state.picked[code]) delete state.picked[code]; else state.picked[code] = true;
    layer.setStyle(pickStyle(layer.feature));
    document.querySelector("input[name=scope][value=grids]").checked = true;
    showPicked();
  }
  function showPicked() {
    var n = Object.keys(state.picked).length;
    if ($("start").hidden) { window.gridmapPlain($("picked"), ""); return; }
    say($("picked"), n ? "已点选 " + n + " 个网格" : "可在地图上点选网格（再点一次取消）",
        n ? n + " grids picked" : "Pick grids on the map (click again to drop one)");
  }
  $("start").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var grids = document.querySelector("input[name=scope]:checked").value === "grids" ? Object.keys(state.picked) : [];
    if (document.querySelector("input[name=scope]:checked").value === "grids" && !grids.length) {
      message("请先在地图上点选网格", "Pick the grids on the map first", "warn"); return;
    }
    $("start-button").disabled = true;
    api("POST", "/api/territories/" + encodeURIComponent(state.territory) + "/emergencies",
        { kind: $("kind").value, reason: $("reason").value, grids: grids }).then(function (res) {
      $("start-button").disabled = false;
      if (!res.ok) { refusal(res, "无法启动应急：", "Cannot switch on: "); return; }
      message("应急已启动：" + res.data.grids.length + " 个网格", "Switched on: " + res.data.grids.length + " grids", "ok");
      state.picked = {}; $("reason").value = "";
      reloadEmergencies(res.data.id);
    });
  });
  function reloadEmergencies(select) {
    api("GET", "/api/territories/" + encodeURIComponent(state.territory) + "/emergencies").then(function (res) {
      if (!res.ok) return;
      state.emergencies = res.data;
      fillEmergencies();
      if (select) $("emergency").value = String(select);
      showSelected();
    });
  }
  $("end").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!state.current) return;
    api("POST", "/api/emergencies/" + state.current.id + "/end", { note: $("end-note").value || null }).then(function (res) {
      if (!res.ok) { refusal(res, "无法结束应急：", "Cannot end it: "); return; }
      message("应急已结束", "The emergency has ended", "ok");
      $("end-note").value = "";
      reloadEmergencies(state.current.id);
    });
  });

  // -- the board: refreshed every 15 seconds while the emergency is on ------------------------------
  function stopRefresh() { if (state.timer) { clearTimeout(state.timer); state.timer = null; } }
  function refresh() {
    var current = state.current, ticket = ++state.ticket;
    if (!current) return;
    document.body.dataset.ready = "false";
    api("GET", "/api/emergencies/" + current.id + "/board").then(function (res) {
      if (ticket !== state.ticket || state.current !== current) return;
      if (!res.ok) {  // (a proxy's 502 while the server restarts): said, and tried again
        refusal(res, "无法读取应急看板：", "Cannot read the board: ");
        if (res.status !== 401 && res.status !== 403 && res.status !== 404) state.timer = setTimeout(refresh, state.refreshMs);
        return;
      }
      state.board = res.data;
      state.current = Object.assign({}, current, res.data.emergency);
      draw();
      if (state.current.ended_at) loadReport(); else $("report").hidden = true;
      say($("refreshed"), "更新于 " + localTime(res.data.now).slice(11) + (state.current.ended_at ? "" : "，每 15 秒自动刷新"),
          "Updated at " + localTime(res.data.now).slice(11) + (state.current.ended_at ? "" : ", refreshed every 15 s"));
      document.body.dataset.ready = "true";
      document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
      if (!state.current.ended_at) state.timer = setTimeout(refresh, state.refreshMs);
    }, function () { state.timer = setTimeout(refresh, state.refreshMs); });  // offline for a moment: try again
  }
  function row(code) { return ((state.board && state.board.grids) || []).filter(function (g) { return g.grid_code === code; })[0]; }
  function boardStyle(f) {
    var g = row(f.properties.grid_code);
    if (!g) return { color: "#555", weight: 1, fillOpacity: 0.1 };
    var missing = g.checkin === "missing";
    return { color: missing ? "#d7191c" : "#333", weight: missing ? 3 : 1, dashArray: missing ? "6 4" : null,
             fillColor: STATUS_COLOURS[g.status], fillOpacity: 0.6 };
  }
  function tooltip(code) {
    var g = row(code);
    if (!g) return code;
    return code + " · " + T(g.status_zh, g.status_en) + "<br>" + T("签到：", "Check-in: ") +
      T(CHECKIN[g.checkin][0], CHECKIN[g.checkin][1]) + (g.checked_in_by ? " · " + g.checked_in_by : "") +
      (g.escalation_level ? "<br>" + T(["", "已报社区", "已报街道"][g.escalation_level], ["", "sent to the community",
                                                                                     "sent to the street"][g.escalation_level]) : "");
  }
  var NEED_FIRST = { needs_support: 0, affected: 1, normal: 2, cleared: 3 };
  function draw() {
    var b = state.board, current = state.current;
    emergencyGrids.setStyle(boardStyle);
    positions.clearLayers();
    b.grids.forEach(function (g) {
      if (g.position) L.circleMarker([g.position[1], g.position[0]], { radius: 5, color: "#000", weight: 1, fillColor: "#fff",
                                                                       fillOpacity: 1, interactive: false }).addTo(positions);
    });
    say($("current-title"), "#" + current.id + " " + current.kind + (current.ended_at ? "（已结束）" : "（进行中）"),
        "#" + current.id + " " + current.kind_en + (current.ended_at ? " (ended)" : " (on)"));
    say($("current-meta"), current.reason + " · 启动 " + localTime(current.started_at) + " · 签到截止 " + localTime(current.checkin_due) +
        (current.ended_at ? " · 结束 " + localTime(current.ended_at) : ""),
        current.reason + " · on " + localTime(current.started_at) + " · check in by " + localTime(current.checkin_due) +
        (current.ended_at ? " · ended " + localTime(current.ended_at) : ""));
    var t = b.totals, list = $("totals");
    list.textContent = "";
    [["网格", "Grids", t.grids], ["按时签到", "Checked in on time", t.checkin_on_time], ["迟到", "Late", t.checkin_late],
     ["未签到", "Missing", t.checkin_missing], ["待签到", "Waiting", t.checkin_waiting],
     ["受影响", "Affected", t.status_affected], ["需要支援", "Needs support", t.status_needs_support],
     ["已解除", "Cleared", t.status_cleared], ["已报社区 / 街道", "Sent to community / street",
                                              t.escalated_community + " / " + t.escalated_street],
     ["在办事件", "Open incidents", t.open_incidents], ["重点关注户", "Focus households", t.focus_households]
    ].forEach(function (x) { var dt = el("dt"), dd = el("dd", String(x[2])); say(dt, x[0], x[1]); list.appendChild(dt); list.appendChild(dd); });
    $("end").hidden = !!current.ended_at || !administrator();
    var body = $("grids").querySelector("tbody");
    body.textContent = "";
    b.grids.slice().sort(function (a, c) {
      return (a.checkin === "missing" ? -1 : 0) - (c.checkin === "missing" ? -1 : 0) ||
        NEED_FIRST[a.status] - NEED_FIRST[c.status] || (a.grid_code < c.grid_code ? -1 : 1);
    }).forEach(function (g) {
      var tr = el("tr"); tr.dataset.grid = g.grid_code; tr.dataset.status = g.status; tr.dataset.checkin = g.checkin;
      tr.appendChild(el("td", g.grid_code));
      var status = el("td"); say(status, g.status_zh, g.status_en); status.style.color = STATUS_COLOURS[g.status]; tr.appendChild(status);
      var checkin = el("td");
      say(checkin, CHECKIN[g.checkin][0] + (g.checked_in_at ? " " + localTime(g.checked_in_at).slice(11) : ""),
          CHECKIN[g.checkin][1] + (g.checked_in_at ? " " + localTime(g.checked_in_at).slice(11) : ""));
      tr.appendChild(checkin);
      [g.open_incidents, g.focus_households, g.resources,
       g.knock_targets === null ? "—" : g.knock_reached + "/" + g.knock_targets].forEach(function (v) {
        var td = el("td", String(v)); td.style.textAlign = "right"; tr.appendChild(td);
      });
      tr.addEventListener("click", function () {
        emergencyGrids.eachLayer(function (l) { if (l.feature.properties.grid_code === g.grid_code) map.fitBounds(l.getBounds().pad(0.5)); });
        showResources(g.grid_code);
      });
      body.appendChild(tr);
    });
  }
  // The resources near a grid (the resources list), nearest first: what command can send there.
  function showResources(code) {
    var current = state.current;
    api("GET", "/api/emergencies/" + current.id + "/grids/" + encodeURIComponent(code) + "/resources").then(function (res) {
      if (!res.ok || state.current !== current) return;
      var box = $("grid-detail"), title = el("p");
      box.hidden = false; box.textContent = "";
      box.dataset.grid = code;
      say(title, "网格 " + code + " 附近 " + res.data.within_m + " 米内的资源：" + res.data.resources.length,
          "Resources within " + res.data.within_m + " m of grid " + code + ": " + res.data.resources.length);
      box.appendChild(title);
      var list = el("ul");
      res.data.resources.forEach(function (r) {
        var li = el("li");
        say(li, r.name + "（" + r.kind_zh + "，" + r.distance_m + " 米" + (r.capacity ? "，容量 " + r.capacity : "") + "）",
            r.name + " (" + r.kind_en + ", " + r.distance_m + " m" + (r.capacity ? ", capacity " + r.capacity : "") + ")");
        list.appendChild(li);
      });
      box.appendChild(list);
      var button = el("button");
      button.type = "button"; button.id = "focus-list";
      say(button, "重点关注户名单（入户核查）", "Focus households (door-to-door checks)");
      button.addEventListener("click", function () { showFocus(code, box); });
      box.appendChild(button);
    });
  }
  // The grid's households with a focus tag (独居老人, 残疾人 …) for the door-to-door checks: personal
  // data, read by the grid's staff and the administrators only, and every read is audited.
  function showFocus(code, box) {
    var base = "/api/territories/" + encodeURIComponent(state.territory);
    Promise.all([api("GET", base + "/grids/" + encodeURIComponent(code) + "/households"),
                 api("GET", base + "/households/summary")]).then(function (both) {
      var res = both[0], names = {};
      ((both[1].ok && both[1].data.focus_tags) || []).forEach(function (t) { names[t.tag] = t; });
      var tag = function (t) { return names[t] ? T(names[t].tag_zh, names[t].tag_en) : t; };
      var old = $("focus-households");
      if (old) old.remove();
      var list = el("ul"); list.id = "focus-households";
      box.appendChild(list);
      if (!res.ok) {
        var li = el("li"), d = res.data || {};
        if (res.status === 403) say(li, "仅本网格工作人员和管理员可查看住户信息。", "Only the grid's staff and the administrators see its households.");
        else say(li, "无法读取住户：" + (d.detail_zh || d.detail || res.status), "Cannot read the households: " + (d.detail_en || d.detail || res.status));
        list.appendChild(li);
        return;
      }
      var focus = res.data.households.filter(function (h) { return h.residents.some(function (r) { return r.tags.length; }); });
      if (!focus.length) { var none = el("li"); say(none, "本网格没有登记重点关注户。", "No focus household registered in this grid."); list.appendChild(none); }
      focus.forEach(function (h) {
        var li = el("li"); li.className = "focus";
        li.textContent = [h.building_label, h.stairwell ? h.stairwell + T("单元", " stairwell") : "", h.room || ""].filter(Boolean).join(" ") +
          " · " + h.residents.filter(function (r) { return r.tags.length; }).map(function (r) {
            return r.name + " (" + r.tags.map(tag).join(", ") + ")" + (r.phone ? " " + r.phone : "");
          }).join("；");
        list.appendChild(li);
      });
    });
  }
  function loadReport() {
    api("GET", "/api/emergencies/" + state.current.id + "/report").then(function (res) {
      if (!res.ok || !state.current) return;
      var r = res.data, box = $("report");
      box.hidden = false; box.textContent = "";
      var line = function (zh, en) { var p = el("p"); say(p, zh, en); box.appendChild(p); };
      var c = r.checkins, h = r.households;
      line("报告：历时 " + r.duration_minutes + " 分钟；签到按时 " + c.on_time + "、迟到 " + c.late + "、未签到 " + c.missing,
           "Report: " + r.duration_minutes + " min; check-ins on time " + c.on_time + ", late " + c.late + ", missing " + c.missing);
      line("事件 " + r.incidents.total + " 件（应急类 " + r.incidents.emergency + "）；敲门已入户 " + h.reached + " / " + h.targets,
           "Incidents " + r.incidents.total + " (" + r.incidents.emergency + " emergency); doors reached " + h.reached + " / " + h.targets);
      r.incidents.by_department.forEach(function (d) {
        line(d.department + "：" + d.incidents + " 件，响应中位 " + (d.median_response_minutes === null ? "—" : d.median_response_minutes + " 分钟"),
             d.department_en + ": " + d.incidents + ", median response " + (d.median_response_minutes === null ? "—" : d.median_response_minutes + " min"));
      });
      r.whistles.departments.forEach(function (d) {
        line("吹哨 " + d.department + "：响应 " + d.acknowledged + "/" + d.calls + "，报到 " + d.arrived + "（按时 " + d.arrived_on_time + "）",
             "Whistle " + d.department_en + ": acknowledged " + d.acknowledged + "/" + d.calls + ", arrived " + d.arrived +
             " (on time " + d.arrived_on_time + ")");
      });
    });
  }
  document.addEventListener("gridmap:lang", function () { if (state.board) draw(); showPicked(); });

  var token = null;
  try { token = sessionStorage.getItem("gridmap.token"); } catch (e) { /* ignore */ }
  if (token) {
    state.token = token;
    api("GET", "/api/auth/me").then(function (res) { if (res.ok) signedIn(token, res.data); else signOut(); });
  }
})();
