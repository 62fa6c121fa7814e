// Which territory a page opens on, the same rule on every page (the planner, the people of the
// grids, emergency command), once the page has dealt with a territory its address asks for: the
// signed-in user's own area or, where that area has no plan of its own, the nearest territory
// above it that the page can show (a community worker of 雨城区 opens on 雨城区, not on the
// first territory in the list); else the first the page can show.
(function () {
  "use strict";
  // territories: the list of /api/territories; roles: the user's roles ({territory: code});
  // usable(t): whether this page can show t. Returns a code, or null when none is usable.
  window.gridmapHomeTerritory = function (territories, roles, usable) {
    var byCode = {};
    territories.forEach(function (t) { byCode[t.code] = t; });
    var home = null;
    (roles || []).some(function (r) {
      for (var t = byCode[r.territory]; t; t = byCode[t.parent_code]) {
        if (usable(t)) { home = t.code; return true; }
      }
      return false;
    });
    if (home) return home;
    var first = territories.filter(usable)[0];
    return first ? first.code : null;
  };
})();
