// On a phone (narrow screens, see gridmap.css) the side panel is a sheet over the bottom of the
// map: its handle folds it down to the handle and unfolds it; the map keeps the whole screen.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var side = document.getElementById("side"), handle = document.getElementById("sheet-handle");
    if (!side || !handle) return;
    function show(folded) {
      side.classList.toggle("folded", folded);
      handle.setAttribute("aria-expanded", folded ? "false" : "true");
      window.gridmapSay(handle, folded ? "展开面板" : "收起面板", folded ? "Unfold the panel" : "Fold the panel");
    }
    handle.addEventListener("click", function () { show(!side.classList.contains("folded")); });
  });
})();
