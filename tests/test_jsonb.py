"""The one encoder of the JSON the store writes: missing values of data frames become null,
numpy scalars their values, infinities a clear refusal; and PostgreSQL takes what it makes."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from gridmap.store import audit
from gridmap.store.jsonb import plain, to_json

MISSING = [float("nan"), np.float64("nan"), np.float32("nan"), pd.NA, pd.NaT, np.datetime64("NaT"), None]


def test_missing_values_of_any_kind_and_depth_become_null() -> None:
    for missing in MISSING:
        assert json.loads(to_json({"a": missing, "b": [1, missing], "c": {"d": (missing,)}})) == \
            {"a": None, "b": [1, None], "c": {"d": [None]}}, repr(missing)


def test_numpy_values_become_their_python_values_and_text_stays_chinese() -> None:
    value = {"n": np.int64(7), "x": np.float32(0.5), "ok": np.bool_(True), "a": np.array([1, 2]), "名": "雨城区",
             "when": date(2026, 12, 6)}
    text = to_json(value)
    assert "雨城区" in text  # UTF-8, not \\u escapes
    assert json.loads(text) == {"n": 7, "x": 0.5, "ok": True, "a": [1, 2], "名": "雨城区", "when": "2026-12-06"}
    assert type(plain(np.int64(7))) is int and type(plain(np.bool_(False))) is bool


def test_infinity_and_types_json_has_not_are_refused_with_where_they_are() -> None:
    with pytest.raises(ValueError, match=r"\$\.band\[1\]: inf"):
        to_json({"band": [0.0, float("inf")]})
    with pytest.raises(TypeError, match=r"\$\.grids\[0\]: a set cannot"):
        to_json({"grids": [{"a"}]})
    assert json.loads(to_json({"grids": [{"a"}]}, lenient=True)) == {"grids": ["{'a'}"]}  # the audit log's way
    assert json.loads(to_json({np.int64(3): Decimal("1.5"), None: Path("/tmp/x")})) == {"3": 1.5, "null": "/tmp/x"}


def test_a_frame_row_from_pandas_3_goes_into_the_database(engine: sa.Engine) -> None:
    """The row the micro-grid edit failed on: an object column whose missing text pandas gives as NaN."""
    frame = pd.DataFrame({"reason": ["低于下限", None], "households": [40, 65]}, dtype=object)
    frame.loc[1, "reason"] = np.nan
    rows = frame.to_dict(orient="records")
    assert json.dumps(rows[1], allow_nan=True).count("NaN") == 1  # what json.dumps would have sent
    with engine.begin() as conn:
        audit.record(conn, actor="test", action="check", table="microgrids", before=rows[0], after=rows[1])
    with engine.connect() as conn:
        before, after = conn.execute(sa.text("SELECT before, after FROM audit_log WHERE action = 'check'")).one()
    assert before == {"reason": "低于下限", "households": 40} and after == {"reason": None, "households": 65}


@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2**53, 2**53), st.text(),
                              st.floats(allow_infinity=False)),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                    max_leaves=20))
def test_any_finite_value_is_strict_json_and_round_trips_but_for_nan(value) -> None:
    text = to_json(value)
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard constant {c}"))

    def without_nan(v):
        if isinstance(v, float) and v != v:
            return None
        if isinstance(v, list):
            return [without_nan(x) for x in v]
        if isinstance(v, dict):
            return {k: without_nan(x) for k, x in v.items()}
        return v

    assert json.loads(text) == without_nan(value)
