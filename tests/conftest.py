"""Test fixtures: a real PostGIS for every test that touches storage.

The database server is the private local cluster (started if needed) or, when
GRIDMAP_DATABASE_URL is set, that server. Either way the session gets a fresh database of its
own (created with PostGIS, migrated to head, dropped at the end), and every test that asks for
``engine`` starts from empty tables.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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

# Reports filed "now" in the tests must not depend on the date the suite runs: the default
# calendar (China's holidays from chinesecalendar) refuses time limits that run into a year its
# data lacks, which near a year's end would fail tests that have nothing to do with holidays.
# The tests count Monday-Friday; the holiday calendars are tested on fixed dates
# (test_incident_rules), the default included (calendar_from_env({})).
os.environ.setdefault("GRIDMAP_HOLIDAYS", "none")
# the servers of the tests do not work out stations' service areas in the background (seconds of CPU each,
# at a moment no test chooses); tests/test_stations.py switches it on where it is the subject
os.environ.setdefault("GRIDMAP_WARM_MINUTES", "0")

DATA_TABLES_SQL = (  # (a partitioned table's rows are its months': the months themselves are left out)
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
    "AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname NOT IN ('alembic_version', 'spatial_ref_sys')"
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


@contextmanager
def fresh_database(server_url: str, prefix: str, *, revision: str | None = "head") -> Iterator[str]:
    """A database of its own on the test server (``prefix`` and a random suffix), with PostGIS,
    migrated to ``revision`` (None: not migrated), dropped at the end with the engine
    ``engine_for`` made for it: the one place tests make and drop a database."""
    url = make_url(server_url).set(database=f"{prefix}_{secrets.token_hex(3)}").render_as_string(hide_password=False)
    ensure_postgis_database(url)
    try:
        if revision is not None:
            migrate.upgrade(url, revision)
        yield url
    finally:
        engine_for(url).dispose()
        drop_database(url)


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this test session, with PostGIS, migrated to head."""
    with fresh_database(server_url, f"gridmap_test_{os.getpid()}") as url:
        yield url


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
    """The session database, emptied before the test (schema kept; the sequences of the tables'
    serial and identity columns back at their start, as ``TRUNCATE ... RESTART IDENTITY`` leaves
    them)."""
    eng = engine_for(database_url)
    empty_tables(eng)
    return eng


RESTART_OWNED_SEQUENCES_SQL = (  # the sequences behind serial and identity columns, all back at their start
    "SELECT setval(s.oid, q.start_value, false) FROM pg_class s JOIN pg_depend d ON d.objid = s.oid "
    "AND d.deptype IN ('a', 'i') JOIN pg_namespace n ON n.oid = s.relnamespace JOIN pg_sequences q "
    "ON q.schemaname = n.nspname AND q.sequencename = s.relname WHERE s.relkind = 'S' AND n.nspname = 'public'"
)


def empty_tables(eng: sa.Engine) -> None:
    """Delete the rows of the data tables that have any, set the sequences of their serial and
    identity columns back to their start (whether or not a row was taken from them since: a
    snapshot puts them back where it found them), and vacuum and analyse the emptied tables: their
    dead rows and index entries gone and the planner's row counts reset, as a ``TRUNCATE`` leaves
    them (without the vacuum, dead entries piled up in the geometry indexes over the session, and
    the property test of edit sequences took 126 s instead of 16 s). Sequences that are only a column's default
    (``grid_lineage_seq``, ``incident_public_seq``) run on, as they did under ``TRUNCATE``.

    Rows are deleted with the foreign-key triggers off (every table is emptied, so no reference is
    left dangling), where a ``TRUNCATE`` of every table took about 0.5 s a test however little it
    held (truncating the month partitions of the incidents, empty or not): about 0.03 s for the
    tables a Monaco test fills. Where the server does not let the session turn triggers off, the
    ``TRUNCATE``."""
    with eng.begin() as conn:
        tables = [r[0] for r in conn.execute(sa.text(DATA_TABLES_SQL))]
        if not tables:
            return
        filled = [r[0] for r in conn.execute(sa.text(" UNION ALL ".join(
            f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM public.\"{t}\")" for t in tables)))]
        try:
            with conn.begin_nested():
                conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
                for table in filled:
                    conn.execute(sa.text(f'DELETE FROM public."{table}"'))
        except sa.exc.DBAPIError:  # not allowed here: the slow way, which needs no privilege
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'public."{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
            return
        conn.execute(sa.text(RESTART_OWNED_SEQUENCES_SQL))
    if filled:  # the dead rows cleared and the planner's counts reset, as a TRUNCATE leaves the tables
        with eng.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text(
                "VACUUM (ANALYZE) " + ", ".join(f'public."{t}"' for t in filled)))


@pytest.fixture
def monaco(engine: sa.Engine) -> sa.Engine:
    """The engine with the Monaco demo loaded."""
    from gridmap.services.demo import load_demo

    load_demo(engine, ["monaco"])
    return engine


@pytest.fixture
def monaco_published(engine: sa.Engine) -> sa.Engine:
    """Monaco's first partition published, on its built units (what ``partition_territory(engine,
    "980100")`` and ``planning.publish(..., actor="test")`` make on ``monaco_built``): the state
    twenty-one fixtures start from. Made once per session, then copied back from a snapshot of
    the tables (about 0.3 s against 1–1.5 s of partition and publish). The partition and the
    publish themselves are tested where they are the subject (test_partition_service,
    test_planning ...). :func:`published_plan_id` gives the plan's id."""
    if restore_snapshot(engine, "monaco_published"):
        return engine
    from gridmap.services import planning
    from gridmap.services.partitioning import partition_territory

    _monaco_built(engine)
    planning.publish(engine, partition_territory(engine, "980100").plan_id, version=None, actor="test")
    save_snapshot(engine, "monaco_published")
    return engine


def published_plan_id(engine: sa.Engine, territory: str = "980100") -> int:
    """The id of the territory's published plan."""
    with engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT p.id FROM plans p JOIN territories t ON t.id = p.territory_id "
            "WHERE t.code = :t AND p.status = 'published'"), {"t": territory}).scalar_one())


@pytest.fixture
def monaco_built(engine: sa.Engine) -> sa.Engine:
    """Monaco loaded and its units built (what the first ``partition_territory`` of Monaco builds,
    building-grain units included), no plan: for the tests that need a plan, not a unit build.
    Built once per session (a partition whose draft is then deleted, the audit log and the ids
    put back as if it never ran), then copied back from a snapshot of the tables (about 0.1 s
    against 3 s). Unit building itself is tested where it is the subject (test_units, the first
    builds of test_stale_units, test_partition_service ...) on ``monaco``; rebuilds (test_stale_units'
    ``history``) start from here."""
    return _monaco_built(engine)


def _monaco_built(engine: sa.Engine) -> sa.Engine:
    """The state of :func:`monaco_built` in ``engine`` (whose tables are empty)."""
    if restore_snapshot(engine, "monaco_built"):
        return engine
    from gridmap.services import planning
    from gridmap.services.demo import load_demo
    from gridmap.services.partitioning import partition_territory

    load_demo(engine, ["monaco"])
    planning.delete_draft(engine, partition_territory(engine, "980100").plan_id, actor="test")
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE audit_log"))
        owned = conn.execute(sa.text(
            "SELECT s.relname, t.relname, a.attname FROM pg_class s JOIN pg_depend d ON d.objid = s.oid "
            "AND d.deptype = 'a' JOIN pg_class t ON t.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = t.oid "
            "AND a.attnum = d.refobjsubid JOIN pg_namespace n ON n.oid = s.relnamespace "
            "WHERE s.relkind = 'S' AND n.nspname = 'public'")).all()
        for seq, table, column in owned:  # the next ids as if the deleted draft had never been made
            conn.execute(sa.text(f'SELECT setval(\'public."{seq}"\', COALESCE((SELECT max("{column}") '
                                 f'FROM public."{table}"), 0) + 1, false)'))
    save_snapshot(engine, "monaco_built")
    return engine


def _snapshot_schema(name: str) -> str:
    return f"test_snapshot_{name}"


def save_snapshot(engine: sa.Engine, name: str) -> None:
    """Copy every data table (and the sequences' positions) into a schema of their own."""
    schema = _snapshot_schema(name)
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(sa.text(DATA_TABLES_SQL))]
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        for table in tables:
            conn.execute(sa.text(f'CREATE TABLE "{schema}"."{table}" AS TABLE public."{table}"'))
        conn.execute(sa.text(f'CREATE TABLE "{schema}"._sequences (name text, last_value bigint, is_called bool)'))
        for (seq,) in conn.execute(sa.text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")).all():
            conn.execute(sa.text(f'INSERT INTO "{schema}"._sequences SELECT :n, last_value, is_called '
                                 f'FROM public."{seq}"'), {"n": seq})


def restore_snapshot(engine: sa.Engine, name: str) -> bool:
    """Put a snapshot's rows back into the (empty) tables and the sequences where they were;
    False when there is none yet or this server does not let the copy skip foreign-key triggers
    (then the caller builds the state itself)."""
    schema = _snapshot_schema(name)
    try:
        with engine.begin() as conn:
            if conn.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}).first() is None:
                return False
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))  # rows go in table by table
            tables = [r[0] for r in conn.execute(sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = :s AND tablename <> '_sequences'"), {"s": schema})]
            for table in tables:  # (generated columns are the database's to fill: never copied back)
                columns = ", ".join(f'"{c}"' for c in conn.execute(sa.text(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                    "AND table_name = :t AND is_generated = 'NEVER' ORDER BY ordinal_position"), {"t": table}).scalars())
                conn.execute(sa.text(f'INSERT INTO public."{table}" ({columns}) SELECT {columns} FROM "{schema}"."{table}"'))
            for seq, last, called in conn.execute(sa.text(
                    f'SELECT name, last_value, is_called FROM "{schema}"._sequences')).all():
                conn.execute(sa.text("SELECT setval(CAST(:q AS regclass), :v, :called)"),
                             {"q": f'public."{seq}"', "v": last, "called": called})
    except sa.exc.DBAPIError:
        return False
    with engine.connect() as conn:  # fresh statistics, as after the real build: the planner picks index scans
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text(
            "ANALYZE " + ", ".join(f'public."{t}"' for t in tables)))
    return True


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



def pytest_itemcollected(item: pytest.Item) -> None:
    """Keep the tests that share an expensive fixture on one xdist worker (``--dist loadgroup``),
    so it is built once: every user of ``demo_database`` (a whole ``gridmap up``, about a minute)
    together, and each module whose tests share a module-scoped fixture together. Other tests go
    to whichever worker is free. Marked as each test is collected, so that xdist's own
    ``pytest_collection_modifyitems`` (which turns the marks into groups) sees them."""
    fixture_info = getattr(item, "_fixtureinfo", None)
    if fixture_info is None:
        return
    names = set(fixture_info.names_closure)
    if "demo_database" in names:
        item.add_marker(pytest.mark.xdist_group("demo_database"))
        return
    defs = fixture_info.name2fixturedefs
    if any(d[-1].scope == "module" for n in names for d in [defs.get(n)] if d):
        item.add_marker(pytest.mark.xdist_group(item.module.__name__ if item.module else item.nodeid))


DISTRICT = "511802"


@pytest.fixture
def district(engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    """A small synthetic 雨城区 imported from its files (as ``gridmap up`` imports the demo's) and
    its plan published; built once per session, then restored from a snapshot."""
    if restore_snapshot(engine, "register_district"):
        return engine
    from gridmap.geo import synthetic_district as sd
    from gridmap.services import planning
    from gridmap.services.bootstrap import ensure_district_demo
    from gridmap.services.demo import load_demo
    from gridmap.services.partitioning import partition_territory

    folder = tmp_path_factory.mktemp("register-district")
    sd.write_files(sd.generate(sd.load_boundary(), sd.Config.small()), folder)
    shutil.copy(Path(__file__).resolve().parents[1] / "data" / "districts" / "yucheng" / "规则.toml", folder / "规则.toml")
    load_demo(engine, ["yaan"])
    assert ensure_district_demo(engine, folder)
    planning.publish(engine, partition_territory(engine, DISTRICT).plan_id, version=None, actor="test")
    save_snapshot(engine, "register_district")
    return engine
