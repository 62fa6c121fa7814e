"""The data commands: ``gridmap import`` (a GIS file as a layer of a territory), ``gridmap
territories`` and ``gridmap layers`` (what is loaded), and ``gridmap departments`` (generated
departmental layers to merge, for demos and tests)."""

from __future__ import annotations

import argparse

from gridmap.cli import checks
from gridmap.cli.checks import UserError
from gridmap.geo.levels import level_name
from gridmap.progress import Progress



def register(sub: argparse._SubParsersAction) -> None:
    """Add import, departments, territories and layers to the ``gridmap`` parser."""
    imp = sub.add_parser("import", help="load a GIS file as a named layer of a territory")
    imp.add_argument("file")
    imp.add_argument("--territory", required=True, metavar="CODE")
    imp.add_argument("--layer", metavar="NAME", help="layer name (default: the file name)")
    imp.add_argument("--crs", help="CRS when the file has none or it is wrong: EPSG code, WKT or gcj02")
    imp.add_argument("--encoding", help="attribute encoding, e.g. gbk (shapefiles, CSV)")
    imp.add_argument("--source-layer", help="layer inside a multi-layer file (GeoPackage)")
    imp.add_argument("--kind", default="imported", help="what the layer holds (roads, buildings, departmental ...)")
    imp.add_argument("--expect", choices=["polygon", "line", "point"], help="reject other geometry types")
    imp.add_argument("--replace", action="store_true", help="replace a layer of the same name")
    imp.add_argument("--fields", metavar="CANONICAL=COLUMN,...",
                     help="name columns the field table does not know or picks wrongly, e.g. households=住户总数 "
                          "(the table: gridmap/geo/fields.py)")
    imp.add_argument("--estimate-missing", action="store_true",
                     help="buildings: estimate households that are missing or invalid (from levels and footprint) "
                          "instead of refusing them; each is marked households_estimated")
    imp.add_argument("--actor", default="cli", help="who is importing (recorded in the audit log)")
    imp.set_defaults(func=cmd_import)

    dep = sub.add_parser("departments", help="write generated departmental layers for a demo territory")
    dep.add_argument("--territory", required=True, metavar="CODE")
    dep.add_argument("--out", required=True, metavar="DIR")
    dep.add_argument("--count", type=checks.positive_int, default=19)
    dep.add_argument("--seed", type=int, default=0)
    dep.set_defaults(func=cmd_departments)

    ter = sub.add_parser("territories", help="list the territory tree")
    ter.set_defaults(func=cmd_territories)

    lay = sub.add_parser("layers", help="list a territory's layers")
    lay.add_argument("--territory", required=True, metavar="CODE")
    lay.set_defaults(func=cmd_layers)


def cmd_import(args: argparse.Namespace) -> int:
    from gridmap.geo.fields import parse_overrides
    from gridmap.services.importing import import_file

    path = checks.input_file(args.file)
    checks.crs(args.crs)
    checks.text_encoding(args.encoding)
    if args.layer is not None and not args.layer.strip():
        raise UserError("--layer needs a name / 请给出 --layer 图层名")
    fields = parse_overrides(args.fields)  # a malformed --fields is refused before anything is read
    engine = checks.engine()
    checks.territory(engine, args.territory)
    summary = import_file(engine, path, territory=args.territory, layer=args.layer, crs=args.crs,
                          encoding=args.encoding, source_layer=args.source_layer, kind=args.kind,
                          expect=args.expect, replace=args.replace, actor=args.actor, progress=Progress(),
                          fields=fields, estimate_missing=args.estimate_missing)
    print(summary)
    return 0


def cmd_departments(args: argparse.Namespace) -> int:
    """Write generated departmental layers (one GeoPackage per department) for demos and tests."""
    from gridmap.geo.departments import departmental_layers
    from gridmap.services.partitioning import ensure_units
    from gridmap.store import frames

    out = checks.output_folder(args.out, "--out")
    engine = checks.engine()
    checks.territory(engine, args.territory)
    progress = Progress()
    units, _ = ensure_units(engine, args.territory, progress=progress)
    with engine.connect() as conn:
        communities = frames.communities(conn, args.territory)
    with progress.step(f"generating {args.count} departmental layers", f"生成 {args.count} 个部门图层"):
        generated = departmental_layers(units, communities[["code", "name", "geometry"]], seed=args.seed,
                                        count=args.count)
    from gridmap.geo.export import GPKG_DATASET_OPTIONS

    out.mkdir(exist_ok=True)
    for department, frame in generated.layers.items():
        path = out / f"{department}.gpkg"
        frame.assign(duties=frame["duties"].map(";".join)).to_file(path, driver="GPKG", engine="pyogrio",
                                                                   dataset_options=GPKG_DATASET_OPTIONS)
        print(f"{path}  {len(frame)} grids / 个网格  ({generated.patterns[department]})")
    return 0


def cmd_territories(args: argparse.Namespace) -> int:
    from gridmap.store import territories

    with checks.engine().connect() as conn:
        rows = territories.list_all(conn)
    if not rows:
        print("no territories yet: create them from your boundary files with `gridmap territory import COMMUNITIES` "
              "(see README, \"Your own district\"), or load the demo with `gridmap demo` / "
              "还没有辖区：用 `gridmap territory import 社区文件` 从边界文件创建（见 README“Your own district”），"
              "或用 `gridmap demo` 载入示例")
    for row in rows:
        indent = {"city": 0, "district": 1, "street": 2, "community": 3}[row.level]
        zh, en = level_name(row.level, row.name)
        print(f"{'  ' * indent}{row.code}  {row.name}  ({en} / {zh})")
    return 0


def cmd_layers(args: argparse.Namespace) -> int:
    from gridmap.store import layers

    engine = checks.engine()
    checks.territory(engine, args.territory)
    with engine.connect() as conn:
        rows = layers.list_for(conn, args.territory)
    if not rows:
        Progress().say(f"territory {args.territory} has no layers of its own (import some with `gridmap import`)",
                       f"辖区 {args.territory} 还没有自己的图层（用 `gridmap import` 导入）")
    if rows:
        headers = ["layer / 图层", "kind / 类型", "features / 要素数", "geometry / 几何", "file / 文件"]
        for line in checks.table(headers, [[r["name"], r["kind"], r["feature_count"], r["geometry_type"], r["source_file"]]
                                           for r in rows]):
            print(line)
    return 0
