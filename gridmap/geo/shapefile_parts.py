"""Whether a shapefile's parts are whole and belong together: what GDAL does not say.

GDAL (through pyogrio) reads a damaged shapefile without complaint or with a misleading error: a
.shp cut off halfway gives its missing shapes as empty geometries, a .dbf cut off halfway fails
on ``fread`` (which looked like a text-encoding problem), random bytes in place of the .dbf read
as a table without fields. :func:`shapefile_problem` reads the headers and sizes of the three
parts and says the first thing wrong, in English and Chinese, naming the file:

1. each part is what it claims to be: a .shp and a .shx start with file code 9994 and version
   1000; a .dbf starts with a dBASE version byte, its field descriptions end (0x0D) within its
   header, and their lengths plus the deletion flag make its record length;
2. each part is whole: the .shp and the .shx are as long as their headers say, and the .dbf holds
   the records its header counts (header length + records × record length);
3. the parts agree: the .shx indexes as many shapes as the .dbf has records, and every shape it
   indexes lies within the .shp.

Only headers are read (and the .shx, 8 bytes a shape), never the shapes or the records. Extra
bytes at the end of a part (an end-of-file byte, padding) are no problem.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHAPE_FILE_CODE = 9994
SHAPE_VERSION = 1000
SHAPE_HEADER = 100  # bytes, the same in a .shp and a .shx
DBF_HEADER = 32  # the fixed part, before the field descriptions
DBF_VERSIONS = frozenset({0x02, 0x03, 0x04, 0x05, 0x30, 0x31, 0x32, 0x43, 0x63, 0x83, 0x8B, 0x8E, 0xCB, 0xF5,
                          0xFB})  # dBASE II-IV, FoxPro/Visual FoxPro, with or without memo
FIX_EN = "copy the shapefile again, all its parts (.shp, .shx, .dbf), from where it came from"
FIX_ZH = "请从原处重新复制该 Shapefile 的全部文件（.shp、.shx、.dbf）"


@dataclass(frozen=True)
class PartProblem:
    """What is wrong with a shapefile's parts, in English (``en``) and Chinese (``zh``), each
    starting with the file's name."""

    en: str
    zh: str


@dataclass(frozen=True)
class _ShapeHeader:
    """The header of a .shp or .shx: the file's length as it says (bytes) and as it is."""

    declared: int
    actual: int


@dataclass(frozen=True)
class _DbfHeader:
    """The header of a .dbf: records, header and record lengths as it says, and the file's size."""

    records: int
    header_length: int
    record_length: int
    actual: int

    @property
    def held(self) -> int:
        """Whole records the file holds."""
        return max(0, self.actual - self.header_length) // self.record_length


def _n(value: int) -> str:
    return f"{value:,}"


def _not_shape_file(path: Path, why_en: str, why_zh: str) -> PartProblem:
    kind = path.suffix.lower()
    return PartProblem(f"{path.name} is not a shapefile {kind} file: {why_en}; {FIX_EN}",
                       f"{path.name} 不是 Shapefile 的 {kind} 文件：{why_zh}；{FIX_ZH}")


def _shape_header(path: Path) -> _ShapeHeader | PartProblem:
    """The header of a .shp or .shx, or what is wrong with it."""
    actual = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(SHAPE_HEADER)
    if actual == 0:
        return PartProblem(f"{path.name} is empty (0 bytes); {FIX_EN}", f"{path.name} 是空文件（0 字节）；{FIX_ZH}")
    if len(head) < SHAPE_HEADER:
        return PartProblem(f"{path.name} is truncated: {_n(actual)} bytes, shorter than a shapefile header "
                           f"({SHAPE_HEADER} bytes); {FIX_EN}",
                           f"{path.name} 不完整：只有 {_n(actual)} 字节，不足 Shapefile 文件头的 {SHAPE_HEADER} 字节；{FIX_ZH}")
    code, words = struct.unpack(">i", head[:4])[0], struct.unpack(">i", head[24:28])[0]
    version = struct.unpack("<i", head[28:32])[0]
    if code != SHAPE_FILE_CODE or version != SHAPE_VERSION:
        return _not_shape_file(path, f"it does not start with the shapefile file code {SHAPE_FILE_CODE} and "
                                     f"version {SHAPE_VERSION}",
                               f"文件开头没有 Shapefile 的文件代码 {SHAPE_FILE_CODE} 和版本号 {SHAPE_VERSION}")
    if words * 2 < SHAPE_HEADER:
        return _not_shape_file(path, f"its header gives a length of {_n(words * 2)} bytes",
                               f"其文件头记载的长度为 {_n(words * 2)} 字节")
    return _ShapeHeader(declared=words * 2, actual=actual)


def _dbf_header(path: Path) -> _DbfHeader | PartProblem:
    """The header of a .dbf, or what is wrong with it (not a dBASE table, or cut off in its header)."""
    actual = path.stat().st_size
    if actual == 0:
        return PartProblem(f"{path.name} is empty (0 bytes); {FIX_EN}", f"{path.name} 是空文件（0 字节）；{FIX_ZH}")
    with open(path, "rb") as fh:
        head = fh.read(DBF_HEADER)
        if head[0] not in DBF_VERSIONS:
            return PartProblem(f"{path.name} is not a dBASE table (a shapefile's attributes): its first byte, "
                               f"0x{head[0]:02X}, is no dBASE version; {FIX_EN}",
                               f"{path.name} 不是 dBASE 表（Shapefile 的属性表）：首字节 0x{head[0]:02X} 不是 dBASE "
                               f"版本号；{FIX_ZH}")
        if len(head) < DBF_HEADER:
            return PartProblem(f"{path.name} is truncated: {_n(actual)} bytes, shorter than a dBASE header; {FIX_EN}",
                               f"{path.name} 不完整：只有 {_n(actual)} 字节，不足 dBASE 文件头；{FIX_ZH}")
        records, header_length, record_length = struct.unpack("<IHH", head[4:12])
        descriptions = fh.read(max(0, header_length - DBF_HEADER))
    if header_length > actual:
        return PartProblem(f"{path.name} is truncated: its header says it is {_n(header_length)} bytes long before "
                           f"the first record, the file holds {_n(actual)}; {FIX_EN}",
                           f"{path.name} 不完整：文件头记载其头部长 {_n(header_length)} 字节，文件只有 {_n(actual)} "
                           f"字节；{FIX_ZH}")
    lengths, wide, pos = 0, 0, 0  # field lengths: as dBASE says, and with character fields' high byte
    while pos < len(descriptions) and descriptions[pos] != 0x0D:
        if pos + 32 > len(descriptions):
            pos = len(descriptions)
            break
        desc = descriptions[pos:pos + 32]
        lengths += desc[16]
        wide += desc[16] + (desc[17] << 8 if desc[11:12] == b"C" else 0)
        pos += 32
    if pos >= len(descriptions):
        return PartProblem(f"{path.name} is not a dBASE table (a shapefile's attributes): its field descriptions "
                           f"do not end within its header; {FIX_EN}",
                           f"{path.name} 不是 dBASE 表（Shapefile 的属性表）：字段描述未在文件头内结束；{FIX_ZH}")
    if record_length - 1 not in (lengths, wide):
        return PartProblem(f"{path.name} is not a dBASE table (a shapefile's attributes): its fields add up to "
                           f"{_n(lengths + 1)} bytes a record, its header says {_n(record_length)}; {FIX_EN}",
                           f"{path.name} 不是 dBASE 表（Shapefile 的属性表）：字段长度之和为每条记录 {_n(lengths + 1)} "
                           f"字节，文件头却记载 {_n(record_length)} 字节；{FIX_ZH}")
    return _DbfHeader(records=records, header_length=header_length, record_length=record_length, actual=actual)


def _shx_index(shx: Path, header: _ShapeHeader) -> np.ndarray:
    """The .shx's entries, (offset, content length) in bytes, one row a shape."""
    count = (header.declared - SHAPE_HEADER) // 8
    with open(shx, "rb") as fh:
        fh.seek(SHAPE_HEADER)
        raw = fh.read(count * 8)
    return np.frombuffer(raw, dtype=">i4").reshape(-1, 2).astype(np.int64) * 2


def shapefile_problem(shp: Path, shx: Path, dbf: Path) -> PartProblem | None:
    """The first thing wrong with a shapefile's three parts, or None when they are whole and agree.

    Checks, in this order: each part is what it claims to be (file codes, dBASE version and field
    descriptions), each is as long as its header says, the .shx indexes as many shapes as the
    .dbf has records and none beyond the end of the .shp.

    Example
    -------
    >>> problem = shapefile_problem(Path("楼栋.shp"), Path("楼栋.shx"), Path("楼栋.dbf"))  # doctest: +SKIP
    >>> problem.en  # doctest: +SKIP
    "楼栋.dbf is truncated: its header says 7,924 records, the file holds 3,962; copy the shapefile again ..."
    """
    shp_header, shx_header, dbf_header = _shape_header(shp), _shape_header(shx), _dbf_header(dbf)
    for header in (shp_header, shx_header, dbf_header):
        if isinstance(header, PartProblem):
            return header
    assert isinstance(shp_header, _ShapeHeader) and isinstance(shx_header, _ShapeHeader)
    assert isinstance(dbf_header, _DbfHeader)
    shapes = (shx_header.declared - SHAPE_HEADER) // 8
    if shx_header.actual < shx_header.declared:
        held = max(0, shx_header.actual - SHAPE_HEADER) // 8
        return PartProblem(f"{shx.name} is truncated: its header says {_n(shapes)} shapes, the file holds "
                           f"{_n(held)}; {FIX_EN}",
                           f"{shx.name} 不完整：文件头记载 {_n(shapes)} 个图形，文件中只有 {_n(held)} 个；{FIX_ZH}")
    index = _shx_index(shx, shx_header)
    if shp_header.actual < shp_header.declared:
        whole = int(np.count_nonzero(index.sum(axis=1) + 8 <= shp_header.actual))
        return PartProblem(f"{shp.name} is truncated: its header says {_n(shp_header.declared)} bytes, the file holds "
                           f"{_n(shp_header.actual)} (the first {_n(whole)} of its {_n(shapes)} shapes); {FIX_EN}",
                           f"{shp.name} 不完整：文件头记载 {_n(shp_header.declared)} 字节，文件只有 "
                           f"{_n(shp_header.actual)} 字节（{_n(shapes)} 个图形中只有前 {_n(whole)} 个）；{FIX_ZH}")
    needed = dbf_header.header_length + dbf_header.records * dbf_header.record_length
    if dbf_header.actual < needed:
        return PartProblem(f"{dbf.name} is truncated: its header says {_n(dbf_header.records)} records, the file "
                           f"holds {_n(dbf_header.held)}; {FIX_EN}",
                           f"{dbf.name} 不完整：文件头记载 {_n(dbf_header.records)} 条记录，文件中只有 "
                           f"{_n(dbf_header.held)} 条；{FIX_ZH}")
    if dbf_header.records != shapes:
        return PartProblem(f"{dbf.name} does not match {shp.name}: the .dbf has {_n(dbf_header.records)} records, the "
                           f".shp {_n(shapes)} shapes (as its .shx says); are they parts of the same shapefile? "
                           f"{FIX_EN[0].upper()}{FIX_EN[1:]}",
                           f"{dbf.name} 与 {shp.name} 不匹配：.dbf 有 {_n(dbf_header.records)} 条记录，.shp 有 "
                           f"{_n(shapes)} 个图形（据其 .shx）；它们是否属于同一个 Shapefile？{FIX_ZH}")
    beyond = np.flatnonzero(index.sum(axis=1) + 8 > shp_header.actual)
    if len(beyond) or (len(index) and int(index[:, 0].min()) < SHAPE_HEADER):
        first = int(beyond[0]) + 1 if len(beyond) else int(np.argmin(index[:, 0])) + 1
        return PartProblem(f"{shx.name} does not match {shp.name}: it places shape #{first} outside the .shp "
                           f"({_n(shp_header.actual)} bytes); {FIX_EN}",
                           f"{shx.name} 与 {shp.name} 不匹配：其中第 {first} 个图形的位置在 .shp（{_n(shp_header.actual)} "
                           f"字节）之外；{FIX_ZH}")
    return None
