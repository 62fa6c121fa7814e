#!/usr/bin/env bash
# Install whatever is missing for gridmap on Debian 12 (bookworm), then the Python environment.
#   scripts/setup.sh          run-time needs: PostgreSQL 15 + PostGIS 3, GDAL tools, CJK fonts, Python venv
#   scripts/setup.sh --test   also what the tests need: Chromium (browser tests), QGIS (python3-qgis, a stock client),
#                             Redis (GRIDMAP_REDIS_URL)
# Safe to run again: it installs only what is missing and reinstalls Python packages only when
# pyproject.toml changed. Runs as root or as a user with sudo.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WITH_TEST=0
[[ "${1:-}" == "--test" ]] && WITH_TEST=1
say() { echo "[setup] $*" >&2; }

SUDO=""
if [[ "$(id -u)" != "0" ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql-15)
ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || need+=(postgresql-15-postgis-3)
command -v ogrinfo >/dev/null 2>&1 || need+=(gdal-bin)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
have_pkg fonts-noto-cjk || need+=(fonts-noto-cjk)   # Chinese text on printed wall maps
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { say "Python >= 3.11 is required (Debian 12 ships 3.11)"; exit 1; }
if [[ $WITH_TEST == 1 ]]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  have_pkg python3-qgis || need+=(python3-qgis)   # QGIS's own providers as a stock client, headless
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)   # GRIDMAP_REDIS_URL tested on a real Redis
fi

if (( ${#need[@]} )); then
  if [[ "$(id -u)" != "0" && -z "$SUDO" ]]; then
    say "missing Debian packages: ${need[*]}; run as root or install sudo"; exit 1
  fi
  # gridmap runs its own private cluster: do not let the postgresql package create and start
  # a system-wide one on port 5432 as well (only applies when PostgreSQL is not installed yet).
  if [[ " ${need[*]} " == *" postgresql-15 "* && ! -e /etc/postgresql-common/createcluster.conf ]]; then
    $SUDO mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/00-gridmap.conf >/dev/null
  fi
  say "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

VENV="$ROOT/.venv"
STAMP="$VENV/.gridmap-setup-stamp"
EXTRAS="."
[[ $WITH_TEST == 1 ]] && EXTRAS=".[dev]"
HASH="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
OLD_HASH="" OLD_EXTRAS=""
[[ -f "$STAMP" ]] && read -r OLD_HASH OLD_EXTRAS < "$STAMP" || true
[[ "$OLD_EXTRAS" == ".[dev]" ]] && EXTRAS=".[dev]"   # never drop the test extras once installed
if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating the Python environment in .venv"
  python3 -m venv "$VENV"
fi
if [[ "$OLD_HASH" != "$HASH" || "$OLD_EXTRAS" != "$EXTRAS" ]]; then
  say "installing Python packages ($EXTRAS)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
  (cd "$ROOT" && "$VENV/bin/python" -m pip install --quiet -e "$EXTRAS" >&2)
  echo "$HASH $EXTRAS" > "$STAMP"
fi
say "ready"
