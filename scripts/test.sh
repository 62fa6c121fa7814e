#!/usr/bin/env bash
# Quickstart, command 2: install what is missing (with the test extras) and run the whole suite
# against a real PostGIS: the private local cluster, or GRIDMAP_DATABASE_URL when set.
# Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" --test
cd "$ROOT"
# -n auto: one worker per core; --dist loadgroup keeps tests that share an expensive fixture together
exec "$ROOT/.venv/bin/python" -m pytest -n auto --dist loadgroup "$@"
