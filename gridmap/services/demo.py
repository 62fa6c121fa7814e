"""``gridmap demo``: load the demo territories of data/boundaries/ into the database.

Idempotent: each demo's files are hashed, and a demo whose hash is already recorded on its root
territory is skipped, so a second run is fast and changes nothing. A changed demo is reloaded in
one transaction (territories updated in place by code, layers replaced).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import sqlalchemy as sa

from gridmap.geo.crs import area_m2
from gridmap.progress import QUIET, Progress
from gridmap.store import audit, layers, territories

LEVEL_LAYERS = {"cities": "city", "districts": "district", "streets": "street", "communities": "community"}
DEMO_ORDER = ("yaan", "monaco", "reykjavik")


def demo_dir() -> Path:
    """``GRIDMAP_DEMO_DIR`` or the repository's data/boundaries/."""
    configured = os.environ.get("GRIDMAP_DEMO_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "data" / "boundaries"


def available() -> list[str]:
    base = demo_dir()
    found = [p.name for p in base.iterdir() if (p / "manifest.json").exists()] if base.exists() else []
    return sorted(found, key=lambda n: (DEMO_ORDER.index(n) if n in DEMO_ORDER else len(DEMO_ORDER), n))


def checksum(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted([folder / "manifest.json", *folder.glob("*.parquet")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class DemoResult:
    name: str
    loaded: bool
    territories: int
    layers: dict[str, int]

    def __str__(self) -> str:
        if not self.loaded:
            return f"{self.name}: up to date (skipped)"
        return (f"{self.name}: {self.territories} territories; layers "
                + ", ".join(f"{k} {v}" for k, v in self.layers.items()))

    def zh(self) -> str:
        """The same line in Chinese."""
        if not self.loaded:
            return f"{self.name}：已是最新（跳过）"
        return (f"{self.name}：{self.territories} 个辖区；图层 "
                + "，".join(f"{k} {v}" for k, v in self.layers.items()))


def load_demo(engine: sa.Engine, names: list[str] | None = None, *, force: bool = False,
              progress: Progress = QUIET) -> list[DemoResult]:
    """Load the named demos (default: all in data/boundaries/)."""
    wanted = names or available()
    unknown = set(wanted) - set(available())
    if unknown:
        raise ValueError(f"unknown demo {', '.join(sorted(unknown))}; available: {', '.join(available())}")
    return [_load_one(engine, demo_dir() / name, force=force, progress=progress) for name in wanted]


def _load_one(engine: sa.Engine, folder: Path, *, force: bool, progress: Progress) -> DemoResult:
    manifest = json.loads((folder / "manifest.json").read_text())
    digest = checksum(folder)
    roots = gpd.read_parquet(folder / "cities.parquet")
    root_code = str(roots.iloc[0]["code"])
    with engine.connect() as conn:
        recorded = territories.property_of(conn, root_code, "demo_checksum")
    if recorded == digest and not force:
        progress.say(f"demo {folder.name} is up to date", f"示例 {folder.name} 已是最新")
        return DemoResult(folder.name, False, 0, {})
    count = 0
    stored: dict[str, int] = {}
    with progress.step(f"loading demo {folder.name}", f"载入示例 {folder.name}"), engine.begin() as conn:
        for layer_name, level in LEVEL_LAYERS.items():
            path = folder / f"{layer_name}.parquet"
            if not path.exists():
                continue
            frame = gpd.read_parquet(path).to_crs(4490)
            frame["area_m2"] = area_m2(frame)
            count += len(territories.upsert(conn, frame, level=level, source=f"demo:{folder.name}"))
        root = territories.get(conn, root_code)
        for path in sorted(folder.glob("*.parquet")):
            if path.stem in LEVEL_LAYERS:
                continue
            frame = gpd.read_parquet(path).to_crs(4490)
            types = sorted(set(frame.geom_type)) if len(frame) else []
            layer_id, _ = layers.create(
                conn, territory_id=root.id, name=path.stem, kind="demo",
                geometry_type=types[0] if len(types) == 1 else "GEOMETRY",
                source_file=f"data/boundaries/{folder.name}/{path.name}", source_crs="EPSG:4490",
                encoding="utf-8", checksum=None, report={"sources": manifest.get("sources", [])},
                actor="demo", replace=True)
            stored[path.stem] = layers.copy_features(conn, layer_id, frame)
        territories.set_property(conn, root_code, "demo_checksum", digest)
        audit.record(conn, actor="demo", action="load_demo", table="territories", row_key=root_code,
                     after={"demo": folder.name, "territories": count, "layers": stored})
    return DemoResult(folder.name, True, count, stored)
