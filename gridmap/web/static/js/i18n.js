// Chinese first; English on request. Every element with data-zh/data-en switches text.
(function () {
  "use strict";
  var KEY = "gridmap.lang";
  function apply(lang) {
    document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
    document.querySelectorAll("[data-zh][data-en]").forEach(function (el) {
      el.textContent = el.getAttribute(lang === "en" ? "data-en" : "data-zh");
    });
    var button = document.getElementById("lang-switch");
    if (button) button.textContent = lang === "en" ? "中文" : "English";
    try { localStorage.setItem(KEY, lang); } catch (e) { /* private mode */ }
    window.gridmapLang = lang;
  }
  var saved = "zh";
  try { saved = localStorage.getItem(KEY) || "zh"; } catch (e) { /* ignore */ }
  document.addEventListener("DOMContentLoaded", function () {
    apply(saved);
    var button = document.getElementById("lang-switch");
    if (button) button.addEventListener("click", function () { apply(window.gridmapLang === "en" ? "zh" : "en"); });
  });
})();
