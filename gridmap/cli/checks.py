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
    where it is not obvious, what to do, in English and Chinese: ``"English / 中文"``
    (tests/test_cli_messages.py refuses a message without Chinese)."""


def said(exc: BaseException, zh: str = "操作未完成，原因见前面的英文说明") -> str:
    """An error's text in both languages, ``"English / 中文"``: a refusal's own two texts (and a
    text that has Chinese already), else the English and ``zh`` (errors from below the services
    carry no translation: ``zh`` says what it means where it is caught)."""
    from gridmap.errors import Refusal

    if isinstance(exc, Refusal):
        return exc.en if exc.zh == exc.en else f"{exc.en} / {exc.zh}"
    text = str(exc) or type(exc).__name__
    if bilingual(text):
        return text
    return f"{text} / {zh}"


def table(headers: list[str], rows: list[list[object]]) -> list[str]:
    """Lines of a plain-text table, columns padded to their widest cell as a terminal shows it
    (a Chinese character takes two columns: 楼栋 lines up with "roads"), the last column unpadded."""
    import unicodedata

    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(width(row[i]) for row in cells) for i in range(len(headers))]
    return ["  ".join(cell + " " * (widths[i] - width(cell)) if i < len(row) - 1 else cell
                      for i, cell in enumerate(row)).rstrip() for row in cells]


def halves(text: str) -> tuple[str, str] | None:
    """"English / 中文" as its two halves, split where :func:`bilingual` finds the Chinese begins
    (the first " / " with Chinese after it); None for a text in one language."""
    before, slash, after = text.partition(" / ")
    while slash:
        if any("\u4e00" <= ch <= "\u9fff" for ch in after):
            return before, after
        more, slash, after = after.partition(" / ")
        before = f"{before} / {more}"
    return None


def bilingual(text: str) -> bool:
    """Whether ``text`` is already "English / 中文": Chinese after a " / ". Chinese alone says
    nothing (a file called 城管网格.shp in an English message)."""
    return halves(text) is not None


# how a few words the checks take are said in Chinese (``what``: the file or option checked)
WHAT_ZH = {"input file": "输入文件", "output file": "输出文件", "output folder": "输出文件夹",
           "edits file": "编辑文件", "dump": "备份文件", "households register": "住户登记表",
           "export file": "导出文件", "problem report": "问题报告", "registrations sheet": "报到表",
           "staff sheet": "网格员表", "track": "轨迹文件", "departmental file": "部门图层文件",
           "needs sheet": "需求清单", "resources sheet": "资源清单", "communities file": "社区边界文件"}


def _what_zh(what: str) -> str:
    return what if what.startswith("-") else WHAT_ZH.get(what, what)


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
        raise UserError(f"{what} {path}: no such file; check the path / {_what_zh(what)} {path} 不存在，请检查路径")
    if p.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file / {_what_zh(what)} {path} 是文件夹，请给出文件")
    if not os.access(p, os.R_OK):
        raise UserError(f"{what} {path} is not readable; check its permissions / "
                        f"{_what_zh(what)} {path} 无法读取，请检查文件权限")
    return p


def writable_folder(folder: Path, shown: str, what: str) -> None:
    if not folder.exists():
        raise UserError(f"{what} {shown}: the folder {folder} does not exist; create it first "
                        f"(mkdir -p {folder}) or choose another path / {_what_zh(what)} {shown}：文件夹 {folder} "
                        f"不存在，请先创建（mkdir -p {folder}）或换一个路径")
    if not folder.is_dir():
        raise UserError(f"{what} {shown}: {folder} is not a folder / {_what_zh(what)} {shown}：{folder} 不是文件夹")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{what} {shown}: the folder {folder} is not writable; choose another path / "
                        f"{_what_zh(what)} {shown}：文件夹 {folder} 不可写入，请换一个路径")


def output_file(path: str, what: str = "output file") -> Path:
    """``path`` can be written: its folder exists and is writable, and it is not a folder itself."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name (e.g. {p / 'out'}...) / "
                        f"{_what_zh(what)} {path} 是文件夹，请给出文件名（如 {p / 'out'}...）")
    writable_folder(p.parent, path, what)
    if p.exists() and not os.access(p, os.W_OK):
        raise UserError(f"{what} {path} exists and is not writable; choose another path / "
                        f"{_what_zh(what)} {path} 已存在且不可写入，请换一个路径")
    return p


def output_folder(path: str, what: str = "output folder") -> Path:
    """``path`` is a writable folder, or can be made in a writable folder that exists."""
    p = Path(path).expanduser()
    if p.exists():
        if not p.is_dir():
            raise UserError(f"{what} {path} is a file, not a folder; choose a folder / "
                            f"{_what_zh(what)} {path} 是文件而不是文件夹，请给出文件夹")
        if not os.access(p, os.W_OK | os.X_OK):
            raise UserError(f"{what} {path} is not writable; choose another folder / "
                            f"{_what_zh(what)} {path} 不可写入，请换一个文件夹")
    else:
        writable_folder(p.parent, path, what)
    return p


NO_TERRITORY_HOW = ("`gridmap territories` lists them; create one from your boundary files with "
                    "`gridmap territory import COMMUNITIES` (`gridmap demo` and `gridmap db restore` load more)",
                    "`gridmap territories` 列出已有辖区；用 `gridmap territory import 社区文件` 从边界文件创建"
                    "（`gridmap demo`、`gridmap db restore` 也可载入）")


def territory(engine, code: str):
    """The territory, which must exist (else: how to list territories, and how to create one: from
    the district's boundary files, in English and Chinese)."""
    from gridmap.store import territories

    with engine.connect() as conn:
        try:
            return territories.get(conn, code)
        except territories.TerritoryNotFound:
            raise UserError(f"no territory with code {code!r}: {NO_TERRITORY_HOW[0]} / "
                            f"没有编码为 {code} 的辖区：{NO_TERRITORY_HOW[1]}") from None


def household_band(low: int | None, high: int | None) -> None:
    if low is not None and high is not None and high < low:
        raise UserError(f"--min {low} is above --max {high}: the minimum households per grid must not exceed "
                        f"the maximum / --min {low} 大于 --max {high}：每个网格的最少户数不能超过最多户数")


def crs(value: str | None) -> None:
    """An input CRS that gridmap understands (EPSG code, WKT, gcj02)."""
    if value is None:
        return
    from gridmap.geo.crs import CRSError, parse_crs

    try:
        parse_crs(value)
    except CRSError:
        raise UserError(f"unknown coordinate system --crs {value!r}: give an EPSG code such as 4490 or 4326, "
                        f"WKT, or gcj02 / 无法识别的坐标系 --crs {value}：请给出 EPSG 代码（如 4490、4326）、"
                        "WKT 或 gcj02") from None


def text_encoding(value: str | None) -> None:
    if value is None:
        return
    import codecs

    try:
        codecs.lookup(value)
    except LookupError:
        raise UserError(f"unknown text encoding --encoding {value!r}; e.g. utf-8 or gbk / "
                        f"无法识别的文字编码 --encoding {value}，应为 utf-8、gbk 等") from None


def plan_id(text: str) -> int:
    if not text.isdigit():
        raise UserError(f"a plan ID is a number, not {text!r}; `gridmap plan history CODE` lists a territory's plans "
                        f"/ 方案编号应为数字，而不是 {text}；`gridmap plan history 辖区代码` 列出辖区的各版方案")
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
        raise argparse.ArgumentTypeError(f"{text!r} is not a number / {text!r} 不是数字") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number / {text} 不是正数")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number / {text!r} 不是端口号") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (1-65535) / {value} 不是有效端口号（1-65535）")
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
                        f"--host, or stop what runs there / 无法在 {host}:{port} 上提供服务：请换一个 --port 或 "
                        "--host，或先停止占用该端口的程序") from None


def write_problems(report: Path, problems: list[dict]) -> None:
    """Every problem of a refused sheet as CSV (row, 问题, problem), UTF-8 with a BOM for Excel,
    readable by its owner only (a row may name a place where someone lives)."""
    import csv

    with open(os.open(report, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["行 row", "问题", "problem"])
        writer.writerows((p["row"], p["zh"], p["en"]) for p in problems)
