// The patrol recorder of the grid worker's phone page (/report): "Start a patrol" follows the
// phone's location (browser geolocation) and keeps the walk in this browser's storage, point by
// point, so a reload or a lost network loses nothing (the screen is kept on where the browser allows:
// a locked phone stops locating and leaves a gap); the walk so far goes to the
// server every two minutes (POST /api/territories/{code}/patrols: the longer walk replaces the
// part sent before, so an incident reported on the way is linked to it), and the whole walk when
// it ends. A walk that cannot be sent waits and goes when the network returns; only its walker's
// sign-in sends it. Every text in Chinese and English.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var say = function (el, zh, en) { window.gridmapSay(el, zh, en); };
  var page = window.gridmapReport;  // report.js: the sign-in, the map, the API
  var ACTIVE = "gridmap.patrol", QUEUE = "gridmap.patrolQueue";
  var MIN_STEP_M = 5, MAX_QUIET_S = 30, MAX_ACCURACY_M = 100, SEND_EVERY_MS = 120000;
  var watch = null, line = null, sending = false, sendingPart = false;

  function load(key, empty) {
    try { return JSON.parse(localStorage.getItem(key) || "null") || empty; } catch (e) { return empty; }
  }
  function save(key, value) {
    try {
      if (value === null) localStorage.removeItem(key); else localStorage.setItem(key, JSON.stringify(value));
    } catch (e) {
      page.message("本机存储已满，巡查轨迹可能无法保存", "This phone's storage is full: the walk may not be kept", "warn");
    }
  }
  function mine(walk) { return walk && page.user && walk.owner === page.user.username; }
  function active() { var walk = load(ACTIVE, null); return mine(walk) ? walk : null; }
  // The territories of the walker's roles: a walk is filed under the first, and under the next
  // when a territory refuses it (it did not pass through there).
  function territories() {
    var seen = [];
    ((page.user && page.user.roles) || []).forEach(function (r) {
      if (r.territory && seen.indexOf(r.territory) < 0) seen.push(r.territory);
    });
    return seen;
  }
  function metres(a, b) {  // haversine, as the server measures
    var rad = Math.PI / 180, dLat = (b.lat - a.lat) * rad, dLon = (b.lon - a.lon) * rad;
    var h = Math.pow(Math.sin(dLat / 2), 2) + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.pow(Math.sin(dLon / 2), 2);
    return 2 * 6371008.8 * Math.asin(Math.sqrt(h));
  }
  function length(points) {
    var total = 0;
    for (var i = 1; i < points.length; i++) total += metres(points[i - 1], points[i]);
    return total;
  }

  // -- what the page shows --------------------------------------------------------------------------
  function show() {
    var walk = active(), signedIn = !!page.user;
    $("patrol").hidden = !signedIn;
    $("patrol-start").hidden = !!walk;
    $("patrol-stop").hidden = !walk;
    if (walk) {
      var minutes = Math.round((Date.now() - new Date(walk.started).getTime()) / 60000);
      var km = (length(walk.points) / 1000).toFixed(2), n = walk.points.length;
      say($("patrol-status"), "巡查中 · " + minutes + " 分钟 · " + km + " 公里 · " + n + " 个点",
          "Patrolling · " + minutes + " min · " + km + " km · " + n + " points");
    } else if (!$("patrol-status").dataset.keep) {
      window.gridmapPlain($("patrol-status"), "");
    }
    var waiting = load(QUEUE, []).filter(mine).length;
    if (waiting) say($("patrol-queued"), waiting + " 条巡查轨迹等待联网后上传", waiting + " walks wait for the network");
    else window.gridmapPlain($("patrol-queued"), "");
    drawWalk(walk);
  }
  function drawWalk(walk) {
    if (!page.map) return;
    var latlngs = walk ? walk.points.map(function (p) { return [p.lat, p.lon]; }) : [];
    if (!line) line = L.polyline([], { color: "#1a9641", weight: 4, interactive: false }).addTo(page.map);
    line.setLatLngs(latlngs);
  }

  // -- following the phone --------------------------------------------------------------------------
  // A fix is kept when it is precise enough and the walker moved (5 m) or time passed (30 s): the
  // server drops what a walker cannot have done; the phone keeps its storage small.
  function onFix(pos) {
    var walk = active();
    if (!walk || pos.coords.accuracy > MAX_ACCURACY_M) return;
    var point = { lon: pos.coords.longitude, lat: pos.coords.latitude, time: new Date(pos.timestamp || Date.now()).toISOString() };
    var last = walk.points[walk.points.length - 1];
    if (last && metres(last, point) < MIN_STEP_M && (new Date(point.time) - new Date(last.time)) / 1000 < MAX_QUIET_S) return;
    walk.points.push(point);
    save(ACTIVE, walk);
    show();
  }
  function follow() {
    if (watch !== null || !navigator.geolocation) return;
    watch = navigator.geolocation.watchPosition(onFix, function (err) {
      page.message("无法定位（" + err.message + "）：巡查暂停记录，恢复定位后继续",
                   "Cannot locate (" + err.message + "): the walk pauses until the location returns", "warn");
    }, { enableHighAccuracy: true, maximumAge: 0, timeout: 30000 });
  }
  function unfollow() {
    if (watch !== null && navigator.geolocation) navigator.geolocation.clearWatch(watch);
    watch = null;
  }

  $("patrol-start").addEventListener("click", function () {
    if (!navigator.geolocation) {
      page.message("此浏览器不能定位，无法记录巡查", "This browser cannot locate: a patrol cannot be recorded", "error");
      return;
    }
    if (!territories().length) {
      page.message("你的账号没有辖区角色，不能记录巡查", "Your account has no role in a territory: it cannot record patrols", "error");
      return;
    }
    var other = load(ACTIVE, null);
    if (other && other.points.length >= 2) {  // another walker's walk left running on a shared phone: kept for them
      var queue = load(QUEUE, []);
      queue.push(finished(other));
      save(QUEUE, queue);
    }
    delete $("patrol-status").dataset.keep;
    save(ACTIVE, { owner: page.user.username, territories: territories(), started: new Date().toISOString(),
                   points: [], sent: 0 });
    follow();
    keepAwake();
    show();
    page.message("巡查开始：请保持本页打开、屏幕常亮（锁屏时浏览器不再定位）",
                 "Patrol started: keep this page open and the screen on (a locked phone stops locating)", "ok");
  });
  function finished(walk) {
    return { id: walk.started + "-" + walk.owner, owner: walk.owner, territories: walk.territories || [walk.territory],
             points: walk.points };
  }
  // The screen kept on while walking where the browser can (the Screen Wake Lock API): a locked
  // phone stops reporting its location.
  var wake = null;
  function keepAwake() {
    if (!navigator.wakeLock || wake) return;
    navigator.wakeLock.request("screen").then(function (lock) {
      wake = lock;
      lock.addEventListener("release", function () { wake = null; });
    }, function () { /* refused (battery saver): the walk goes on with gaps */ });
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && active()) keepAwake();
  });
  $("patrol-stop").addEventListener("click", function () {
    var walk = active();
    unfollow();
    save(ACTIVE, null);
    if (!walk) { show(); return; }
    if (walk.points.length < 2) {
      $("patrol-status").dataset.keep = "1";
      say($("patrol-status"), "巡查太短（不足两个定位点），未保存", "The walk was too short (fewer than two fixes): not kept");
      show();
      return;
    }
    var queue = load(QUEUE, []);
    queue.push(finished(walk));
    save(QUEUE, queue);
    if (wake) { wake.release(); wake = null; }
    show();
    sendWalks();
  });

  // -- sending --------------------------------------------------------------------------------------
  function post(walk) {
    var code = (walk.territories || [walk.territory])[0];
    return page.api("POST", "/api/territories/" + encodeURIComponent(code) + "/patrols", { points: walk.points });
  }
  // The walk so far, while walking: best effort; what is not sent now goes with the whole walk.
  function sendPart() {
    var walk = active();
    if (!walk || sendingPart || walk.points.length < 2 || walk.points.length === walk.sent || !page.token) return;
    sendingPart = true;
    var count = walk.points.length;
    post(walk).then(function (res) {
      sendingPart = false;
      var now = active();
      if (res.ok && now && now.started === walk.started) { now.sent = count; save(ACTIVE, now); }
    }, function () { sendingPart = false; });
  }
  // Finished walks: each leaves the phone when the server stored it (or kept it: sent before) or
  // refused it for good (422: no walk in it; 403: not this walker's to record); never on a lost
  // sign-in (401) or a server that is down.
  function sendWalks() {
    var queue = load(QUEUE, []), walk = queue.filter(mine)[0];
    show();
    if (!walk || sending || !page.token) return;
    sending = true;
    post(walk).then(function (res) {
      sending = false;
      var drop = function () { save(QUEUE, load(QUEUE, []).filter(function (w) { return w.id !== walk.id; })); };
      if (res.ok) {
        drop();
        var d = res.data, linked = (d.incidents_linked || []).length;
        $("patrol-status").dataset.keep = "1";
        say($("patrol-status"), "巡查已上传：" + Math.round(d.length_m) + " 米，" + d.points + " 个点" +
            (linked ? "，关联事件 " + linked + " 件" : ""),
            "Patrol uploaded: " + Math.round(d.length_m) + " m, " + d.points + " points" +
            (linked ? ", " + linked + " incidents linked" : ""));
        sendWalks();
      } else if ((res.status === 422 || res.status === 403) && (walk.territories || []).length > 1) {
        // not this territory's walk: file it under the walker's next territory
        save(QUEUE, load(QUEUE, []).map(function (w) {
          return w.id === walk.id ? Object.assign({}, w, { territories: w.territories.slice(1) }) : w;
        }));
        sendWalks();
      } else if (res.status === 422 || res.status === 403) {
        drop();
        page.refusal(res, "一条巡查轨迹被拒绝：", "A walk was refused: ");
        sendWalks();
      } else {
        show();
      }
    }, function () { sending = false; show(); });
  }

  document.addEventListener("gridmap:signed-in", function () {
    if (active()) follow(); else unfollow();
    show();
    sendWalks();
  });
  document.addEventListener("gridmap:signed-out", function () {  // nothing of the last walker's stays on screen
    unfollow();
    delete $("patrol-status").dataset.keep;
    window.gridmapPlain($("patrol-status"), "");
    show();
  });
  window.addEventListener("online", function () { sendPart(); sendWalks(); });
  setInterval(function () { sendPart(); sendWalks(); }, SEND_EVERY_MS);
  setInterval(function () { if (active()) show(); }, 30000);  // the minutes walked
  document.addEventListener("gridmap:lang", show);
  window.gridmapPatrol = { sendPart: sendPart, sendWalks: sendWalks };
  if (page.user) { if (active()) follow(); show(); sendWalks(); }
})();
