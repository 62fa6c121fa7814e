"""Drive a running gridmap with QGIS's own providers, headless: OGC API - Features (OAPIF) and the
vector tiles (XYZ MVT). QGIS is not installed by the project (Debian's python3-qgis pulls about 170
packages); install it and run this with Debian's Python, against a server with published grids:

    apt-get install --no-install-recommends python3-qgis
    /usr/bin/python3 scripts/qgis_client_check.py http://127.0.0.1:8000

It exits non-zero when QGIS reads something other than what the server's own API says.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import Qgis, QgsApplication, QgsVectorLayer, QgsVectorTileLayer  # noqa: E402


def number_matched(base: str, query: str = "") -> int:
    with urllib.request.urlopen(f"{base}/collections/grids/items?limit=1{query}") as answer:
        return json.load(answer)["numberMatched"]


def check(base: str) -> str:
    """Open the grids with QGIS's providers and compare them with the server's own answers."""
    grids = QgsVectorLayer(f"url='{base}' typename='grids'", "grids", "OAPIF")
    assert grids.isValid(), "QGIS's OAPIF provider cannot open the grids collection"
    expected = number_matched(base)
    assert grids.featureCount() == expected, (grids.featureCount(), expected)
    codes = [f["grid_code"] for f in grids.getFeatures()]
    assert len(codes) == expected and all(isinstance(c, str) and c[:1].isdigit() for c in codes)
    busy = QgsVectorLayer(f"url='{base}' typename='grids'", "busy", "OAPIF")
    busy.setSubsetString("households > 450")
    assert busy.featureCount() == number_matched(base, "&filter=households%20%3E%20450")
    tiles = QgsVectorTileLayer(f"type=xyz&url={base}/tiles/grids/{{z}}/{{x}}/{{y}}.mvt&zmin=0&zmax=14", "tiles")
    assert tiles.isValid(), "QGIS cannot open the vector tiles"
    return (f"QGIS {Qgis.version()}: OAPIF {expected} grids (codes as text, e.g. {min(codes)}), subset "
            f"households > 450: {busy.featureCount()}, vector tiles valid")


def main(base: str) -> int:
    app = QgsApplication([], False)
    app.initQgis()
    try:
        print(check(base), flush=True)  # the layers are gone before QGIS exits
        code = 0
    except AssertionError as failed:
        print(f"QGIS disagrees with the server: {failed}", file=sys.stderr, flush=True)
        code = 1
    app.exitQgis()
    os._exit(code)  # PyQGIS 3.22 can crash tearing the interpreter down after exitQgis


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8000")
