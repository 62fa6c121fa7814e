"""The checks ``gridmap`` makes before anything is written, shared by the command modules.

Every command checks what it can (files, folders, numbers, territories, formats) first, so a
mistake in the arguments never leaves a half-done job (a stored plan without its report ...).
The checks raise :class:`UserError` (one line, exit status 1); the ``argparse`` types
(:func:`positive_int`, :func:`positive_float`, :func:`port`) raise ``ArgumentTypeError`` (a usage
error, exit status 2). Also here: :func:`engine` and :func:`database_url`, the database the
commands work on.
"""

from __future__ import annotations

import argparse
from datetime import date
import math
import os
from pathlib import Path


class UserError(Exception):
    """An error to show as one line without a traceback (exit status 1): what went wrong and,
    where it is not obvious, what to do."""


def engine():
    from gridmap.store.db import get_engine

    return get_engine()


def database_url() -> str:
    from gridmap.store.db import resolve_url

    return resolve_url()


def input_file(path: str, what: str = "input file") -> Path:
    """``path`` is an existing, readable file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{what} {path}: no such file; check the path")
    if p.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file")
    if not os.access(p, os.R_OK):
        raise UserError(f"{what} {path} is not readable; check its permissions")
    return p


def writable_folder(folder: Path, shown: str, what: str) -> None:
    if not folder.exists():
        raise UserError(f"{what} {shown}: the folder {folder} does not exist; create it first "
                        f"(mkdir -p {folder}) or choose another path")
    if not folder.is_dir():
        raise UserError(f"{what} {shown}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{what} {shown}: the folder {folder} is not writable; choose another path")


def output_file(path: str, what: str = "output file") -> Path:
    """``path`` can be written: its folder exists and is writable, and it is not a folder itself."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name (e.g. {p / 'out'}...)")
    writable_folder(p.parent, path, what)
    if p.exists() and not os.access(p, os.W_OK):
        raise UserError(f"{what} {path} exists and is not writable; choose another path")
    return p


def output_folder(path: str, what: str = "output folder") -> Path:
    """``path`` is a writable folder, or can be made in a writable folder that exists."""
    p = Path(path).expanduser()
    if p.exists():
        if not p.is_dir():
            raise UserError(f"{what} {path} is a file, not a folder; choose a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise UserError(f"{what} {path} is not writable; choose another folder")
    else:
        writable_folder(p.parent, path, what)
    return p


NO_TERRITORY_HOW = ("`gridmap territories` lists them; create one from your boundary files with "
                    "`gridmap territory import COMMUNITIES` (`gridmap demo` and `gridmap db restore` load more)",
                    "`gridmap territories` 列出已有辖区；用 `gridmap territory import 社区文件` 从边界文件创建"
                    "（`gridmap demo`、`gridmap db restore` 也可载入）")


def territory(engine, code: str) -> None:
    """The territory exists (else: how to list territories, and how to create one: from the
    district's boundary files), in English and Chinese."""
    from gridmap.store import territories

    with engine.connect() as conn:
        try:
            territories.get(conn, code)
        except territories.TerritoryNotFound:
            raise UserError(f"no territory with code {code!r}: {NO_TERRITORY_HOW[0]} / "
                            f"没有编码为 {code} 的辖区：{NO_TERRITORY_HOW[1]}") from None


def household_band(low: int | None, high: int | None) -> None:
    if low is not None and high is not None and high < low:
        raise UserError(f"--min {low} is above --max {high}: the minimum households per grid must not exceed "
                        "the maximum")


def crs(value: str | None) -> None:
    """An input CRS that gridmap understands (EPSG code, WKT, gcj02)."""
    if value is None:
        return
    from gridmap.geo.crs import CRSError, parse_crs

    try:
        parse_crs(value)
    except CRSError:
        raise UserError(f"unknown coordinate system --crs {value!r}: give an EPSG code such as 4490 or 4326, "
                        "WKT, or gcj02") from None


def text_encoding(value: str | None) -> None:
    if value is None:
        return
    import codecs

    try:
        codecs.lookup(value)
    except LookupError:
        raise UserError(f"unknown text encoding --encoding {value!r}; e.g. utf-8 or gbk") from None


def plan_id(text: str) -> int:
    if not text.isdigit():
        raise UserError(f"a plan ID is a number, not {text!r}; `gridmap plan history CODE` lists a territory's plans")
    return int(text)


def _whole_number(text: str, minimum: int, below: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number / {text!r} 不是整数") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{value} is {below} ({minimum} or more) / {value} 须不小于 {minimum}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1, "not positive")


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0, "negative")


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-01-31 / 不是 2024-01-31 这样的日期") from None


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (1-65535)")
    return value


def can_listen(host: str, port: int) -> None:
    """Nothing else listens on host:port (checked before `up` does its work, and before serving)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        raise UserError(f"cannot serve on {host}:{port} ({exc.strerror or exc}); choose another --port or "
                        "--host, or stop what runs there") from None


def write_problems(report: Path, problems: list[dict]) -> None:
    """Every problem of a refused sheet as CSV (row, 问题, problem), UTF-8 with a BOM for Excel,
    readable by its owner only (a row may name a place where someone lives)."""
    import csv

    with open(os.open(report, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["行 row", "问题", "problem"])
        writer.writerows((p["row"], p["zh"], p["en"]) for p in problems)
