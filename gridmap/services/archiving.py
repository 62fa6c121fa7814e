"""``gridmap incidents archive``: finished incidents of old months leave the database for a file.

A province's incident table grows by tens of millions of rows a year; what is finished and old is
kept where it is cheap. The incidents of a territory reported before a date that are finished
(closed or rejected; never an open one), with every event of their history, are written to a
GeoPackage (layers ``incidents``, points in CGCS2000 EPSG:4490, and ``incident_events``), read back
and counted, and only then deleted, in one transaction that is audited with the file's SHA-256.
Nothing is lost on the way: a file that cannot be written or read back deletes nothing; an
incident that changed between the read and the deletion (an event added, a whistle blown on it,
tied to an emergency, a new duplicate of it) makes the deletion roll back whole (run again), and
the rows are locked while they are checked and deleted. Photos stay in the media folder (named in
the file by their SHA-256; one photo may serve several reports).
Incidents tied to an emergency or a whistle stay with that record, and an original stays while a
duplicate of it stays. The reporter's name and contact are not written unless asked
(``--with-contacts``): archiving is also when personal data is let go.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import sqlalchemy as sa

from gridmap.errors import Invalid, StateConflict
from gridmap.store import audit
from gridmap.store import incident_archive as store
from gridmap.store import incident_partitions as partitions
from gridmap.store import incident_rollups
from gridmap.geo.export import GPKG_DATASET_OPTIONS

JSON_COLUMNS = ("photo_urls", "attributes", "detail")


@dataclass
class ArchiveSummary:
    """What an archive run found, wrote and removed."""

    territory: str
    before: date
    incidents: int
    events: int
    path: Path | None
    sha256: str | None
    removed: int
    months_dropped: list[str] = field(default_factory=list)
    """The monthly partitions the archive left empty, dropped."""
    months_left: str | None = None
    """Why months left empty were not dropped ("English / 中文": the table was busy, an error), if so."""

    def __str__(self) -> str:
        if not self.incidents:
            return f"no finished incidents of {self.territory} reported before {self.before}: nothing archived"
        if self.path is None:
            return (f"{self.incidents} finished incidents of {self.territory} reported before {self.before} "
                    f"({self.events} events) would be archived (dry run: nothing written or removed)")
        dropped = f"; months left empty dropped: {', '.join(self.months_dropped)}" if self.months_dropped else ""
        if self.months_left:
            dropped += f"; {self.months_left.split(' / ')[0]}"
        return (f"{self.incidents} incidents and {self.events} events of {self.territory} reported before "
                f"{self.before} written to {self.path} (sha256 {self.sha256[:12]}…), read back, and "
                f"{self.removed} incidents removed from the database{dropped}")

    def zh(self) -> str:
        if not self.incidents:
            return f"辖区 {self.territory} 没有 {self.before} 之前上报且已办结的事件：未归档"
        if self.path is None:
            return f"将归档辖区 {self.territory} {self.before} 之前上报且已办结的事件 {self.incidents} 件（事件记录 {self.events} 条）（试运行：未写入、未删除）"
        dropped = f"；已清空的月分区已删除：{'、'.join(self.months_dropped)}" if self.months_dropped else ""
        if self.months_left:
            dropped += f"；{self.months_left.split(' / ')[-1]}"
        return (f"辖区 {self.territory} {self.before} 之前上报的事件 {self.incidents} 件及其记录 {self.events} 条已写入 "
                f"{self.path}，经读回核对后从数据库删除 {self.removed} 件{dropped}")


def archive_incidents(engine: sa.Engine, territory: str, before: date, out: Path | None, *,
                      with_contacts: bool = False, actor: str = "cli", zone: tzinfo | None = None) -> ArchiveSummary:
    """Archive the finished incidents of ``territory`` reported before ``before`` (midnight of that
    day in ``zone``, default the city's: ``GRIDMAP_TIMEZONE``, as the incident calendar has it)
    into the GeoPackage ``out`` and remove them from the database; ``out`` None: a dry run that
    only counts."""
    if zone is None:
        from gridmap.services.incidents import calendar_from_env

        zone = calendar_from_env().zone
    since = datetime.combine(before, time(), tzinfo=zone)
    if out is not None and out.suffix.lower() != ".gpkg":
        raise Invalid(f"{out}: an archive is a GeoPackage; name it *.gpkg", f"{out}：归档文件为 GeoPackage，请以 .gpkg 结尾")
    if out is not None and out.exists():
        raise Invalid(f"{out} exists: an archive is never written over; choose another name",
                      f"{out} 已存在：归档文件不会被覆盖；请换一个文件名")
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        ids = store.archivable(conn, territory, since)
        incidents, events = store.rows(conn, ids, with_contacts=with_contacts) if ids else ([], [])
    if not ids or out is None:
        return ArchiveSummary(territory, before, len(ids), len(events), None, None, 0)
    digest = _write(out, incidents, events)
    with engine.begin() as conn:
        removed = store.remove(conn, ids, len(events))
        if removed is None:
            conn.rollback()
            raise StateConflict(
                "some of these incidents changed while the archive was written (a new event, a whistle, an "
                f"emergency or a duplicate of one of them): nothing was removed; delete {out} and run again",
                f"写入归档期间其中有事件发生变化（新的处理记录、吹哨、应急关联或新的重复件）：未删除任何事件；"
                f"请删除 {out} 后重新运行")
        incident_rollups.prune(conn)  # the months archived count nothing any more
        audit.record(conn, actor=actor, action="incidents.archive", table="incidents", row_key=territory,
                     after={"before": before.isoformat(), "incidents": removed, "events": len(events),
                            "file": str(out), "sha256": digest, "with_contacts": with_contacts,
                            "public_ids": [r["public_id"] for r in incidents][:5000]})
    dropped, left = _drop_emptied_months(engine, since)
    return ArchiveSummary(territory, before, len(ids), len(events), out, digest, removed, dropped, left)


def _drop_emptied_months(engine: sa.Engine, since: datetime) -> tuple[list[str], str | None]:
    """After an archive (committed), the monthly partitions it left empty dropped, each in a
    transaction of its own (it locks the whole table for a moment); what was dropped, and why
    not all were ("English / 中文"), if so. The archive stands whatever happens here."""
    dropped: list[str] = []
    busy = False
    try:
        with engine.connect() as conn:
            candidates = partitions.empty_months_before(conn, since)
        for name in candidates:
            with engine.begin() as conn:
                done = partitions.drop_if_empty(conn, name)
            if done is None:
                busy = True
                break
            if done:
                dropped.append(name)
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).splitlines()[0].replace(" / ", " - ")
        return dropped, (f"the archive is done, but the months it emptied could not be dropped ({reason}): "
                    "`gridmap incidents partitions` lists them / 归档已完成，但已清空的月分区未能删除（" + reason +
                    "）：可用 `gridmap incidents partitions` 查看")
    if busy:
        return dropped, ("the table was busy: months left empty stay for a later archive / "
                         "事件表正忙：其余已清空的月分区留待下次归档时删除")
    return dropped, None


def _write(out: Path, incidents: list[dict], events: list[dict]) -> str:
    """Write the two layers to a new file beside ``out``, read it back and count, then move it
    into place; the file's SHA-256."""
    part = out.with_name(f".{out.stem}.part.gpkg")
    part.unlink(missing_ok=True)
    frame = pd.DataFrame(incidents)
    points = gpd.GeoDataFrame(frame.drop(columns=["id", "lon", "lat"]), crs=4490,
                              geometry=gpd.points_from_xy(frame["lon"], frame["lat"]))
    log = pd.DataFrame(events, columns=["public_id", "at", "action", "from_status", "to_status", "actor", "note",
                                        "detail"])
    for table in (points, log):
        for column in JSON_COLUMNS:
            if column in table:
                table[column] = [None if v is None else json.dumps(v, ensure_ascii=False) for v in table[column]]
    try:
        pyogrio.write_dataframe(points, part, layer="incidents", driver="GPKG", dataset_options=GPKG_DATASET_OPTIONS)
        pyogrio.write_dataframe(log, part, layer="incident_events", driver="GPKG", append=True)
        counts = {name: pyogrio.read_info(part, layer=name)["features"] for name in ("incidents", "incident_events")}
    except Exception as exc:
        part.unlink(missing_ok=True)
        raise Invalid(f"the archive could not be written to {out} ({exc}): nothing was removed",
                      f"归档无法写入 {out}（{exc}）：未删除任何事件") from exc
    if counts != {"incidents": len(points), "incident_events": len(log)}:
        part.unlink(missing_ok=True)
        raise Invalid(f"the archive read back holds {counts}, not {len(points)} incidents and {len(log)} events: "
                      "nothing was removed", f"归档读回的数量 {counts} 与写入的不符：未删除任何事件")
    with open(part, "rb") as fh:
        os.fsync(fh.fileno())
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    os.replace(part, out)
    return digest


__all__ = ["ArchiveSummary", "archive_incidents"]
