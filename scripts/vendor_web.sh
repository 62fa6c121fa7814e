#!/usr/bin/env bash
# Re-vendor the browser libraries into gridmap/web/static/vendor/ from the npm registry.
# Nothing is loaded from a CDN at run time; the vendored files are committed.
set -euo pipefail
cd "$(dirname "$0")/.."
LEAFLET_VERSION=1.9.4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "leaflet@${LEAFLET_VERSION}" >/dev/null && tar xzf leaflet-*.tgz)
dest=gridmap/web/static/vendor/leaflet
rm -rf "$dest" && mkdir -p "$dest"
cp "$tmp/package/dist/leaflet.js" "$tmp/package/dist/leaflet.css" "$tmp/package/LICENSE" "$dest/"
cp -r "$tmp/package/dist/images" "$dest/"
echo "leaflet@${LEAFLET_VERSION} (npm registry), BSD-2-Clause" > "$dest/VERSION"
echo "vendored leaflet ${LEAFLET_VERSION} into $dest"

# Swagger UI for /docs (FastAPI would otherwise load it from a CDN).
SWAGGER_VERSION=5.17.14
(cd "$tmp" && rm -rf package && npm pack --silent "swagger-ui-dist@${SWAGGER_VERSION}" >/dev/null && tar xzf swagger-ui-dist-*.tgz)
dest=gridmap/web/static/vendor/swagger-ui
rm -rf "$dest" && mkdir -p "$dest"
cp "$tmp/package/swagger-ui-bundle.js" "$tmp/package/swagger-ui.css" "$tmp/package/favicon-32x32.png" "$tmp/package/LICENSE" "$dest/"
echo "swagger-ui-dist@${SWAGGER_VERSION} (npm registry), Apache-2.0" > "$dest/VERSION"
echo "vendored swagger-ui-dist ${SWAGGER_VERSION} into $dest"

# leaflet.heat for the incident heat map on the dashboard.
HEAT_VERSION=0.2.0
(cd "$tmp" && rm -rf package && npm pack --silent "leaflet.heat@${HEAT_VERSION}" >/dev/null && tar xzf leaflet.heat-*.tgz)
dest=gridmap/web/static/vendor/leaflet-heat
rm -rf "$dest" && mkdir -p "$dest"
cp "$tmp/package/dist/leaflet-heat.js" "$dest/"
cp "$tmp/package/LICENSE" "$dest/" 2>/dev/null || echo "BSD-2-Clause (see https://www.npmjs.com/package/leaflet.heat)" > "$dest/LICENSE"
echo "leaflet.heat@${HEAT_VERSION} (npm registry), BSD-2-Clause" > "$dest/VERSION"
echo "vendored leaflet.heat ${HEAT_VERSION} into $dest"

# Leaflet.VectorGrid (bundled with its protobuf decoder) for the planner's context tiles.
VECTORGRID_VERSION=1.3.0
(cd "$tmp" && rm -rf package && npm pack --silent "leaflet.vectorgrid@${VECTORGRID_VERSION}" >/dev/null && tar xzf leaflet.vectorgrid-*.tgz)
dest=gridmap/web/static/vendor/leaflet-vectorgrid
rm -rf "$dest" && mkdir -p "$dest"
cp "$tmp/package/dist/Leaflet.VectorGrid.bundled.min.js" "$dest/"
cp "$tmp/package/LICENSE" "$dest/" 2>/dev/null || echo "Beerware (see package.json of leaflet.vectorgrid)" > "$dest/LICENSE"
echo "leaflet.vectorgrid@${VECTORGRID_VERSION} (npm registry), Beerware" > "$dest/VERSION"
echo "vendored leaflet.vectorgrid ${VECTORGRID_VERSION} into $dest"

# MapLibre GL JS: not served by gridmap; the tests drive it as a stock client of the vector tiles
# (TileJSON) from a page on another origin (tests/test_ogc_filter.py).
MAPLIBRE_VERSION=4.7.1
(cd "$tmp" && rm -rf package && npm pack --silent "maplibre-gl@${MAPLIBRE_VERSION}" >/dev/null && tar xzf maplibre-gl-*.tgz)
dest=tests/assets/maplibre-gl
rm -rf "$dest" && mkdir -p "$dest"
cp "$tmp/package/dist/maplibre-gl.js" "$tmp/package/dist/maplibre-gl.css" "$tmp/package/LICENSE.txt" "$dest/"
echo "maplibre-gl@${MAPLIBRE_VERSION} (npm registry), BSD-3-Clause: a stock web map client for the tests, not served by gridmap" > "$dest/VERSION"
echo "vendored maplibre-gl ${MAPLIBRE_VERSION} into $dest"
