"""Configuration from environment variables, read once per call (no hidden global state).

Variables
---------
GRIDMAP_DATABASE_URL  Use this PostGIS database instead of the private local cluster.
GRIDMAP_HOME          Folder of the private cluster and other state. Default: the user's data
                      directory (``~/.local/share/gridmap``); when run as root ``/var/lib/gridmap``,
                      because the cluster runs as an unprivileged user who must be able to reach it.
GRIDMAP_PG_BINDIR     PostgreSQL server binaries (default: newest /usr/lib/postgresql/N/bin
                      whose PostGIS extension is installed).
GRIDMAP_DB_NAME       Database name inside the private cluster (default ``gridmap``).
GRIDMAP_CLUSTER_USER  Unprivileged OS user that runs the cluster when gridmap runs as root
                      (default ``gridmap``; created on first start).
GRIDMAP_BASEMAP_URL   Optional XYZ tile URL for the maps; none by default (maps work without).
GRIDMAP_BASEMAP_ATTRIBUTION  Attribution text shown with that basemap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _default_home() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/gridmap")
    from platformdirs import user_data_dir

    return Path(user_data_dir("gridmap", appauthor=False))


@dataclass(frozen=True)
class Settings:
    """A snapshot of gridmap's configuration."""

    database_url: str | None
    home: Path
    pg_bindir: Path | None
    db_name: str
    cluster_user: str
    basemap_url: str | None
    basemap_attribution: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        """Read settings from ``env`` (default: ``os.environ``)."""
        env = dict(os.environ if env is None else env)
        home = env.get("GRIDMAP_HOME")
        bindir = env.get("GRIDMAP_PG_BINDIR")
        return cls(
            database_url=env.get("GRIDMAP_DATABASE_URL") or None,
            home=Path(home).expanduser().resolve() if home else _default_home(),
            pg_bindir=Path(bindir) if bindir else None,
            db_name=env.get("GRIDMAP_DB_NAME", "gridmap"),
            cluster_user=env.get("GRIDMAP_CLUSTER_USER", "gridmap"),
            basemap_url=env.get("GRIDMAP_BASEMAP_URL") or None,
            basemap_attribution=env.get("GRIDMAP_BASEMAP_ATTRIBUTION", ""),
        )
