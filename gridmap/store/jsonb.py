"""JSON text for the database's JSON columns: the one encoder every write goes through.

PostgreSQL refuses ``NaN`` and ``Infinity`` in JSON ("invalid input syntax for type json"), and the
values the writes carry often come out of data frames, where a missing value is ``NaN``, ``pd.NA``
or ``NaT`` and a number is a numpy scalar that :mod:`json` cannot encode. Under pandas 3 a missing
text in an object column became ``NaN`` and a micro-grid edit failed on it with that database
error. Here every missing value becomes JSON ``null`` and every numpy scalar its Python value,
whatever its depth; an infinite number is refused with the path to it (no JSON can hold it, and
``null`` would lose what it meant). Text stays UTF-8 (``ensure_ascii=False``); dates and times
are written in ISO 8601, decimals as numbers, paths and UUIDs as text. Anything else JSON has no
type for is refused with its path, except where the caller asks for ``lenient`` (the audit log
and plan reports, which record whatever they are given as its ``str``, as they always did).

The properties of imported features (``layer_features``) are written by pandas' own encoder in
:mod:`gridmap.store.layers` (whole frames at once): there a missing value becomes null too.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any
from uuid import UUID

import numpy as np
import pandas as pd


def plain(value: Any, path: str = "$", *, lenient: bool = False) -> Any:
    """``value`` with missing values as None and numpy scalars and arrays as Python ones, through
    dicts, lists and tuples; raises ValueError naming ``path`` for an infinite number and
    TypeError for a value JSON has no type for (unless ``lenient``: its ``str``)."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, Mapping):
        return {_key(k): plain(v, f"{path}.{k}", lenient=lenient) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{path}[{i}]", lenient=lenient) for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return [plain(v, f"{path}[{i}]", lenient=lenient) for i, v in enumerate(value.tolist())]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise ValueError(f"{path}: {value} cannot be stored as JSON / {path}：{value} 无法存为 JSON")
        return value
    if isinstance(value, int):
        return value
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None  # pd.NA, pd.NaT, np.datetime64('NaT')
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return plain(float(value), path)
    if isinstance(value, (PurePath, UUID)) or lenient:
        return str(value)
    raise TypeError(f"{path}: a {type(value).__name__} cannot be stored as JSON / "
                    f"{path}：{type(value).__name__} 类型无法存为 JSON")


def _key(key: Any) -> Any:
    """A mapping's key as json takes it (text, a number, a truth value or None): numpy's as Python's."""
    return key.item() if isinstance(key, np.generic) else key


def to_json(value: Any, *, sort_keys: bool = False, lenient: bool = False) -> str:
    """The JSON text of ``value`` for a JSON column (see the module docstring)."""
    return json.dumps(plain(value, lenient=lenient), ensure_ascii=False, sort_keys=sort_keys, allow_nan=False)


__all__ = ["plain", "to_json"]
