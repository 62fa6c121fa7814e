// Landing map: every territory outline from /api/territories/geojson, coloured by level.
// Works with no basemap; the configured one (GRIDMAP_TIANDITU_KEY, GRIDMAP_BASEMAP_URL) as every map has it.
(function () {
  "use strict";
  var COLORS = { city: "#1f4e79", district: "#2e86c1", street: "#8e44ad", community: "#27ae60" };
  var WEIGHT = { city: 3, district: 2.5, street: 1.5, community: 1 };
  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("map");
    var map = L.map(el, { preferCanvas: true, zoomControl: true }).setView([35, 105], 4);
    window.gridmapMap = map;
    var basemaps = [];
    try { basemaps = JSON.parse(el.getAttribute("data-basemaps") || "[]"); } catch (e) { basemaps = []; }
    basemaps.forEach(function (b) {
      L.tileLayer(b.url, { subdomains: b.subdomains || "abc", maxZoom: b.maxZoom || 19, attribution: b.attribution || "" })
        .addTo(map);
    });
    var byCode = {};
    fetch("/api/territories/geojson?simplify=0.0001")
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (fc) {
        var order = { city: 0, district: 1, street: 2, community: 3 };
        fc.features.sort(function (a, b) { return order[a.properties.level] - order[b.properties.level]; });
        var layer = L.geoJSON(fc, {
          style: function (f) {
            var level = f.properties.level;
            return { color: COLORS[level], weight: WEIGHT[level], fillOpacity: level === "community" ? 0.15 : 0.03 };
          },
          onEachFeature: function (f, lyr) {
            byCode[f.properties.code] = lyr;
            lyr.bindTooltip(f.properties.name + " " + f.properties.code, { sticky: true, className: "territory-label" });
            lyr.on("click", function () { select(f.properties.code); });
          }
        }).addTo(map);
        window.gridmapTerritoryLayer = layer;
        el.setAttribute("data-features", String(fc.features.length));
        if (fc.features.length) map.fitBounds(layer.getBounds(), { padding: [10, 10], animate: false });
        el.setAttribute("data-ready", "true");
      })
      .catch(function (err) { el.setAttribute("data-error", String(err)); });
    function select(code) {
      document.querySelectorAll("#territories li.active").forEach(function (li) { li.classList.remove("active"); });
      var li = document.querySelector('#territories li[data-code="' + code + '"]');
      if (li) li.classList.add("active");
      var lyr = byCode[code];
      if (lyr) map.fitBounds(lyr.getBounds(), { maxZoom: 16 });
    }
    document.querySelectorAll("a.zoom-to").forEach(function (a) {
      a.addEventListener("click", function (ev) { ev.preventDefault(); select(a.getAttribute("data-code")); });
    });
  });
})();
