"""The test database itself: every test that asks for ``engine`` starts from empty tables whose
ids start again at 1, however the test before it left them (rows, a snapshot's sequence
positions), and a command that only reads the database does not load the GIS stack."""

from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa

from conftest import empty_tables
from gridmap.store import audit


def test_emptied_tables_start_their_ids_again_whatever_the_sequences_were(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for n in range(3):
            audit.record(conn, actor="test", action="probe", table="plans", row_key=str(n))
        # a snapshot restores a sequence as it found it: here "not called" at 500 (last_value NULL)
        conn.execute(sa.text("SELECT setval('audit_log_id_seq', 500, false)"))
    with engine.connect() as conn:  # the planner knows of the three rows
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE audit_log"))
        assert conn.execute(sa.text("SELECT reltuples FROM pg_class WHERE oid = 'public.audit_log'::regclass")).scalar_one() == 3
    empty_tables(engine)
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one() == 0
        audit.record(conn, actor="test", action="probe", table="plans", row_key="again")
        assert conn.execute(sa.text("SELECT id FROM audit_log")).scalar_one() == 1
        stats = conn.execute(sa.text("SELECT reltuples FROM pg_class WHERE oid = 'public.audit_log'::regclass")).scalar_one()
    assert stats == 0  # analysed once emptied: the planner does not count the rows deleted


def test_reading_the_models_does_not_load_the_gis_stack() -> None:
    """The store's models need the staff roles' names, not the staff sheet reader behind them
    (pandas, and through the GIS reader geopandas, pyogrio and scipy): a command that only
    reads the database starts a second sooner."""
    code = ("import sys, gridmap.store.models; "
            "print(sorted(m for m in ('pandas', 'geopandas', 'pyogrio', 'scipy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
