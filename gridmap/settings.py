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
GRIDMAP_TIANDITU_KEY  A Tianditu (天地图) key: the maps then offer its vector basemap (CGCS2000).
GRIDMAP_TOKEN_TTL_HOURS  How long a sign-in token lasts (default 8 hours).
GRIDMAP_PUBLIC_READ   ``false`` to require sign-in for reading published data (default ``true``).
GRIDMAP_OPEN311_PUBLIC  ``true`` to let anyone file Open311 requests without signing in (default ``false``).
GRIDMAP_HOLIDAYS      Public holidays of incident time limits: CN (default: China's, with 调休, from
                      chinesecalendar), another ISO country code (from ``holidays``), or none.
GRIDMAP_CALENDAR      A JSON working calendar over those holidays (hours, extra holidays, a year the data
                      lacks: see gridmap.incident_rules.WorkCalendar.from_dict).
GRIDMAP_TIMEZONE      The time zone of that calendar (default Asia/Shanghai).
GRIDMAP_MAX_BODY_MB   Largest request body the API accepts, uploads aside (default 10 MB; 413 beyond).
GRIDMAP_MAX_UPLOAD_MB Largest file upload (default 200 MB); a zip may unpack to 10 times that.
GRIDMAP_MAX_IMPORT_FEATURES  Features one import may hold (default 5,000,000).
GRIDMAP_MAX_VERTICES  Vertices one imported geometry may hold (default 1,000,000).
GRIDMAP_OPEN311_RATE  Public Open311 submissions per client address per minute (default 30; 429 beyond).
GRIDMAP_SECRET_KEY    The key (or keys, comma-separated: the first encrypts, all decrypt) that encrypts
                      personal data at rest (the households register). Default: the key in
                      ``$GRIDMAP_HOME/secret.key``, which ``gridmap up`` writes once (mode 0600).
GRIDMAP_REDIS_URL     ``redis://host:6379/0``: keep the throttles' counts (failed sign-ins, public
                      submissions) in Redis, shared by several server processes (default: in memory;
                      needs ``pip install 'limits[redis]'``).
GRIDMAP_PREPARED_STATEMENTS  ``false`` behind a pooler that hands each transaction another server
                      connection (PgBouncer's transaction pooling): the statements every request runs
                      are then planned each time instead of prepared once per connection (default ``true``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path


def _default_home() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/gridmap")
    from platformdirs import user_data_dir

    return Path(user_data_dir("gridmap", appauthor=False))


def _secret_keys(env: dict[str, str], home: Path) -> tuple[str, ...]:
    """The keys of ``GRIDMAP_SECRET_KEY`` (commas or spaces between them), else of the key file."""
    text = env.get("GRIDMAP_SECRET_KEY", "")
    if not text.strip():
        try:
            text = (home / "secret.key").read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            return ()
    return tuple(k for k in re.split(r"[\s,]+", text) if k)


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
    tianditu_key: str | None = None
    token_ttl_hours: float = 8.0
    public_read: bool = True
    open311_public: bool = False
    max_body_bytes: int = 10 * 1024**2
    max_upload_bytes: int = 200 * 1024**2
    max_import_features: int = 5_000_000
    max_vertices: int = 1_000_000
    open311_rate_per_minute: int = 30
    redis_url: str | None = None
    warm_minutes: float = 5.0
    """How often the server works out the answers it keeps for every process (stations' service
    areas) where they are missing; 0: never (they are then worked out by the first request)."""
    dask_scheduler: str | None = None
    """A Dask scheduler (``tcp://HOST:8786``) that partitions and micro-grids run on (gridmap.distributed)."""
    dask_min_units: int = 50_000
    """Units from which a partition runs on a local Dask cluster when no scheduler is named: below
    it the serial path is faster on a 2-core machine (benchmarks/province.py prints both)."""
    secret_keys: tuple[str, ...] = field(default=(), repr=False)
    """The keys of personal data (:mod:`gridmap.vault`); empty: the register cannot be read or written."""
    cors_origins: tuple[str, ...] = ("*",)
    """Web origins whose pages may call the API from the browser (a city portal's MapLibre or
    OpenLayers map): ``*`` for any; none when empty."""
    prepared_statements: bool = True
    """Whether gridmap's connections prepare the statements every request runs
    (:func:`gridmap.store.db.prepared`); off behind a transaction-pooling PgBouncer."""

    @property
    def secret_key_file(self) -> Path:
        """Where ``gridmap up`` keeps the key when ``GRIDMAP_SECRET_KEY`` is not set."""
        return self.home / "secret.key"

    def vault(self):
        """The vault of personal data under these keys (refuses, in both languages, when there are none)."""
        from gridmap.vault import Vault

        return Vault(self.secret_keys)

    def read_limits(self):
        """The limits a file import is checked against (see gridmap.geo.io.ReadLimits)."""
        from gridmap.geo.io import ReadLimits

        return ReadLimits(unpacked_bytes=10 * self.max_upload_bytes, features=self.max_import_features,
                          vertices=self.max_vertices)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        """Read settings from ``env`` (default: ``os.environ``)."""
        env = dict(os.environ if env is None else env)
        home = env.get("GRIDMAP_HOME")
        bindir = env.get("GRIDMAP_PG_BINDIR")
        home_path = Path(home).expanduser().resolve() if home else _default_home()
        return cls(
            database_url=env.get("GRIDMAP_DATABASE_URL") or None,
            home=home_path,
            pg_bindir=Path(bindir) if bindir else None,
            db_name=env.get("GRIDMAP_DB_NAME", "gridmap"),
            cluster_user=env.get("GRIDMAP_CLUSTER_USER", "gridmap"),
            basemap_url=env.get("GRIDMAP_BASEMAP_URL") or None,
            basemap_attribution=env.get("GRIDMAP_BASEMAP_ATTRIBUTION", ""),
            tianditu_key=env.get("GRIDMAP_TIANDITU_KEY") or None,
            token_ttl_hours=float(env.get("GRIDMAP_TOKEN_TTL_HOURS", "8")),
            public_read=env.get("GRIDMAP_PUBLIC_READ", "true").strip().lower() not in ("0", "false", "no", "off"),
            open311_public=env.get("GRIDMAP_OPEN311_PUBLIC", "false").strip().lower() in ("1", "true", "yes", "on"),
            max_body_bytes=int(float(env.get("GRIDMAP_MAX_BODY_MB", "10")) * 1024**2),
            max_upload_bytes=int(float(env.get("GRIDMAP_MAX_UPLOAD_MB", "200")) * 1024**2),
            max_import_features=int(env.get("GRIDMAP_MAX_IMPORT_FEATURES", "5000000")),
            max_vertices=int(env.get("GRIDMAP_MAX_VERTICES", "1000000")),
            open311_rate_per_minute=int(env.get("GRIDMAP_OPEN311_RATE", "30")),
            redis_url=env.get("GRIDMAP_REDIS_URL") or None,
            warm_minutes=float(env.get("GRIDMAP_WARM_MINUTES", cls.warm_minutes)),
            dask_scheduler=env.get("GRIDMAP_DASK_SCHEDULER") or None,
            dask_min_units=int(env.get("GRIDMAP_DASK_MIN_UNITS", cls.dask_min_units)),
            secret_keys=_secret_keys(env, home_path),
            cors_origins=tuple(o.strip() for o in env.get("GRIDMAP_CORS_ORIGINS", "*").split(",") if o.strip()),
            prepared_statements=env.get("GRIDMAP_PREPARED_STATEMENTS", "true").strip().lower()
            not in ("0", "false", "no", "off"),
        )
