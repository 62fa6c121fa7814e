"""An office's sheet uploaded for an import (staff-side lists, the households register, 双报到):
kept in a private temporary folder only while the import reads it, whatever happens."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import UploadFile
from starlette.concurrency import run_in_threadpool

from gridmap.errors import Invalid

SHEET_SUFFIXES = (".csv", ".xlsx")


@asynccontextmanager
async def received_sheet(file: UploadFile) -> AsyncIterator[tuple[Path, str]]:
    """The upload saved as ``sheet.csv`` or ``sheet.xlsx`` in a folder of its own (mode 0700, as
    ``mkdtemp`` makes it), and the name it was sent with; the folder is removed afterwards (a
    register holds personal data: nothing of it stays on disk)."""
    original = Path(file.filename or "sheet").name[:200]
    suffix = Path(original).suffix.lower()
    if suffix not in SHEET_SUFFIXES:
        raise Invalid(f"{original}: a sheet must be .csv or .xlsx", f"{original}：表格须为 .csv 或 .xlsx 文件")
    folder = Path(tempfile.mkdtemp(prefix="gridmap-sheet-"))
    try:
        target = folder / f"sheet{suffix}"
        with open(target, "wb") as out:
            await run_in_threadpool(shutil.copyfileobj, file.file, out, 1 << 20)
        yield target, original
    finally:
        shutil.rmtree(folder, ignore_errors=True)


__all__ = ["received_sheet", "SHEET_SUFFIXES"]
