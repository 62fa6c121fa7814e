#!/usr/bin/env bash
# Quickstart, command 1: install what is missing, start the local PostGIS, migrate, load the demo
# data and serve the app at http://127.0.0.1:8000 (extra arguments go to `gridmap up`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
exec "$ROOT/.venv/bin/gridmap" up "$@"
