// Emergency duty and door-knocks on the grid worker's phone page (/report, 平战结合): while an
// emergency is on in the worker's territory, a banner says so; "check in" sends their position and the time they
// tapped (kept on the phone and sent again when the network returns: the phone's own id for the
// check-in makes a retry count once); they report their grid's status; and during a door-knocking
// campaign (敲门行动, in an emergency or in peacetime) they go through their grid's households and buildings, recording each knock
// (visited, nobody home, refused, issue found: a need is recorded with it). Every text in Chinese
// and English.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var say = function (el, zh, en) { window.gridmapSay(el, zh, en); };
  var page = window.gridmapReport;  // report.js: the sign-in and the API
  var localTime = window.gridmapLocalTime;
  var QUEUE = "gridmap.dutyQueue";
  var OUTCOMES = [["visited", "已入户", "visited"], ["nobody_home", "无人在家", "nobody home"], ["refused", "拒绝", "refused"],
                  ["issue_found", "发现问题", "issue found"]];
  var state = { emergency: null, campaign: null, grids: [], sending: false, categories: [] };
  window.gridmapDuty = state;

  function load() { try { return JSON.parse(localStorage.getItem(QUEUE) || "[]"); } catch (e) { return []; } }
  function save(list) { try { localStorage.setItem(QUEUE, JSON.stringify(list)); } catch (e) { /* full */ } }
  function mine(item) { return page.user && item.owner === page.user.username; }
  function territory() {
    var role = ((page.user && page.user.roles) || []).filter(function (r) { return r.territory; })[0];
    return role ? role.territory : null;
  }

  // -- an emergency on, a campaign open, the worker's grids -----------------------------------------
  function look() {
    var code = territory();
    $("duty").hidden = true;
    if (!code) return;
    var base = "/api/territories/" + encodeURIComponent(code);
    Promise.all([page.api("GET", base + "/emergencies"), page.api("GET", base + "/campaigns"),
                 page.api("GET", base + "/my-grids"), page.api("GET", base + "/lists/summary")]).then(function (r) {
      var on = r[0].ok ? r[0].data.filter(function (e) { return !e.ended_at; })[0] : null;
      var now = Date.now();
      state.emergency = on || null;
      state.campaign = r[1].ok ? r[1].data.filter(function (c) { return !c.closed_at && Date.parse(c.deadline) > now; })[0] || null : null;
      state.categories = r[3] && r[3].ok ? r[3].data.categories.map(function (c) { return c.category; }) : [];
      fillGrids(r[2].ok ? r[2].data.grids : []);
      $("duty").hidden = !on && !state.campaign;
      $("duty-emergency").hidden = !on; $("duty-status-box").hidden = !on;
      if (on) {
        say($("duty-title"), "应急状态：" + on.kind, "Emergency: " + on.kind_en);
        say($("duty-meta"), on.reason + " · 签到截止 " + localTime(on.checkin_due), on.reason + " · check in by " + localTime(on.checkin_due));
        var done = load().filter(function (q) { return mine(q) && q.emergency === on.id && q.sent; })[0];
        if (done) showCheckedIn(done.result);
        send();
      }
      loadDoors();
    }, function () { /* offline: the banner comes with the network */ });
  }
  function fillGrids(codes) {
    var select = $("duty-grid"), keep = select.value;
    codes.forEach(function (code) { if (state.grids.indexOf(code) < 0) state.grids.push(code); });
    select.length = 0;
    state.grids.forEach(function (code) { var o = document.createElement("option"); o.value = code; o.textContent = code; select.appendChild(o); });
    if (keep && state.grids.indexOf(keep) >= 0) select.value = keep;
  }

  // -- check in: kept on the phone until the server has it ------------------------------------------
  $("checkin").addEventListener("click", function () {
    if (!state.emergency) return;
    var item = { owner: page.user.username, emergency: state.emergency.id, at: new Date().toISOString(),
                 client_id: "ck-" + Date.now() + "-" + Math.random().toString(36).slice(2), sent: false };
    var keep = function (pos) {
      if (pos) { item.lon = pos.coords.longitude; item.lat = pos.coords.latitude; }
      var list = load(); list.push(item); save(list);
      send();
    };
    if (navigator.geolocation) {
      navigator.geolocation.getCurrentPosition(keep, function () { keep(null); },
                                               { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
    } else keep(null);
  });
  function send() {
    var item = load().filter(function (q) { return mine(q) && !q.sent; })[0];
    if (!item || state.sending || !page.token) return;
    state.sending = true;
    var body = { client_id: item.client_id, at: item.at };
    if (item.lon !== undefined) { body.lon = item.lon; body.lat = item.lat; }
    page.api("POST", "/api/emergencies/" + item.emergency + "/checkins", body).then(function (res) {
      state.sending = false;
      var rest = load().filter(function (q) { return q.client_id !== item.client_id; });
      if (res.ok) {
        rest.push(Object.assign({}, item, { sent: true, result: res.data }));
        save(rest);
        showCheckedIn(res.data);
        send();
      } else if (res.status === 422 || res.status === 403 || res.status === 404 || res.status === 409) {
        save(rest);
        page.refusal(res, "签到未被接受：", "The check-in was refused: ");
      }  // 401, 5xx: kept, sent again
    }, function () {
      state.sending = false;
      say($("checkin-state"), "网络不通：签到已保存在本机，联网后自动发送", "No network: the check-in is kept and goes when the network returns");
    });
  }
  function showCheckedIn(result) {
    var codes = result.grids.map(function (g) { return g.grid_code; });
    var late = result.grids.some(function (g) { return g.late; });
    say($("checkin-state"), "已签到 " + localTime(result.at) + (late ? "（迟到）" : "（按时）") + " · 网格 " + codes.join("、"),
        "Checked in at " + localTime(result.at) + (late ? " (late)" : " (on time)") + " · grid " + codes.join(", "));
    fillGrids(codes);
    loadDoors();
  }
  $("status-send").addEventListener("click", function () {
    var grid = $("duty-grid").value;
    if (!state.emergency || !grid) { page.message("请先签到或选择网格", "Check in or pick a grid first", "warn"); return; }
    page.api("POST", "/api/emergencies/" + state.emergency.id + "/grids/" + encodeURIComponent(grid) + "/status",
             { status: $("duty-status").value }).then(function (res) {
      if (!res.ok) { page.refusal(res, "状态未上报：", "The status was not reported: "); return; }
      page.message("网格 " + grid + " 状态：" + res.data.status_zh, "Grid " + grid + ": " + res.data.status_en, "ok");
    }, function () { page.message("网络不通，状态未上报", "No network: the status was not reported", "error"); });
  });
  $("duty-grid").addEventListener("change", loadDoors);

  // -- door-knocks of the newest open campaign, in the worker's grid ----------------------------------
  function loadDoors() {
    var grid = $("duty-grid").value, campaign = state.campaign;
    $("knocks").hidden = !campaign || !grid;
    if (!campaign || !grid) return;
    say($("knock-title"), "敲门行动：" + campaign.name + " · 截止 " + localTime(campaign.deadline),
        "Door-knocking: " + campaign.name + " · by " + localTime(campaign.deadline));
    showQuestions(campaign.questions || []);
    page.api("GET", "/api/campaigns/" + campaign.id + "/grids/" + encodeURIComponent(grid) + "/targets").then(function (res) {
      if (!res.ok || grid !== $("duty-grid").value) return;
      var list = $("doors");
      list.textContent = "";
      res.data.features.forEach(function (f) { list.appendChild(door(f.properties)); });
    });
  }
  function showQuestions(questions) {
    var box = $("knock-questions");
    box.textContent = "";
    box.hidden = !questions.length;
    questions.forEach(function (q) {
      var label = document.createElement("label"), span = document.createElement("span"), input = document.createElement("input");
      say(span, q.text_zh + (q.required ? " *" : ""), q.text_en + (q.required ? " *" : ""));
      input.dataset.question = q.code;
      label.appendChild(span); label.appendChild(input); box.appendChild(label);
    });
  }
  function answers() {
    var out = {};
    Array.prototype.forEach.call($("knock-questions").querySelectorAll("[data-question]"), function (input) {
      if (input.value) out[input.dataset.question] = input.value;
    });
    return out;
  }
  function door(p) {
    var li = document.createElement("li"), name = document.createElement("span"), result = document.createElement("span");
    li.className = "door"; li.dataset.target = String(p.target_id);
    name.textContent = p.label + " ";
    li.appendChild(name); li.appendChild(result);
    var shown = function (outcome) {
      var o = OUTCOMES.filter(function (x) { return x[0] === outcome; })[0];
      if (o) say(result, "（" + o[1] + "）", " (" + o[2] + ")"); else window.gridmapPlain(result, "");
      li.dataset.outcome = outcome || "";
    };
    shown(p.outcome);
    OUTCOMES.forEach(function (o) {
      var b = document.createElement("button");
      b.type = "button"; b.className = "knock"; b.dataset.outcome = o[0];
      say(b, o[1], o[2]);
      b.addEventListener("click", function () { knock(p.target_id, o[0], shown); });
      li.appendChild(b);
    });
    return li;
  }
  function knock(target, outcome, shown) {
    // the answers typed go with a door that opened (visited, issue found), never with another knock
    var opened = outcome === "visited" || outcome === "issue_found";
    var body = { outcome: outcome, client_id: "kn-" + target + "-" + Date.now(), answers: opened ? answers() : {} };
    if (outcome === "issue_found") {
      var what = window.prompt(window.gridmapT("发现了什么问题？（将登记为需求）", "What was found? (recorded as a need)"));
      if (!what) return;
      var categories = state.categories || [];
      body.need = { category: categories.indexOf("其他") >= 0 ? "其他" : categories[categories.length - 1] || "其他",
                    description: what, urgency: "high" };
    }
    body.at = new Date().toISOString();  // when the door was knocked, however late it reaches the server
    Array.prototype.forEach.call($("knock-questions").querySelectorAll("[data-question]"), function (i) { i.value = ""; });
    page.api("POST", "/api/campaign-targets/" + target + "/knocks", body).then(function (res) {
      if (!res.ok) { page.refusal(res, "敲门记录未保存：", "The knock was not recorded: "); return; }
      shown(res.data.outcome);
      page.message("已记录：" + res.data.outcome_zh + (res.data.need_id ? "，已登记需求" : ""),
                   "Recorded: " + res.data.outcome_en + (res.data.need_id ? ", a need was recorded" : ""), "ok");
    }, function () {  // no network (a basement): kept on the phone, sent when the network returns
      var list = loadKnocks();
      list.push({ owner: page.user.username, target: target, body: body });
      saveKnocks(list);
      shown(outcome);
      say($("knocks-queued"), list.filter(mine).length + " 条敲门记录等待联网后发送", list.filter(mine).length +
          " knocks wait for the network");
      page.message("网络不通：敲门记录已保存在本机，联网后自动发送", "No network: the knock is kept on this phone and goes when the network returns", "warn");
    });
  }
  // Knocks kept while offline: each sent under its visitor's sign-in, once (its client id), leaving
  // the phone when the server stored or refused it, never on a lost sign-in or a server down.
  var KNOCKS = "gridmap.knockQueue", sendingKnocks = false;
  function loadKnocks() { try { return JSON.parse(localStorage.getItem(KNOCKS) || "[]"); } catch (e) { return []; } }
  function saveKnocks(list) { try { localStorage.setItem(KNOCKS, JSON.stringify(list)); } catch (e) { /* full */ } }
  function sendKnocks() {
    var item = loadKnocks().filter(mine)[0];
    if (!item || sendingKnocks || !page.token) {
      if (!item) window.gridmapPlain($("knocks-queued"), "");
      return;
    }
    sendingKnocks = true;
    page.api("POST", "/api/campaign-targets/" + item.target + "/knocks", item.body).then(function (res) {
      sendingKnocks = false;
      if (res.ok || res.status === 422 || res.status === 403 || res.status === 404 || res.status === 409) {
        saveKnocks(loadKnocks().filter(function (k) { return k.body.client_id !== item.body.client_id; }));
        if (!res.ok) page.refusal(res, "离线时保存的一条敲门记录被拒绝：", "A knock kept offline was refused: ");
        sendKnocks();
      }
    }, function () { sendingKnocks = false; });
  }

  document.addEventListener("gridmap:signed-in", look);
  document.addEventListener("gridmap:signed-out", function () {
    state.emergency = null; state.campaign = null; state.grids = [];
    $("duty").hidden = true; window.gridmapPlain($("checkin-state"), ""); $("doors").textContent = "";
    $("duty-grid").length = 0;
  });
  window.addEventListener("online", function () { send(); sendKnocks(); });
  setInterval(function () { if (state.emergency) send(); sendKnocks(); }, 30000);
  document.addEventListener("gridmap:signed-in", sendKnocks);
  // an emergency switched on (or a campaign started) while this page is open: looked for every minute
  setInterval(function () { if (page.user && !state.emergency) look(); }, 60000);
  if (page.user) look();
})();
