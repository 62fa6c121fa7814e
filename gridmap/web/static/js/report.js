// The grid worker's phone page (/report): sign in, take the place from the phone's location (or a
// tap on the map), see which grid it falls in, choose a category and report (POST /api/incidents).
// A report that cannot be sent (no network) waits in this browser's storage and is sent when the
// network returns; nothing typed is lost. Every text in Chinese and English.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var say = function (el, zh, en) { window.gridmapSay(el, zh, en); };
  var T = function (zh, en) { return window.gridmapT(zh, en); };
  var QUEUE = "gridmap.reportQueue";
  var state = { token: null, user: null, point: null, categories: [], located: null, sending: false };
  window.gridmapReport = state;

  var map = L.map("map", { zoomControl: true }).setView([30, 110], 4);
  var basemaps = [];
  try { basemaps = JSON.parse($("map").dataset.basemaps || "[]"); } catch (e) { basemaps = []; }
  basemaps.forEach(function (b) {  // a basemap only when one is configured: the outlines below need none
    L.tileLayer(b.url, { subdomains: b.subdomains || "abc", maxZoom: b.maxZoom || 19, attribution: b.attribution || "" }).addTo(map);
  });
  var areaLayer = L.geoJSON(null, { interactive: false, style: { color: "#2b8cbe", weight: 1, fillOpacity: 0.04 } }).addTo(map);
  var gridLayer = L.geoJSON(null, { interactive: false, style: { color: "#555", weight: 1.5, fill: false } }).addTo(map);
  var hereLayer = L.geoJSON(null, { interactive: false, style: { color: "#d7191c", weight: 3, fillOpacity: 0.08 } }).addTo(map);
  var marker = null, accuracy = null;
  state.map = map;  // shared with the patrol recorder (patrol.js)

  function message(zh, en, kind) {
    var el = $("message");
    say(el, zh, en);
    el.className = kind || "info";
  }
  function refusal(res, zh, en) {
    var d = res.data || {};
    var detail = Array.isArray(d.detail) ? d.detail.map(function (x) { return (x.loc || []).slice(-1)[0] + ": " + x.msg; }).join("; ")
      : d.detail;
    message(zh + (d.detail_zh || detail || res.status), en + (d.detail_en || detail || res.status), "error");
  }
  var localTime = window.gridmapLocalTime;  // the phone's own time zone
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

  state.api = api;
  state.message = message;
  state.refusal = refusal;

  // -- sign in --------------------------------------------------------------------------------------
  function signedIn(token, user) {
    state.token = token; state.user = user;
    try { sessionStorage.setItem("gridmap.token", token); } catch (e) { /* private mode */ }
    $("login").hidden = true; $("report").hidden = false; $("logout").hidden = false;
    window.gridmapPlain($("who"), user.display_name || user.username);
    loadCategories();
    showArea();
    sendQueued();
    document.dispatchEvent(new CustomEvent("gridmap:signed-in", { detail: user }));
  }
  // The communities of the worker's own area, outlined, and the map fitted to them: a place can be
  // tapped without a basemap or a location. A user whose role covers every territory (an
  // administrator of all) sees the districts instead.
  function showArea() {
    var role = (state.user.roles || []).filter(function (r) { return r.territory; })[0];
    var everywhere = (state.user.roles || []).some(function (r) { return r.everywhere; });
    if (!role && !everywhere) return;
    api("GET", role ? "/api/territories/geojson?level=community&simplify=0.00005&root=" + encodeURIComponent(role.territory)
                    : "/api/territories/geojson?level=district&simplify=0.0002")
      .then(function (res) {
        if (!res.ok || !res.data.features || !res.data.features.length) return;
        areaLayer.clearLayers(); areaLayer.addData(res.data);
        if (!state.point) map.fitBounds(areaLayer.getBounds());
      }, function () { /* offline: the map shows what it has */ });
  }
  function signOut() {
    state.token = null; state.user = null;
    try { sessionStorage.removeItem("gridmap.token"); } catch (e) { /* ignore */ }
    $("login").hidden = false; $("report").hidden = true; $("logout").hidden = true;
    window.gridmapPlain($("who"), "");
    document.dispatchEvent(new CustomEvent("gridmap:signed-out"));
  }
  $("login").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var form = new URLSearchParams({ username: $("username").value, password: $("password").value });
    api("POST", "/api/auth/token", form).then(function (res) {
      if (res.status === 401) { message("用户名或密码错误", "Wrong user name or password", "error"); return; }
      if (!res.ok) { refusal(res, "无法登录：", "Cannot sign in: "); return; }  // 429: too many failures, wait
      message("已登录", "Signed in", "ok");
      signedIn(res.data.access_token, res.data.user);
    }, function () { message("无法连接服务器", "The server cannot be reached", "error"); });
  });
  $("logout").addEventListener("click", function () {
    if (state.token) api("POST", "/api/auth/logout").catch(function () { /* offline: the token expires by itself */ });
    signOut();
  });

  // -- categories -------------------------------------------------------------------------------------
  function loadCategories() {
    api("GET", "/api/incident-categories").then(function (res) {
      if (!res.ok) { refusal(res, "无法读取类别：", "Cannot read the categories: "); return; }
      state.categories = res.data;
      if (!res.data.length) {
        message("还没有事件类别：请管理员运行 gridmap incidents categories", "No incident categories yet: an administrator "
                + "runs gridmap incidents categories", "warn");
      }
      var select = $("category");
      select.innerHTML = "";
      res.data.forEach(function (c) {
        var opt = document.createElement("option");
        opt.value = c.code;
        say(opt, c.code + " " + c.name_zh, c.code + " " + c.name_en);
        select.appendChild(opt);
      });
      showQuestions();
    }, function () { message("无法连接服务器", "The server cannot be reached", "error"); });
  }

  // -- the category's own questions (Open311 service attributes): a field for each ------------------
  function chosenCategory() {
    var code = $("category").value;
    return state.categories.filter(function (c) { return c.code === code; })[0] || null;
  }
  function showQuestions() {
    var box = $("questions"), category = chosenCategory(), questions = (category && category.attributes) || [];
    box.innerHTML = "";
    box.hidden = !questions.length;
    questions.forEach(function (q) {
      var label = document.createElement(q.datatype === "multivaluelist" ? "div" : "label");
      label.className = "question";
      var title = document.createElement("span");
      say(title, q.description_zh + (q.required ? " *" : "（可选）"), q.description_en + (q.required ? " *" : " (optional)"));
      label.appendChild(title);
      var field;
      if (q.datatype === "singlevaluelist") {
        field = document.createElement("select");
        var none = document.createElement("option");
        none.value = ""; say(none, "请选择", "Choose");
        field.appendChild(none);
        q.values.forEach(function (v) {
          var opt = document.createElement("option");
          opt.value = v.key; say(opt, v.name_zh, v.name_en);
          field.appendChild(opt);
        });
      } else if (q.datatype === "multivaluelist") {
        field = document.createElement("span");
        q.values.forEach(function (v) {
          var item = document.createElement("label"), box = document.createElement("input"), name = document.createElement("span");
          box.type = "checkbox"; box.value = v.key; box.name = "q-" + q.code;
          say(name, v.name_zh, v.name_en);
          item.appendChild(box); item.appendChild(name);
          field.appendChild(item);
        });
      } else if (q.datatype === "text") {
        field = document.createElement("textarea");
        field.rows = 2; field.maxLength = 2000;
      } else {
        field = document.createElement("input");
        field.type = q.datatype === "number" ? "number" : q.datatype === "datetime" ? "datetime-local" : "text";
        if (q.datatype === "number") field.step = "any";
        if (q.datatype === "string") field.maxLength = 200;
      }
      field.dataset.question = q.code;
      field.dataset.datatype = q.datatype;
      if (q.required && q.datatype !== "multivaluelist") field.required = true;
      label.appendChild(field);
      box.appendChild(label);
    });
  }
  function answers() {
    var out = {};
    Array.prototype.forEach.call($("questions").querySelectorAll("[data-question]"), function (field) {
      var code = field.dataset.question, type = field.dataset.datatype;
      if (type === "multivaluelist") {
        var keys = Array.prototype.map.call(field.querySelectorAll("input:checked"), function (box) { return box.value; });
        if (keys.length) out[code] = keys;
      } else if (field.value !== "") {
        out[code] = type === "number" ? Number(field.value)
          : type === "datetime" ? new Date(field.value).toISOString() : field.value;
      }
    });
    return out;
  }
  $("category").addEventListener("change", showQuestions);

  // -- the place: the phone's location or a tap; the grid there ---------------------------------------
  function setPoint(lat, lng, metres, source) {
    state.point = { lat: lat, lon: lng, accuracy: metres, source: source };
    if (marker) marker.setLatLng([lat, lng]); else marker = L.marker([lat, lng]).addTo(map);
    if (accuracy) { map.removeLayer(accuracy); accuracy = null; }
    if (metres) accuracy = L.circle([lat, lng], { radius: metres, interactive: false, weight: 1 }).addTo(map);
    if (map.getZoom() < 16) map.setView([lat, lng], 17); else map.panTo([lat, lng]);
    locateGrid();
  }
  function locateGrid() {
    var p = state.point, mine = p;
    state.located = null;
    api("GET", "/api/locate?lon=" + p.lon + "&lat=" + p.lat + "&crs=4326").then(function (res) {
      if (mine !== state.point) return;
      if (!res.ok) {  // the server says why: no plan published there at all, or a gap between the grids
        var d = res.data || {};
        if (d.reason === "no_published_plan") say($("place"), d.detail_zh + "。", d.detail_en + ".");
        else say($("place"), "此处不在已发布的网格内，不能上报。", "This place is outside every published grid; it cannot be reported.");
        hereLayer.clearLayers();
        return;
      }
      state.located = res.data;
      var d = res.data;
      say($("place"), "网格 " + d.grid_code + (d.grid_name ? "（" + d.grid_name + "）" : "") + " · " + (d.community || "") +
          (d.worker ? " · 网格员 " + d.worker : ""),
          "Grid " + d.grid_code + (d.grid_name ? " (" + d.grid_name + ")" : "") + " · " + (d.community || "") +
          (d.worker ? " · worker " + d.worker : ""));
      drawNearbyGrids(d.grid_code);
    }, function () {
      say($("place"), "离线：网格将在上报时确定", "Offline: the grid is found when the report is sent");
    });
  }
  function drawNearbyGrids(code) {
    var b = map.getBounds().pad(0.5);
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(6); }).join(",");
    api("GET", "/collections/grids/items?f=json&limit=500&bbox=" + bbox).then(function (res) {
      if (!res.ok) return;
      gridLayer.clearLayers(); hereLayer.clearLayers();
      gridLayer.addData(res.data);
      hereLayer.addData({ type: "FeatureCollection", features: (res.data.features || []).filter(function (f) {
        return f.properties && f.properties.grid_code === code; }) });
    }, function () { /* offline: the grid was named; its outline comes with the network */ });
  }
  var GEOLOCATION_ERRORS = { 1: ["未允许此页面使用位置", "this page may not use the location"],
                             2: ["位置暂不可用", "the position is not available"],
                             3: ["定位超时", "locating took too long"] };
  $("locate").addEventListener("click", function () {
    if (!navigator.geolocation) { message("此浏览器不能定位，请在地图上点选", "This browser cannot locate; tap the map", "warn"); return; }
    message("正在定位…", "Locating…", "info");
    navigator.geolocation.getCurrentPosition(function (pos) {
      setPoint(pos.coords.latitude, pos.coords.longitude, pos.coords.accuracy, "gps");
      message("已定位（精度约 " + Math.round(pos.coords.accuracy) + " 米）",
              "Located (to about " + Math.round(pos.coords.accuracy) + " m)", "ok");
    }, function (err) {  // said in the page's language: the browser's own err.message is English
      var why = GEOLOCATION_ERRORS[err && err.code] || ["位置暂不可用", "the position is not available"];
      message("无法定位（" + why[0] + "），请在地图上点选", "Cannot locate (" + why[1] + "); tap the map", "warn");
    }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 });
  });
  map.on("click", function (ev) { setPoint(ev.latlng.lat, ev.latlng.lng, null, "map"); });

  // -- report, or keep it until the network returns --------------------------------------------------
  // Each kept report carries its own id, its author and the time it was made (sent as reported_at,
  // so its due time runs from when it was seen). Only its author's sign-in sends it; it leaves the
  // phone when the server stored it or refused it for good (422, 403), never on a lost sign-in
  // (401: kept until the author signs in again) or a server that is down (kept, tried again).
  function queued() {
    try { return JSON.parse(localStorage.getItem(QUEUE) || "[]"); } catch (e) { return []; }
  }
  function mine(item) { return state.user && item.owner === state.user.username; }
  function keep(list) {
    try { localStorage.setItem(QUEUE, JSON.stringify(list)); } catch (e) { /* full or private: shown below */ }
    var waiting = list.filter(mine).length;
    if (waiting) say($("queued"), waiting + " 条上报等待联网后发送", waiting + " reports wait for the network");
    else window.gridmapPlain($("queued"), "");
  }
  function drop(id) { keep(queued().filter(function (q) { return q.id !== id; })); }
  function receipt(stored) {
    var box = $("receipt");
    box.hidden = false; box.innerHTML = "";
    var line = function (zh, en) { var p = document.createElement("p"); say(p, zh, en); box.appendChild(p); };
    line("已上报 " + stored.public_id, "Reported " + stored.public_id);
    // the confirmation where the worker looks: at the top of the panel, scrolled into view
    var form = $("report");
    if (form.firstChild !== box) form.insertBefore(box, form.firstChild);
    line("网格 " + stored.grid_code + " · 社区 " + (stored.community || stored.community_code || ""),
         "Grid " + stored.grid_code + " · community " + (stored.community || stored.community_code || ""));
    line("承办部门 " + (stored.department || "") + " · 期限 " + localTime(stored.due_at),
         "Department " + (stored.department_en || stored.department || "") + " · due " + localTime(stored.due_at));
    if (stored.patrol_id) line("已记入本次巡查", "Recorded on this patrol");
    if ((stored.possible_duplicates || []).length) {
      line("附近已有同类未结事件：" + stored.possible_duplicates.map(function (d) { return d.public_id; }).join("、"),
           "Open incidents of this category nearby: " + stored.possible_duplicates.map(function (d) { return d.public_id; }).join(", "));
    }
    box.scrollIntoView({ block: "nearest" });
  }
  function body(item) {
    var out = {};
    Object.keys(item).forEach(function (k) { if (k !== "id" && k !== "owner") out[k] = item[k]; });
    return out;
  }
  function sendQueued() {
    var list = queued(), item = list.filter(mine)[0];
    keep(list);
    if (!item || !state.token || state.sending) return;
    state.sending = true;
    api("POST", "/api/incidents", body(item)).then(function (res) {
      state.sending = false;
      if (res.ok) {
        drop(item.id); receipt(res.data);
        message("离线时保存的上报已发送", "A report kept while offline was sent", "ok");
        sendQueued();
      } else if (res.status === 422 || res.status === 403) {
        drop(item.id);
        refusal(res, "离线时保存的一条上报被拒绝：", "A report kept while offline was refused: ");
        sendQueued();
      }  // 401 (kept until its author signs in again), 429 and 5xx (kept, tried again): nothing lost
    }, function () { state.sending = false; });
  }
  $("report").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!state.point) { message("请先定位或在地图上点选位置", "Locate yourself or tap the map first", "warn"); return; }
    var item = { category_code: $("category").value, lon: state.point.lon, lat: state.point.lat, crs: "4326",
                 description: $("description").value || null, address: $("address").value || null,
                 reporter_role: "grid_worker", reported_at: new Date().toISOString(), attributes: answers() };
    $("send").disabled = true;
    api("POST", "/api/incidents", item).then(function (res) {
      $("send").disabled = false;
      if (!res.ok) { refusal(res, "上报失败：", "Not reported: "); return; }
      receipt(res.data);
      message("已上报", "Reported", "ok");
      $("description").value = ""; $("address").value = ""; showQuestions();
    }, function () {  // no network: keep it on the phone, send it when the network returns
      $("send").disabled = false;
      var list = queued();
      item.id = Date.now() + "-" + Math.random().toString(36).slice(2);
      item.owner = state.user.username;
      list.push(item);
      keep(list);
      message("网络不通：已保存在本机，联网后自动上报", "No network: kept on this phone, sent when the network returns", "warn");
    });
  });
  window.addEventListener("online", sendQueued);
  setInterval(function () { if (navigator.onLine !== false) sendQueued(); }, 60000);  // a server that was down

  var token = null;
  try { token = sessionStorage.getItem("gridmap.token"); } catch (e) { /* ignore */ }
  if (token) {
    state.token = token;
    api("GET", "/api/auth/me").then(function (res) {
      if (res.ok) signedIn(token, res.data); else signOut();
    }, function () { keep(queued()); });
  } else {
    keep(queued());
  }
  document.addEventListener("gridmap:lang", function () { /* texts switch by their data-zh/data-en */ });
})();
