// The plan report page when the plan may not be read without signing in (/plans/{id}/report
// answered 401 or 403): the refusal in the chosen language and the app's sign-in form. A sign-in
// made on another page of this tab (its token in session storage) is used at once; a sign-in made
// here stays here. Either way the report is asked for once more with the token and shown in place
// of this page (parsed, not document.write: the page's address stays the report's).
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var status = document.body.dataset.status;
  function message(zh, en, kind) {
    var el = $("message");
    if (!el) return;
    window.gridmapSay(el, zh, en);
    el.className = kind || "";
  }
  function stored() {
    try { return sessionStorage.getItem("gridmap.token"); } catch (e) { return null; }
  }
  function show(text) {
    var doc = new DOMParser().parseFromString(text, "text/html");
    document.title = doc.title;
    document.head.replaceWith(document.adoptNode(doc.head));
    document.body.replaceWith(document.adoptNode(doc.body));
    window.gridmapApplyLang();  // the report's texts in the language chosen (i18n.js is loaded already)
    document.body.dataset.signedIn = "true";
  }
  function load(token, fromHere) {
    if ($("login")) $("login").hidden = true;
    message("正在载入报告…", "Loading the report…");
    return fetch(location.href, { headers: { Authorization: "Bearer " + token, Accept: "text/html" } }).then(function (r) {
      if (r.ok) return r.text().then(show);
      if ($("login")) $("login").hidden = false;
      if (r.status === 401) {  // the token ran out: a fresh sign-in is asked for
        try { sessionStorage.removeItem("gridmap.token"); } catch (e) { /* ignore */ }
        message(fromHere ? "无法登录，请重试" : "登录已过期，请重新登录", fromHere ? "Cannot sign in: try again"
                : "The sign-in has expired: sign in again", "error");
      } else if (r.status === 403) {
        message("您的账号无权查看此方案。", "Your account may not read this plan.", "error");
      } else {
        message("无法载入报告（" + r.status + "）", "Cannot load the report (" + r.status + ")", "error");
      }
    }, function () { if ($("login")) $("login").hidden = false; message("无法连接服务器", "The server cannot be reached", "error"); });
  }
  var form = $("login");
  if (form) form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var body = new URLSearchParams({ username: $("username").value, password: $("password").value });
    fetch("/api/auth/token", { method: "POST", body: body, headers: { Accept: "application/json" } }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (r.status === 401) { message("用户名或密码错误", "Wrong user name or password", "error"); return; }
        if (!r.ok) {
          message("无法登录：" + (data.detail_zh || data.detail || r.status), "Cannot sign in: " + (data.detail_en || data.detail || r.status), "error");
          return;
        }
        $("password").value = "";
        try { sessionStorage.setItem("gridmap.token", data.access_token); } catch (e) { /* private mode */ }
        load(data.access_token, true);
      });
    }, function () { message("无法连接服务器", "The server cannot be reached", "error"); });
  });
  var token = stored();
  if (token && status !== "404") load(token, false);
})();
