/* gridmap's unit layer: every unit of a plan drawn as one Leaflet path on the page's canvas renderer.
 *
 * Why: the planner drew each unit as its own Leaflet GeoJSON layer. At 50,000 units (a large
 * Chinese district at building grain) that is 100,000 Leaflet objects to build, and every zoom
 * projected each of them again (a zoom frame took 1.6 s, a reload 4 s). Here a unit is a few typed
 * arrays of its rings in Web Mercator pixels at zoom 0, projected once; a draw scales them to the
 * view and draws only the units a grid index finds in the area being redrawn; a unit smaller than a
 * pixel is a pixel. Clicks and hovers are answered from the same index (point in polygon).
 *
 * How it fits Leaflet (1.9, vendored): it is an L.Path on the renderer the page already uses, so it
 * is drawn in the renderer's order (under the grid borders added after it), takes part in the
 * renderer's partial redraws, and gets clicks, hovers and tooltips as any path does. It reads the
 * canvas renderer's ``_ctx``, ``_bounds`` and ``_redrawBounds`` and asks for a partial redraw through
 * ``_requestRedraw``: Leaflet's own paths do the same (see L.Canvas).
 *
 * A unit is any object; ``setUnits``/``add`` take it with its GeoJSON geometry (Polygon or
 * MultiPolygon, lon/lat), the layer keeps its rings in ``unit._shape``. ``styleOf(unit)`` gives
 * ``{fillColor, fillOpacity, color, weight}``; ``redrawUnits(units)`` redraws where they are.
 */
(function () {
  "use strict";

  var MAX_LATITUDE = 85.0511287798;
  var TILE = 256;  // Web Mercator pixels at zoom 0 span 0..256 (Leaflet's CRS scale at zoom 0)

  // Web Mercator (EPSG:3857) pixel coordinates at zoom 0 of a lon/lat pair, as L.CRS.EPSG3857 has them.
  function worldX(lng) { return TILE * (lng / 360 + 0.5); }
  function worldY(lat) {
    var clamped = Math.max(Math.min(lat, MAX_LATITUDE), -MAX_LATITUDE) * Math.PI / 180;
    return TILE * (0.5 - Math.log(Math.tan(Math.PI / 4 + clamped / 2)) / (2 * Math.PI));
  }

  // The rings of a Polygon or MultiPolygon geometry as flat arrays [x0, y0, x1, y1, ...] at zoom 0,
  // and their box [minX, minY, maxX, maxY].
  function shapeOf(geometry) {
    var polygons = geometry.type === "Polygon" ? [geometry.coordinates]
      : geometry.type === "MultiPolygon" ? geometry.coordinates : [];
    var rings = [], box = [Infinity, Infinity, -Infinity, -Infinity];
    polygons.forEach(function (polygon) {
      polygon.forEach(function (ring) {
        var flat = new Float64Array(ring.length * 2);
        for (var i = 0; i < ring.length; i++) {
          var x = worldX(ring[i][0]), y = worldY(ring[i][1]);
          flat[2 * i] = x; flat[2 * i + 1] = y;
          if (x < box[0]) box[0] = x;
          if (y < box[1]) box[1] = y;
          if (x > box[2]) box[2] = x;
          if (y > box[3]) box[3] = y;
        }
        rings.push(flat);
      });
    });
    return { rings: rings, box: box };
  }

  // Even-odd point in polygon over every ring of a shape (holes and several parts included).
  function shapeContains(shape, x, y) {
    var inside = false;
    for (var r = 0; r < shape.rings.length; r++) {
      var ring = shape.rings[r], n = ring.length / 2;
      for (var i = 0, j = n - 1; i < n; j = i++) {
        var xi = ring[2 * i], yi = ring[2 * i + 1], xj = ring[2 * j], yj = ring[2 * j + 1];
        if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) inside = !inside;
      }
    }
    return inside;
  }

  // The distance from a point to the nearest edge of a shape (its box, for a shape of no extent).
  function shapeDistance(shape, x, y) {
    var best = Infinity;
    for (var r = 0; r < shape.rings.length; r++) {
      var ring = shape.rings[r], n = ring.length / 2;
      for (var i = 0, j = n - 1; i < n; j = i++) {
        var ax = ring[2 * j], ay = ring[2 * j + 1], dx = ring[2 * i] - ax, dy = ring[2 * i + 1] - ay;
        var length2 = dx * dx + dy * dy, t = length2 ? Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / length2)) : 0;
        var ex = ax + t * dx - x, ey = ay + t * dy - y, d = Math.sqrt(ex * ex + ey * ey);
        if (d < best) best = d;
      }
    }
    return best;
  }

  L.GridmapUnits = L.Path.extend({
    options: { interactive: true, bubblingMouseEvents: true },

    initialize: function (styleOf, options) {
      L.setOptions(this, options);
      this._styleOf = styleOf;
      this._list = [];      // the units drawn
      this._slot = new Map();  // unit -> its index in _list
      this._index = null;   // grid index, built on first use after a change
      this.hit = null;      // the unit under the last point asked about (click, hover)
    },

    // -- the units -------------------------------------------------------------------------------
    setUnits: function (units, geometryOf) {
      this._list = []; this._slot = new Map(); this._index = null; this.hit = null;
      for (var i = 0; i < units.length; i++) this._insert(units[i], geometryOf(units[i]));
      this._changed(null);
    },
    add: function (unit, geometry) { this._insert(unit, geometry); this._changed([unit]); },
    remove: function (unit) {
      var at = this._slot.get(unit);
      if (at === undefined) return;
      var last = this._list.pop();
      if (last !== unit) { this._list[at] = last; this._slot.set(last, at); }
      this._slot.delete(unit);
      this._index = null;
      if (this.hit === unit) this.hit = null;
      this._changed([unit]);
    },
    clear: function () { this.setUnits([], null); },
    count: function () { return this._list.length; },
    _insert: function (unit, geometry) {
      unit._shape = shapeOf(geometry);
      this._slot.set(unit, this._list.length);
      this._list.push(unit);
      this._index = null;
    },
    _changed: function (units) {
      if (!this._map) return;
      if (units) { this._project(); this.redrawUnits(units); }
      else this.redraw();  // L.Canvas: where the units were, then project, then where they are
    },

    // Redraw only where ``units`` lie (after their style changed): one partial redraw of the canvas
    // in the next frame, however many calls come before it.
    redrawUnits: function (units) {
      if (!this._map || !units.length) return;
      var box = [Infinity, Infinity, -Infinity, -Infinity];
      units.forEach(function (u) {
        var b = u._shape && u._shape.box;
        if (!b) return;
        if (b[0] < box[0]) box[0] = b[0];
        if (b[1] < box[1]) box[1] = b[1];
        if (b[2] > box[2]) box[2] = b[2];
        if (b[3] > box[3]) box[3] = b[3];
      });
      if (box[0] > box[2]) return;
      if (this._k === undefined) this._project();
      this._renderer._requestRedraw({ _pxBounds: this._pixelBox(box), options: { weight: 3 } });
    },

    // -- bounds ----------------------------------------------------------------------------------
    getBounds: function () { return this._list.length ? this._latLngBox(this._dataBox()) : L.latLngBounds([]); },
    unitBounds: function (unit) { return this._latLngBox(unit._shape.box); },
    _latLngBox: function (box) {
      var crs = L.CRS.EPSG3857;
      return L.latLngBounds(crs.pointToLatLng(L.point(box[0], box[3]), 0), crs.pointToLatLng(L.point(box[2], box[1]), 0));
    },
    _dataBox: function () {
      var box = [Infinity, Infinity, -Infinity, -Infinity];
      for (var i = 0; i < this._list.length; i++) {
        var b = this._list[i]._shape.box;
        if (b[0] < box[0]) box[0] = b[0];
        if (b[1] < box[1]) box[1] = b[1];
        if (b[2] > box[2]) box[2] = b[2];
        if (b[3] > box[3]) box[3] = b[3];
      }
      return box;
    },
    // zoom-0 box -> layer pixels at the last projection (what the canvas shows: during a zoom
    // animation the map is at its new zoom already, the canvas until the animation ends is not)
    _pixelBox: function (box) {
      var k = this._k, o = this._o;
      return L.bounds(L.point(box[0] * k - o.x, box[1] * k - o.y), L.point(box[2] * k - o.x, box[3] * k - o.y));
    },

    // -- the grid index: units by the cells of zoom-0 pixels their boxes cover ---------------------
    _cells: function () {
      if (this._index) return this._index;
      var list = this._list, n = list.length, area = 0, i;
      for (i = 0; i < n; i++) {
        var b = list[i]._shape.box;
        area += Math.max(b[2] - b[0], 1e-9) * Math.max(b[3] - b[1], 1e-9);
      }
      var size = n ? Math.sqrt(area / n) * 2 : 1;  // about one to four units a cell
      var cells = new Map();
      for (i = 0; i < n; i++) {
        var box = list[i]._shape.box;
        for (var cx = Math.floor(box[0] / size); cx <= Math.floor(box[2] / size); cx++) {
          for (var cy = Math.floor(box[1] / size); cy <= Math.floor(box[3] / size); cy++) {
            var key = cx * 1e8 + cy, bucket = cells.get(key);
            if (bucket) bucket.push(i); else cells.set(key, [i]);
          }
        }
      }
      this._index = { size: size, cells: cells, seen: new Uint32Array(n), stamp: 0 };
      return this._index;
    },
    // Indices of the units whose boxes meet a zoom-0 box, each once.
    _query: function (x0, y0, x1, y1) {
      var index = this._cells(), size = index.size, out = [], list = this._list;
      var cx0 = Math.floor(x0 / size), cx1 = Math.floor(x1 / size), cy0 = Math.floor(y0 / size), cy1 = Math.floor(y1 / size);
      if ((cx1 - cx0 + 1) * (cy1 - cy0 + 1) > index.cells.size) {  // a view wider than the data: every unit
        for (var i = 0; i < list.length; i++) {
          var b = list[i]._shape.box;
          if (b[2] >= x0 && b[0] <= x1 && b[3] >= y0 && b[1] <= y1) out.push(i);
        }
        return out;
      }
      index.stamp += 1;
      if (index.stamp === 0xffffffff) { index.seen.fill(0); index.stamp = 1; }
      for (var cx = cx0; cx <= cx1; cx++) {
        for (var cy = cy0; cy <= cy1; cy++) {
          var bucket = index.cells.get(cx * 1e8 + cy);
          if (!bucket) continue;
          for (var k = 0; k < bucket.length; k++) {
            var at = bucket[k];
            if (index.seen[at] === index.stamp) continue;
            index.seen[at] = index.stamp;
            var box = list[at]._shape.box;
            if (box[2] >= x0 && box[0] <= x1 && box[3] >= y0 && box[1] <= y1) out.push(at);
          }
        }
      }
      return out;
    },

    // -- L.Path's part ---------------------------------------------------------------------------
    onAdd: function (map) {
      L.Path.prototype.onAdd.call(this, map);
      L.DomEvent.on(this._renderer._container, { mousemove: this._trailHover, mouseout: this._cancelTrail }, this);
    },
    onRemove: function (map) {
      this._cancelTrail();
      L.DomEvent.off(this._renderer._container, { mousemove: this._trailHover, mouseout: this._cancelTrail }, this);
      L.Path.prototype.onRemove.call(this, map);
    },
    // Leaflet's canvas renderer answers one pointer move each 32 ms and drops the others (the map
    // hears nothing of them either), so a pointer can come to rest over a unit its hover never saw:
    // the tooltip still names the unit before. The move a pointer rests at is answered once more
    // when it has rested 40 ms (answering a move twice changes nothing).
    _trailHover: function (event) {
      var renderer = this._renderer;
      this._cancelTrail();
      this._trail = setTimeout(function () {
        if (renderer._map && !renderer._mouseHoverThrottled) renderer._onMouseMove(event);
      }, 40);
    },
    _cancelTrail: function () { clearTimeout(this._trail); this._trail = null; },
    _project: function () {
      this._k = Math.pow(2, this._map.getZoom());
      this._o = this._map.getPixelOrigin();
      this._pxBounds = this._list.length ? this._pixelBox(this._dataBox()) : null;
    },
    _update: function () { /* nothing to clip or simplify: the draw works from the zoom-0 rings */ },
    _updatePath: function () {
      var r = this._renderer, area = r._redrawBounds || r._bounds;
      if (!area || !this._list.length) return;
      var k = this._k, o = this._o, ctx = r._ctx, list = this._list, pad = 1.5;  // outlines and dots reach past boxes
      var found = this._query((area.min.x - pad + o.x) / k, (area.min.y - pad + o.y) / k, (area.max.x + pad + o.x) / k,
                              (area.max.y + pad + o.y) / k);
      var last = [];  // units with a heavier outline: drawn after the others, so their outline stays whole
      ctx.lineJoin = "round"; ctx.lineCap = "round";
      for (var i = 0; i < found.length; i++) {
        var u = list[found[i]], style = this._styleOf(u);
        if (style.weight > 1) last.push(u); else this._drawUnit(ctx, u, style, k, o);
      }
      for (var j = 0; j < last.length; j++) this._drawUnit(ctx, last[j], this._styleOf(last[j]), k, o);
      ctx.globalAlpha = 1;
    },
    _drawUnit: function (ctx, u, style, k, o) {
      var shape = u._shape, box = shape.box;
      ctx.fillStyle = style.fillColor;
      if ((box[2] - box[0]) * k < 1.5 && (box[3] - box[1]) * k < 1.5) {  // under a pixel or so: a pixel
        ctx.globalAlpha = style.fillOpacity;
        ctx.fillRect(Math.floor(box[0] * k - o.x), Math.floor(box[1] * k - o.y), 1, 1);
        return;
      }
      ctx.beginPath();
      for (var r = 0; r < shape.rings.length; r++) {
        var ring = shape.rings[r], n = ring.length / 2;
        var px = ring[0] * k - o.x, py = ring[1] * k - o.y;
        ctx.moveTo(px, py);
        for (var i = 1; i < n; i++) {
          var x = ring[2 * i] * k - o.x, y = ring[2 * i + 1] * k - o.y;
          if (i < n - 1 && Math.abs(x - px) < 0.5 && Math.abs(y - py) < 0.5) continue;  // within half a pixel
          ctx.lineTo(x, y); px = x; py = y;
        }
        ctx.closePath();
      }
      ctx.globalAlpha = style.fillOpacity;
      ctx.fill("evenodd");
      // a thin outline on a unit of a few pixels hides its colour: only the heavier ones are drawn there
      if (style.weight > 1 || (style.weight > 0 && (box[2] - box[0]) * k >= 4 && (box[3] - box[1]) * k >= 4)) {
        ctx.globalAlpha = 1;
        ctx.lineWidth = style.weight;
        ctx.strokeStyle = style.color;
        ctx.stroke();
      }
    },
    // the layer pixel ``p`` lies in a unit, or within the renderer's tolerance of one (as a
    // Leaflet polygon's outline counts, and a unit drawn as a single pixel): which is kept in ``hit``
    _containsPoint: function (p) {
      if (!this._map) { this.hit = null; return false; }
      var tolerance = ((this._renderer.options && this._renderer.options.tolerance) || 0) + 1;
      this.hit = this.unitAt(this._map.layerPointToLatLng(p), tolerance / Math.pow(2, this._map.getZoom()));
      return !!this.hit;
    },
    // The unit holding ``latlng``, else the nearest within ``tolerance`` (zoom-0 pixels; null: none).
    unitAt: function (latlng, tolerance) {
      if (!this._list.length) return null;
      var x = worldX(latlng.lng), y = worldY(latlng.lat), list = this._list, i;
      var found = this._query(x, y, x, y);
      for (i = found.length - 1; i >= 0; i--) {
        if (shapeContains(list[found[i]]._shape, x, y)) return list[found[i]];
      }
      if (!tolerance) return null;
      var best = null, bestDistance = tolerance;
      found = this._query(x - tolerance, y - tolerance, x + tolerance, y + tolerance);
      for (i = 0; i < found.length; i++) {
        var d = shapeDistance(list[found[i]]._shape, x, y);
        if (d <= bestDistance) { best = list[found[i]]; bestDistance = d; }
      }
      return best;
    }
  });

  L.gridmapUnits = function (styleOf, options) { return new L.GridmapUnits(styleOf, options); };
})();
