// The people of the grids (/people): sign in, pick a territory, and the published grids are
// coloured by staffing (一格一员: a grid without a full-time worker stands out) or by the households
// register's counts (households registered, residents aged 60 and over, each focus tag). A click
// on a grid shows its staff and figures; the grid's own staff and the administrators also get its
// households, focus residents first (what a grid worker looks at before a round of visits), and
// everyone the grid's open needs, the resources that could meet each, and a form to record a new
// need where the worker stands. On a phone "my grids" (a worker's grids) is on by default. Counts
// come from the API already aggregated; people are fetched only for one grid, on request. Every
// text in Chinese and English.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var say = function (el, zh, en) { window.gridmapSay(el, zh, en); };
  var localTime = window.gridmapLocalTime;
  var T = function (zh, en) { return window.gridmapT(zh, en); };
  var RAMP = ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"];
  var STAFFED = "#74c476", UNSTAFFED = "#de2d26", OTHER = "#bdbdbd";
  var ROLE_NAMES = { grid_leader: ["网格长", "grid leader"], full_time_worker: ["专职网格员", "full-time worker"],
                     part_time_worker: ["兼职网格员", "part-time worker"], supervisor: ["网格指导员", "supervisor"],
                     building_leader: ["楼栋长", "building leader"], stairwell_leader: ["单元长", "stairwell leader"],
                     volunteer: ["志愿者", "volunteer"] };
  var state = { token: null, user: null, territory: null, grids: null, staffing: {}, counts: {}, tags: [], mine: [],
                administrator: false, selected: null, households: null, ready: false, lists: {}, categories: [],
                needs: [], here: null, registrations: {}, patrols: {}, knocks: {}, campaign: null };
  window.gridmapPeople = state;

  var map = L.map("map", { zoomControl: true }).setView([30, 110], 4);
  var basemaps = [];
  try { basemaps = JSON.parse($("map").dataset.basemaps || "[]"); } catch (e) { basemaps = []; }
  basemaps.forEach(function (b) {  // a basemap only when one is configured: the grids need none
    L.tileLayer(b.url, { subdomains: b.subdomains || "abc", maxZoom: b.maxZoom || 19, attribution: b.attribution || "" }).addTo(map);
  });
  var gridLayer = L.geoJSON(null, { style: styleOf, onEachFeature: bindGrid }).addTo(map);
  // the selected grid's buildings by their last patrol visit, and the tracks the reader may see
  var VISIT_COLOURS = { week: "#1a9641", before: "#fdae61", never: "#d7191c" };
  var visitLayer = L.geoJSON(null, { style: function (f) {
    var p = f.properties, kind = p.in_week ? "week" : p.last_visit ? "before" : "never";
    return { color: VISIT_COLOURS[kind], weight: 1, fillColor: VISIT_COLOURS[kind], fillOpacity: 0.7 };
  }, onEachFeature: function (f, layer) {
    var p = f.properties, name = (p.compound_name ? p.compound_name + " " : "") + (p.building_name || "#" + p.building_id);
    layer.bindTooltip(function () {
      return name + " · " + (p.last_visit ? T("最近到访 ", "last visited ") + localTime(p.last_visit) + " · " + p.walker
                                          : T("从未到访", "never visited"));
    });
  } }).addTo(map);
  var trackLayer = L.geoJSON(null, { interactive: false, style: { color: "#2c7bb6", weight: 3, opacity: 0.8 } }).addTo(map);
  window.gridmapPeopleMap = function () { return map; };

  function message(zh, en, kind) {
    var el = $("message");
    if (!zh) { window.gridmapPlain(el, ""); el.className = ""; return; }
    say(el, zh, en);
    el.className = kind || "info";
  }
  function refusal(res, zh, en) {
    var d = res.data || {};
    message(zh + (d.detail_zh || d.detail || res.status), en + (d.detail_en || d.detail || res.status), "error");
  }
  function api(method, path, body, contentType) {
    var headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    if (contentType) headers["Content-Type"] = contentType;
    var init = { method: method, headers: headers };
    if (body !== undefined) init.body = body;
    return fetch(path, init).then(function (r) {
      return r.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
        if (r.status === 401 && state.token && path !== "/api/auth/token") signOut();
        return { ok: r.ok, status: r.status, data: data };
      });
    });
  }
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  // -- sign in --------------------------------------------------------------------------------------
  function signedIn(token, user) {
    state.token = token; state.user = user;
    try { sessionStorage.setItem("gridmap.token", token); } catch (e) { /* private mode */ }
    $("login").hidden = true; $("controls").hidden = false; $("logout").hidden = false;
    window.gridmapPlain($("who"), user.display_name || user.username);
    loadTerritories();
  }
  function signOut() {
    state.token = null; state.user = null;
    try { sessionStorage.removeItem("gridmap.token"); } catch (e) { /* ignore */ }
    $("login").hidden = false; $("controls").hidden = true; $("grid").hidden = true; $("logout").hidden = true;
    window.gridmapPlain($("who"), "");
    gridLayer.clearLayers(); visitLayer.clearLayers(); trackLayer.clearLayers();  // nothing of theirs stays drawn
    state.selected = null;
  }
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
    if (state.token) api("POST", "/api/auth/logout").catch(function () { /* the token expires by itself */ });
    signOut();
  });

  // -- the territory's data -------------------------------------------------------------------------
  function loadTerritories() {
    api("GET", "/api/territories").then(function (res) {
      if (!res.ok) { refusal(res, "无法读取辖区：", "Cannot read the territories: "); return; }
      var select = $("territory"), planned = function (t) { return t.plans > 0; };
      select.length = 0;
      res.data.filter(planned).forEach(function (t) {
        var o = el("option", t.name + " (" + t.code + ")");
        o.value = t.code;
        select.appendChild(o);
      });
      // the address's territory, else the one this user picked last on this device, else their own area
      var saved = null, asked = new URLSearchParams(location.search).get("territory");
      try { saved = localStorage.getItem(savedKey()); } catch (e) { /* ignore */ }
      var known = function (code) { return Array.prototype.some.call(select.options, function (o) { return o.value === code; }); };
      var home = window.gridmapHomeTerritory(res.data, state.user && state.user.roles, planned);
      select.value = asked && known(asked) ? asked : saved && known(saved) ? saved : home || "";
      loadTerritory();
    });
  }
  function savedKey() {  // per user: one sign-in's pick is not the next user's on a shared device
    return "gridmap.peopleTerritory." + (state.user ? state.user.username : "");
  }
  function loadTerritory() {
    var code = $("territory").value;
    if (!code) return;
    state.ready = false; document.body.dataset.ready = "false";
    state.territory = code; state.selected = null; $("grid").hidden = true;
    visitLayer.clearLayers(); trackLayer.clearLayers();
    var base = "/api/territories/" + encodeURIComponent(code);
    Promise.all([api("GET", base + "/plans"), api("GET", base + "/staffing"), api("GET", base + "/households/summary"),
                 api("GET", base + "/my-grids"), api("GET", base + "/lists/summary"),
                 api("GET", base + "/registrations/summary"), api("GET", base + "/patrols/coverage")]).then(function (r) {
      if (code !== $("territory").value) return;  // another territory was picked meanwhile
      var failed = r.filter(function (x) { return !x.ok; })[0];
      if (failed) { refusal(failed, "无法读取该辖区的人员数据：", "Cannot read this territory's people: "); gridLayer.clearLayers(); return; }
      var published = (r[0].data || []).filter(function (p) { return p.status === "published"; })[0];
      if (!published) { message("该辖区还没有已发布的方案。", "This territory has no published plan yet.", "error"); return; }
      state.staffing = {};
      r[1].data.grids.forEach(function (g) { state.staffing[g.grid_code] = g; });
      state.counts = {};
      r[2].data.grids.forEach(function (g) { state.counts[g.grid_code] = g; });
      state.tags = r[2].data.focus_tags; state.elderlyAge = r[2].data.elderly_age;
      state.registerImported = r[2].data.imported;
      state.mine = r[3].data.grids; state.administrator = r[3].data.administrator;
      takeLists(r[4].data);
      state.registrations = {};
      r[5].data.grids.forEach(function (g) { state.registrations[g.grid_code] = g; });
      state.patrols = {};
      r[6].data.grids.forEach(function (g) { state.patrols[g.grid_code] = g; });
      fillMeasures();
      $("mine").disabled = !state.mine.length;
      $("mine").checked = state.mine.length > 0 && (!state.administrator || window.matchMedia("(max-width: 700px)").matches);
      return Promise.all([api("GET", "/api/plans/" + published.id + "/grids"), latestCampaign(base)]).then(function (both) {
        var g = both[0];
        if (!g.ok) { refusal(g, "无法读取网格：", "Cannot read the grids: "); return; }
        if (code !== $("territory").value) return;
        fillMeasures();
        state.grids = g.data;
        draw(true);
        showTotals(r[2].data.totals, r[1].data.summary);
        message();
        state.ready = true; document.body.dataset.ready = "true";
      });
    });
  }
  $("territory").addEventListener("change", function () {  // only a pick by hand is remembered, not a default
    try { localStorage.setItem(savedKey(), $("territory").value); } catch (e) { /* ignore */ }
    loadTerritory();
  });
  // The newest door-knocking campaign still open (敲门行动) and its progress per grid: a measure of
  // the map, grids behind an even pace edged in red.
  function latestCampaign(base) {
    state.campaign = null; state.knocks = {};
    return api("GET", base + "/campaigns").then(function (res) {
      var open = res.ok ? res.data.filter(function (c) { return !c.closed_at; })[0] : null;
      if (!open) return null;
      return api("GET", "/api/campaigns/" + open.id + "/progress").then(function (p) {
        if (!p.ok) return null;
        state.campaign = p.data;
        p.data.grids.forEach(function (g) { state.knocks[g.grid_code] = g; });
        return p.data;
      });
    });
  }
  function takeLists(summary) {
    state.lists = {};
    summary.grids.forEach(function (g) { state.lists[g.grid_code] = g; });
    state.categories = summary.categories;
    var select = $("need-category"), keep = select.value;
    select.length = 0;
    state.categories.forEach(function (c) { var o = el("option"); o.value = c.category; say(o, c.category_zh, c.category_en); select.appendChild(o); });
    if (keep) select.value = keep;
  }

  // -- the map --------------------------------------------------------------------------------------
  function fillMeasures() {
    var select = $("measure"), keep = select.value;
    select.length = 0;
    var add = function (value, zh, en) { var o = el("option"); o.value = value; say(o, zh, en); select.appendChild(o); };
    add("staffing", "一格一员（专职网格员）", "One grid, one worker (full-time)");
    add("households", "登记户数", "Households registered");
    add("elderly", state.elderlyAge + " 岁以上居民", "Residents aged " + state.elderlyAge + "+");
    state.tags.forEach(function (t) { add("tag:" + t.tag, "关注：" + t.tag_zh, "Focus: " + t.tag_en); });
    add("open_needs", "待办需求", "Open needs");
    add("resources", "可用资源", "Resources");
    add("party_members", "双报到党员", "Party members registered (dual registration)");
    add("hours", "今年服务时长（小时）", "Service hours this year");
    add("patrolled", "本周巡查覆盖（%）", "Streets patrolled this week (%)");
    if (state.campaign) add("knocks", "敲门进度（%）：" + state.campaign.campaign.name, "Door-knocking reached (%): " +
                            state.campaign.campaign.name);
    select.value = keep && Array.prototype.some.call(select.options, function (o) { return o.value === keep; }) ? keep : "staffing";
  }
  function valueOf(code) {
    var measure = $("measure").value, c = state.counts[code];
    if (measure === "households") return c ? c.households : 0;
    if (measure === "elderly") return c ? c.elderly : 0;
    if (measure.indexOf("tag:") === 0) return c ? (c.tags[measure.slice(4)] || 0) : 0;
    if (measure === "open_needs" || measure === "resources") return state.lists[code] ? state.lists[code][measure] : 0;
    if (measure === "party_members" || measure === "hours") return state.registrations[code] ? state.registrations[code][measure] : 0;
    if (measure === "patrolled") return state.patrols[code] && state.patrols[code].share ? Math.round(state.patrols[code].share * 100) : 0;
    if (measure === "knocks") return state.knocks[code] && state.knocks[code].share ? Math.round(state.knocks[code].share * 100) : 0;
    return null;
  }
  function maxValue() {
    var most = 0;
    (state.grids ? state.grids.features : []).forEach(function (f) { most = Math.max(most, valueOf(f.properties.grid_code) || 0); });
    return most;
  }
  function colourOf(code) {
    if ($("measure").value === "staffing") {
      var s = state.staffing[code];
      if (!s) return OTHER;  // a dedicated grid: not in the check
      return s.flags.indexOf("no_full_time_worker") >= 0 ? UNSTAFFED : STAFFED;
    }
    var v = valueOf(code), most = state.most || 1;
    if (!v) return RAMP[0];
    return RAMP[Math.min(RAMP.length - 1, 1 + Math.floor((v / most) * (RAMP.length - 1) - 1e-9))];
  }
  function styleOf(feature) {
    var code = feature.properties.grid_code, mine = state.mine.indexOf(code) >= 0;
    var shown = !$("mine").checked || mine;
    var behind = $("measure").value === "knocks" && state.knocks[code] && state.knocks[code].behind;
    return { color: behind ? "#d7191c" : mine ? "#d95f0e" : "#555", weight: behind ? 3 : mine ? 2.5 : 1,
             dashArray: behind ? "6 4" : null, fillColor: colourOf(code), fillOpacity: shown ? 0.75 : 0.08,
             opacity: shown ? 1 : 0.3 };
  }
  function bindGrid(feature, layer) {
    layer.on("click", function () { select(feature.properties.grid_code); });
  }
  function draw(fit) {
    state.most = maxValue();
    gridLayer.clearLayers();
    gridLayer.addData(state.grids);
    legend();
    if (fit) {
      var bounds = L.latLngBounds([]);
      gridLayer.eachLayer(function (l) {
        if (!$("mine").checked || state.mine.indexOf(l.feature.properties.grid_code) >= 0) bounds.extend(l.getBounds());
      });
      if (bounds.isValid()) map.fitBounds(bounds, { padding: [10, 10] });
    }
  }
  function legend() {
    var box = $("legend");
    box.textContent = "";
    var row = function (colour, zh, en) {
      var line = el("div"), swatch = el("span", "", "swatch"), text = el("span");
      swatch.style.cssText = "display:inline-block;width:1em;height:1em;margin-right:.4em;vertical-align:middle;background:" + colour;
      say(text, zh, en);
      line.appendChild(swatch); line.appendChild(text); box.appendChild(line);
    };
    if ($("measure").value === "staffing") {
      var missing = Object.keys(state.staffing).filter(function (c) { return state.staffing[c].flags.indexOf("no_full_time_worker") >= 0; }).length;
      row(UNSTAFFED, "无专职网格员（" + missing + " 个）", "No full-time worker (" + missing + ")");
      row(STAFFED, "有专职网格员", "Has a full-time worker");
      row(OTHER, "专属网格（不在检查范围）", "Dedicated grid (not checked)");
    } else {
      var most = state.most;
      row(RAMP[0], "0", "0");
      for (var i = 1; i < RAMP.length; i++) {
        var lo = Math.floor((i - 1) * most / (RAMP.length - 1)) + 1, hi = Math.floor(i * most / (RAMP.length - 1));
        if (hi >= lo) row(RAMP[i], lo + "–" + hi, lo + "–" + hi);
      }
      if ($("measure").value === "knocks") {
        var c = state.campaign, late = c.totals.grids_behind;
        row("#d7191c", "红色虚线：落后于进度（" + late + " 个；按期应达 " + Math.round(100 * c.expected_share) + "%）",
            "Red dashes: behind the pace (" + late + "; " + Math.round(100 * c.expected_share) + "% due by now)");
      }
    }
  }
  function showTotals(totals, staffing) {
    var staff = [staffing.no_full_time_worker + " / " + staffing.comprehensive_grids + " 个综合网格无专职网格员",
                 staffing.no_full_time_worker + " of " + staffing.comprehensive_grids +
                 " comprehensive grids without a full-time worker"];
    if (state.registerImported === false) {  // not "0 households": the register was never imported here
      say($("totals"), "住户登记尚未导入（管理员运行 gridmap households import 住户登记.csv --territory " + state.territory +
          "，见 README“住户登记”）；" + staff[0],
          "The households register has not been imported (an administrator runs gridmap households import FILE.csv " +
          "--territory " + state.territory + ", see the README, \u201cHouseholds register\u201d); " + staff[1]);
      return;
    }
    say($("totals"), "登记 " + totals.households + " 户、" + totals.residents + " 人；" + staff[0],
        totals.households + " households, " + totals.residents + " residents registered; " + staff[1]);
  }
  $("measure").addEventListener("change", function () { draw(false); });
  $("mine").addEventListener("change", function () { draw(true); });

  // -- one grid -------------------------------------------------------------------------------------
  function figure(list, zh, en, value) {
    var dt = el("dt"), dd = el("dd", String(value));
    say(dt, zh, en);
    list.appendChild(dt); list.appendChild(dd);
  }
  function select(code) {
    var again = state.selected === code;  // the same grid re-labelled (a language switch): its views stay
    state.selected = code; state.households = null;
    var feature = state.grids.features.filter(function (f) { return f.properties.grid_code === code; })[0];
    var p = feature ? feature.properties : {};
    $("grid").hidden = false;
    window.gridmapPlain($("grid-title"), code + (p.name ? " " + p.name : "") + (p.community ? " · " + p.community : ""));
    var list = $("grid-figures"), staff = state.staffing[code], c = state.counts[code] || { households: 0, residents: 0, elderly: 0, tags: {} };
    list.textContent = "";
    figure(list, "户数（方案）", "Households (plan)", p.households);
    if (staff) {
      Object.keys(ROLE_NAMES).forEach(function (role) {
        if (staff[role] && staff[role].length) figure(list, ROLE_NAMES[role][0], ROLE_NAMES[role][1], staff[role].join("、"));
      });
      if (!staff.full_time_worker.length) figure(list, "一格一员", "One grid, one worker", T("缺专职网格员", "no full-time worker"));
    }
    figure(list, "登记户数", "Households registered", c.households);
    figure(list, "登记居民", "Residents registered", c.residents);
    figure(list, state.elderlyAge + " 岁以上", "Aged " + state.elderlyAge + "+", c.elderly);
    state.tags.forEach(function (t) { if (c.tags[t.tag]) figure(list, t.tag_zh, t.tag_en, c.tags[t.tag]); });
    var l = state.lists[code] || { open_needs: 0, urgent_needs: 0, resources: 0, projects: {} };
    figure(list, "待办需求", "Open needs", l.open_needs + (l.urgent_needs ? T("（紧急 ", " (urgent ") + l.urgent_needs + T("）", ")") : ""));
    figure(list, "可用资源", "Resources", l.resources);
    var reg = state.registrations[code] || { party_members: 0, units: 0, hours: 0, projects: 0 };
    figure(list, "双报到党员 / 单位", "Party members / units registered", reg.party_members + " / " + reg.units);
    figure(list, "今年服务时长", "Service hours this year", reg.hours);
    var walk = state.patrols[code];
    if (walk) {
      figure(list, "本周巡查覆盖", "Streets patrolled this week",
             walk.share === null ? "—" : Math.round(walk.share * 100) + "%" + (walk.walkers.length ? "（" + walk.walkers.join("、") + "）" : ""));
      if (walk.not_patrolled.length) figure(list, "本周未巡查", "Not patrolled this week", walk.not_patrolled.join("、"));
      if (walk.buildings) figure(list, "本周到访楼栋", "Buildings visited this week", walk.buildings_visited + " / " + walk.buildings);
    }
    var knock = state.knocks && state.knocks[code];
    if (knock) {
      figure(list, "敲门进度", "Door-knocking", knock.reached + " / " + knock.targets +
             (knock.behind ? T("（落后）", " (behind)") : "") + (knock.nobody_home ? T("，待回访 ", ", revisit ") + knock.nobody_home : ""));
    }
    Object.keys(l.projects || {}).forEach(function (st) {
      var names = { planned: ["计划中项目", "Projects planned"], active: ["实施中项目", "Projects active"],
                    done: ["已完成项目", "Projects done"], cancelled: ["已取消项目", "Projects cancelled"] }[st] || [st, st];
      figure(list, names[0], names[1], l.projects[st]);
    });
    loadNeeds(code);
    if (!again) { visitLayer.clearLayers(); trackLayer.clearLayers(); window.gridmapPlain($("patrol-note"), ""); }
    $("show-patrols").hidden = !(walk && walk.buildings);
    var readable = state.administrator || state.mine.indexOf(code) >= 0;
    $("show-households").hidden = !readable || !c.residents;
    $("focus-only-label").hidden = true;
    $("households").textContent = "";
    if (!readable && c.residents) {
      say($("households-note"), "住户信息仅限本网格工作人员和管理员查看。", "Only this grid's staff and the administrators see its households.");
    } else window.gridmapPlain($("households-note"), "");
    gridLayer.eachLayer(function (l) {
      var on = l.feature.properties.grid_code === code;
      l.setStyle(on ? { weight: 4, color: "#000" } : styleOf(l.feature));
      if (on) l.bringToFront();
    });
  }
  $("show-households").addEventListener("click", function () {
    var code = state.selected;
    api("GET", "/api/territories/" + encodeURIComponent(state.territory) + "/grids/" + encodeURIComponent(code) + "/households")
      .then(function (res) {
        if (code !== state.selected) return;
        if (!res.ok) { refusal(res, "无法读取住户：", "Cannot read the households: "); return; }
        state.households = res.data.households;
        $("focus-only-label").hidden = false;
        renderHouseholds();
      });
  });
  $("focus-only").addEventListener("change", renderHouseholds);

  // The selected grid's buildings coloured by their last visit on a patrol (this week, before,
  // never) and the week's tracks: the reader's own, their grids' staff's for a grid leader, all
  // for an administrator; what the reader may not see is not drawn.
  $("show-patrols").addEventListener("click", function () {
    var code = state.selected, base = "/api/territories/" + encodeURIComponent(state.territory);
    Promise.all([api("GET", base + "/grids/" + encodeURIComponent(code) + "/visits"), api("GET", base + "/patrols")])
      .then(function (r) {
        if (code !== state.selected) return;
        var failed = r.filter(function (x) { return !x.ok; })[0];
        if (failed) { refusal(failed, "无法读取巡查：", "Cannot read the patrols: "); return; }
        visitLayer.clearLayers(); trackLayer.clearLayers();
        visitLayer.addData(r[0].data);
        trackLayer.addData(r[1].data);
        var v = r[0].data, never = v.features.filter(function (f) { return !f.properties.last_visit; }).length;
        say($("patrol-note"),
            "本周到访 " + v.visited_in_week + " 栋，从未到访 " + never + " 栋（共 " + v.buildings + " 栋；轨迹 " +
            r[1].data.features.length + " 条）。绿：本周到访；橙：更早；红：从未。",
            "Visited this week: " + v.visited_in_week + "; never visited: " + never + " (of " + v.buildings +
            "; tracks: " + r[1].data.features.length + "). Green: this week; orange: before; red: never.");
        if (v.features.length) map.fitBounds(visitLayer.getBounds().pad(0.1));
      });
  });

  function tagged(h) { return h.residents.some(function (r) { return r.tags.length; }); }
  function renderHouseholds() {
    var list = $("households"), households = (state.households || []).slice();
    list.textContent = "";
    if (!state.households) return;
    households.sort(function (a, b) { return tagged(b) - tagged(a); });  // focus residents first, then the register's order
    if ($("focus-only").checked) households = households.filter(tagged);
    say($("households-note"), "共 " + state.households.length + " 户，显示 " + households.length + " 户",
        state.households.length + " households, " + households.length + " shown");
    households.forEach(function (h) {
      var item = el("li", "", "household");
      item.appendChild(el("strong", [h.building_label, h.stairwell ? h.stairwell + T("单元", " stairwell") : "",
                                     h.room ? h.room + T("室", "") : ""].filter(Boolean).join(" ")));
      var people = el("ul");
      h.residents.forEach(function (r) {
        var line = el("li", r.name + (r.relation ? "（" + r.relation + "）" : ""));
        r.tags.forEach(function (tag) {
          var names = state.tags.filter(function (t) { return t.tag === tag; })[0] || { tag_zh: tag, tag_en: tag };
          line.appendChild(el("span", " " + T(names.tag_zh, names.tag_en), "tag"));
        });
        if (r.phone) {
          var call = el("a", " " + r.phone);
          call.href = "tel:" + r.phone.replace(/[^0-9+]/g, "");
          line.appendChild(call);
        }
        people.appendChild(line);
      });
      item.appendChild(people);
      list.appendChild(item);
    });
  }
  // -- the grid's needs ------------------------------------------------------------------------------
  function categoryName(category) {
    var c = state.categories.filter(function (x) { return x.category === category; })[0];
    return c ? T(c.category_zh, c.category_en) : category;
  }
  function loadNeeds(code) {
    $("matches").textContent = "";
    api("GET", "/api/territories/" + encodeURIComponent(state.territory) + "/needs?grid=" + encodeURIComponent(code) +
        "&status=open,matched,in_project").then(function (res) {
      if (code !== state.selected) return;
      state.needs = res.ok ? res.data.features : [];
      renderNeeds();
    });
  }
  function renderNeeds() {
    var list = $("needs");
    list.textContent = "";
    if (!state.needs.length) { list.appendChild(el("li", T("暂无待办需求", "No open needs"))); return; }
    state.needs.forEach(function (f) {
      var p = f.properties, item = el("li", "", "need");
      item.dataset.needId = f.id;
      item.appendChild(el("strong", categoryName(p.category)));
      item.appendChild(el("span", " · " + T(p.urgency_zh, p.urgency_en) + " · " + T(p.status_zh, p.status_en)));
      item.appendChild(el("div", p.description));
      var match = el("button", T("匹配资源", "Find resources"));
      match.type = "button";
      match.className = "match";
      match.addEventListener("click", function () { showMatches(f.id); });
      item.appendChild(match);
      list.appendChild(item);
    });
  }
  function showMatches(needId) {
    api("GET", "/api/needs/" + needId + "/matches").then(function (res) {
      var list = $("matches");
      list.textContent = "";
      if (!res.ok) { refusal(res, "无法匹配资源：", "Cannot find resources: "); return; }
      if (!res.data.resources.length) {
        list.appendChild(el("li", T("附近和本社区没有可匹配的资源", "No resource nearby or in the community")));
      }
      res.data.resources.forEach(function (r) {
        var far = r.distance_m === null ? T("本社区", "in the community") : Math.round(r.distance_m) + T(" 米", " m");
        list.appendChild(el("li", r.name + " · " + far + (r.capacity ? " · " + T("容量 ", "capacity ") + r.capacity : "") +
                                  (r.hours ? " · " + r.hours : ""), "match-result"));
      });
    });
  }
  $("need-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var code = state.selected;
    var feature = state.grids.features.filter(function (f) { return f.properties.grid_code === code; })[0];
    var centre = feature && feature.properties.label ? feature.properties.label.coordinates : null;
    var place = state.here || (centre ? { lon: centre[0], lat: centre[1] } : null);
    if (!place) return;
    var body = { category: $("need-category").value, description: $("need-description").value,
                 urgency: $("need-urgency").value, lon: place.lon, lat: place.lat, source: "worker" };
    $("need-send").disabled = true;
    api("POST", "/api/territories/" + encodeURIComponent(state.territory) + "/needs", JSON.stringify(body), "application/json")
      .then(function (res) {
        $("need-send").disabled = false;
        if (!res.ok) { refusal(res, "需求未登记：", "The need was not recorded: "); return; }
        $("need-description").value = "";
        message("需求已登记（编号 " + res.data.id + "）。", "Need recorded (no. " + res.data.id + ").", "info");
        return api("GET", "/api/territories/" + encodeURIComponent(state.territory) + "/lists/summary").then(function (s) {
          if (s.ok) takeLists(s.data);
          draw(false);
          select(code);
        });
      });
  });
  if (navigator.geolocation) {  // where the worker stands, when the phone allows it: a need is recorded there
    navigator.geolocation.watchPosition(function (pos) { state.here = { lon: pos.coords.longitude, lat: pos.coords.latitude }; },
                                        function () { state.here = null; }, { enableHighAccuracy: true, maximumAge: 60000 });
  }

  document.addEventListener("gridmap:lang", function () {
    if (state.selected) {  // the texts made with T() follow the language too
      var keep = state.households;
      select(state.selected);
      if (keep) { state.households = keep; $("focus-only-label").hidden = false; renderHouseholds(); }
      renderNeeds();
    }
  });

  var token = null;
  try { token = sessionStorage.getItem("gridmap.token"); } catch (e) { /* ignore */ }
  if (token) {
    state.token = token;
    api("GET", "/api/auth/me").then(function (res) { if (res.ok) signedIn(token, res.data); else signOut(); });
  }
})();
