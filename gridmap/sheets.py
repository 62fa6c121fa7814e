"""The tables community offices keep, read as text: CSV (UTF-8 or GBK, whichever it is; a
declared encoding is checked) and Excel workbooks (.xlsx, the first sheet). Every cell comes back
as a string (codes keep their leading zeros), empty cells as missing. A file that cannot be read
is refused with what it looks like, in both languages."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from gridmap.errors import Invalid
from gridmap.geo.io import sniff_encoding

MAX_ROWS = 200_000


class SheetReadError(Invalid):
    """A table that cannot be read."""


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


__all__ = ["SheetReadError", "read_sheet", "MAX_ROWS"]
