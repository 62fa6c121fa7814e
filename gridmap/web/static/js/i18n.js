// Chinese first; English on request. Every element with data-zh/data-en switches text (and every
// data-title-zh/data-title-en its tooltip, every data-placeholder-zh/-en its placeholder), including elements created later by scripts;
// gridmapT(zh, en) picks the current language for messages; the event gridmap:lang follows a switch.
(function () {
  "use strict";
  var KEY = "gridmap.lang";
  // Leaflet's own controls come with English titles: each page's map gets both languages here
  // (every map made by the time a language is applied; a page that makes its map later calls
  // window.gridmapLabelLeaflet() once it exists)
  var LEAFLET = [[".leaflet-control-zoom-in", "放大", "Zoom in"], [".leaflet-control-zoom-out", "缩小", "Zoom out"],
                 [".leaflet-control-attribution a[href*='leafletjs']", "交互式地图 JavaScript 库",
                  "A JavaScript library for interactive maps"]];
  function labelLeaflet(lang) {
    LEAFLET.forEach(function (t) {
      document.querySelectorAll(t[0]).forEach(function (el) {
        el.setAttribute("data-title-zh", t[1]);
        el.setAttribute("data-title-en", t[2]);
        el.setAttribute("aria-label", lang === "en" ? t[2] : t[1]);
      });
    });
  }
  window.gridmapLabelLeaflet = function () {
    labelLeaflet(window.gridmapLang);
    document.querySelectorAll("[data-title-zh][data-title-en]").forEach(function (el) {
      el.title = el.getAttribute(window.gridmapLang === "en" ? "data-title-en" : "data-title-zh");
    });
  };
  // A map made by folium lies in an iframe of the same page (srcdoc): it is told the language too,
  // and its own style shows the texts of that one (gridmap/web/reports.py); one loaded later learns
  // it when it loads.
  function tellFrame(frame) {
    try { frame.contentDocument.documentElement.lang = window.gridmapLang === "en" ? "en" : "zh-CN"; }
    catch (e) { /* another origin's: not ours */ }
  }
  document.addEventListener("load", function (ev) {
    if (ev.target && ev.target.tagName === "IFRAME") tellFrame(ev.target);
  }, true);
  function apply(lang) {
    document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
    labelLeaflet(lang);
    document.querySelectorAll("[data-zh][data-en]").forEach(function (el) {
      el.textContent = el.getAttribute(lang === "en" ? "data-en" : "data-zh");
    });
    document.querySelectorAll("[data-title-zh][data-title-en]").forEach(function (el) {
      el.title = el.getAttribute(lang === "en" ? "data-title-en" : "data-title-zh");
    });
    document.querySelectorAll("[data-placeholder-zh][data-placeholder-en]").forEach(function (el) {
      el.placeholder = el.getAttribute(lang === "en" ? "data-placeholder-en" : "data-placeholder-zh");
    });
    var button = document.getElementById("lang-switch");
    if (button) button.textContent = lang === "en" ? "中文" : "English";
    try { localStorage.setItem(KEY, lang); } catch (e) { /* private mode */ }
    window.gridmapLang = lang;
    document.querySelectorAll("iframe").forEach(tellFrame);
    document.dispatchEvent(new CustomEvent("gridmap:lang", { detail: lang }));
  }
  var saved = "zh";
  try { saved = localStorage.getItem(KEY) || "zh"; } catch (e) { /* ignore */ }
  window.gridmapLang = saved;
  window.gridmapT = function (zh, en) { return window.gridmapLang === "en" ? en : zh; };
  // Set an element's text in both languages (so a later switch re-labels it too).
  window.gridmapSay = function (el, zh, en) {
    el.setAttribute("data-zh", zh);
    el.setAttribute("data-en", en);
    el.textContent = window.gridmapT(zh, en);
  };
  // Set text that is the same in both languages (a number, a code, nothing): an element that said
  // something bilingual before must not get that old text back on the next language switch.
  window.gridmapPlain = function (el, text) {
    el.removeAttribute("data-zh");
    el.removeAttribute("data-en");
    el.textContent = text;
  };
  // A time as this device's local date and time to the minute (the same in both languages).
  window.gridmapLocalTime = function (iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso || "");
    var p = function (n) { return (n < 10 ? "0" : "") + n; };
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes());
  };
  // A tooltip (title attribute) in both languages.
  window.gridmapTitle = function (el, zh, en) {
    el.setAttribute("data-title-zh", zh);
    el.setAttribute("data-title-en", en);
    el.title = window.gridmapT(zh, en);
  };
  // Apply the language again to a page whose content was replaced (the plan report shown in place
  // of its sign-in page).
  window.gridmapApplyLang = function () { apply(window.gridmapLang); };
  document.addEventListener("DOMContentLoaded", function () { apply(saved); });
  // the switch is found when clicked: a page that replaces its header keeps a working switch
  document.addEventListener("click", function (ev) {
    if (ev.target.closest && ev.target.closest("#lang-switch")) apply(window.gridmapLang === "en" ? "zh" : "en");
  });
})();
