"""``gridmap territory import``: a district's own boundary files become territories (checked,
then stored all together or not at all; see gridmap.services.boundaries)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gridmap.cli import checks
from gridmap.progress import Progress


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``territory`` to the ``gridmap`` parser."""
    ter = sub.add_parser("territory", help="create or update territories from a district's boundary files")
    ter.add_argument("action", choices=["import"])
    ter.add_argument("communities", metavar="COMMUNITIES",
                     help="the communities' boundaries (12-digit codes; any format import reads)")
    ter.add_argument("--streets", metavar="FILE", help="the streets' boundaries (default: dissolved by code)")
    ter.add_argument("--district", metavar="FILE", help="the district outline (default: the stored one, or dissolved)")
    ter.add_argument("--parent", metavar="CODE", help="the city (or district) above: reused when stored, else created")
    ter.add_argument("--parent-name", metavar="NAME",
                     help="the name of the city above when it is created (default: a 市名称 column, else its code)")
    ter.add_argument("--fields", metavar="NAME=COLUMN,...",
                     help="which columns hold code, name, street_name, district_name (default: the field table)")
    ter.add_argument("--crs", help="CRS when the files have none or it is wrong: EPSG code, WKT or gcj02")
    ter.add_argument("--encoding", help="attribute encoding, e.g. gbk")
    ter.add_argument("--replace", action="store_true", help="update territories that exist (plans keep their history)")
    ter.add_argument("--dry-run", action="store_true", help="check and report; store nothing")
    ter.add_argument("--findings", metavar="FILE.gpkg",
                     help="where to write the places of the findings (default: COMMUNITIES-findings.gpkg here)")
    ter.add_argument("--actor", default="cli")
    ter.set_defaults(func=cmd_territory)


def cmd_territory(args: argparse.Namespace) -> int:
    from gridmap.services.boundaries import import_boundaries

    communities = checks.input_file(args.communities, "communities file")
    streets = checks.input_file(args.streets, "--streets") if args.streets else None
    district = checks.input_file(args.district, "--district") if args.district else None
    checks.crs(args.crs)
    checks.text_encoding(args.encoding)
    findings = checks.output_file(args.findings or f"{Path(args.communities).stem}-findings.gpkg", "--findings")
    engine = checks.engine()
    summary = import_boundaries(engine, communities, streets=streets, district=district, parent=args.parent,
                                parent_name=args.parent_name, fields=args.fields, crs=args.crs, encoding=args.encoding, replace=args.replace,
                                dry_run=args.dry_run, findings_path=findings, actor=args.actor, progress=Progress())
    print(summary)
    return 0
