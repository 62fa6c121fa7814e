"""A file uploaded for an import (an office's sheet: the lists, the households register, 双报到; a
patrol's track): kept in a private temporary folder only while the import reads it, whatever
happens."""

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


def received_sheet(file: UploadFile):
    """:func:`received_upload` for a sheet (.csv or .xlsx)."""
    return received_upload(file, SHEET_SUFFIXES, ("表格", "a sheet"))


@asynccontextmanager
async def received_upload(file: UploadFile, suffixes: tuple[str, ...],
                          what: tuple[str, str]) -> AsyncIterator[tuple[Path, str]]:
    """The upload saved as ``upload<suffix>`` in a folder of its own (mode 0700, as ``mkdtemp``
    makes it), and the name it was sent with; the folder is removed afterwards (a register or a
    track is personal data: nothing of it stays on disk). ``what`` names the file for a refusal."""
    original = Path(file.filename or "upload").name[:200]
    suffix = Path(original).suffix.lower()
    if suffix not in suffixes:
        raise Invalid(f"{original}: {what[1]} must be {' or '.join(suffixes)}",
                      f"{original}：{what[0]}须为 {' 或 '.join(suffixes)} 文件")
    folder = Path(tempfile.mkdtemp(prefix="gridmap-sheet-"))
    try:
        target = folder / f"upload{suffix}"
        with open(target, "wb") as out:
            await run_in_threadpool(shutil.copyfileobj, file.file, out, 1 << 20)
        yield target, original
    finally:
        shutil.rmtree(folder, ignore_errors=True)


__all__ = ["received_sheet", "received_upload", "SHEET_SUFFIXES"]
