"""Test fixtures: a real PostGIS for every test that touches storage.

The database server is the private local cluster (started if needed) or, when
GRIDMAP_DATABASE_URL is set, that server. Either way the session gets a fresh database of its
own (created with PostGIS, migrated to head, dropped at the end), and every test that asks for
``engine`` starts from empty tables.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gridmap.settings import Settings
from gridmap.store import migrate
from gridmap.store.cluster import cluster_from_settings
from gridmap.store.databases import drop_database, ensure_postgis_database
from gridmap.store.db import engine_for, normalise_url

DATA_TABLES_SQL = (
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
    "AND tablename NOT IN ('alembic_version', 'spatial_ref_sys')"
)


def _server_url() -> str:
    settings = Settings.from_env()
    if settings.database_url:
        return normalise_url(settings.database_url)
    return cluster_from_settings(settings).start()


@pytest.fixture(scope="session")
def server_url() -> str:
    """URL of the server's own database (the cluster's 'gridmap', or GRIDMAP_DATABASE_URL)."""
    return _server_url()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this test session, with PostGIS, migrated to head."""
    name = f"gridmap_test_{os.getpid()}_{secrets.token_hex(3)}"
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    ensure_postgis_database(url)
    migrate.upgrade(url)
    yield url
    engine_for(url).dispose()
    drop_database(url)


@dataclass
class DemoDatabase:
    """A database in the state the quickstart leaves: ``gridmap up --no-serve`` has run once."""

    url: str
    home: Path
    env: dict[str, str]
    first_run: subprocess.CompletedProcess


@pytest.fixture(scope="session")
def demo_database(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoDatabase]:
    """A fresh database of its own, filled by the real ``gridmap up --no-serve`` (demo territories,
    published plans, stations, a year of synthetic incidents, the admin account). Shared by the
    tests of the quickstart path and the notebooks, which only read Reykjavík."""
    url = make_url(server_url).set(database=f"gridmap_up_{secrets.token_hex(3)}").render_as_string(hide_password=False)
    home = tmp_path_factory.mktemp("gridmap-home")
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_HOME": str(home)}
    first = subprocess.run([sys.executable, "-m", "gridmap.cli", "up", "--no-serve"], env=env, capture_output=True,
                           text=True)
    yield DemoDatabase(url, home, env, first)
    engine_for(normalise_url(url)).dispose()
    drop_database(url)


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    """The session database, emptied before the test (schema kept)."""
    eng = engine_for(database_url)
    with eng.begin() as conn:
        tables = [r[0] for r in conn.execute(sa.text(DATA_TABLES_SQL))]
        if tables:
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    return eng


@pytest.fixture
def monaco(engine: sa.Engine) -> sa.Engine:
    """The engine with the Monaco demo loaded."""
    from gridmap.services.demo import load_demo

    load_demo(engine, ["monaco"])
    return engine


def demo_layers(name: str) -> dict:
    """All layers of a committed demo, as GeoDataFrames keyed by layer name."""
    import geopandas as gpd

    from gridmap.services.demo import demo_dir

    return {p.stem: gpd.read_parquet(p) for p in (demo_dir() / name).glob("*.parquet")}


def build_demo_units(layers: dict):
    from gridmap.geo.units import build_units

    return build_units(layers["communities"], layers["roads"], layers["buildings"], waterways=layers.get("waterways"),
                       railways=layers.get("railways"), compounds=layers.get("residential_areas"),
                       sites=layers.get("sites"))


@pytest.fixture(scope="session")
def monaco_units():
    layers = demo_layers("monaco")
    return layers, build_demo_units(layers)


@pytest.fixture(scope="session")
def reykjavik_units():
    layers = demo_layers("reykjavik")
    return layers, build_demo_units(layers)

