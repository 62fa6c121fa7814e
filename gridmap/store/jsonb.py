"""JSON text for the database's JSON columns: the one encoder every write goes through.

PostgreSQL refuses ``NaN`` and ``Infinity`` in JSON ("invalid input syntax for type json"), and the
values the writes carry often come out of data frames, where a missing value is ``NaN``, ``pd.NA``
or ``NaT`` and a number is a numpy scalar that :mod:`json` cannot encode. Under pandas 3 a missing
text in an object column became ``NaN`` and a micro-grid edit failed on it with that database
error. Here every missing value becomes JSON ``null`` and every numpy scalar its Python value,
whatever its depth; an infinite number is refused with the path to it (no JSON can hold it, and
``null`` would lose what it meant). Text stays UTF-8 (``ensure_ascii=False``); anything else JSON
has no type for (dates, decimals, paths) is written as its ``str``, as the audit log always did.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def plain(value: Any, path: str = "$") -> Any:
    """``value`` with missing values as None and numpy scalars and arrays as Python ones, through
    dicts, lists and tuples; raises ValueError naming ``path`` for an infinite number."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return [plain(v, f"{path}[{i}]") for i, v in enumerate(value.tolist())]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise ValueError(f"{path}: {value} cannot be stored as JSON / {path}：{value} 无法存为 JSON")
        return value
    if not isinstance(value, (int, bool)) and pd.api.types.is_scalar(value) and pd.isna(value):
        return None  # pd.NA, pd.NaT, np.datetime64('NaT')
    return value


def to_json(value: Any, *, sort_keys: bool = False) -> str:
    """The JSON text of ``value`` for a JSON column (see the module docstring)."""
    return json.dumps(plain(value), ensure_ascii=False, sort_keys=sort_keys, allow_nan=False, default=str)


__all__ = ["plain", "to_json"]
