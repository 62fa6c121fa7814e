// The grid planner: units coloured by grid on a canvas-rendered Leaflet map; paint, lasso, merge,
// split and cut; a live panel; undo/redo; save with the draft's edit version (409 → conflict
// message); validation, diff against the published plan, publish; deleting a draft (after a
// confirmation; published plans and history are never deleted). No basemap is needed.
//
// Every change is previewed on the server (a dry run of all pending edits). A change the server
// refuses (422: against the rules, 403: outside the user's planning area) is taken back at once,
// the other pending edits stay, and the reason is shown over the map in the user's language.
// Every text is set in both languages (gridmapSay) or as language-free text (gridmapPlain), so
// a language switch re-labels everything and never brings back an old text.
(function () {
  "use strict";
  var T = function (zh, en) { return window.gridmapT(zh, en); };
  var $ = function (id) { return document.getElementById(id); };
  var say = function (el, zh, en) { window.gridmapSay(el, zh, en); };
  var plain = function (el, text) { window.gridmapPlain(el, text); };
  var PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                 "#9c755f", "#bab0ac", "#86bcb6", "#d37295", "#8cd17d", "#b6992d", "#499894", "#f1ce63"];
  var STALE_LABEL = 0.35;  // the opacity of a grid label whose households a pending change made stale
  var MAX_ZOOM = 20;        // single buildings, and room to draw a cut line across a small unit
  var ZOOM_OUT_LEVELS = 2;  // how far out of the whole territory one may zoom
  var REFUSED = { 403: true, 422: true };  // answers that refuse the edit itself (not a stale version)
  var STATUS = { draft: ["草稿", "draft"], published: ["已发布", "published"], history: ["历史", "history"] };

  var state = {
    token: null, user: null, plan: null, version: null, planVersion: null, status: null,
    band: null,         // [min, max] households of the plan shown, from its summary (its profile); none before
    plans: [],          // the territory's plans as listed by /api/territories/{code}/plans
    units: {},          // unit id -> {layer, feature, grid, saved, community, households, label:[lat,lng], compound}
    grids: {},          // code -> {community, kind, households, compactness, parts, unit_count, border, labelMarker}
    places: {},         // territory code -> {name, level, parent_code, plans} (the territory list)
    selected: null, tool: "select", splitPick: {}, cutUnit: null, cutPoints: [], cutLine: null,
    undo: [], redo: [], // changes: {moves: [{id, from, to}], target}
    goodDepth: 0,       // the first goodDepth changes of undo passed a preview; those after it are unchecked
    previewSeq: 0, checking: false, preview: {}, previewTimer: null,
    savedSummary: null, summary: null, problems: null, diff: null, diffLayer: null, bounds: null,
    diffRequest: 0, diffLoading: false, validateRequest: 0,  // the latest comparison asked for; whether it is still loading
    strokeFrame: 0,     // the frame that shows a brush stroke's progress in the panel and table
    microLayer: null, microInfo: {}, // micro-grids shown: code -> {households, flag, grid_code ...}
    cellLayer: null, cellGrid: null, cells: {}, microTarget: null,  // the selected grid's building cells; paint target
    microOn: false, cellSeq: 0, moving: false, microLoading: null, microRead: false, gridSeq: {},  // the mode is on; the latest cells request; a move in flight
    microUndo: [],  // buildings moved between micro-grids (stored at once): {cells, from: {cell: code}, to, grid}
    cellCentre: {},     // the selected grid's building cells: cell id -> [lat, lng] (what the brush and lasso take)
    leaderCell: null, microDetail: null, detailSeq: 0,  // the building last clicked; the picked micro-grid as stored
    dividing: false, savingLeader: false,
    cellAsked: null, microSeq: 0,  // the grid whose cells were asked for last; the latest micro-grids request
    tally: {},          // grid code -> {households, units} of the units drawn, kept as units move
    pending: {},        // unit id -> true for the units whose grid differs from the saved one
    pendingCount: 0,
  };
  var map, unitLayer, borderLayer, labelLayer, canvas;

  // -- helpers --------------------------------------------------------------------------------------
  function colour(code) {
    var h = 0;
    for (var i = 0; i < code.length; i++) h = (h * 31 + code.charCodeAt(i)) >>> 0;
    return PALETTE[h % PALETTE.length];
  }
  // The status line at the foot of the side panel (it stays in sight however far the panel is
  // scrolled: planner.css); errors and warnings also go to the notice over the map. ``micro``: a
  // result of the micro-grid panel's work, also shown in the panel, beside what it is about.
  function message(zh, en, kind, micro) {
    var el = $("message");
    say(el, zh, en);
    el.className = kind || "info";
    if (/\b(error|warn)\b/.test(kind || "")) notice(zh, en, kind);
    var mirror = $("micro-result");
    if (mirror && micro) { say(mirror, zh, en); mirror.className = "small " + (kind || "info"); }
  }
  function notice(zh, en, kind) {
    say($("notice-text"), zh, en);
    $("notice").className = "notice " + (kind || "info");
    $("notice").hidden = false;
  }
  function hideNotice() { $("notice").hidden = true; }
  function api(method, path, body) {
    var headers = { "Accept": "application/json" };
    var sentWith = state.token;
    if (sentWith) headers["Authorization"] = "Bearer " + sentWith;
    var init = { method: method, headers: headers };
    if (body instanceof URLSearchParams) { init.body = body; }
    else if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    return fetch(path, init).then(function (r) {
      return r.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
        // only this token's own expiry signs out: an anonymous request answered after a sign-in must not
        if (r.status === 401 && sentWith && sentWith === state.token) { signOut(); }
        return { ok: r.ok, status: r.status, data: data };
      });
    }, function () {
      return { ok: false, status: 0, data: { detail: "cannot reach the server", detail_en: "cannot reach the server",
                                             detail_zh: "无法连接服务器" } };
    });
  }
  // Why the server said no, in both languages (detail_zh / detail_en; detail alone from older servers).
  function reason(res) {
    var d = (res && res.data) || {};
    var en = d.detail_en || (typeof d.detail === "string" ? d.detail : d.detail ? JSON.stringify(d.detail) :
                             "HTTP " + (res && res.status));
    return { zh: d.detail_zh || en, en: en };
  }
  function failed(zh, en, res, kind, micro) {
    var r = reason(res);
    message(zh + r.zh, en + r.en, kind || "error", micro);
  }
  var when = window.gridmapLocalTime;  // local date and time, minutes

  // -- sign in ------------------------------------------------------------------------------------
  function signedIn(token, user) {
    state.token = token; state.user = user;
    try { sessionStorage.setItem("gridmap.token", token); } catch (e) { /* ignore */ }
    $("login").hidden = true; $("logout").hidden = false;
    plain($("who"), user.display_name || user.username);
    loadTerritories();
  }
  function signOut() {
    if (state.token) api("POST", "/api/auth/logout");
    state.token = null; state.user = null;
    // the micro-grid panel offered a writer's controls and showed leaders' phones (personal data)
    if (state.microOn) hideMicro();
    try { sessionStorage.removeItem("gridmap.token"); } catch (e) { /* ignore */ }
    $("login").hidden = false; $("logout").hidden = true; plain($("who"), "");
  }
  $("login").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var form = new URLSearchParams({ username: $("username").value, password: $("password").value });
    // signed in, the plan is read again (a draft becomes editable): until then it is not the plan "loaded"
    var asked = planRequest;
    document.body.dataset.planLoaded = "";
    api("POST", "/api/auth/token", form).then(function (res) {
      // not signed in: the plan is "loaded" again if it is drawn by now (a read on its way at the
      // submit may have drawn it meanwhile; one still on its way says so itself), unless another
      // plan was asked for meanwhile
      if (!res.ok && asked === planRequest && drawnRequest === planRequest) {
        document.body.dataset.planLoaded = String(state.plan);
      }
      if (res.status === 401) { message("用户名或密码错误", "Wrong user name or password", "error"); return; }
      if (!res.ok) { failed("无法登录：", "Cannot sign in: ", res); return; }  // 429: too many failures, wait
      message("已登录", "Signed in", "ok");
      signedIn(res.data.access_token, res.data.user);
    });
  });
  $("logout").addEventListener("click", signOut);

  // -- territory and plan ---------------------------------------------------------------------------
  // The territories, a territory's plans and a plan are read when the page opens and again on
  // sign-in. An answer is ignored once a newer read of the same thing was sent, or once the user
  // signed in or out after it was asked for (the page's own anonymous chain, answered late, would
  // load the plan a second time and drop what the user opened on it meanwhile: a comparison, a
  // selection).
  var territoriesRequest = 0;
  function loadTerritories() {
    var mine = ++territoriesRequest, token = state.token;
    return api("GET", "/api/territories").then(function (res) {
      if (mine !== territoriesRequest || token !== state.token) return;
      if (!res.ok) { failed("无法读取辖区：", "Cannot read the territories: ", res); return; }
      var select = $("territory");
      select.innerHTML = "";
      (res.data || []).filter(function (t) { return t.level !== "community"; }).forEach(function (t) {
        var opt = document.createElement("option");
        opt.value = t.code; opt.textContent = t.name + " " + t.code;
        select.appendChild(opt);
      });
      var wanted = state.pickedTerritory;  // any territory: one without a plan is planned here
      var byCode = {};
      (res.data || []).forEach(function (t) { byCode[t.code] = t; });
      state.places = byCode;
      var home = window.gridmapHomeTerritory(res.data || [], state.user ? state.user.roles : [],
                                             function (t) { return t.plans > 0 && t.level !== "community"; });
      if (wanted) select.value = wanted;
      else if (home) select.value = home;
      return loadPlans();
    });
  }
  function planLabel(opt, p) {
    var s = STATUS[p.status] || [p.status, p.status];
    say(opt, "方案 v" + p.version + " · " + s[0] + " · " + p.grids + " 个网格",
        "plan v" + p.version + " · " + s[1] + " · " + p.grids + " grids");
  }
  var listRequest = 0, planRequest = 0;  // answers to superseded requests are ignored
  var drawnRequest = -1;  // the plan read whose plan is drawn (planRequest when the plan asked for last is shown)
  function loadPlans(preferId) {
    var mine = ++listRequest, token = state.token;
    return api("GET", "/api/territories/" + $("territory").value + "/plans").then(function (res) {
      if (mine !== listRequest || token !== state.token) return;
      var select = $("plan");
      select.innerHTML = "";
      var plans = (res.data || []).slice().reverse();
      state.plans = plans;
      plans.forEach(function (p) {
        var opt = document.createElement("option");
        opt.value = p.id;
        planLabel(opt, p);
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
  // the territory the address asked for, then the one picked by hand: kept when the user signs in
  // (the address is rewritten with every territory shown, so it cannot tell a pick from a default)
  state.pickedTerritory = new URLSearchParams(location.search).get("territory");
  $("territory").addEventListener("change", function () {
    state.pickedTerritory = $("territory").value; hideDraftQuestion(); loadPlans();
  });
  $("plan").addEventListener("change", function () { loadPlan(+$("plan").value); });
  // The plans the one shown can be compared with: every other plan of the territory, the published one first.
  function fillCompare() {
    var select = $("compare-with"), keep = select.value, shown = String(state.plan || "");
    select.innerHTML = "";
    var others = state.plans.filter(function (p) { return String(p.id) !== shown; });
    others.sort(function (a, b) { return (b.status === "published") - (a.status === "published") || b.version - a.version; });
    others.forEach(function (p) {
      var opt = document.createElement("option");
      opt.value = p.id; planLabel(opt, p);
      select.appendChild(opt);
    });
    if (keep && others.some(function (p) { return String(p.id) === keep; })) select.value = keep;
  }

  // A new draft: if the territory has one already, say whose and how far it got, and offer to open
  // it; a second, parallel draft only when asked for explicitly.
  $("new-draft").addEventListener("click", function () {
    var code = $("territory").value;
    if (!code) return;
    Promise.all([api("GET", "/api/territories/" + code + "/plans"),
                 api("GET", "/api/territories/" + code + "/history")]).then(function (r) {
      if (!r[0].ok) { failed("无法查询已有草稿：", "Cannot list the territory's drafts: ", r[0]); return; }
      var edits = {};
      if (r[1].ok) r[1].data.forEach(function (p) { edits[p.id] = p.lock_version; });
      var drafts = r[0].data.filter(function (p) { return p.status === "draft"; })
        .sort(function (a, b) { return b.version - a.version; });
      if (!drafts.length) { createDraft(code); return; }
      askAboutDraft(code, drafts, edits);
    });
  });
  function askAboutDraft(code, drafts, edits) {
    var d = drafts[0], edit = edits[d.id], open = String(d.id) === String(state.plan);
    var author = d.author || "?", created = when(d.created_at);
    say($("draft-exists-text"),
      "辖区 " + code + (drafts.length > 1 ? " 已有 " + drafts.length + " 个草稿，最新的是" : " 已有草稿：") +
        "方案 v" + d.version + "（" + author + " 创建于 " + created + (edit != null ? "，编辑版本 " + edit : "") + "）" +
        (open ? "，就是当前打开的这个" : "") + "。另建一个草稿会与它并行，两边的修改不会合并。",
      "Territory " + code + (drafts.length > 1 ? " already has " + drafts.length + " drafts, the newest " :
        " already has a draft: ") + "plan v" + d.version + " (created by " + author + " on " + created +
        (edit != null ? ", edit " + edit : "") + ")" + (open ? ", the one open now" : "") +
        ". Another draft would be a parallel copy: the two drafts' edits are never merged.");
    $("draft-exists").dataset.planId = String(d.id);
    $("draft-exists").dataset.territory = code;
    $("draft-exists").hidden = false;
    $("open-draft").focus();
  }
  function hideDraftQuestion() { $("draft-exists").hidden = true; }
  $("open-draft").addEventListener("click", function () {
    var id = $("draft-exists").dataset.planId;
    hideDraftQuestion();
    if (String(id) === String(state.plan)) { message("该草稿已打开", "That draft is open", "info"); return; }
    loadPlans(id);
  });
  $("create-draft-anyway").addEventListener("click", function () {
    hideDraftQuestion();
    createDraft($("draft-exists").dataset.territory);
  });
  $("cancel-draft").addEventListener("click", hideDraftQuestion);
  function createDraft(code) {
    api("POST", "/api/territories/" + code + "/drafts", { source: "published" }).then(function (res) {
      if (!res.ok) { failed("无法新建草稿：", "Cannot create a draft: ", res); return; }
      loadPlans(res.data.plan_id).then(function () {
        var v = state.planVersion != null ? state.planVersion : "?";  // the plan's number, not its edit version
        message("已新建草稿：方案 v" + v, "Draft created: plan v" + v, "ok");
      });
    });
  }

  // What belonged to the plan shown before: its problems, its diff, the selection, any notice.
  function resetPlanView() {
    brush.stroke = null; brush.cellStroke = null;
    search.hits = []; search.text = ""; search.seq += 1;
    $("search-results").hidden = true; $("search-results").innerHTML = "";
    if (search.marker) { map.removeLayer(search.marker); search.marker = null; }
    state.selected = null; state.noteUnit = null; state.splitPick = {}; state.preview = {}; state.undo = []; state.redo = [];
    state.microUndo = [];
    state.goodDepth = 0; state.previewSeq += 1; state.checking = false; clearTimeout(state.previewTimer);
    state.problems = null; $("problems").innerHTML = ""; state.validateRequest += 1;
    hideDiff();
    hideMicro();
    hideNotice(); hideDraftQuestion(); hideDeleteQuestion();
  }
  function loadPlan(planId) {
    var mine = ++planRequest, token = state.token;
    document.body.dataset.planLoaded = "";  // set again when this plan is drawn (tests and benchmarks wait on it)
    message("正在载入方案…", "Loading the plan…", "info");
    return Promise.all([api("GET", "/api/plans/" + planId + "/state"),
                        api("GET", "/api/plans/" + planId + "/units?simplify=0.5&decimals=6"),
                        api("GET", "/api/plans/" + planId + "/grids")]).then(function (r) {
      if (mine !== planRequest || token !== state.token) return;  // another plan asked for, or a sign-in meanwhile
      var bad = !r[0].ok ? r[0] : !r[1].ok ? r[1] : !r[2].ok ? r[2] : null;
      if (bad && bad.status === 401 && !state.token) {  // a draft: for signed-in planners only
        message("草稿方案需登录后查看：请点右上角“登录”", "Draft plans are shown to signed-in users: use Sign in (top right)", "warn");
        return;
      }
      if (bad) { failed("无法载入方案：", "Cannot load the plan: ", bad); return; }
      resetPlanView();
      state.plan = planId; state.version = r[0].data.version; state.status = r[0].data.status;
      var listed = state.plans.filter(function (p) { return String(p.id) === String(planId); })[0];
      state.planVersion = listed ? listed.version : null;
      state.band = bandOf(r[0].data.summary);
      state.savedSummary = state.summary = r[0].data.summary;
      history.replaceState(null, "", "/planner?territory=" + $("territory").value + "&plan=" + planId);
      dropStaleContext();  // another territory's layer asks for no tiles at the new view
      // the view first, then the grids: their borders and labels are placed once, at the plan's view
      // (added before the fit, all 430 of Reykjavík's were placed twice: 40 ms)
      drawUnits(r[1].data);
      if (unitLayer.count()) limitTo(unitLayer.getBounds());
      drawGrids(r[2].data, true); fillPrintCommunities(); fillCompare();
      state.notes = [];
      showSummary(); updatePanel(); updatePending(); planInfo(); loadNotes();
      message("方案已载入：" + Object.keys(state.units).length + " 个单元",
              "Plan loaded: " + Object.keys(state.units).length + " units", "ok");
      drawnRequest = mine;
      document.body.dataset.planLoaded = String(planId);
      // the context (roads, buildings, water) after the plan's first frame: its tiles are asked for
      // once, at the plan's view, and making their canvases (about 90 ms) does not hold the plan back
      requestAnimationFrame(function () { if (mine === planRequest) showContext(); });
    });
  }
  // "plan v2" is the plan's number among the territory's plans; "edit 3" the draft's edit version
  // (lock_version: one more with every save, what a save names to detect someone else's save).
  function planInfo() {
    var el = $("plan-info");
    renderMicroPanel();  // its buttons and form follow the plan's state (a draft, signed in)
    $("delete-draft").hidden = !(state.plan && state.status === "draft" && state.token);
    $("plan-report").hidden = !state.plan;  // the plan's report: its map, histogram and every miss's reason
    if (state.plan) $("plan-report").href = "/plans/" + state.plan + "/report";
    if (!state.plan) { plain(el, ""); return; }
    var v = state.planVersion != null ? state.planVersion : "?";
    var s = STATUS[state.status] || [state.status, state.status];
    if (state.status === "draft") {
      say(el, "方案 v" + v + " · 编辑版本 " + state.version + " · 草稿，可编辑",
          "plan v" + v + " · edit " + state.version + " · draft, editable");
    } else {
      say(el, "方案 v" + v + " · " + s[0] + " · 只读", "plan v" + v + " · " + s[1] + " · read only");
    }
    window.gridmapTitle(el, "方案 v：方案在本辖区的编号；编辑版本：草稿每保存一次加 1（保存时据此发现他人同时做的修改）",
      "plan v: the plan's number in this territory; edit: the draft's edit version, one more with every save " +
      "(a save names it, so that someone else's save in between is noticed)");
  }

  // -- deleting a draft: only drafts, after saying what goes; then back to the territory's plans ------
  function hideDeleteQuestion() { $("delete-draft-confirm").hidden = true; }
  function deleteQuestion() {
    var v = state.planVersion != null ? state.planVersion : "?", unsaved = state.pendingCount;
    say($("delete-draft-text"),
      "删除草稿方案 v" + v + "（编辑版本 " + state.version + "）？它的网格、已保存的修改记录以及只为它切分的单元都将删除，" +
        "无法恢复" + (unsaved ? "；尚未保存的 " + unsaved + " 处修改也随之丢失" : "") + "。已发布方案和历史方案不受影响。",
      "Delete draft plan v" + v + " (edit " + state.version + ")? Its grids, its saved edits and the units cut for " +
        "it alone are deleted for good" + (unsaved ? "; your " + unsaved + " unsaved changes go with it" : "") +
        ". The published plan and history are not touched.");
  }
  $("delete-draft").addEventListener("click", function () {
    if (!state.plan || state.status !== "draft") return;
    hideDraftQuestion();
    deleteQuestion();
    $("delete-draft-confirm").dataset.planId = String(state.plan);
    $("delete-draft-confirm").hidden = false;
    $("cancel-delete-draft").focus();
  });
  $("cancel-delete-draft").addEventListener("click", hideDeleteQuestion);
  $("confirm-delete-draft").addEventListener("click", function () {
    var plan = +$("delete-draft-confirm").dataset.planId, v = state.planVersion;
    hideDeleteQuestion();
    if (plan !== state.plan) return;  // another plan was opened meanwhile
    api("DELETE", "/api/plans/" + plan).then(function (res) {
      if (!res.ok) {
        failed("无法删除草稿：", "Cannot delete the draft: ", res, res.status === 409 ? "error conflict" : "error");
        return;
      }
      var code = $("territory").value, done = function () {
        message("已删除草稿：方案 v" + (v != null ? v : "?"), "Draft deleted: plan v" + (v != null ? v : "?"), "ok");
      };
      if (plan !== state.plan) {  // another plan was opened meanwhile: it stays; the lists lose the draft
        state.plans = state.plans.filter(function (p) { return String(p.id) !== String(plan); });
        Array.prototype.slice.call($("plan").options).forEach(function (o) { if (+o.value === plan) o.remove(); });
        fillCompare(); done();
        return;
      }
      clearPlan();
      history.replaceState(null, "", "/planner?territory=" + code);
      loadPlans().then(done);
    });
  });
  // No plan on the map any more (the one shown was deleted): nothing of it stays, nothing is editable.
  function clearPlan() {
    planRequest += 1;  // answers for it that are still on their way are ignored
    resetPlanView(); clearCut();
    unitLayer.clear(); borderLayer.clearLayers(); labelLayer.clearLayers(); previewShapes = { saved: {}, drawn: [] };
    state.units = {}; state.grids = {}; state.tally = {}; state.pending = {}; state.pendingCount = 0;
    invalidateLabels();
    state.plan = null; state.status = null; state.version = null; state.planVersion = null;
    state.summary = state.savedSummary = null; state.band = null;
    updatePanel(); updatePending(); showSummary(); planInfo();
    document.body.dataset.planLoaded = "";
  }

  // -- drawing ------------------------------------------------------------------------------------
  function unitStyle(u) {
    var picked = state.splitPick[u.id] || state.cutUnit === u.id;
    var selected = u.grid === state.selected;
    return { renderer: canvas, smoothFactor: 1.5, color: picked ? "#000" : "#ffffff", weight: picked ? 2 : 0.5,
             fillColor: colour(u.grid), fillOpacity: selected ? 0.85 : (u.grid !== u.saved ? 0.7 : 0.45) };
  }
  // The units are drawn by one layer (units-layer.js: typed arrays and a grid index, not a Leaflet
  // layer per unit: at 50,000 units those took seconds to build and every zoom projected them again).
  function drawUnits(fc) {
    state.units = {}; state.tally = {}; state.pending = {}; state.pendingCount = 0;
    invalidateLabels();
    unitLayer.setUnits(fc.features.map(unitOf), function (u) { return u.geometry; });
  }
  // The per-grid tallies and the pending set follow every unit that is drawn, moved or removed, so
  // that a paint click costs the two grids it touches, not a pass over every unit (at 50,000 units
  // each pass took milliseconds, and the panel, the pending badge and the table made several).
  function tallyUnit(u, sign) {
    var t = state.tally[u.grid] || (state.tally[u.grid] = { households: 0, units: 0 });
    t.households += sign * u.households; t.units += sign;
    var moved = u.grid !== u.saved;
    if (moved && sign > 0 && !state.pending[u.id]) { state.pending[u.id] = true; state.pendingCount += 1; }
    if (sign < 0 && state.pending[u.id]) { delete state.pending[u.id]; state.pendingCount -= 1; }
  }
  function setGridOf(u, code) { tallyUnit(u, -1); u.grid = code; tallyUnit(u, 1); }
  function removeUnit(u) { unitLayer.remove(u); tallyUnit(u, -1); delete state.units[u.id]; invalidateLabels(); }
  // A unit of the plan from its feature, counted in its grid (not yet drawn).
  function unitOf(feature) {
    var p = feature.properties;
    var u = { id: p.unit_id, grid: p.grid_code, saved: p.grid_code, community: p.community_code,
              households: p.households, compound: p.compound_id, kind: p.kind, geometry: feature.geometry,
              label: [p.label.coordinates[1], p.label.coordinates[0]] };
    state.units[u.id] = u;
    tallyUnit(u, 1);
    return u;
  }
  function addUnit(feature) {
    var u = unitOf(feature);
    unitLayer.add(u, u.geometry);
    invalidateLabels();
  }
  function unitFeature(u) { return { type: "Feature", properties: { unit_id: u.id }, geometry: u.geometry }; }
  // Units ``ids`` drawn again (all of them without ``ids``): only where they lie is redrawn.
  function restyle(ids) {
    if (!ids) { unitLayer.redraw(); return; }
    unitLayer.redrawUnits(ids.map(function (id) { return state.units[id]; }).filter(Boolean));
  }
  function drawGrids(fc, replaceAll) {
    if (replaceAll) {
      borderLayer.clearLayers(); labelLayer.clearLayers(); state.grids = {}; previewShapes = { saved: {}, drawn: [] };
      table.rows = {}; table.shown = {}; table.order = [];  // another plan: its rows are drawn afresh
    }
    fc.features.forEach(function (f) {
      var p = f.properties, old = state.grids[p.grid_code];
      if (old) { borderLayer.removeLayer(old.border); labelLayer.removeLayer(old.labelMarker); }
      var g = { code: p.grid_code, community: p.community_code, kind: p.kind, households: p.households,
                compactness: p.compactness, parts: p.parts, unit_count: p.unit_count, locked: !!p.locked,
                worker: p.worker || "" };
      var shape = gridShape(f, false);
      g.border = shape.border; g.labelMarker = shape.label; g.hasLabel = shape.hasLabel;
      if (previewShapes.saved[p.grid_code]) delete previewShapes.saved[p.grid_code];  // saved anew: shown as it is now
      borderLayer.addLayer(g.border);
      if (g.hasLabel) labelLayer.addLayer(g.labelMarker);
      state.grids[p.grid_code] = g;
    });
  }
  // A grid's outline and its label (code and households) from its feature; ``unsaved``: drawn dashed,
  // as the dry run of the pending edits has it.
  function gridShape(f, unsaved) {
    var p = f.properties, ll = p.label ? [p.label.coordinates[1], p.label.coordinates[0]] : null;
    var border = L.geoJSON(f, { style: { renderer: canvas, color: "#222", weight: 2.5, fill: false,
                                         dashArray: unsaved ? "7 4" : null }, interactive: false });
    var label = L.marker(ll || [0, 0], { interactive: false, icon: L.divIcon({
      className: "grid-label" + (unsaved ? " unsaved" : ""),
      html: "<b>" + String(p.grid_code).slice(-3) + "</b><br>" + p.households, iconSize: null }) });
    return { border: border, label: label, hasLabel: !!ll };
  }
  // Live outlines: the grids the pending edits touch, as the server's dry run draws them (dashed, their
  // labels with the new households), in place of their saved outlines until the edits are saved or
  // undone; then the saved ones come back. A grid the edits empty is taken off; a new one is drawn.
  var previewShapes = { saved: {}, drawn: [] };
  function takeAside(code) {
    var g = state.grids[code];
    if (!g || previewShapes.saved[code]) return;
    previewShapes.saved[code] = true;
    borderLayer.removeLayer(g.border); labelLayer.removeLayer(g.labelMarker);
  }
  function clearPreviewShapes() {
    previewShapes.drawn.forEach(function (d) { borderLayer.removeLayer(d.border); labelLayer.removeLayer(d.label); });
    Object.keys(previewShapes.saved).forEach(function (code) {
      var g = state.grids[code];
      if (!g) return;
      borderLayer.addLayer(g.border);
      if (g.hasLabel) labelLayer.addLayer(g.labelMarker);
    });
    previewShapes = { saved: {}, drawn: [] };
    dimmed.forEach(function (marker) { marker.setOpacity(1); });
    dimmed = [];
  }
  // The labels a change made stale (the households of the grids its units left and joined, as saved
  // or as the last dry run drew them) are dimmed at once, until the next dry run answers and draws
  // them anew (or the edits are saved or undone): a label never shows old households at full strength.
  var dimmed = [];
  function dimStaleLabels() {
    var codes = {};
    Object.keys(state.pending).forEach(function (id) {
      var u = state.units[id];
      if (u) { codes[u.saved] = true; codes[u.grid] = true; }
    });
    previewShapes.drawn.forEach(function (d) { codes[d.code] = true; });  // the last dry run's, all stale now
    previewShapes.drawn.forEach(function (d) { d.label.setOpacity(STALE_LABEL); dimmed.push(d.label); });
    Object.keys(codes).forEach(function (code) {
      var g = state.grids[code];
      if (g && g.labelMarker && !previewShapes.saved[code]) { g.labelMarker.setOpacity(STALE_LABEL); dimmed.push(g.labelMarker); }
    });
  }
  function showPreviewShapes(data) {
    clearPreviewShapes();
    (data.removed || []).forEach(takeAside);
    ((data.features && data.features.features) || []).forEach(function (f) {
      takeAside(f.properties.grid_code);
      var d = gridShape(f, true);
      d.code = f.properties.grid_code;
      borderLayer.addLayer(d.border);
      if (d.hasLabel) labelLayer.addLayer(d.label);
      previewShapes.drawn.push(d);
    });
  }
  function removeGrid(code) {
    var g = state.grids[code];
    delete previewShapes.saved[code];
    if (!g) return;
    borderLayer.removeLayer(g.border); labelLayer.removeLayer(g.labelMarker);
    delete state.grids[code]; delete table.rows[code]; delete table.shown[code];
  }

  // -- local edits (undo/redo) ----------------------------------------------------------------------
  function editable() {
    if (state.status !== "draft") { message("这不是草稿：请先新建草稿", "This is not a draft: create a draft first", "error"); return false; }
    return true;
  }
  function setGrids(change, backwards) {
    var ids = [];
    change.moves.forEach(function (c) {
      var u = state.units[c.id];
      if (u) { setGridOf(u, backwards ? c.from : c.to); ids.push(c.id); }
    });
    restyle(ids);
  }
  function applyChange(change, backwards) { setGrids(change, backwards); afterLocalChange(); }
  // The community a grid lies in: the saved grid's, or (a grid made by an unsaved split) its units'.
  function communityOf(code) {
    var g = state.grids[code];
    if (g && g.community) return g.community;
    for (var k in state.units) {
      if (state.units[k].grid === code) return state.units[k].community;
    }
    return null;
  }
  function listed(ids) { return ids.slice(0, 5).join("、") + (ids.length > 5 ? " 等 " + ids.length + " 个" : ""); }
  function listedEn(ids) { return ids.slice(0, 5).join(", ") + (ids.length > 5 ? " and " + (ids.length - 5) + " more" : ""); }
  // Units ``ids`` painted into grid ``target``: one change (one undo step), or, for a brush stroke,
  // added to the stroke's change (``stroke.change``, made on its first units). In a stroke, units of
  // another community are counted in ``stroke.foreign`` and told once, when the stroke ends.
  function move(ids, target, stroke, op) {
    if (!editable()) return false;
    if (state.checking) { message("正在核对刚才的修改，请稍候", "Checking your last changes; one moment", "warn"); return false; }
    var community = communityOf(target);
    var moves = [], foreign = [], held = {};
    ids.forEach(function (id) {
      var u = state.units[id];
      if (!u || u.grid === target) return;
      if (community && u.community !== community) { foreign.push(u); return; }
      if (isLocked(u.grid) || isLocked(target)) { held[isLocked(target) ? target : u.grid] = true; return; }
      moves.push({ id: u.id, from: u.grid, to: target });
    });
    tellLocked(Object.keys(held), stroke);
    if (stroke) {
      foreign.forEach(function (u) { stroke.foreign[u.id] = u; });
      return record(moves, target, stroke);
    }
    if (moves.length) {
      hideNotice();
      var change = { moves: moves, target: target };
      if (op) change.op = op;  // a merge or a split: sent to the server as itself (pendingOperations)
      state.undo.push(change); state.redo = [];
      applyChange(change, false);
    }
    tellForeign(foreign, moves.length, target, community);
    if (!foreign.length && !moves.length && ids.length && !Object.keys(held).length) {
      message("这些单元已在该网格中", "Those units are already in that grid", "info");
    }
    return moves.length > 0;
  }
  function isLocked(code) { return !!(state.grids[code] && state.grids[code].locked); }
  // A locked grid keeps its units (the server refuses too): said once per stroke or click.
  function tellLocked(codes, stroke) {
    if (!codes.length) return;
    if (stroke) { if (stroke.toldLocked) return; stroke.toldLocked = true; }
    message("网格 " + codes.join("、") + " 已锁定：解锁后才能移入或移出单元",
            "Grid " + codes.join(", ") + " is locked: unlock it to move units into or out of it", "warn refused");
  }
  // Moves of a brush stroke: the stroke's change grows (one undo step for the whole stroke).
  function record(moves, target, stroke) {
    if (!moves.length) return false;
    if (!stroke.change || state.undo[state.undo.length - 1] !== stroke.change) {  // undone or taken back meanwhile
      hideNotice();
      stroke.change = { moves: [], target: target };
      if (stroke.erase) stroke.change.erase = true;  // not a move an erase takes back (previousGrids)
      state.undo.push(stroke.change); state.redo = [];
    }
    Array.prototype.push.apply(stroke.change.moves, moves);
    applyChange({ moves: moves, target: target }, false);
    return true;
  }
  function tellForeign(foreign, painted, target, community) {
    if (foreign.length) {  // a grid never crosses a community boundary: refused here, at once
      var fid = foreign.map(function (u) { return u.id; });
      var theirs = foreign[0].community;
      message((painted ? "已涂入 " + painted + " 个单元；" : "") + "单元 " + listed(fid) + " 属于社区 " + theirs +
              "，网格 " + target + " 属于社区 " + community + "：网格不能跨越社区边界，这些单元未涂入。",
              (painted ? painted + " units painted; " : "") + "unit" + (fid.length > 1 ? "s " : " ") +
              listedEn(fid) + " lie in community " + theirs + " and grid " + target + " in community " + community +
              ": a grid never crosses a community boundary, so " + (fid.length > 1 ? "they were" : "it was") +
              " not painted.", "warn refused");
    }
  }
  function undo() {
    if (state.checking) return;
    if (!state.undo.length && state.microOn && state.microUndo.length) { undoMicro(); return; }  // a stored building move
    var c = state.undo.pop(); if (!c) return;
    state.redo.push(c);
    state.goodDepth = Math.min(state.goodDepth, state.undo.length);
    applyChange(c, true);
  }
  function redo() {
    if (state.checking) return;
    var c = state.redo.pop(); if (!c) return;
    state.undo.push(c); applyChange(c, false);
  }
  $("undo").addEventListener("click", undo);
  $("redo").addEventListener("click", redo);
  // Ctrl+Z undo, Ctrl+Shift+Z and Ctrl+Y redo, Ctrl+S save (⌘ on a Mac). With Shift held the key
  // is "Z", not "z"; on a layout without Latin letters the physical key tells.
  document.addEventListener("keydown", function (ev) {
    if (!(ev.ctrlKey || ev.metaKey) || ev.altKey) return;
    var t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;  // their own undo
    var key = (ev.key || "").toLowerCase();
    if (!/^[a-z]$/.test(key) && /^Key[A-Z]$/.test(ev.code || "")) key = ev.code.slice(3).toLowerCase();
    if (key === "z") { ev.preventDefault(); if (ev.shiftKey) redo(); else undo(); }
    else if (key === "y") { ev.preventDefault(); redo(); }
    else if (key === "s") { ev.preventDefault(); save(); }
  });
  function pendingUnits() {  // in the order of their ids, as the units' own keys iterate
    return Object.keys(state.pending).map(function (k) { return state.units[k]; });
  }
  // The pending edits as the server's operations, in the order they were made (the undo stack
  // holds exactly the changes since the last save). A merge or a split is sent as itself: the
  // server's one implementation applies it (which code survives, the new grid's code and kind), and
  // the browser only shows its outcome until the server's answer replaces it. The paint, lasso and
  // brush changes between two of them are netted per unit (where each unit ends up, left out where
  // that is where it started) and sent as one assignment per grid: a thousand clicks stay a few
  // operations, and a stroke erased again sends nothing.
  function pendingOperations() {
    var ops = [], made = {}, first = {}, last = {}, order = [];
    function flush() {
      var byTarget = {}, targets = [];
      order.forEach(function (id) {
        if (first[id] === last[id]) return;  // back where it started
        if (!byTarget[last[id]]) { byTarget[last[id]] = []; targets.push(last[id]); }
        byTarget[last[id]].push(id);
      });
      targets.forEach(function (code) {
        var op = { op: "assign", units: byTarget[code].sort(function (a, b) { return a - b; }), grid: code };
        if (!state.grids[code] && !made[code]) { op.kind = "comprehensive"; made[code] = true; }
        ops.push(op);
      });
      first = {}; last = {}; order = [];
    }
    state.undo.forEach(function (c) {
      if (c.op) {
        flush();
        ops.push(c.op);
        if (c.op.op === "split") made[c.op.new_code] = true;
        return;
      }
      c.moves.forEach(function (m) {
        if (!(m.id in first)) { first[m.id] = m.from; order.push(m.id); }
        last[m.id] = m.to || c.target;
      });
    });
    flush();
    return ops;
  }
  function updatePending() {
    var n = state.pendingCount;
    plain($("pending"), String(n));
    $("pending").className = n ? "badge dirty" : "badge";
  }
  function afterLocalChange() {
    state.preview = {};  // the last dry run answered for other edits: local figures until the next one
    state.previewSeq += 1;  // and an answer on its way is about older edits
    clearTimeout(state.previewTimer);
    if (brush.stroke) {  // during a stroke: the panel and the table once a frame (not once a mouse move:
      // 50,000 units counted 100 times took 1.8 s), the server's check once, when the stroke ends
      if (!state.strokeFrame) state.strokeFrame = requestAnimationFrame(function () {
        state.strokeFrame = 0; updatePending(); updatePanel(); });
      return;
    }
    if (state.strokeFrame) { cancelAnimationFrame(state.strokeFrame); state.strokeFrame = 0; }
    updatePending(); updatePanel(); dimStaleLabels();
    state.previewTimer = setTimeout(preview, 350);
  }

  // -- the live panel -----------------------------------------------------------------------------------
  // A grid's figures come from the server, which defines them once (gridmap/geo/report.py): the
  // grid as saved, or the dry run of the pending edits. Summing the units drawn here is only the
  // optimistic figure shown while that dry run is on its way.
  function localStats(code) {
    var t = state.tally[code];
    return { households: t ? t.households : 0, units: t ? t.units : 0 };
  }
  function updatePanel() {
    scheduleTable();
    showLock();
    renderNotes();
    var code = state.selected;
    plain($("grid-code"), code || "—");
    if (!code) {
      ["grid-households", "grid-units", "grid-compactness", "grid-contiguity", "grid-community"]
        .forEach(function (id) { plain($(id), "—"); $(id).className = ""; });
      plain($("band-state"), ""); $("band-state").className = "";
      $("band-bar").style.width = "0"; return;
    }
    var g = state.grids[code] || {}, p = state.preview[code] || {};
    var pending = state.pendingCount > 0;
    var s = p.households !== undefined ? { households: p.households, units: p.unit_count }
      : (!pending && g.households !== undefined ? { households: g.households, units: g.unit_count } : localStats(code));
    plain($("grid-households"), String(s.households));
    plain($("grid-units"), String(s.units));
    showBand(g.kind || "comprehensive", s.households);
    var compact = p.compactness !== undefined ? p.compactness : (pending ? undefined : g.compactness);
    var parts = p.parts !== undefined ? p.parts : (pending ? undefined : g.parts);
    plain($("grid-compactness"), compact === undefined || compact === null ? "—" : Number(compact).toFixed(3));
    if (parts === undefined || parts === null) { plain($("grid-contiguity"), "—"); $("grid-contiguity").className = ""; }
    else {
      say($("grid-contiguity"), parts > 1 ? "不连续（" + parts + " 块）" : "连续",
          parts > 1 ? "not contiguous (" + parts + " pieces)" : "contiguous");
      $("grid-contiguity").className = parts > 1 ? "bad" : "ok";
    }
    plain($("grid-community"), g.community || communityOf(code) || "—");
  }
  // The plan's band as its summary gives it (the profile it was made with), or null: then no band
  // is shown rather than one the plan was not made with.
  function bandOf(summary) {
    var lo = summary && summary.min_households, hi = summary && summary.max_households;
    return typeof lo === "number" && typeof hi === "number" ? [lo, hi] : null;
  }
  function showBand(kind, households) {
    if (kind !== "dedicated" && !state.band) {
      plain($("band-state"), ""); $("band-state").className = "";
      $("band-bar").style.width = "0"; $("band-bar").className = ""; return;
    }
    var lo = state.band ? state.band[0] : 0, hi = state.band ? state.band[1] : 0;
    var inBand = kind === "dedicated" || (households >= lo && households <= hi);
    say($("band-state"), kind === "dedicated" ? "专属网格" : (inBand ? "在 " + lo + "–" + hi + " 户之间" :
      (households < lo ? "低于 " + lo + " 户" : "超过 " + hi + " 户")), kind === "dedicated" ? "dedicated grid" :
      (inBand ? "within " + lo + "–" + hi : (households < lo ? "below " + lo : "above " + hi)));
    $("band-state").className = inBand ? "ok" : "bad";
    $("band-bar").style.width = (hi ? Math.min(100, 100 * households / (hi * 1.2)) : 0) + "%";
    $("band-bar").className = inBand ? "ok" : "bad";
  }
  function showSummary() {
    var s = state.summary;
    if (!s) { plain($("plan-summary"), ""); return; }
    say($("plan-summary"),
      s.grids + " 个网格（综合 " + s.comprehensive + "，专属 " + s.dedicated + "）；" + s.in_band + "/" + s.comprehensive +
      " 个综合网格在户数区间内；" + s.not_contiguous + " 个不连续",
      s.grids + " grids (" + s.comprehensive + " comprehensive, " + s.dedicated + " dedicated); " + s.in_band + "/" +
      s.comprehensive + " comprehensive grids in the band; " + s.not_contiguous + " not contiguous");
  }

  // -- previews: every change checked on the server; a refused one is taken back at once -------------
  function dryRun(ops) {  // with the touched grids' shapes: the preview draws them (showPreviewShapes)
    return api("POST", "/api/plans/" + state.plan + "/edits", { version: state.version, operations: ops, dry_run: true,
                                                                 with_geometry: true });
  }
  function usePreview(data) {
    showPreviewShapes(data);
    state.preview = {};
    data.grids.forEach(function (g) { state.preview[g.code] = g; });
    state.summary = data.summary;
    showSummary(); updatePanel();
  }
  function preview() {
    if (state.checking || !state.plan || state.status !== "draft") return;
    var seq = ++state.previewSeq, depth = state.undo.length, ops = pendingOperations();
    if (!ops.length) {
      clearPreviewShapes();
      state.preview = {}; state.goodDepth = depth; state.summary = state.savedSummary;
      showSummary(); updatePanel(); return;
    }
    dryRun(ops).then(function (res) {
      if (seq !== state.previewSeq) return;  // the edits changed since: a newer preview answers for them
      if (res.ok) { state.goodDepth = depth; usePreview(res.data); return; }
      if (REFUSED[res.status]) { refuse(res); return; }
      clearPreviewShapes();  // no answer for these edits: the saved outlines, not an older preview's
      if (res.status === 409) failed("草稿无法预览：", "The draft cannot be previewed: ", res, "error conflict");
      else failed("无法预览修改：", "Cannot preview the change: ", res, "warn");
    });
  }
  function withoutOperation(r) {  // "operation 1 (assign): ..." names the request's parts, not the user's change
    return { zh: r.zh.replace(/^第 \d+ 项操作（[^）]*）：/, "").replace(/[。.\s]+$/, ""),
             en: r.en.replace(/^operation \d+ \([^)]*\): /, "").replace(/[.\s]+$/, "") };
  }
  function tellRefused(reasons, undone) {
    var r = withoutOperation(reasons[reasons.length - 1]);
    if (!undone) { message("修改被拒绝：" + r.zh + "。", "The change was refused: " + r.en + ".", "error refused"); return; }
    message((undone > 1 ? undone + " 处修改被拒绝，已撤回：" : "此修改被拒绝，已撤回：") + r.zh + "。其他未保存的修改仍保留。",
            (undone > 1 ? undone + " changes were refused and undone: " : "This change was refused and undone: ") + r.en +
            ". Your other unsaved changes are kept.", "error refused");
  }
  // The server refused the pending edits: the culprit is among the changes made since the last
  // preview that passed. One: take it back. More: take them all back and replay them one by one,
  // each previewed, keeping those that pass.
  function refuse(res) {
    var suspects = state.undo.slice(state.goodDepth);
    if (!suspects.length) { tellRefused([reason(res)], 0); return; }
    if (suspects.length === 1) {
      state.undo.pop();
      applyChange(suspects[0], true);  // and preview what is left
      tellRefused([reason(res)], 1);
      return;
    }
    state.checking = true;
    var seq = state.previewSeq;
    state.undo.length = state.goodDepth;
    for (var i = suspects.length - 1; i >= 0; i--) setGrids(suspects[i], true);
    var reasons = [], last = null, chain = Promise.resolve();
    suspects.forEach(function (change) {
      chain = chain.then(function () {
        if (seq !== state.previewSeq) return;  // another plan was loaded meanwhile
        var again = { target: change.target, moves: [] };
        if (change.erase) again.erase = true;
        if (change.op && change.op.op === "merge") {  // the merged grid's members now, as the server will take them
          var into = change.op.grids[0], other = change.op.grids[1];
          Object.keys(state.units).forEach(function (k) {
            var u = state.units[k];
            if (u.grid === other) again.moves.push({ id: u.id, from: other, to: into });
          });
          again.op = change.op;
        } else {
          change.moves.forEach(function (m) {  // as made now, on what the refused changes left
            var u = state.units[m.id], to = m.to || change.target;  // an erase stroke's moves each have their own
            if (!u || u.grid === to) return;
            if (change.op && u.grid !== change.op.grid) return;  // a split takes only units still in its grid
            again.moves.push({ id: m.id, from: u.grid, to: to });
          });
          if (change.op && again.moves.length) {
            again.op = { op: "split", grid: change.op.grid, new_code: change.op.new_code,
                         units: again.moves.map(function (m) { return m.id; }) };
          }
        }
        if (!again.moves.length) return;
        setGrids(again, false);
        state.undo.push(again);  // the pending operations are the undo stack's: previewed with it
        return dryRun(pendingOperations()).then(function (answer) {
          if (seq !== state.previewSeq) return;  // another plan was loaded meanwhile: not its stack
          if (answer.ok) { last = answer.data; return; }
          if (!REFUSED[answer.status]) { last = null; return; }  // not this change's fault
          state.undo.pop(); setGrids(again, true); reasons.push(reason(answer)); last = null;
        });
      });
    });
    chain.then(null, function () { /* a failed request: what was replayed stays */ }).then(function () {
      if (seq !== state.previewSeq) return;
      state.checking = false;
      state.goodDepth = state.undo.length;
      updatePending();
      if (last) usePreview(last); else afterLocalChange();
      if (reasons.length) tellRefused(reasons, reasons.length);
    });
  }

  // -- locks: a locked grid keeps its units until unlocked; saved at once (a `set` edit) -------------
  function showLock() {
    var code = state.selected, g = state.grids[code], button = $("lock-grid");
    button.disabled = !(g && state.status === "draft" && state.token);
    var on = !!(g && g.locked);
    button.setAttribute("aria-pressed", on ? "true" : "false");
    say(button, on ? "解锁网格" : "锁定网格", on ? "Unlock grid" : "Lock grid");
  }
  function toggleLock() {
    var code = state.selected, g = state.grids[code];
    if (!g || !editable()) return;
    var steps = state.undo.concat(state.redo);
    var busy = pendingUnits().some(function (u) { return u.grid === code || u.saved === code; }) ||
      steps.some(function (c) { return c.moves.some(function (m) { return m.from === code || m.to === code; }); });
    if (busy) {
      message("网格 " + code + " 有未保存或可撤销/重做的修改：请先保存，再锁定", "Grid " + code +
              " has unsaved changes, or changes that undo or redo would make: save first, then lock it", "warn"); return;
    }
    var plan = state.plan, want = !g.locked;
    state.previewSeq += 1;  // a preview on its way names the version this edit replaces
    api("POST", "/api/plans/" + plan + "/edits", { version: state.version,
        operations: [{ op: "set", grid: code, locked: want }] }).then(function (res) {
      if (plan !== state.plan) return;
      if (res.status === 409) { failed("保存冲突：", "Conflict: ", res, "error conflict"); return; }
      if (!res.ok) { failed(want ? "无法锁定：" : "无法解锁：", want ? "Cannot lock: " : "Cannot unlock: ", res); return; }
      state.version = res.data.version;
      g.locked = want;
      planInfo();
      afterLocalChange();  // the pending edits are previewed again, against the new version
      message(want ? "网格 " + code + " 已锁定" : "网格 " + code + " 已解锁",
              "Grid " + code + (want ? " locked" : " unlocked"), "ok");
    });
  }

  // -- notes: why a grid (or a unit of it) was drawn so; kept with the draft (a `note` edit, saved at
  // once), copied into drafts made from it, listed by the diff -----------------------------------------
  var notesRequest = 0;
  function loadNotes() {
    var plan = state.plan, mine = ++notesRequest;
    return api("GET", "/api/plans/" + plan + "/notes").then(function (res) {
      if (plan !== state.plan || mine !== notesRequest) return;
      state.notes = res.ok ? res.data.notes : [];
      renderNotes();
    });
  }
  function renderNotes() {
    var list = $("note-list"), code = state.selected;
    list.innerHTML = "";
    var editableNow = state.status === "draft" && !!state.token;
    $("add-note").disabled = !(code && state.grids[code] && editableNow);
    noteTargets();
    if (!code) return;
    (state.notes || []).filter(function (n) {
      var u = n.unit_id !== null && n.unit_id !== undefined ? state.units[n.unit_id] : null;
      return n.grid_code === code || (u && u.grid === code);
    }).forEach(function (n) {
      var li = document.createElement("li");
      var body = document.createElement("span");
      var onUnit = n.unit_id !== null && n.unit_id !== undefined;
      say(body, (onUnit ? "单元 " + n.unit_id + "：" : "") + n.body, (onUnit ? "unit " + n.unit_id + ": " : "") + n.body);
      var meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = (n.author || "") + " · " + when(n.created_at);
      if (editableNow) {
        var drop = document.createElement("button");
        drop.type = "button"; drop.textContent = "×";
        window.gridmapTitle(drop, "删除此备注", "Delete this note");
        drop.addEventListener("click", function () { noteEdit({ op: "note", remove: n.id }); });
        li.appendChild(drop);
      }
      li.appendChild(body); li.appendChild(meta);
      list.appendChild(li);
    });
  }
  function noteEdit(op) {
    if (!editable()) return;
    var plan = state.plan;
    api("POST", "/api/plans/" + plan + "/edits", { version: state.version, operations: [op] }).then(function (res) {
      if (plan !== state.plan) return;
      if (!res.ok) { failed("无法保存备注：", "Cannot save the note: ", res, res.status === 409 ? "error conflict" : "error"); return; }
      state.version = res.data.version;
      planInfo();
      if (op.text) $("note-text").value = "";
      message(op.remove ? "备注已删除" : "备注已保存", op.remove ? "Note deleted" : "Note saved", "ok");
      loadNotes();
    });
  }
  // A note is about the selected grid, or about the unit last clicked in it (offered once one is).
  function noteTargets() {
    var u = state.noteUnit != null ? state.units[state.noteUnit] : null;
    var option = $("note-on").querySelector("option[value='unit']");
    var offered = !!(u && state.selected && u.grid === state.selected);
    option.hidden = !offered;
    if (offered) say(option, "关于单元 " + u.id, "About unit " + u.id);
    if (!offered && $("note-on").value === "unit") $("note-on").value = "grid";
  }
  function addNote() {
    var text = $("note-text").value.trim();
    if (!text) { message("请先写下备注", "Write the note first", "warn"); return; }
    if (!state.selected) { needSelection(); return; }
    var onUnit = $("note-on").value === "unit" && state.noteUnit != null;
    noteEdit(onUnit ? { op: "note", unit: state.noteUnit, text: text }
                    : { op: "note", grid: state.selected, text: text });
  }

  // -- the grid table: every grid with its figures, live while painting (donor grids too) -------------
  // Figures as the panel has them: the server's (the saved grid, or the dry run of the pending edits)
  // where it has answered, the sum of the units drawn here until it does.
  // worst first: farthest above the band on top. The rows drawn are kept by grid code (with the
  // markup they show) and only those whose figures changed are rewritten: a paint click touches two
  // grids, and rewriting all 2,500 rows of a large district each time took most of its frame.
  var table = { key: "deviation", dir: -1, frame: 0, rows: {}, shown: {}, order: [] };
  function gridRows() {
    var sums = {}, changed = {};
    Object.keys(state.grids).forEach(function (code) { sums[code] = { households: 0, units: 0 }; });
    Object.keys(state.tally).forEach(function (code) {
      if (state.tally[code].units > 0 || sums[code]) sums[code] = state.tally[code];
    });
    pendingUnits().forEach(function (u) { changed[u.grid] = true; changed[u.saved] = true; });
    var lo = state.band ? state.band[0] : null, hi = state.band ? state.band[1] : null;
    return Object.keys(sums).map(function (code) {
      var g = state.grids[code] || {}, p = state.preview[code] || {}, s = sums[code];
      var households = p.households !== undefined ? p.households : s.households;
      var units = p.unit_count !== undefined ? p.unit_count : s.units;
      var kind = g.kind || "comprehensive";
      var deviation = kind === "dedicated" || lo === null ? null
        : households < lo ? households - lo : households > hi ? households - hi : 0;
      var fresh = !changed[code];
      return { code: code, community: g.community || communityOf(code) || "", kind: kind, households: households,
               units: units, deviation: deviation, changed: !!changed[code],
               locked: g.locked ? 1 : 0, worker: g.worker || "",
               compactness: p.compactness !== undefined ? p.compactness : (fresh ? g.compactness : null),
               parts: p.parts !== undefined ? p.parts : (fresh ? g.parts : null) };
    });
  }
  function scheduleTable() {
    if (table.frame) return;
    table.frame = requestAnimationFrame(function () { table.frame = 0; renderTable(); });
  }
  function renderTable() {
    var body = document.querySelector("#grid-table tbody");
    if (!body) return;
    var rows = gridRows(), all = rows.length;
    var text = ($("grid-filter").value || "").trim();
    var outsideOnly = $("grid-outside-only").checked;
    rows = rows.filter(function (r) {
      return (!text || r.code.indexOf(text) >= 0 || r.community.indexOf(text) >= 0 || r.worker.indexOf(text) >= 0) &&
             (!outsideOnly || (r.deviation !== null && r.deviation !== 0));
    });
    var key = table.key, dir = table.dir;
    rows.sort(function (a, b) {
      var x = a[key], y = b[key];
      if (key === "deviation") { x = x === null ? null : Math.abs(x); y = y === null ? null : Math.abs(y); }
      if (x === y) return a.code < b.code ? -1 : 1;
      if (x === null || x === undefined) return 1;   // unknown figures last, either way
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * dir;
    });
    var esc = function (v) { return String(v).replace(/[&<>"']/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; }); };
    var order = rows.map(function (r) {
      var dev = r.deviation === null ? "—" : (r.deviation > 0 ? "+" : "") + r.deviation;
      var cls = (r.code === state.selected ? "selected " : "") + (r.changed ? "changed" : "");
      var cells = "<td role=\"cell\">" + esc(r.code) + "</td><td role=\"cell\" class=\"num\">" +
        r.households + "</td><td role=\"cell\" class=\"num" + (r.deviation ? " bad" : "") + "\">" + dev +
        "</td><td role=\"cell\" class=\"num\">" + r.units + "</td><td role=\"cell\" class=\"num\">" +
        (r.compactness === null || r.compactness === undefined ? "—" : Number(r.compactness).toFixed(2)) +
        "</td><td role=\"cell\" class=\"num" + (r.parts > 1 ? " bad" : "") + "\">" +
        (r.parts === null || r.parts === undefined ? "—" : r.parts) + "</td><td role=\"cell\" class=\"worker\">" +
        esc(r.worker) + "</td><td role=\"cell\" class=\"lock\">" +
        (r.locked ? "🔒" : "") + "</td>";
      var tr = table.rows[r.code];
      if (!tr) {
        tr = table.rows[r.code] = document.createElement("tr");
        tr.dataset.code = r.code; tr.setAttribute("role", "row");  // rows are laid out as grids (planner.css)
      }
      if (table.shown[r.code] !== cells) { tr.innerHTML = cells; table.shown[r.code] = cells; }  // codes escaped
      if (tr.className !== cls) tr.className = cls;
      return r.code;
    });
    // rows in the new order, moving only those out of place (a paint moves two or three of them)
    var wanted = {};
    order.forEach(function (c) { wanted[c] = true; });
    Array.prototype.slice.call(body.children).forEach(function (tr) {  // filtered out, or another plan's row
      if (!wanted[tr.dataset.code] || table.rows[tr.dataset.code] !== tr) body.removeChild(tr);
    });
    order.forEach(function (c, i) {
      var tr = table.rows[c];
      if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    });
    table.order = order;
    say($("grid-table-count"), "共 " + all + " 个网格，显示 " + rows.length + " 个", all + " grids, " + rows.length + " shown");
    document.querySelectorAll("#grid-table th").forEach(function (th) {
      if (th.dataset.sort === key) th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
  }
  function zoomToGrid(code) {
    var bounds = null;
    Object.keys(state.units).forEach(function (k) {
      var u = state.units[k];
      if (u.grid === code) bounds = bounds ? bounds.extend(unitLayer.unitBounds(u)) : unitLayer.unitBounds(u);
    });
    if (bounds) map.fitBounds(bounds, { maxZoom: 18, padding: [20, 20], animate: false });
  }
  function initTable() {
    document.querySelectorAll("#grid-table th").forEach(function (th) {
      th.addEventListener("click", function () {
        var key = th.dataset.sort;
        table.dir = table.key === key ? -table.dir : (key === "code" ? 1 : -1);
        table.key = key; renderTable();
      });
    });
    document.querySelector("#grid-table tbody").addEventListener("click", function (ev) {
      var tr = ev.target.closest("tr");
      if (!tr) return;
      selectGrid(tr.dataset.code); zoomToGrid(tr.dataset.code);
    });
    $("grid-filter").addEventListener("input", scheduleTable);
    $("grid-outside-only").addEventListener("change", scheduleTable);
  }

  // -- search: grid codes, communities, compounds, buildings, addresses, roads, places ------------------
  // The server searches the plan's units and the territory's layers (/api/plans/{id}/search); a hit
  // zooms the map to it and selects the grid that holds it.
  var LAYER_NAMES = { buildings: ["楼栋", "building"], roads: ["道路", "road"], compounds: ["小区", "compound"],
                      residential_areas: ["小区", "compound"], sites: ["场所", "site"], pois: ["地点", "place"],
                      waterways: ["水系", "water"], railways: ["铁路", "railway"], entrances: ["单元门", "entrance"],
                      "楼栋": ["楼栋", "building"], "单元门": ["单元门", "entrance"] };
  var KIND_NAMES = { grid: ["网格", "grid"], community: ["社区", "community"], unit: ["单元", "unit"] };
  var search = { timer: null, seq: 0, hits: [], text: "", marker: null };
  function runSearch(thenGo) {
    var text = $("search").value.trim(), list = $("search-results");
    if (!text || !state.plan) { list.hidden = true; list.innerHTML = ""; search.hits = []; search.text = ""; return; }
    var mine = ++search.seq;
    api("GET", "/api/plans/" + state.plan + "/search?q=" + encodeURIComponent(text) + "&limit=20").then(function (res) {
      if (mine !== search.seq) return;  // a newer query is on its way
      list.innerHTML = "";
      list.hidden = false;
      if (!res.ok) { failed("搜索失败：", "Search failed: ", res, "warn"); list.hidden = true; return; }
      search.hits = res.data.hits; search.text = text;
      if (thenGo && search.hits.length) goTo(search.hits[0]);
      if (!search.hits.length) {
        var none = document.createElement("li");
        say(none, "没有找到“" + text + "”", "Nothing found for “" + text + "”");
        list.appendChild(none); return;
      }
      search.hits.forEach(function (hit, i) {
        var li = document.createElement("li");
        li.dataset.index = String(i);
        var label = document.createElement("span");
        label.textContent = hit.label;
        var kind = document.createElement("span");
        kind.className = "kind";
        var names = hit.kind === "feature" ? (LAYER_NAMES[hit.detail] || [hit.detail, hit.detail]) :
          (hit.kind_names || KIND_NAMES[hit.kind]);  // a community says 社区 or 村, as the server names it
        var where = hit.grid_code && hit.kind !== "grid" ? " · " + hit.grid_code : "";
        say(kind, names[0] + where, names[1] + where);
        li.appendChild(label); li.appendChild(kind);
        list.appendChild(li);
      });
    });
  }
  function goTo(hit) {
    if (hit.bbox) map.fitBounds([[hit.bbox[1], hit.bbox[0]], [hit.bbox[3], hit.bbox[2]]], { maxZoom: 18, animate: false });
    else map.setView([hit.point[1], hit.point[0]], Math.max(map.getZoom(), 18), { animate: false });
    if (search.marker) map.removeLayer(search.marker);
    search.marker = L.circleMarker([hit.point[1], hit.point[0]], { radius: 9, color: "#c0392b", weight: 3, fill: false,
                                                                  interactive: false, renderer: canvas }).addTo(map);
    if (hit.grid_code && state.grids[hit.grid_code] || hit.grid_code && state.units[hit.unit_id]) {
      // the grid as drawn now: a unit painted elsewhere since the last save is found where it is now
      selectGrid(hit.unit_id && state.units[hit.unit_id] ? state.units[hit.unit_id].grid : hit.grid_code);
    }
  }
  function initSearch() {
    $("search").addEventListener("input", function () {
      clearTimeout(search.timer);
      search.timer = setTimeout(runSearch, 250);
    });
    $("search-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      clearTimeout(search.timer);
      if (search.hits.length && search.text === $("search").value.trim()) goTo(search.hits[0]);
      else runSearch(true);  // Enter before the hits of this text came: go to the first when they come
    });
    $("search-results").addEventListener("click", function (ev) {
      var li = ev.target.closest("li");
      if (!li || li.dataset.index === undefined) return;
      goTo(search.hits[+li.dataset.index]);
    });
  }

  // -- export: the plan shown (a draft with the user's sign-in), as government systems take it -------
  // The same files as `gridmap export` (/api/territories/{code}/export); fetched with the token and
  // handed to the browser as a download, so drafts need no token in a link.
  function exportPlan() {
    if (!state.plan || state.planVersion == null) { message("请先选择方案", "Choose a plan first", "warn"); return; }
    var choice = $("export-format").value.split(":"), code = $("territory").value;
    var query = "format=" + choice[0] + "&encoding=" + choice[1] + "&crs=" + encodeURIComponent($("export-crs").value) +
      "&plan=" + state.planVersion + "&layers=" + ($("export-units").checked ? "grids,units" : "grids");
    if (pendingUnits().length) {
      message("注意：导出的是已保存的方案，未保存的 " + pendingUnits().length + " 处修改不在其中",
              "Note: the export is the plan as saved; " + pendingUnits().length + " unsaved changes are not in it", "warn");
    }
    download("/api/territories/" + code + "/export?" + query, $("export"), "导出", "Export");
  }

  // A file from the server, fetched with the sign-in (drafts need no token in a link) and handed to
  // the browser as a download; a refusal is shown in both languages.
  function download(url, button, zhWhat, enWhat) {
    var headers = state.token ? { Authorization: "Bearer " + state.token } : {};
    button.disabled = true;
    fetch(url, { headers: headers }).then(function (r) {
      if (!r.ok) return r.text().then(function (text) {
        var data;
        try { data = JSON.parse(text); } catch (e) { data = { detail: text }; }
        failed(zhWhat + "失败：", enWhat + " failed: ", { status: r.status, data: data });
      });
      var name = (/filename="?([^";]+)"?/.exec(r.headers.get("Content-Disposition") || "") || [])[1] || "plan-" + state.plan;
      return r.blob().then(function (blob) {
        var a = document.createElement("a");
        a.href = URL.createObjectURL(blob); a.download = name;
        document.body.appendChild(a); a.click(); a.remove();
        setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
        message("已下载 " + name, "Downloaded " + name, "ok");
      });
    }, function () {
      message(zhWhat + "失败：无法连接服务器", enWhat + " failed: the server cannot be reached", "error");
    }).then(function () { button.disabled = false; });
  }

  // -- the wall map: one community's grids on A4/A3 (gridmap print), in the page's language ---------
  function fillPrintCommunities() {
    var select = $("print-community"), keep = select.value, seen = {};
    Object.keys(state.grids).forEach(function (code) { var c = state.grids[code].community; if (c) seen[c] = true; });
    select.innerHTML = "";
    Object.keys(seen).sort().forEach(function (c) {
      var opt = document.createElement("option"), place = state.places[c];
      opt.value = c; opt.textContent = (place ? place.name + " " : "") + c;
      select.appendChild(opt);
    });
    if (keep && seen[keep]) select.value = keep;
  }
  function printMap() {
    if (!state.plan || state.planVersion == null) { message("请先选择方案", "Choose a plan first", "warn"); return; }
    var selected = state.selected && communityOf(state.selected), community = $("print-community").value;
    if (selected && selected !== community) { $("print-community").value = selected; community = selected; }
    if (!community) { message("请先选择社区", "Choose a community first", "warn"); return; }
    if (pendingUnits().length) {
      message("注意：打印的是已保存的方案，未保存的 " + pendingUnits().length + " 处修改不在其中",
              "Note: the sheet shows the plan as saved; " + pendingUnits().length + " unsaved changes are not on it", "warn");
    }
    var lang = document.documentElement.lang === "en" ? "en" : "zh";
    download("/api/territories/" + community + "/wallmap?plan_id=" + state.plan + "&paper=" + $("print-paper").value +
             "&format=" + $("print-format").value + "&lang=" + lang, $("print-map"), "打印", "Printing");
  }

  // -- the brush: drag to paint every unit whose interior point the circle passes over into the
  // selected grid; with Alt held, drag to erase: units go back to the grid they had before their last move.
  // One stroke is one undo step; units of another community are never painted. ---------------------
  var brush = { circle: null, stroke: null, cellStroke: null };  // cellStroke: buildings (micro-grids)
  function brushRadius() { return +$("brush-radius").value; }
  // The units' interior points in buckets of 0.002° (about 200 m), so a brush move looks at the
  // few units near it, not at every unit (50,000 units × 100 moves of a stroke was 4 s). Rebuilt
  // on the first look after units were drawn, added or removed.
  var LABEL_CELL = 0.002, labelIndex = null;
  function invalidateLabels() { labelIndex = null; }
  function labelBuckets() {
    if (labelIndex) return labelIndex;
    labelIndex = {};
    Object.keys(state.units).forEach(function (k) {
      var l = state.units[k].label, key = Math.floor(l[0] / LABEL_CELL) + "," + Math.floor(l[1] / LABEL_CELL);
      (labelIndex[key] = labelIndex[key] || []).push(state.units[k].id);
    });
    return labelIndex;
  }
  function unitsUnder(latlng, radius) {
    var dlat = radius / 111320, dlng = radius / (111320 * Math.cos(latlng.lat * Math.PI / 180));
    var buckets = labelBuckets(), found = [];
    for (var i = Math.floor((latlng.lat - dlat) / LABEL_CELL); i <= Math.floor((latlng.lat + dlat) / LABEL_CELL); i++) {
      for (var j = Math.floor((latlng.lng - dlng) / LABEL_CELL); j <= Math.floor((latlng.lng + dlng) / LABEL_CELL); j++) {
        (buckets[i + "," + j] || []).forEach(function (id) {
          var u = state.units[id];
          if (!u) return;
          var l = u.label;
          if (Math.abs(l[0] - latlng.lat) <= dlat && Math.abs(l[1] - latlng.lng) <= dlng &&
              map.distance(latlng, l) <= radius) found.push(id);
        });
      }
    }
    return found.sort(function (a, b) { return a - b; });
  }
  function brushStart(ev) {
    if (state.tool !== "brush" || !state.plan) return;
    if (microEditing()) { cellBrushStart(ev); return; }  // the buildings of the selected grid's micro-grids
    var erase = !!(ev.originalEvent && ev.originalEvent.altKey);
    if (!erase && !state.selected) return;  // this click selects a grid (see onUnitClick); the next drag paints
    if (!editable()) return;
    brush.stroke = { erase: erase, target: state.selected, change: null, foreign: {}, painted: 0,
                     previous: erase ? previousGrids() : null };
    brushPaint(ev.latlng);
  }
  // For an erase stroke: each unit still where its last paint (or lasso, merge, split) put it, and the
  // grid it had before that move. Erase strokes are not moves to take back: a unit erased already, or
  // painted and erased, is left alone.
  function previousGrids() {
    var last = {}, before = {};
    state.undo.forEach(function (c) {
      if (c.erase) return;
      c.moves.forEach(function (m) { last[m.id] = m; });
    });
    Object.keys(last).forEach(function (id) {
      var m = last[id], u = state.units[id], to = m.to;
      if (u && u.grid === to && m.from !== to) before[id] = m.from;
    });
    return before;
  }
  function brushPaint(latlng) {
    var stroke = brush.stroke;
    if (!stroke || state.checking) return;
    var ids = unitsUnder(latlng, brushRadius());
    if (!ids.length) return;
    if (stroke.erase) {  // each unit once a stroke, back to the grid it had before its last move
      var moves = ids.map(function (id) { return state.units[id]; })
        .filter(function (u) { var to = stroke.previous[u.id];
          return to !== undefined && to !== u.grid && !isLocked(u.grid) && !isLocked(to); })
        .map(function (u) { var to = stroke.previous[u.id]; delete stroke.previous[u.id];
          return { id: u.id, from: u.grid, to: to }; });
      record(moves, null, stroke);
    } else {
      move(ids, stroke.target, stroke);
    }
  }
  function brushMove(ev) {
    if (state.tool !== "brush") return;
    if (brush.circle) brush.circle.setLatLng(ev.latlng).setRadius(brushRadius());
    if (brush.cellStroke) cellBrushPaint(ev.latlng);
    if (brush.stroke) brushPaint(ev.latlng);
  }
  function brushEnd(ev) {
    if (brush.cellStroke) { cellBrushEnd(ev); return; }
    var stroke = brush.stroke;
    if (!stroke) return;
    // where the button is let go belongs to the stroke (the browser may fold the last moves into it)
    if (ev && ev.type === "mouseup" && ev.latlng) brushPaint(ev.latlng);
    brush.stroke = null;
    if (stroke.change) afterLocalChange();  // now the stroke is checked on the server
    var foreign = Object.keys(stroke.foreign).map(function (k) { return stroke.foreign[k]; });
    var count = stroke.change ? stroke.change.moves.length : 0;
    if (foreign.length) tellForeign(foreign, count, stroke.target, communityOf(stroke.target));
    else if (count) message((stroke.erase ? "已擦除 " : "已涂入 ") + count + " 个单元",
                            count + " units " + (stroke.erase ? "erased back to their previous grid" : "painted"), "ok");
  }
  function showBrush(on) {
    $("brush-options").hidden = !on;
    if (on && !brush.circle) {
      brush.circle = L.circle(map.getCenter(), { radius: brushRadius(), color: "#c0392b", weight: 1, fillOpacity: 0.08,
                                                 interactive: false, renderer: canvas });
    }
    if (brush.circle) { if (on) brush.circle.addTo(map); else map.removeLayer(brush.circle); }
    if (!on) brushEnd();
  }

  // -- tools ----------------------------------------------------------------------------------------
  var HINTS = {
    select: ["点击单元以选中其网格", "Click a unit to select its grid"],
    paint: ["点击单元，将其涂入当前网格", "Click units to paint them into the selected grid"],
    brush: ["点击单元选中网格，再按住鼠标拖动：笔刷扫过的单元涂入该网格；按住 Alt 拖动则擦除（单元回到上一次移动前的网格）",
            "Click a unit to select its grid, then drag: the units the brush passes over go to that grid; drag with Alt " +
            "held to erase (each unit back to the grid it had before its last move)"],
    lasso: ["按住鼠标拖出套索，套中的单元涂入当前网格", "Drag a lasso: the units inside go to the selected grid"],
    merge: ["点击另一个网格的单元，把那个网格并入当前网格", "Click a unit of another grid to merge that grid into the selected one"],
    split: ["点击当前网格中的单元选出新网格，然后点“完成拆分”", "Click units of the selected grid for the new grid, then Finish split"],
    cut: ["先点击要切分的单元，再点击画出切线（至少两点，从单元外穿过单元），然后点“完成切线”",
          "Click the unit to cut, then click points of a line across it (from outside to outside), then Finish line"],
  };
  function setTool(tool) {
    state.tool = tool;
    document.querySelectorAll(".tool").forEach(function (b) { b.classList.toggle("active", b.dataset.tool === tool); });
    say($("tool-hint"), HINTS[tool][0], HINTS[tool][1]);
    $("finish-split").hidden = tool !== "split"; $("finish-cut").hidden = tool !== "cut";
    state.splitPick = {}; clearCut(); restyle();
    if (tool === "lasso" || tool === "brush") map.dragging.disable(); else map.dragging.enable();
    showBrush(tool === "brush");
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
    if (state.tool === "select" || !state.selected) {
      state.noteUnit = u.id;  // a note may be about this unit
      selectGrid(u.grid); return;
    }
    if (state.tool === "paint") { move([u.id], state.selected); return; }
    if (state.tool === "merge") {
      if (u.grid === state.selected) return;
      var other = u.grid, into = state.selected;
      if (!editable()) return;
      if (isLocked(other) || isLocked(into)) { tellLocked([isLocked(other) ? other : into]); return; }
      if (communityOf(into) && u.community !== communityOf(into)) { tellForeign([u], 0, into, communityOf(into)); return; }
      var ids = Object.keys(state.units).filter(function (k) { return state.units[k].grid === other; }).map(Number);
      if (move(ids, into, null, { op: "merge", grids: [into, other] })) {
        message("已将网格 " + other + " 并入 " + state.selected, "Grid " + other + " merged into " + state.selected, "ok");
      }
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
    if (state.microOn && code !== state.cellAsked) loadCells(code);
    renderMicroPanel();
  }
  // The new grid's code is the server's (one rule for the next free code of a community,
  // gridmap/services/edits.py): a dry run of the pending edits plus this split names it; the split is
  // shown here at once and saved as that split.
  $("finish-split").addEventListener("click", function () {
    var ids = Object.keys(state.splitPick).map(Number);
    var total = localStats(state.selected).units;
    if (!ids.length || ids.length >= total) {
      message("请选出部分（而非全部）单元", "Pick some but not all of the grid's units", "warn"); return;
    }
    if (!editable() || state.checking) return;
    var plan = state.plan, depth = state.undo.length, source = state.selected;
    var held = ids.filter(function (id) { return state.units[id] && state.units[id].grid === source; });
    $("finish-split").disabled = true;
    dryRun(pendingOperations().concat([{ op: "split", grid: source, units: held }])).then(function (res) {
      $("finish-split").disabled = false;
      if (plan !== state.plan) return;
      if (depth !== state.undo.length || state.selected !== source) {  // the plan changed meanwhile
        message("修改已变化，请再点一次“完成拆分”", "The edits changed meanwhile: press Finish split again", "warn"); return;
      }
      if (!res.ok) {
        failed("不能拆分：", "Cannot split: ", res, REFUSED[res.status] ? "warn refused" : "error"); return;
      }
      var code = res.data.created[res.data.created.length - 1];
      if (!code) { message("服务器没有给出新网格的编码", "The server named no code for the new grid", "error"); return; }
      state.splitPick = {};
      // sent as the split itself, with the code the server named: the server makes the grid (its kind
      // is the split grid's) when the edits are saved
      if (!move(held, code, null, { op: "split", grid: source, units: held, new_code: code })) return;
      selectGrid(code);
      message("新网格 " + code + "（保存后生效）", "New grid " + code + " (created on save)", "ok");
    });
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
    if (ring.length < 3) return;
    if (microEditing()) { cellLasso(ring); return; }  // the buildings of the selected grid's micro-grids
    if (!needSelection()) return;
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
      removeUnit(target);
      data.new_units.features.forEach(addUnit);
      // neighbours that took the line's crossing points are revised units with new ids
      (data.replaced_units || []).forEach(function (r) {
        var old = state.units[r.unit];
        if (old) removeUnit(old);
      });
      if (data.revisions) data.revisions.features.forEach(addUnit);
      invalidateLabels();
      message("单元 " + target.id + " 已切分为 " + data.new_units.features.length + " 个单元",
              "Unit " + target.id + " cut into " + data.new_units.features.length + " units", "ok");
    });
    clearCut();
  });

  // -- save, validate, diff, publish ----------------------------------------------------------------
  function save(ops, then) {
    if (!editable()) return;
    if (state.checking) { message("正在核对刚才的修改，请稍候再保存", "Checking your last changes; save again in a moment", "warn"); return; }
    ops = ops || pendingOperations();
    if (!ops.length) { message("没有需要保存的修改", "Nothing to save", "info"); return; }
    var plan = state.plan;
    clearTimeout(state.previewTimer); state.previewSeq += 1;  // the save's answer speaks for these edits now:
    // a preview still on its way (a stale 409 after someone else's save) must not overwrite it
    api("POST", "/api/plans/" + plan + "/edits", { version: state.version, operations: ops, with_geometry: true })
      .then(function (res) {
        if (plan !== state.plan) return;
        if (res.status === 409 && res.data && res.data.your_version !== undefined) {
          var d = res.data;
          message("保存冲突：草稿已被他人修改（您的编辑版本 " + d.your_version + "，当前编辑版本 " + d.current_version +
                  "）。请重新载入后再编辑。", "Conflict: someone else saved this draft (your edit " + d.your_version +
                  ", current edit " + d.current_version + "). Reload and apply your change again.", "error conflict");
          return;
        }
        if (REFUSED[res.status] && !then) {  // not caught by a preview yet: take the refused change back
          clearTimeout(state.previewTimer); state.previewSeq += 1;
          refuse(res);
          return;
        }
        if (!res.ok) { failed("保存失败：", "Save failed: ", res); return; }
        var data = res.data;
        clearTimeout(state.previewTimer); state.previewSeq += 1;  // answers for what is saved now
        state.version = data.version;
        Object.keys(state.pending).forEach(function (k) { state.units[k].saved = state.units[k].grid; });
        state.pending = {}; state.pendingCount = 0;
        clearPreviewShapes();
        data.removed.forEach(removeGrid);
        drawGrids(data.features || { features: [] }, false);
        state.preview = {}; state.undo = []; state.redo = []; state.goodDepth = 0;
        state.savedSummary = state.summary = data.summary;
        showSummary();
        if (then) then(data);
        restyle(); updatePending(); updatePanel(); planInfo();
        if (state.microOn) {  // the grids whose units changed have their micro-grids made again on the server
          var shown = state.cellGrid;  // redrawn unless another grid's buildings were asked for meanwhile
          Promise.resolve(loadMicro()).then(function () { if (shown && state.cellAsked === shown) return loadCells(shown); });
        }
        var micro = data.microgrids;  // the micro-grids of the grids this save changed: made again, or gone
        if (micro) state.microUndo = state.microUndo.filter(function (m) {  // hand moves there are gone with them
          return (micro.grids || []).indexOf(m.grid) < 0 && (micro.removed || []).indexOf(m.to) < 0;
        });
        var gone = data.removed.length ? data.removed.join("、") : "";
        var ms = Math.round(data.elapsed_ms);
        if (!then) message("已保存（编辑版本 " + data.version + "，" + ms + " 毫秒）" +
                             (gone ? "。网格 " + gone + " 已无单元，已删除" : "") + (micro ? "。" + micro.message_zh : ""),
                           "Saved (edit " + data.version + ", " + ms + " ms)" +
                             (gone ? ". Grid " + data.removed.join(", ") + " was left without units and removed" : "") +
                             (micro ? ". " + micro.message : ""),
                           (micro && micro.error) || gone ? "warn" : "ok");
      });
  }
  $("save").addEventListener("click", function () { save(); });

  function renderProblems() {
    var list = $("problems");
    list.innerHTML = "";
    (state.problems || []).forEach(function (p) {
      var li = document.createElement("li");
      li.className = "problem " + p.severity;
      say(li, p.message_zh, p.message_en);
      li.addEventListener("click", function () {
        if (p.bbox) map.fitBounds([[p.bbox[1], p.bbox[0]], [p.bbox[3], p.bbox[2]]], { maxZoom: 17 });
        if (p.grid_code) selectGrid(p.grid_code);
      });
      list.appendChild(li);
    });
  }
  $("validate").addEventListener("click", function () {
    if (!state.plan) return;
    var plan = state.plan, mine = ++state.validateRequest;
    api("GET", "/api/plans/" + plan + "/validate").then(function (res) {
      if (plan !== state.plan || mine !== state.validateRequest) return;  // another plan, or the plan read again
      state.problems = null; renderProblems();
      if (!res.ok) { failed("校验失败：", "Validation failed: ", res); return; }
      state.problems = res.data.problems; renderProblems();
      message("校验完成：" + res.data.errors + " 个错误，" + res.data.warnings + " 个提示",
              "Validated: " + res.data.errors + " errors, " + res.data.warnings + " warnings",
              res.data.errors ? "error" : "ok");
    });
  });

  function planName(f) {
    var s = STATUS[f.status] || [f.status, f.status];
    return ["v" + f.version + "（" + s[0] + "）", "v" + f.version + " (" + s[1] + ")"];
  }
  function renderDiffSummary() {
    var d = state.diff, list = $("diff-notes"), table = $("compare-figures");
    list.innerHTML = "";
    table.querySelector("tbody").innerHTML = "";
    table.hidden = !d;
    if (!d) { plain($("diff-summary"), ""); return; }
    (d.notes || []).forEach(function (n) {  // notes new in this plan: why its grids were drawn so
      var li = document.createElement("li");
      var tail = n.body + " — " + (n.author || "");
      say(li, (n.grid_code ? "网格 " + n.grid_code : "单元 " + n.unit_id) + "：" + tail,
          (n.grid_code ? "grid " + n.grid_code : "unit " + n.unit_id) + ": " + tail);
      list.appendChild(li);
    });
    var other = planName(d.figures.against);
    say($("diff-summary"), "与方案 " + other[0] + "相比：新增 " + d.added.length + "，删除 " + d.removed.length +
      "，变更 " + d.changed.length + " 个网格；移动 " + d.units_moved + " 个单元（洋红色；虚线为对比方案的网格边界；再点一次关闭）",
      "Against plan " + other[1] + ": " + d.added.length + " added, " + d.removed.length + " removed, " +
      d.changed.length + " changed grids; " + d.units_moved + " units moved (magenta; dashed: the other plan's grid borders; " +
      "click again to hide)");
    if ((d.notes || []).length) {
      say($("diff-summary"), $("diff-summary").getAttribute("data-zh") + "；新增备注 " + d.notes.length + " 条",
          $("diff-summary").getAttribute("data-en") + "; " + d.notes.length + " new notes");
    }
    var mine = planName(d.figures.plan);
    say($("compare-this"), mine[0], mine[1]);
    say($("compare-other"), other[0], other[1]);
    var pct = function (v) { return v == null ? "–" : (100 * v).toFixed(1) + "%"; };
    var num = function (v) { return v == null ? "–" : String(Math.round(v * 100) / 100); };
    var num3 = function (v) { return v == null ? "–" : v.toFixed(3); };  // compactness moves in the third place
    [["grids", "网格", "grids", num], ["comprehensive", "综合网格", "comprehensive grids", num],
     ["in_band", "户数达标", "in the band", num], ["in_band_share", "达标比例", "share in the band", pct],
     ["households_min", "最少户数", "fewest households", num], ["households_median", "户数中位数", "median households", num],
     ["households_max", "最多户数", "most households", num], ["mean_compactness", "平均紧凑度", "mean compactness", num3],
     ["not_contiguous", "不连通网格", "grids not contiguous", num]].forEach(function (row) {
      var tr = document.createElement("tr"), a = d.figures.plan[row[0]], b = d.figures.against[row[0]];
      var name = document.createElement("td"); say(name, row[1], row[2]); tr.appendChild(name);
      [a, b].forEach(function (v) { var td = document.createElement("td"); td.textContent = row[3](v); tr.appendChild(td); });
      if (row[3](a) !== row[3](b)) tr.className = "changed";  // as shown: a row marked shows two figures
      tr.dataset.figure = row[0];
      table.querySelector("tbody").appendChild(tr);
    });
  }
  // Compare the plan shown with another plan of the territory (the published one by default): grids
  // added, changed and removed outlined, the units that moved filled in magenta, the other plan's grid
  // borders dashed over the map, and the figures of both plans side by side.
  function hideDiff() {
    state.diffRequest += 1; state.diffLoading = false;
    if (state.diffLayer) map.removeLayer(state.diffLayer);
    state.diffLayer = null; state.diff = null; state.diffOther = null;
    hideSideMap(); renderDiffSummary();
  }
  function showDiff() {
    var mine = ++state.diffRequest;
    state.diffLoading = true;
    var plan = state.plan, against = $("compare-with").value;
    var query = against ? "?against=" + against : "";
    return Promise.all([api("GET", "/api/plans/" + plan + "/diff" + query),
                        against ? api("GET", "/api/plans/" + against + "/grids") : Promise.resolve(null)]).then(function (r) {
      var res = r[0];
      if (plan !== state.plan || mine !== state.diffRequest) return false;
      state.diffLoading = false;
      if (!res.ok) { failed("无法对比：", "Cannot compare: ", res); return false; }
      var colours = { added: "#2ca02c", changed: "#ff7f0e", removed: "#d62728" };
      if (state.diffLayer) map.removeLayer(state.diffLayer);
      state.diffLayer = L.featureGroup().addTo(map);
      var moved = {};
      (res.data.moves || []).forEach(function (m) { if (m.before && m.after) moved[m.unit] = true; });
      var movedFeatures = Object.keys(moved).filter(function (id) { return state.units[id]; })
        .map(function (id) { return unitFeature(state.units[id]); });
      L.geoJSON({ type: "FeatureCollection", features: movedFeatures }, { interactive: false, style: {
        renderer: canvas, color: "#c51b7d", weight: 1, fillColor: "#e7298a", fillOpacity: 0.45 } }).addTo(state.diffLayer);
      L.geoJSON(res.data.features, { interactive: false, style: function (f) {
        return { renderer: canvas, color: colours[f.properties.change], weight: 4, fillOpacity: 0.1,
                 dashArray: f.properties.change === "removed" ? "6 4" : null };
      } }).addTo(state.diffLayer);
      state.diffOther = r[1] && r[1].ok ? r[1].data : null;
      if (state.diffOther) {
        L.geoJSON(state.diffOther, { interactive: false, style: { renderer: canvas, color: "#6a3d9a", weight: 2, fill: false,
                                                                  dashArray: "4 4" } }).addTo(state.diffLayer);
      }
      state.diff = res.data;
      state.diff.movedShown = movedFeatures.length;
      state.diff.movedFeatures = movedFeatures;
      renderDiffSummary();
      return true;
    });
  }
  $("diff").addEventListener("click", function () {
    if (!state.plan) return;
    // a click while a comparison loads cancels it, as a click on one shown hides it
    if (state.diffLayer || state.diffLoading) { hideDiff(); return; }
    showDiff();
  });

  // Side by side: the compared plan's grids (same colour for the same code, households on the label,
  // the moved units in magenta) in a second map beside the plan shown; a pan or zoom of either map moves
  // the other. Opens the comparison first when none is shown; closing the comparison closes it.
  var sideMap = null;
  function hideSideMap() {
    if (!sideMap) return;
    map.off("move", state.syncSide);
    sideMap.remove(); sideMap = null;
    $("map-other").hidden = true;
    document.body.classList.remove("side-by-side");
    $("side-by-side").setAttribute("aria-pressed", "false");
    map.invalidateSize({ animate: false });
  }
  function showSideMap() {
    var other = state.diffOther;
    if (!other || !state.diff) {
      message("对比方案没有网格可显示", "The compared plan has no grids to show", "warn");
      return;
    }
    var centre = map.getCenter(), zoom = map.getZoom();
    $("map-other").hidden = false;
    document.body.classList.add("side-by-side");
    $("side-by-side").setAttribute("aria-pressed", "true");
    map.invalidateSize({ animate: false });
    map.setView(centre, zoom, { animate: false });
    var sideCanvas = L.canvas({ padding: 0.1 });
    sideMap = L.map("map-other", { preferCanvas: true, zoomControl: false, attributionControl: false,
                                   zoomSnap: map.options.zoomSnap, minZoom: map.getMinZoom(), maxZoom: map.getMaxZoom() });
    sideMap.setView(centre, zoom, { animate: false });
    L.geoJSON(other, { style: function (f) {
      return { renderer: sideCanvas, color: "#222", weight: 1.5, fillColor: colour(f.properties.grid_code), fillOpacity: 0.45 };
    }, onEachFeature: function (f, layer) {
      var p = f.properties;
      layer.bindTooltip(function () { return p.grid_code + " · " + window.gridmapT(p.households + " 户", p.households + " households"); },
                        { sticky: true });
    } }).addTo(sideMap);
    L.geoJSON({ type: "FeatureCollection", features: state.diff.movedFeatures || [] }, { interactive: false, style: {
      renderer: sideCanvas, color: "#c51b7d", weight: 1, fillColor: "#e7298a", fillOpacity: 0.6 } }).addTo(sideMap);
    var labels = L.layerGroup().addTo(sideMap);
    other.features.forEach(function (f) {
      var p = f.properties;
      if (!p.label) return;
      labels.addLayer(L.marker([p.label.coordinates[1], p.label.coordinates[0]], { interactive: false,
        icon: L.divIcon({ className: "grid-label", html: "<b>" + p.grid_code.slice(-3) + "</b><br>" + p.households,
                          iconSize: null }) }));
    });
    sideCaption();
    var moving = false;  // each map follows the other; the flag stops the echo
    state.syncSide = function () {
      if (moving || !sideMap) return;
      moving = true; sideMap.setView(map.getCenter(), map.getZoom(), { animate: false }); moving = false;
    };
    map.on("move", state.syncSide);
    sideMap.on("move", function () {
      if (moving) return;
      moving = true; map.setView(sideMap.getCenter(), sideMap.getZoom(), { animate: false }); moving = false;
    });
  }
  function sideCaption() {
    if (!sideMap || !state.diff) return;
    var mine = planName(state.diff.figures.plan), other = planName(state.diff.figures.against);
    say($("map-other-caption"), "对比方案 " + other[0] + "（左：本方案 " + mine[0] + "）",
        "Compared plan " + other[1] + " (left: this plan " + mine[1] + ")");
  }
  $("side-by-side").addEventListener("click", function () {
    if (!state.plan) return;
    if (sideMap) { hideSideMap(); return; }
    (state.diff ? Promise.resolve(true) : showDiff()).then(function (shown) { if (shown) showSideMap(); });
  });

  // micro-grids (微网格): their borders drawn over the grids, and the buildings of the selected grid,
  // each filled with its micro-grid's colour. In a draft, a click on a building picks its micro-grid
  // as the one to paint into (Shift+click picks another); a click on a building of another micro-grid
  // of the grid moves it there, and the brush and the lasso move every building they pass over or
  // enclose in one edit. The server checks and states the micro-grids again (POST
  // /microgrids/{code}/cells); the map redraws what it answers. The micro-grid panel divides the
  // selected grid (or every grid) into micro-grids and records leaders: the micro-grid's own
  // (微网格负责人), the clicked building's 楼栋长 and its 单元's 单元长.
  function hideMicro() {
    if (state.microLayer) { map.removeLayer(state.microLayer); state.microLayer = null; }
    if (state.cellLayer) { map.removeLayer(state.cellLayer); state.cellLayer = null; }
    state.cellGrid = null; state.cellAsked = null; state.microTarget = null; state.microOn = false;
    state.microInfo = {}; state.leaderCell = null; state.microDetail = null; state.microRead = false; state.gridSeq = {};
    plain($("micro-result"), "");
    state.cellSeq += 1; state.microSeq += 1; state.detailSeq += 1;
    brush.cellStroke = null;
    $("leader-name").value = $("leader-phone").value = "";  // no leader's phone left in the page
    $("leader-scope").dataset.key = $("leader-scope").dataset.filled = "";
    $("microgrids").setAttribute("aria-pressed", "false");
    renderMicroPanel();
  }
  // Every micro-grid of the plan; or, with ``grid``, only that grid's read again and put in place of
  // its old ones (after a move or a division of one grid: 雨城区's 2,451 micro-grids read again after
  // every move took 1.2–2.4 s). A grid's read waits for a whole read on its way, which it would
  // otherwise overwrite with older shapes.
  function loadMicro(grid) {
    if (grid && state.microLayer) {
      return Promise.resolve(state.microLoading).then(function () { return loadMicroOf(grid); });
    }
    var plan = state.plan, mine = ++state.microSeq;
    state.microLoading = api("GET", "/api/plans/" + plan + "/microgrids?format=geojson").then(function (res) {
      // another plan, the mode switched off, or a newer read of them sent
      if (plan !== state.plan || !state.microOn || mine !== state.microSeq) return null;
      if (!res.ok) { failed("无法载入微网格：", "Cannot load the micro-grids: ", res); return null; }
      var features = res.data.features || [];
      if (state.microLayer) map.removeLayer(state.microLayer);
      state.microLayer = L.geoJSON(features, { interactive: false, style: microStyle }).addTo(map);
      state.microInfo = {};
      features.forEach(function (f) { state.microInfo[f.properties.microgrid_code] = f.properties; });
      state.microRead = true;  // what a division would replace is known: it may ask before replacing them
      afterMicroRead();
      return features;
    });
    return state.microLoading;
  }
  function loadMicroOf(grid) {
    var plan = state.plan, seen = state.microSeq;
    var mine = state.gridSeq[grid] = (state.gridSeq[grid] || 0) + 1;  // two moves: the second's read wins
    return api("GET", "/api/plans/" + plan + "/microgrids?format=geojson&grid=" + encodeURIComponent(grid)).then(function (res) {
      // another plan, the mode switched off, or a whole read sent since (it has this grid too)
      if (plan !== state.plan || !state.microOn || seen !== state.microSeq || !state.microLayer ||
          mine !== state.gridSeq[grid]) return null;
      if (!res.ok) { failed("无法载入微网格：", "Cannot load the micro-grids: ", res); return null; }
      var features = res.data.features || [];
      state.microLayer.eachLayer(function (l) {
        if (l.feature.properties.grid_code === grid) state.microLayer.removeLayer(l);
      });
      Object.keys(state.microInfo).forEach(function (c) { if (state.microInfo[c].grid_code === grid) delete state.microInfo[c]; });
      state.microLayer.addData(features);
      features.forEach(function (f) { state.microInfo[f.properties.microgrid_code] = f.properties; });
      afterMicroRead();
      return features;
    });
  }
  function microStyle(f) {
    var chosen = f.properties.microgrid_code === state.microTarget;
    return { renderer: canvas, color: f.properties.flag ? "#d62728" : "#6a3d9a", weight: chosen ? 3 : 1.2,
             dashArray: chosen ? null : "3 3", fill: false };
  }
  function afterMicroRead() {
    if (state.microTarget && !state.microInfo[state.microTarget]) { state.microTarget = null; state.leaderCell = null; }
    $("microgrids").setAttribute("aria-pressed", "true");
    renderMicroPanel();
  }
  function loadCells(grid) {
    var plan = state.plan, mine = ++state.cellSeq;
    state.cellAsked = grid;  // the grid whose buildings are on their way (selecting it again asks nothing)
    return api("GET", "/api/plans/" + plan + "/microgrid-cells?grid=" + encodeURIComponent(grid)).then(function (res) {
      if (plan !== state.plan || !state.microOn || mine !== state.cellSeq) return;  // a later grid was asked for
      if (!res.ok) { failed("无法载入楼栋：", "Cannot load the buildings: ", res); return; }
      if (state.cellLayer) map.removeLayer(state.cellLayer);
      state.cellGrid = grid;
      var features = res.data.features || [];
      if (state.microTarget && !features.some(function (f) { return f.properties.microgrid_code === state.microTarget; })) {
        state.microTarget = null; state.leaderCell = null;
      }
      state.cells = {}; state.cellCentre = {};
      var leaderFound = false;
      state.cellLayer = L.geoJSON(features, { style: cellStyle, onEachFeature: function (f, layer) {
        state.cells[f.properties.cell_id] = layer;
        var c = layer.getBounds().getCenter();
        state.cellCentre[f.properties.cell_id] = [c.lat, c.lng];
        if (state.leaderCell && state.leaderCell.cell_id === f.properties.cell_id) { state.leaderCell = f.properties; leaderFound = true; }
      } })
        .bindTooltip(function (layer) {
          var p = layer.feature.properties, m = state.microInfo[p.microgrid_code] || {};
          var total = m.households != null ? m.households : "?";
          return (p.building_name || p.building_id || "") + (p.parts > 1 ? " · " + p.part + "/" + p.parts : "") +
            T(" · " + p.households + " 户 → 微网格 " + p.microgrid_code + "（" + total + " 户）",
              " · " + p.households + " households → micro-grid " + p.microgrid_code + " (" + total + " households)");
        })
        .on("click", function (ev) { paintCell(ev.layer.feature.properties, ev.originalEvent && ev.originalEvent.shiftKey); })
        .addTo(map);
      // the building last clicked is no longer among them (the grid was divided again: new cells), so
      // the form must not offer its 楼栋长 and 单元长 under a micro-grid that may no longer hold it
      if (!leaderFound) state.leaderCell = null;
      renderMicroPanel();
      if (!features.length) {
        message("网格 " + grid + " 尚无微网格", "Grid " + grid + " has no micro-grids yet", "info");
      }
    });
  }
  function cellStyle(f) {
    var mine = f.properties.microgrid_code === state.microTarget;
    var stroked = brush.cellStroke && brush.cellStroke.cells[f.properties.cell_id];
    return { renderer: canvas, color: stroked ? "#c0392b" : "#333", weight: stroked ? 2.5 : mine ? 1.4 : 0.5,
             fillColor: colour(f.properties.microgrid_code), fillOpacity: mine ? 0.75 : 0.4 };
  }
  // Whether the brush and the lasso paint buildings (the selected grid's are drawn) rather than units.
  function microEditing() {
    return state.microOn && !!state.cellLayer && state.cellGrid === state.selected && Object.keys(state.cellCentre).length > 0 &&
           state.status === "draft" && !!state.token;
  }
  function chooseMicro(code, cell) {
    state.microTarget = code;
    state.leaderCell = cell && cell.microgrid_code === code ? cell : null;
    if (state.microLayer) state.microLayer.setStyle(state.microLayer.options.style);
    if (state.cellLayer) state.cellLayer.setStyle(cellStyle);
    var m = state.microInfo[code] || {};
    if (state.status !== "draft" || !state.token) {
      message("微网格 " + code + "（" + m.households + " 户）：负责人见“微网格”栏（只读）",
              "Micro-grid " + code + " (" + m.households + " households): its leaders are in the Micro-grids panel (read-only)",
              "info");
    } else {
      message("微网格 " + code + "（" + m.households + " 户）：点击、笔刷或套索本网格其他微网格的楼栋将其移入；Shift+点击改选",
              "Micro-grid " + code + " (" + m.households + " households): click, brush or lasso buildings of the grid's " +
              "other micro-grids to move them here; Shift+click to pick another", "info");
    }
    loadMicroDetail();
  }
  function paintCell(p, pickOnly) {
    var writer = state.status === "draft" && !!state.token;  // a reader's click shows the building's micro-grid
    if (!writer || pickOnly || !state.microTarget || p.microgrid_code === state.microTarget) { chooseMicro(p.microgrid_code, p); return; }
    if (state.tool === "brush" || state.tool === "lasso") return;  // the stroke that ended in this click moved it
    if (!editable()) return;
    var from = {}; from[p.cell_id] = p.microgrid_code;
    state.leaderCell = p;  // in the target once moved: its 楼栋长 and 单元长 are the ones offered
    moveCells([p.cell_id], from, state.microTarget, false);
  }
  // Building cells into micro-grid ``target``, stored at once (one request, one edit of the draft);
  // ``from``: each cell's micro-grid before. ``back``: an undo (it does not join the undo list).
  // Resolves true once stored and redrawn.
  // ``grid``: the grid they are in (an undo's may not be the one shown now).
  function moveCells(cells, from, target, back, grid, recreate) {
    if (state.moving) {
      message("上一次移动尚未完成，请稍候", "The last move is not done yet; wait a moment", "warn", true);
      return Promise.resolve(false);
    }
    var plan = state.plan;
    grid = grid || state.cellGrid;
    state.moving = true;
    var body = { cells: cells, version: state.version };
    if (recreate) body.recreate = true;  // an undo giving back a micro-grid the move emptied: made again
    return api("POST", "/api/plans/" + plan + "/microgrids/" + target + "/cells", body)
      .then(function (res) {
        state.moving = false;
        if (plan !== state.plan) return false;
        if (!res.ok) {
          failed(res.status === 409 ? "方案已被他人修改，请重新载入：" : "不能移动：",
                 res.status === 409 ? "The plan was changed by someone else, reload it: " : "Cannot move it: ", res,
                 res.status === 409 ? "error conflict" : "warn", true);
          return false;
        }
        state.version = res.data.version;
        if (!back) state.microUndo.push({ cells: cells, from: from, to: target, grid: grid });
        planInfo();
        if (!state.microOn) return true;  // switched off meanwhile: the move is stored, nothing to redraw
        return Promise.resolve(loadMicro(grid)).then(function () {  // unless another grid was selected meanwhile
          if (state.cellAsked === grid) return loadCells(grid);
        }).then(function () {
          tellMoved(cells, from, target, back, res.data);
          loadMicroDetail();
          return true;
        });
      });
  }
  // What a move did: the micro-grid the buildings joined and each one they left, now (a micro-grid now
  // outside the band says why: its flag's reason, from the server).
  function tellMoved(cells, from, target, back, answer) {
    // a micro-grid out of the band says why (its reason from the server; the households it starts
    // with are said already)
    var why = function (m, lang) {
      if (!m || !m.flag) return "";
      var text = (lang === "zh" ? m.reason_zh : m.reason) || m.flag;
      text = text.replace(/^\d+ (户，|households, )/, "");
      return lang === "zh" ? "（" + text + "）" : " (" + text + ")";
    };
    var stated = {};  // the micro-grids as the move stated them (a newer read may not have answered yet)
    ((answer && answer.microgrids) || []).forEach(function (m) { stated[m.microgrid_code] = m; });
    var info = function (code) { return stated[code] || ((answer && (answer.removed || []).indexOf(code) >= 0) ? null : state.microInfo[code]); };
    var t = info(target) || {}, sources = [], zh = [], en = [], warn = !!t.flag;
    var leaders = {};
    ((answer && answer.removed_leaders) || []).forEach(function (r) { leaders[r.microgrid] = r.leader_name; });
    cells.forEach(function (c) { if (sources.indexOf(from[c]) < 0) sources.push(from[c]); });
    sources.forEach(function (source) {
      var m = info(source), led = leaders[source];
      warn = warn || !!(m && m.flag) || led !== undefined;
      zh.push(m ? source + " 现 " + m.households + " 户" + why(m, "zh") : source + " 已无楼栋，已删除" +
              (led !== undefined ? "（其负责人 " + (led || "（无姓名）") + " 的记录随之删除）" : ""));
      en.push(m ? source + " now " + m.households + why(m, "en") : source + " had no building left and was removed" +
              (led !== undefined ? " (with its leader " + (led || "(no name)") + ")" : ""));
    });
    var count = cells.length > 1, undoable = !back;  // a micro-grid it removed is made again by the undo
    message((back ? "已撤回：" : "") + (count ? "已将 " + cells.length + " 处楼栋移入微网格 " : "已移入微网格 ") + target +
            "：现 " + t.households + " 户" + why(t, "zh") + "；" + zh.join("；") + (undoable ? "。可按“撤销”移回" : ""),
            (back ? "Undone: " : "") + (count ? cells.length + " buildings moved into micro-grid " : "Moved into micro-grid ") +
            target + ": now " + t.households + " households" + why(t, "en") + "; " + en.join("; ") +
            (undoable ? ". Undo moves " + (count ? "them" : "it") + " back" : ""), warn ? "warn" : "ok", true);
  }
  // The cells a brush stroke or a lasso took, into the chosen micro-grid (those already in it left out).
  function moveTaken(ids) {
    var target = state.microTarget, from = {}, cells = [];
    ids.forEach(function (id) {
      var layer = state.cells[id];
      if (!layer || layer.feature.properties.microgrid_code === target) return;
      from[id] = layer.feature.properties.microgrid_code; cells.push(+id);
    });
    if (!cells.length) { if (state.cellLayer) state.cellLayer.setStyle(cellStyle); return; }
    if (!editable()) { if (state.cellLayer) state.cellLayer.setStyle(cellStyle); return; }
    moveCells(cells, from, target, false).then(function (ok) { if (!ok && state.cellLayer) state.cellLayer.setStyle(cellStyle); });
  }
  function needTarget() {
    if (state.microTarget) return true;
    message("请先点击一栋楼，选出要移入的微网格", "Click a building first to pick the micro-grid to move buildings into", "warn", true);
    return false;
  }
  function cellsUnder(latlng, radius) {
    return Object.keys(state.cellCentre).filter(function (id) {
      return map.distance(latlng, state.cellCentre[id]) <= radius;
    });
  }
  function cellBrushStart(ev) {
    var shift = ev.originalEvent && ev.originalEvent.shiftKey, alt = ev.originalEvent && ev.originalEvent.altKey;
    if (alt) {  // erasing is for units: a building goes back by Undo
      message("楼栋不能用 Alt 擦除：请用“撤销”移回", "Buildings are not erased with Alt: use Undo to move them back", "warn", true);
      return;
    }
    if (shift || !state.microTarget) return;  // this click picks a micro-grid (paintCell); the next drag paints
    brush.cellStroke = { cells: {} };
    cellBrushPaint(ev.latlng);
  }
  function cellBrushPaint(latlng) {
    var stroke = brush.cellStroke, added = [];
    cellsUnder(latlng, brushRadius()).forEach(function (id) {
      if (!stroke.cells[id]) { stroke.cells[id] = true; added.push(id); }
    });
    added.forEach(function (id) { var layer = state.cells[id]; if (layer) layer.setStyle(cellStyle(layer.feature)); });
  }
  function cellBrushEnd(ev) {
    var stroke = brush.cellStroke;
    if (ev && ev.type === "mouseup" && ev.latlng) cellBrushPaint(ev.latlng);
    brush.cellStroke = null;
    moveTaken(Object.keys(stroke.cells));
  }
  function cellLasso(ring) {
    if (!needTarget()) return;
    moveTaken(Object.keys(state.cellCentre).filter(function (id) { return pointInPolygon(state.cellCentre[id], ring); }));
  }
  // Undo of the last buildings moved between micro-grids: each back to the micro-grid it left (one edit
  // per micro-grid); a micro-grid the move emptied (and so removed) is made again with them, without
  // the leaders it had, and the message says so.
  function undoMicro() {
    if (!editable() || state.moving) return;
    var last = state.microUndo[state.microUndo.length - 1], bySource = {};
    last.cells.forEach(function (c) { (bySource[last.from[c]] = bySource[last.from[c]] || []).push(c); });
    var gone = Object.keys(bySource).filter(function (s) { return !state.microInfo[s]; });
    var settle = function (moved) {  // what went back leaves the entry; the entry goes once empty
      last.cells = last.cells.filter(function (c) { return moved.indexOf(c) < 0; });
      if (!last.cells.length) state.microUndo.splice(state.microUndo.indexOf(last), 1);
    };
    var remade = [];
    Object.keys(bySource).reduce(function (done, source) {
      return done.then(function (ok) {
        if (!ok) return false;
        var from = {}, again = gone.indexOf(source) >= 0;
        bySource[source].forEach(function (c) { from[c] = last.to; });
        return moveCells(bySource[source], from, source, true, last.grid, again).then(function (moved) {
          if (moved && again) remade.push(source);
          // a micro-grid the server would not make again: those buildings leave the undo (it would
          // only ask again), the refusal says why, and the older steps stay reachable
          if (moved || again) settle(bySource[source]);
          return moved;
        });
      });
    }, Promise.resolve(true)).then(function (ok) {
      if (ok && remade.length) {
        message("已撤回：微网格 " + remade.join("、") + " 已重建（原负责人记录未恢复）",
                "Undone: micro-grid " + remade.join(", ") + " made again (its leaders were not restored)", "warn", true);
      }
    });
  }
  // -- the micro-grid panel: divide, and record leaders --------------------------------------------
  function microCodes(grid) {
    return Object.keys(state.microInfo).filter(function (c) { return !grid || state.microInfo[c].grid_code === grid; });
  }
  function outsideBand(codes) { return codes.filter(function (c) { return state.microInfo[c].flag; }).length; }
  function renderMicroPanel() {
    var panel = $("micro-panel");
    panel.hidden = !state.microOn;
    if (!state.microOn) return;
    var all = microCodes(null), grid = state.selected, mine = grid ? microCodes(grid) : [];
    var writer = state.status === "draft" && !!state.token;
    plain($("micro-of"), grid || "—");
    say($("micro-summary"),
        "本方案 " + all.length + " 个微网格（" + outsideBand(all) + " 个在户数区间外）" +
          (grid ? "；本网格 " + mine.length + " 个（" + outsideBand(mine) + " 个在外）" : ""),
        "This plan: " + all.length + " micro-grids (" + outsideBand(all) + " outside the band)" +
          (grid ? "; this grid: " + mine.length + " (" + outsideBand(mine) + " outside)" : ""));
    var dedicated = grid && state.grids[grid] && state.grids[grid].kind === "dedicated";
    if (!all.length) say($("micro-hint"), writer ? "此方案尚无微网格：可在此划分" : "此方案尚无微网格（只有草稿可以划分）",
                         writer ? "This plan has no micro-grids yet: divide its grids here" :
                                  "This plan has no micro-grids yet (only a draft can be divided)");
    else if (!grid) say($("micro-hint"), "选择一个网格即可看到并调整它的楼栋", "Select a grid to see and move its buildings");
    else if (dedicated) say($("micro-hint"), "专属网格不划分微网格", "Dedicated grids are not divided into micro-grids");
    else if (!writer) say($("micro-hint"), "点击楼栋查看它所在的微网格及负责人", "Click a building to see its micro-grid and leaders");
    else say($("micro-hint"), "点击楼栋选出微网格，再用点击、笔刷或套索把本网格其他微网格的楼栋移入（笔刷和套索此时移动楼栋，不移动单元）",
             "Click a building to pick its micro-grid, then click, brush or lasso buildings of the grid's other " +
             "micro-grids into it (the brush and the lasso move buildings here, not units)");
    var one = $("micro-divide"), every = $("micro-divide-all");
    one.hidden = !writer || !grid || dedicated; every.hidden = !writer;
    one.disabled = every.disabled = !!state.dividing || !state.microRead;
    say(one, mine.length ? "重新划分本网格" : "划分本网格", mine.length ? "Divide this grid again" : "Divide this grid");
    say(every, all.length ? "重新划分全部网格" : "划分全部网格", all.length ? "Divide every grid again" : "Divide every grid");
    renderLeaderForm();
  }
  // One micro-grid as the server has it (its leader, its buildings' 楼栋长 and 单元长): read when a
  // micro-grid is picked and after a move or a leader is saved.
  function loadMicroDetail() {
    var plan = state.plan, code = state.microTarget, mine = ++state.detailSeq;
    if (!code) { state.microDetail = null; renderMicroPanel(); return Promise.resolve(); }
    return api("GET", "/api/plans/" + plan + "/microgrids/" + encodeURIComponent(code)).then(function (res) {
      if (plan !== state.plan || mine !== state.detailSeq) return;
      state.microDetail = res.ok ? res.data : null;
      renderMicroPanel();
    });
  }
  // Whom the form records: the micro-grid's leader, the clicked building's 楼栋长, its 单元's 单元长.
  function leaderChoices() {
    var code = state.microTarget, cell = state.leaderCell, out = [{ value: "microgrid", zh: "微网格负责人", en: "Micro-grid leader" }];
    if (cell && cell.microgrid_code === code) {
      var name = cell.building || cell.building_name || String(cell.building_id);
      out.push({ value: "building", zh: "楼栋长：" + name, en: "Building leader: " + name });
      if (cell.parts > 1) out.push({ value: "unit", zh: "单元长：" + name + " " + cell.part + "单元",
                                     en: "Stairwell leader: " + name + ", stairwell " + cell.part });
    }
    return out;
  }
  function currentLeader(scope) {
    var d = state.microDetail, cell = state.leaderCell;
    if (!d || d.microgrid_code !== state.microTarget) return null;
    if (scope === "microgrid") return { name: d.leader_name, phone: d.leader_phone };
    var row = (d.buildings || []).filter(function (b) {
      return (cell.building_id != null ? b.building_id === cell.building_id : b.building_name === cell.building_name) &&
             (scope === "building" || b.part === cell.part);
    })[0];
    if (!row) return null;
    return scope === "building" ? { name: row.building_leader_name, phone: row.building_leader_phone }
                                : { name: row.leader_name, phone: row.leader_phone };
  }
  function renderLeaderForm() {
    var box = $("micro-leader"), code = state.microTarget;
    box.hidden = !code;
    if (!code) return;
    plain($("leader-of"), code);
    var select = $("leader-scope"), was = select.value, choices = leaderChoices();
    var key = code + "|" + (state.leaderCell ? state.leaderCell.cell_id : "") + "|" + choices.length;
    if (select.dataset.key !== key) {  // another micro-grid or building: the choices anew, the building's first
      select.innerHTML = "";
      choices.forEach(function (c) {
        var opt = document.createElement("option");
        opt.value = c.value; say(opt, c.zh, c.en); select.appendChild(opt);
      });
      select.value = choices.length > 1 ? "building" : "microgrid";
      select.dataset.key = key; select.dataset.filled = "";
    } else if (was) {
      select.value = was;
    }
    var writer = state.status === "draft" && !!state.token;
    var read = !!state.microDetail && state.microDetail.microgrid_code === code;  // what is recorded, read
    $("leader-name").disabled = $("leader-phone").disabled = !writer || !!state.savingLeader;
    $("leader-save").disabled = !writer || !!state.savingLeader || !read;
    var now = currentLeader(select.value), filled = key + "|" + select.value + "|" + JSON.stringify(now);
    if (select.dataset.filled !== filled) {  // what is recorded, unless the user is typing over it
      $("leader-name").value = (now && now.name) || "";
      $("leader-phone").value = (now && now.phone) || "";
      select.dataset.filled = filled;
    }
  }
  function saveLeader() {
    if (!editable() || !state.microTarget) return;
    var scope = $("leader-scope").value, cell = state.leaderCell, code = state.microTarget, plan = state.plan;
    if (!state.microDetail || state.microDetail.microgrid_code !== code) return;  // what is recorded is not read yet
    // only what the user changed is sent: a field left as it was read is kept as it is stored
    var now = currentLeader(scope) || {}, body = {};
    if ($("leader-name").value !== (now.name || "")) body.name = $("leader-name").value;
    if ($("leader-phone").value !== (now.phone || "")) body.phone = $("leader-phone").value;
    if (body.name === undefined && body.phone === undefined) {
      message("负责人没有改动", "The leader is as recorded: nothing to save", "info", true); return;
    }
    if (scope !== "microgrid") body.building = cell.building_id != null ? String(cell.building_id) : cell.building_name;
    if (scope === "unit") body.part = cell.part;
    state.savingLeader = true; renderLeaderForm();
    api("PUT", "/api/plans/" + plan + "/microgrids/" + encodeURIComponent(code) + "/leader", body).then(function (res) {
      state.savingLeader = false;
      if (plan !== state.plan) return;
      if (!res.ok) { failed("无法保存负责人：", "Cannot save the leader: ", res, "warn", true); renderLeaderForm(); return; }
      var d = res.data, zhWho = (d.leader_name || "（无姓名）") + (d.has_phone ? "，已有电话" : "");
      var enWho = (d.leader_name || "(no name)") + (d.has_phone ? ", phone on record" : "");
      if (!d.leader_name && !d.has_phone) { zhWho = "（已清除）"; enWho = "(cleared)"; }
      if (d.role === "unit") message("已记录 " + d.building + " " + d.part + "单元的单元长：" + zhWho,
                                     "Stairwell leader of " + d.building + ", stairwell " + d.part + " recorded: " + enWho, "ok", true);
      else if (d.role === "building") message("已记录楼栋 " + d.building + " 的楼栋长：" + zhWho + "（涉及微网格 " + d.microgrids.join("、") + "）",
                                              "Building leader of " + d.building + " recorded: " + enWho + " (micro-grids " +
                                              d.microgrids.join(", ") + ")", "ok", true);
      else message("已记录微网格 " + code + " 的负责人：" + zhWho, "Leader of micro-grid " + code + " recorded: " + enWho, "ok", true);
      $("leader-scope").dataset.filled = "";
      loadMicroDetail();
    });
  }
  // Divide the selected grid (or every comprehensive grid) into micro-grids on the server, replacing
  // theirs (hand moves there are not kept; 楼栋长 and 单元长 stay with their buildings, a micro-grid's leader
  // goes with most of its buildings, and one that cannot is named in the answer).
  function divideMicro(grid) {
    if (!editable()) return;
    if (state.pendingCount) {
      message("请先保存对网格的修改：微网格按已保存的网格划分", "Save your grid changes first: micro-grids are made of the grids as saved", "warn");
      return;
    }
    var had = microCodes(grid).length;
    if (had && !window.confirm(T("重新划分将替换" + (grid ? "网格 " + grid + " " : "全部网格") + "的 " + had + " 个微网格（手工调整不保留；楼栋长、单元长随其楼栋保留，微网格负责人随其多数楼栋保留）。继续？",
                                 "Dividing again replaces the " + had + " micro-grids of " + (grid ? "grid " + grid : "every grid") +
                                 " (hand moves are not kept; building and stairwell leaders stay with their buildings, a micro-grid's leader " +
                                 "with most of its buildings). Go on?"))) return;
    var plan = state.plan, body = { version: state.version };
    if (grid) body.grid = grid;
    state.dividing = true; renderMicroPanel();
    message(grid ? "正在划分网格 " + grid + " 的微网格…" : "正在划分全部网格的微网格（大的辖区需要一些时间）…",
            grid ? "Dividing grid " + grid + " into micro-grids…" : "Dividing every grid into micro-grids (a large territory takes a while)…",
            "info", true);
    api("POST", "/api/plans/" + plan + "/microgrids", body).then(function (res) {
      state.dividing = false;
      if (plan !== state.plan) return;
      renderMicroPanel();
      if (!res.ok) {
        failed(res.status === 409 ? "方案已被他人修改，请重新载入：" : "无法划分微网格：",
               res.status === 409 ? "The plan was changed by someone else, reload it: " : "Cannot divide into micro-grids: ", res,
               res.status === 409 ? "error conflict" : "warn", true);
        return;
      }
      var d = res.data, s = d.summary || {};
      state.version = d.version;
      state.microUndo = state.microUndo.filter(function (m) { return grid && m.grid !== grid; });  // those moves are gone
      planInfo();
      if (state.microOn) {  // closed (or signed out) meanwhile: the division is stored, nothing to draw
        Promise.resolve(loadMicro(grid || undefined)).then(function () {
          var shown = state.selected;
          if (shown) return loadCells(shown);
        });
      }
      message("已划分 " + d.grids.length + " 个网格：" + s.microgrids + " 个微网格，" + s.in_band + " 个在 " +
              s.min_households + "–" + s.max_households + " 户" + (d.replaced ? "（替换原有 " + d.replaced + " 个）" : "") +
              (d.leaders_message_zh ? "。" + d.leaders_message_zh : ""),
              "Divided " + d.grids.length + " grid" + (d.grids.length > 1 ? "s" : "") + ": " + s.microgrids + " micro-grids, " +
              s.in_band + " with " + s.min_households + "–" + s.max_households + " households" +
              (d.replaced ? " (replacing " + d.replaced + ")" : "") + (d.leaders_message ? ". " + d.leaders_message : ""),
              d.leaders_message ? "warn" : "ok", true);
    });
  }
  $("micro-divide").addEventListener("click", function () { if (state.selected) divideMicro(state.selected); });
  $("micro-divide-all").addEventListener("click", function () { divideMicro(null); });
  $("leader-save").addEventListener("click", saveLeader);
  $("leader-scope").addEventListener("change", renderLeaderForm);
  $("microgrids").addEventListener("click", function () {
    if (!state.plan) return;
    if (state.microOn) { hideMicro(); return; }
    var plan = state.plan;
    state.microOn = true;
    renderMicroPanel();
    $("micro-panel").scrollIntoView({ block: "nearest" });  // below the fold on a small screen
    loadMicro().then(function (features) {
      if (!features || plan !== state.plan) return;
      if (!features.length) {
        if (state.status === "draft" && state.token) {  // the panel offers to divide them
          message("此方案尚无微网格：可在“微网格”栏划分", "This plan has no micro-grids yet: divide them in the Micro-grids panel", "info");
          return;
        }
        hideMicro();
        message("此方案尚无微网格（草稿中可划分：gridmap partition --micro --plan " + plan + "）",
                "This plan has no micro-grids yet (a draft can be divided: gridmap partition --micro --plan " + plan + ")", "info");
        return;
      }
      message("微网格 " + features.length + " 个：选择一个网格即可看到并调整它的楼栋（再点一次隐藏）",
              features.length + " micro-grids: select a grid to see and move its buildings (click again to hide)", "ok");
      if (state.selected) loadCells(state.selected);
    });
  });

  $("publish").addEventListener("click", function () {
    if (!editable()) return;
    if (pendingUnits().length) { message("请先保存修改再发布", "Save your changes before publishing", "warn"); return; }
    var v = state.planVersion != null ? " v" + state.planVersion : "";
    if (!window.confirm(T("发布此草稿（方案" + v + "）？如已有已发布方案，它将转为历史方案。",
                          "Publish this draft (plan" + v + ")? The published plan, if there is one, becomes history."))) return;
    var plan = state.plan;
    api("POST", "/api/plans/" + plan + "/publish", { version: state.version }).then(function (res) {
      if (res.status === 409) { failed("无法发布：", "Cannot publish: ", res, "error conflict"); return; }
      if (!res.ok) { failed("发布失败：", "Publish failed: ", res); return; }
      var published = res.data;
      if (plan !== state.plan) {  // another plan was opened meanwhile: it stays as it is
        message("已发布：方案 v" + published.version, "Published: plan v" + published.version, "ok");
        return;
      }
      loadPlans(plan).then(function () {  // a new view of the plan, now read only: no stale panel, problems or diff
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
      L.tileLayer(b.url, { subdomains: b.subdomains || "abc", maxZoom: Math.min(b.maxZoom || 19, MAX_ZOOM),
                           attribution: b.attribution || "" }).addTo(map);
    });
  }
  // The territory's own layers under the units (vector tiles from PostGIS, /tiles/context/...): roads
  // by class, buildings, water, railways, compound outlines and sites; offline, no basemap needed.
  var ROAD_WEIGHT = { motorway: 4, trunk: 4, primary: 3.5, secondary: 3, tertiary: 2.5, "主干路": 3.5, "快速路": 4,
                      "次干路": 3, "支路": 2 };
  var CONTEXT_STYLE = {
    water: { color: "#6fa8dc", weight: 1.5, fill: true, fillColor: "#9fc5e8", fillOpacity: 0.6 },
    compounds: { color: "#8e7cc3", weight: 1, dashArray: "3 3", fill: false },
    sites: { color: "#b45f06", weight: 1, fill: true, fillColor: "#f6b26b", fillOpacity: 0.25 },
    railways: { color: "#444", weight: 2, dashArray: "6 3" },
    roads: function (p) {
      var w = ROAD_WEIGHT[p["class"]] || 1.2;
      return { color: w >= 3 ? "#e69138" : "#999", weight: w, opacity: 0.9 };
    },
    buildings: { color: "#777", weight: 0.5, fill: true, fillColor: "#bbb", fillOpacity: 0.5 },
  };
  var context = { layer: null, territory: null };
  function dropStaleContext() {
    var territory = $("territory").value, on = $("context-on").checked;
    if (context.layer && (!on || territory !== context.territory || state.token !== context.token)) {
      map.removeLayer(context.layer); context.layer = null;  // another territory, or signed in or out
    }
  }
  function showContext() {
    var territory = $("territory").value, on = $("context-on").checked;
    dropStaleContext();
    if (!on || !territory || context.layer || !L.vectorGrid) return;
    context.territory = territory; context.token = state.token;
    context.layer = L.vectorGrid.protobuf("/tiles/context/" + territory + "/{z}/{x}/{y}.mvt", {
      pane: "contextPane", interactive: false, maxNativeZoom: 18, maxZoom: MAX_ZOOM,
      fetchOptions: state.token ? { headers: { Authorization: "Bearer " + state.token } } : {},
      rendererFactory: L.canvas.tile, vectorTileLayerStyles: CONTEXT_STYLE,
    }).addTo(map);
  }
  // The map stays on the territory: from a couple of levels out of the whole territory down to
  // single buildings, panning no further than about half the territory's size beyond its edges.
  function limitTo(bounds) {
    if (!bounds || !bounds.isValid()) return;
    state.bounds = bounds;
    map.setMaxBounds(null);
    map.setMinZoom(0);
    var whole = Math.min(map.getBoundsZoom(bounds), MAX_ZOOM);
    map.setMinZoom(Math.max(0, Math.floor(whole) - ZOOM_OUT_LEVELS));
    map.setMaxBounds(bounds.pad(0.5));
    map.fitBounds(bounds, { animate: false });
  }
  function fitTerritory() { if (state.bounds) map.fitBounds(state.bounds); }
  var FitControl = L.Control.extend({
    options: { position: "topleft" },
    onAdd: function () {
      var box = L.DomUtil.create("div", "leaflet-bar leaflet-control planner-fit");
      var a = L.DomUtil.create("a", "", box);
      a.id = "fit-territory"; a.href = "#"; a.setAttribute("role", "button");
      say(a, "全辖区", "Fit to territory");
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.on(a, "click", function (e) { L.DomEvent.preventDefault(e); fitTerritory(); });
      return box;
    }
  });
  // Leaflet's controls take their titles as strings: set them in the current language, again on a switch.
  function relabelMap() {
    if (!map) return;  // the first gridmap:lang comes before the map exists
    window.gridmapLabelLeaflet();  // zoom buttons and the library's link (i18n.js)
    [["#fit-territory", "缩放到整个辖区", "Zoom to the whole territory"]].forEach(function (t) {
      var el = map.getContainer().querySelector(t[0]);
      if (el) { el.title = T(t[1], t[2]); el.setAttribute("aria-label", T(t[1], t[2])); }
    });
  }
  // Everything the planner shows, again in the language just chosen (the texts built from
  // server data included): what i18n.js re-labels by itself, and what is built here.
  document.addEventListener("gridmap:lang", function () {
    if (!map) return;
    relabelMap();
    updatePanel(); showSummary(); planInfo(); renderDiffSummary(); renderProblems();
    if (!$("delete-draft-confirm").hidden) deleteQuestion();
    state.plans.forEach(function (p) {
      var opt = $("plan").querySelector('option[value="' + p.id + '"]');
      if (opt) planLabel(opt, p);
    });
  });
  document.addEventListener("DOMContentLoaded", function () {
    canvas = L.canvas({ padding: 0.1, tolerance: 2 });
    // one canvas for everything: a second one (e.g. for the lasso line) would lie on top and swallow clicks
    map = L.map("map", { preferCanvas: true, renderer: canvas, zoomSnap: 0.25, boxZoom: false, maxZoom: MAX_ZOOM,
                         maxBoundsViscosity: 1.0 }).setView([64.13, -21.9], 12);
    new FitControl().addTo(map);
    var box = $("notice");  // over the map's top, where the user is looking
    map.getContainer().appendChild(box);
    L.DomEvent.disableClickPropagation(box); L.DomEvent.disableScrollPropagation(box);
    $("notice-close").addEventListener("click", hideNotice);
    basemap();
    map.createPane("contextPane").style.zIndex = 350;  // above a basemap, under the units
    map.getPane("contextPane").style.pointerEvents = "none";
    $("context-on").addEventListener("change", showContext);
    relabelMap();
    // every unit on one layer, first on the canvas (under the grid borders); it knows which unit a
    // click or a hover is over (``hit``), so one handler and one tooltip serve every unit
    unitLayer = L.gridmapUnits(unitStyle, { renderer: canvas }).addTo(map);
    unitLayer.on("click", function (ev) {
      var u = unitLayer.hit;
      if (!u) return;
      L.DomEvent.stopPropagation(ev);
      onUnitClick(u, ev);
    });
    var tipFor = null;  // the unit the tooltip shows: its text follows the pointer from unit to unit
    unitLayer.bindTooltip(function () {
      var u = tipFor = unitLayer.hit;
      return u ? T("单元 ", "unit ") + u.id + " · " + u.households + T(" 户", " households") + " · " + u.grid : "";
    }, { sticky: true });
    unitLayer.on("mousemove", function () {
      var tip = unitLayer.getTooltip();
      if (tip && tip.isOpen() && unitLayer.hit !== tipFor) tip.update();
    });
    borderLayer = L.featureGroup().addTo(map);
    labelLayer = L.featureGroup();
    map.on("zoomend", function () {
      if (map.getZoom() >= 15) { if (!map.hasLayer(labelLayer)) map.addLayer(labelLayer); }
      else if (map.hasLayer(labelLayer)) map.removeLayer(labelLayer);
    });
    map.on("mousedown", lassoStart);
    map.on("mousemove", lassoMove);
    map.on("mouseup", lassoEnd);
    map.on("mousedown", brushStart);
    map.on("mousemove", brushMove);
    map.on("mouseup", brushEnd);
    // leaving the map ends a stroke (the map's own "mouseout" also fires when the pointer leaves a unit)
    map.getContainer().addEventListener("mouseleave", brushEnd);
    $("brush-radius").addEventListener("input", function () {
      plain($("brush-radius-value"), $("brush-radius").value);
      if (brush.circle) brush.circle.setRadius(brushRadius());
    });
    initTable();
    initSearch();
    $("export").addEventListener("click", exportPlan);
    $("print-map").addEventListener("click", printMap);
    $("lock-grid").addEventListener("click", toggleLock);
    $("add-note").addEventListener("click", addNote);
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
  window.gridmapPlannerUnits = function () { return unitLayer; };  // the unit layer (bounds, hit tests)
  window.gridmapPlannerLoad = function (planId) { return loadPlan(planId); };  // for benchmarks: resolves when drawn
  window.gridmapPlannerSideMap = function () { return sideMap; };
})();
