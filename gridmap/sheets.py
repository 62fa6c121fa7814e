"""The tables community offices keep, read as text: CSV (UTF-8 or GBK, whichever it is; a
declared encoding is checked) and Excel workbooks (.xlsx, the first sheet). Every cell comes back
as a string (codes keep their leading zeros), empty cells as missing. A file that cannot be read
is refused with what it looks like, in both languages."""

from __future__ import annotations

import io
import re
import unicodedata
from datetime import date
from pathlib import Path

import pandas as pd

from gridmap.errors import Invalid

MAX_ROWS = 200_000
DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]0{1,2}:00(?::00(?:\.0+)?)?)?$")  # an Excel date cell: midnight


class SheetReadError(Invalid):
    """A table that cannot be read."""


class SheetProblems(Invalid):
    """A sheet with rows that cannot be taken: every problem listed (``problems``: ``row, en,
    zh``), nothing stored."""

    def __init__(self, en: str, zh: str, problems: list[dict] | None = None):
        super().__init__(en, zh)
        self.problems = problems or []

    def details(self) -> dict:
        return {"problems": self.problems}

    @classmethod
    def of(cls, problems: list[dict], what: tuple[str, str]) -> "SheetProblems":
        """One error naming every bad row (the first 20 in its text, all in ``problems``);
        ``what`` names the sheet (Chinese, English)."""
        problems = sorted(problems, key=lambda p: p["row"])
        shown, more = problems[:20], max(len(problems) - 20, 0)
        return cls(f"{len(problems)} problem(s) in the {what[1]}, nothing was stored: "
                   + "; ".join(f"row {p['row']}: {p['en']}" for p in shown) + (f"; and {more} more" if more else ""),
                   f"{what[0]}有 {len(problems)} 处问题，未存储任何内容：" + "；".join(f"第 {p['row']} 行：{p['zh']}" for p in shown)
                   + (f"；另有 {more} 处" if more else ""), problems)


def header_key(columns: dict[str, tuple[str, ...]], header: object) -> str | None:
    """The key whose names include ``header`` (case and spaces ignored), or None."""
    text = re.sub(r"\s+", "", str(header)).lower()
    return next((key for key, names in columns.items() if text in (n.lower() for n in names)), None)


def sheet_records(frame: pd.DataFrame, columns: dict[str, tuple[str, ...]], what: tuple[str, str],
                  required: tuple[str, ...] = (), *, normalise: bool = True) -> list[tuple[int, dict]]:
    """The non-empty rows of a sheet as (the sheet's row number, header = 1; a dict of every key of
    ``columns``: the cell's text, trimmed and (``normalise``) NFKC-normalised: full-width digits
    and letters as half-width; or None). Refused at once: two
    columns of one meaning, or no column for a ``required`` key (``what``: the sheet's name,
    Chinese and English, for the message). Other columns are ignored."""
    found = {c: header_key(columns, c) for c in frame.columns}
    seen: dict[str, object] = {}
    for header, key in found.items():
        if key is not None and key in seen:
            raise Invalid(f"the {what[1]}'s columns {seen[key]!r} and {header!r} both read as {key}: keep one "
                          "(or rename the other)", f"{what[0]}的列 {seen[key]!r} 和 {header!r} 含义相同（{key}）：请保留一列或改名")
        if key is not None:
            seen[key] = header
    missing = [k for k in required if k not in seen]
    if missing:
        names = "、".join(columns[k][0] for k in missing)
        raise Invalid(f"the {what[1]} has no column for {', '.join(missing)} (e.g. {names}); its columns: "
                      f"{', '.join(map(str, frame.columns))}",
                      f"{what[0]}缺少列：{names}；现有列：{'、'.join(map(str, frame.columns))}")
    known = frame.rename(columns={c: k for c, k in found.items() if k})  # other columns keep their own names
    out = []
    for position, record in enumerate(known.to_dict("records")):
        cell = {k: (None if v is None or (isinstance(v, float) and pd.isna(v)) or not str(v).strip()
                    else (unicodedata.normalize("NFKC", str(v)) if normalise else str(v)).strip())
                for k, v in record.items() if k in columns}
        if any(cell.values()):  # an empty line keeps its number but is no row
            out.append((position + 2, {k: cell.get(k) for k in columns}))
    return out


def read_sheet(path: str | Path, *, encoding: str | None = None) -> pd.DataFrame:
    """The table in ``path`` (.csv, .txt or .xlsx) with text cells; see the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise SheetReadError(f"{path.name}: no such file", f"{path.name}：文件不存在")
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        try:
            frame = pd.read_excel(path, dtype=str, sheet_name=0, engine="openpyxl", keep_default_na=False,
                                  na_values=[""])
        except Exception as exc:  # a damaged or renamed file: say so, whatever openpyxl raised
            raise SheetReadError(f"{path.name}: not a readable Excel workbook ({type(exc).__name__}: {exc})",
                                 f"{path.name}：不是可读取的 Excel 工作簿（{type(exc).__name__}）") from None
    elif suffix in (".csv", ".txt"):
        data = path.read_bytes()
        from gridmap.geo.io import sniff_encoding  # here: the GIS reader is heavy to import

        found = sniff_encoding(data)
        if encoding is None:
            if found is None:
                raise SheetReadError(f"{path.name}: the text is neither UTF-8 nor GBK",
                                     f"{path.name}：文本既不是 UTF-8 也不是 GBK 编码")
            encoding = "utf-8" if found == "ascii" else found
        try:
            text = data.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)
        except (UnicodeDecodeError, LookupError):
            raise SheetReadError(f"{path.name}: the text is not {encoding} (it looks like {found or 'neither UTF-8 nor GBK'})",
                                 f"{path.name}：文本不是 {encoding} 编码（看起来是 {found or '未知编码'}）") from None
        try:
            # blank lines kept (as empty rows), so that row numbers stay the sheet's own
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""],
                                skip_blank_lines=False)
        except pd.errors.ParserError as exc:
            raise SheetReadError(f"{path.name}: not a readable CSV table ({exc})", f"{path.name}：不是可读取的 CSV 表格") from None
    else:
        raise SheetReadError(f"{path.name}: a sheet must be .csv or .xlsx", f"{path.name}：表格须为 .csv 或 .xlsx 文件")
    if len(frame) > MAX_ROWS:
        raise SheetReadError(f"{path.name}: {len(frame)} rows, more than {MAX_ROWS}", f"{path.name}：行数 {len(frame)} 超过上限 {MAX_ROWS}")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame



def parse_date(value: str | None) -> date | None:
    """A date cell: 2026-01-01, 2026/1/1, 2026.01.01, or an Excel date read as text (with its
    midnight time); ValueError for anything else."""
    if value is None:
        return None
    text = re.sub(r"^(\d{4})[./](\d{1,2})[./](\d{1,2})", r"\1-\2-\3", value.strip())
    found = DATE.match(text)
    if not found:
        raise ValueError(value)
    return date(*(int(g) for g in found.groups()))


__all__ = ["SheetReadError", "SheetProblems", "read_sheet", "header_key", "sheet_records", "parse_date", "MAX_ROWS"]
