"""Server-side prepared statements (gridmap.store.db.prepared) on a real PostgreSQL: prepared once
per connection, planned once generically, the same answers as a plain statement, through a
rollback and onto a replaced connection."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from gridmap.store.db import _prepared_form, prepared

SQL = ("SELECT CAST(:n AS int) + 1 AS next, upper(CAST(:word AS text)) AS loud, CAST(:at AS timestamptz) AS at, "
       "CAST(:n AS int) * 2 AS twice, CAST(:note AS text) AS note, '100%' AS sign")


def _statements(conn: sa.Connection) -> dict[str, tuple[int, int]]:
    return {r.name: (r.generic_plans, r.custom_plans) for r in conn.execute(sa.text(
        "SELECT name, generic_plans, custom_plans FROM pg_prepared_statements"))}


def test_prepared_answers_as_the_plain_statement_and_is_prepared_once(engine: sa.Engine) -> None:
    at = datetime(2026, 12, 5, 1, 2, 3, tzinfo=timezone.utc)
    params = {"n": 41, "word": "网格 grid", "at": at, "note": None}
    name = _prepared_form(SQL).name
    with engine.connect() as conn:
        plain = dict(conn.execute(sa.text(SQL), params).one()._mapping)
        for _ in range(7):
            assert dict(prepared(conn, SQL, params).one()._mapping) == plain
        assert plain == {"next": 42, "loud": "网格 GRID", "at": at, "twice": 82, "note": None, "sign": "100%"}
        # one statement; its seven runs all on its generic plan, none planned for its values
        assert _statements(conn)[name] == (7, 0)


def test_prepared_survives_a_rollback_and_is_made_again_on_a_new_connection(engine: sa.Engine) -> None:
    name = _prepared_form(SQL).name
    params = {"n": 1, "word": "a", "at": None, "note": "x"}
    with engine.connect() as conn:
        with conn.begin() as tx:
            assert prepared(conn, SQL, params).one().next == 2
            tx.rollback()  # a prepared statement is the session's, not the transaction's
        assert name in _statements(conn) and prepared(conn, SQL, params).one().next == 2
        conn.invalidate()  # the connection is replaced: its prepared statements went with it
        conn.rollback()
        assert name not in _statements(conn)
        assert prepared(conn, SQL, {**params, "n": 5}).one().next == 6
        assert name in _statements(conn)


def test_a_statement_without_parameters_and_a_cast_are_left_as_they_are() -> None:
    form = _prepared_form("SELECT now()::date, x FROM t WHERE a = :a AND b = :b AND c = :a")
    assert form.prepare.endswith("AS SELECT now()::date, x FROM t WHERE a = $1 AND b = $2 AND c = $1")
    assert form.execute == f"EXECUTE {form.name}(%(a)s, %(b)s)"
    assert _prepared_form("SELECT 1").execute == f"EXECUTE {_prepared_form('SELECT 1').name}"
    # what text() does not bind is not numbered: a name glued to a cast, an escaped colon
    odd = _prepared_form("SELECT :abc::int, x\\:y, :b")
    assert odd.prepare.endswith("AS SELECT :abc::int, x:y, $1") and odd.execute.endswith("(%(b)s)")


def test_off_or_on_an_engine_not_made_by_gridmap_the_statement_runs_as_it_is(database_url: str) -> None:
    """``GRIDMAP_PREPARED_STATEMENTS=false`` (a transaction-pooling PgBouncer hands the next
    transaction to a server connection that never saw the PREPARE) and engines made elsewhere:
    the same answers, nothing prepared."""
    from gridmap.settings import Settings

    assert Settings.from_env({"GRIDMAP_PREPARED_STATEMENTS": "false"}).prepared_statements is False
    assert Settings.from_env({}).prepared_statements is True
    params = {"n": 2, "word": "b", "at": None, "note": None}
    other = sa.create_engine(database_url)
    try:
        with other.connect() as conn:
            assert prepared(conn, SQL, params).one().next == 3
            assert _prepared_form(SQL).name not in _statements(conn)
    finally:
        other.dispose()


def test_a_reports_category_is_read_alone_as_the_table_shows_it(engine: sa.Engine) -> None:
    """``category(code)`` (the one a report reads) is the row ``categories()`` lists; a retired or
    unknown code is None, as a report refuses it."""
    from gridmap.services.incidents import ensure_categories
    from gridmap.store import incidents

    ensure_categories(engine)
    with engine.connect() as conn, conn.begin() as transaction:
        listed = {c.code: c for c in incidents.categories(conn)}
        assert listed and all(incidents.category(conn, code) == c for code, c in listed.items())
        some = sorted(listed)[0]
        conn.execute(sa.text("UPDATE incident_categories SET active = false WHERE code = :c"), {"c": some})
        assert incidents.category(conn, some) is None and incidents.category(conn, "no such code") is None
        transaction.rollback()
