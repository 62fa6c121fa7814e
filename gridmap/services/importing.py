"""``gridmap import``: load a GIS file as a named layer of a territory, in one transaction."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from gridmap.geo.io import ReadLimits, read_vector
from gridmap.progress import QUIET, Progress
from gridmap.store import audit, layers, territories


@dataclass
class ImportSummary:
    """What an import did: readable by people (``str``) and programs (fields)."""

    territory: str
    layer: str
    features: int
    source_crs: str
    geometry_types: list[str]
    encoding: str | None = None
    repaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    replaced: int | None = None

    def __str__(self) -> str:
        lines = [f"imported {self.features} features into layer '{self.layer}' of territory {self.territory} "
                 f"(from {self.source_crs}; {', '.join(self.geometry_types)})"]
        if self.replaced is not None:
            lines.append(f"replaced the previous layer ({self.replaced} features)")
        lines += [f"note: {n}" for n in self.notes]
        if self.repaired:
            lines.append(f"repaired {len(self.repaired)} invalid geometries:")
            lines += [f"  {r}" for r in self.repaired[:20]]
            if len(self.repaired) > 20:
                lines.append(f"  ... and {len(self.repaired) - 20} more")
        return "\n".join(lines)


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def import_file(
    engine: sa.Engine,
    path: str | Path,
    *,
    territory: str,
    layer: str | None = None,
    crs: object | None = None,
    encoding: str | None = None,
    source_layer: str | None = None,
    kind: str = "imported",
    expect: str | None = None,
    replace: bool = False,
    actor: str = "cli",
    progress: Progress = QUIET,
    limits: ReadLimits | None = None,
    source_name: str | None = None,
) -> ImportSummary:
    """Read, check and store ``path`` as layer ``layer`` (default: the file's stem) of ``territory``.

    Everything happens in one transaction: if anything fails, the database is exactly as before.
    """
    path = Path(path)
    shown = source_name or path.name  # an upload is stored under a temporary name
    name = layer or Path(shown).stem
    if limits is None:
        from gridmap.settings import Settings

        limits = Settings.from_env().read_limits()
    with progress.step(f"reading {shown}"):
        result = read_vector(path, crs=crs, layer=source_layer, encoding=encoding, expect=expect, limits=limits)
    frame = result.frame
    types = sorted(set(frame.geom_type))
    with progress.step(f"storing {len(frame)} features as layer '{name}' of {territory}"):
        with engine.begin() as conn:
            target = territories.get(conn, territory)
            report = {"repaired": result.repaired, "notes": result.notes}
            layer_id, replaced = layers.create(
                conn, territory_id=target.id, name=name, kind=kind,
                geometry_type=types[0] if len(types) == 1 else "GEOMETRY", source_file=shown,
                source_crs=result.source_crs, encoding=result.encoding, checksum=file_checksum(path),
                report=report, actor=actor, replace=replace)
            count = layers.copy_features(conn, layer_id, frame)
            audit.record(conn, actor=actor, action="import", table="layers", row_key=f"{territory}/{name}",
                         before=None if replaced is None else {"features": replaced},
                         after={"features": count, "file": shown, "crs": result.source_crs,
                                "repaired": len(result.repaired)})
    return ImportSummary(territory=territory, layer=name, features=count, source_crs=result.source_crs,
                         geometry_types=types, encoding=result.encoding, repaired=result.repaired,
                         notes=result.notes, replaced=replaced)
