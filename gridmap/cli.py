"""The ``gridmap`` command. Thin: every subcommand calls a service or store function.

    gridmap db start | stop | status | url     the private local PostGIS
    gridmap db dump --territory CODE --out F.zip | restore F.zip [--replace]   a territory, whole
    gridmap migrate [--revision REV] [--downgrade REV]
    gridmap demo [--only NAME] [--force]       load data/boundaries/ (idempotent)
    gridmap import FILE --territory CODE [--layer NAME] [--crs CRS] [--encoding gbk] [--replace]
    gridmap partition --territory CODE [--min 300 --max 500] [--report FILE.html]
    gridmap merge --territory CODE FILE... [--access-list FILE]     多网合一
    gridmap departments --territory CODE --out DIR    generated departmental layers
    gridmap territories                        list the territory tree
    gridmap layers --territory CODE            list a territory's layers
    gridmap serve [--host H] [--port P]
    gridmap user add NAME [--role ROLE --territory CODE] | grant NAME --role R --territory CODE
                 [--department D | --grids G,G] | passwd NAME | list
    gridmap apikey create NAME --user USER [--days N] | list | revoke NAME
    gridmap plan draft CODE | edits ID FILE.json | validate ID | diff ID | publish ID | revert ID | history CODE
    gridmap incidents categories | escalate     the category table; the supervision pass (for cron)
    gridmap stations types | import FILE --territory CODE | coverage --territory CODE [--minutes 15]
    gridmap export --territory CODE --format shp|gpkg|geojson|kml|csv --crs 4490|4326|gk3|gk3-cm|gcj02
                   [--encoding utf-8|gbk] [--plan published|draft|VERSION] [--layers grids,units,...] --out PATH
    gridmap up [--host H] [--port P] [--no-serve]   db start + migrate + demo + plans + admin + serve
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from gridmap import __version__
from gridmap.progress import Progress


class UserError(Exception):
    """An error to show without a traceback (exit status 1)."""


def _engine():
    from gridmap.store.db import get_engine

    return get_engine()


def _database_url() -> str:
    from gridmap.store.db import resolve_url

    return resolve_url()


# -- db ---------------------------------------------------------------------------------
def cmd_db(args: argparse.Namespace) -> int:
    from gridmap.settings import Settings
    from gridmap.store.cluster import cluster_from_settings

    if args.action in ("dump", "restore"):
        return _backup(args)
    settings = Settings.from_env()
    cluster = cluster_from_settings(settings)
    if settings.database_url and args.action in ("start", "stop"):
        Progress().say("GRIDMAP_DATABASE_URL is set: the local cluster is not used by gridmap")
    if args.action == "start":
        cluster.start(Progress())
        print(cluster.status().describe())
    elif args.action == "stop":
        stopped = cluster.stop(Progress())
        print("stopped" if stopped else "was not running")
    elif args.action == "status":
        status = cluster.status()
        print(status.describe())
        return 0 if status.running else 3
    elif args.action == "url":
        print(settings.database_url or cluster.url())
    return 0


def _backup(args: argparse.Namespace) -> int:
    from gridmap.store import backup

    if args.action == "dump":
        if not args.territory or not args.out:
            raise UserError("gridmap db dump --territory CODE --out FILE.zip")
        print(f"dumped {backup.dump(_engine(), args.territory, args.out)}")
    else:
        if not args.file:
            raise UserError("gridmap db restore FILE.zip [--replace]")
        print(f"restored {backup.restore(_engine(), args.file, replace=args.replace)}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from gridmap.store import migrate

    url = _database_url()
    progress = Progress()
    if args.downgrade:
        with progress.step(f"downgrading the schema to {args.downgrade}"):
            migrate.downgrade(url, args.downgrade)
    else:
        with progress.step(f"migrating the schema to {args.revision}"):
            migrate.upgrade(url, args.revision)
    print(f"schema at revision {migrate.current_revision(url) or 'base'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gridmap.services.demo import load_demo

    for result in load_demo(_engine(), args.only, force=args.force, progress=Progress()):
        if result.loaded:  # skipped demos were announced by load_demo already
            print(result)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from gridmap.services.importing import import_file

    summary = import_file(_engine(), args.file, territory=args.territory, layer=args.layer, crs=args.crs,
                          encoding=args.encoding, source_layer=args.source_layer, kind=args.kind,
                          expect=args.expect, replace=args.replace, actor=args.actor, progress=Progress())
    print(summary)
    return 0


def cmd_partition(args: argparse.Namespace) -> int:
    from gridmap.services.partitioning import partition_territory

    summary = partition_territory(_engine(), args.territory, min_households=args.min, max_households=args.max,
                                  seed=args.seed, author=args.actor, rebuild_units=args.rebuild_units,
                                  progress=Progress(total=None))
    print(summary)
    if args.report:
        from gridmap.web.reports import partition_report_html

        html_text = partition_report_html(summary.result.grids, summary.result.report, summary.result.flags,
                                          title=f"{args.territory} · draft plan {summary.version}", standalone=True)
        with open(args.report, "w", encoding="utf-8") as fh:
            fh.write(html_text)
        print(f"report written to {args.report}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from gridmap.services.merging import merge_files

    access = None
    if args.access_list:
        with open(args.access_list, encoding="utf-8") as fh:
            access = {line.strip() for line in fh if line.strip() and not line.startswith("#")}
    summary = merge_files(_engine(), args.territory, args.files, crs=args.crs, id_field=args.id_field,
                          min_households=args.min, max_households=args.max, access_list=access, seed=args.seed,
                          author=args.actor, progress=Progress())
    print(summary)
    return 0


def cmd_departments(args: argparse.Namespace) -> int:
    """Write generated departmental layers (one GeoPackage per department) for demos and tests."""
    from pathlib import Path

    from gridmap.geo.departments import departmental_layers
    from gridmap.services.partitioning import ensure_units
    from gridmap.store import plans

    engine = _engine()
    progress = Progress()
    units, _ = ensure_units(engine, args.territory, progress=progress)
    with engine.connect() as conn:
        communities = plans.communities_of(conn, args.territory)
    with progress.step(f"generating {args.count} departmental layers"):
        generated = departmental_layers(units, communities[["code", "name", "geometry"]], seed=args.seed,
                                        count=args.count)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for department, frame in generated.layers.items():
        path = out / f"{department}.gpkg"
        frame.assign(duties=frame["duties"].map(";".join)).to_file(path, driver="GPKG")
        print(f"{path}  {len(frame)} grids  ({generated.patterns[department]})")
    return 0


def cmd_territories(args: argparse.Namespace) -> int:
    from gridmap.store import territories

    with _engine().connect() as conn:
        rows = territories.list_all(conn)
    if not rows:
        print("no territories yet: run `gridmap demo` or import some")
    for row in rows:
        indent = {"city": 0, "district": 1, "street": 2, "community": 3}[row.level]
        print(f"{'  ' * indent}{row.code}  {row.name}  ({row.level})")
    return 0


def cmd_layers(args: argparse.Namespace) -> int:
    from gridmap.store import layers

    with _engine().connect() as conn:
        rows = layers.list_for(conn, args.territory)
    for row in rows:
        print(f"{row['name']:<24} {row['feature_count']:>8}  {row['geometry_type'] or '':<16} {row['source_file'] or ''}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gridmap.api.app import create_app

    url = _database_url()  # fail fast, with the message that says what to run
    Progress().say(f"serving on http://{args.host}:{args.port}  (API docs at /docs)")
    uvicorn.run(create_app(database_url=url), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Everything the quickstart needs, in order; each step is idempotent."""
    from gridmap.services.demo import load_demo
    from gridmap.settings import Settings
    from gridmap.store import migrate
    from gridmap.store.cluster import cluster_from_settings
    from gridmap.store.db import engine_for, ensure_postgis_database, normalise_url

    progress = Progress()
    settings = Settings.from_env()
    if settings.database_url:
        url = normalise_url(settings.database_url)
        ensure_postgis_database(url, progress)
    else:
        url = cluster_from_settings(settings).start(progress)
    with progress.step("applying migrations"):
        migrate.upgrade(url)
    engine = engine_for(url)
    for result in load_demo(engine, progress=progress):
        if result.loaded:  # skipped demos were announced by load_demo already
            progress.say(str(result))
    from gridmap.services.bootstrap import (
        ensure_admin,
        ensure_demo_incidents,
        ensure_demo_plans,
        ensure_demo_stations,
        ensure_incident_categories,
    )

    ensure_demo_plans(engine, progress=progress)
    ensure_incident_categories(engine, progress=progress)
    ensure_demo_stations(engine, progress=progress)
    ensure_demo_incidents(engine, progress=progress)
    ensure_admin(engine, settings.home, progress=progress)
    if args.no_serve:
        return 0
    return cmd_serve(args)


def _password(args: argparse.Namespace) -> str:
    """From --password-stdin, or asked for twice on a terminal."""
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise UserError("the passwords differ")
    return first


def cmd_user(args: argparse.Namespace) -> int:
    import json

    from gridmap.store import audit, users

    engine = _engine()
    if args.action == "list":
        with engine.connect() as conn:
            for row in users.list_users(conn):
                roles = ", ".join(f"{r['role']}@{r['territory']}" for r in row["roles"]) or "no roles"
                print(f"{row['username']:<20} {'active' if row['active'] else 'disabled':<9} {roles}")
        return 0
    if not args.name:
        raise UserError(f"`gridmap user {args.action}` needs a user name")
    with engine.begin() as conn:
        try:
            if args.action == "add":
                users.create_user(conn, args.name, _password(args), display_name=args.display_name)
                if args.role:
                    if not args.territory:
                        raise UserError("--role needs --territory CODE")
                    users.grant(conn, args.name, args.role, args.territory)
            elif args.action == "grant":
                if not (args.role and args.territory):
                    raise UserError("grant needs --role ROLE --territory CODE")
                grids = [g.strip() for g in args.grids.split(",") if g.strip()] if args.grids else None
                users.grant(conn, args.name, args.role, args.territory, department=args.department, grid_codes=grids)
            elif args.action == "passwd":
                users.set_password(conn, args.name, _password(args))
        except users.UserError as exc:
            raise UserError(str(exc)) from exc
        audit.record(conn, actor="cli", action=f"user.{args.action}", table="users", row_key=args.name,
                     after=json.loads(json.dumps({"role": args.role, "territory": args.territory,
                                                  "department": args.department, "grids": args.grids})))
    print(f"user {args.name}: {args.action} done")
    return 0


def cmd_apikey(args: argparse.Namespace) -> int:
    from gridmap.store import audit, users

    engine = _engine()
    if args.action == "list":
        with engine.connect() as conn:
            for row in users.list_api_keys(conn):
                state = "revoked" if row["revoked_at"] else (f"expires {row['expires_at']:%Y-%m-%d}"
                                                             if row["expires_at"] else "no expiry")
                used = f"last used {row['last_used_at']:%Y-%m-%d %H:%M}" if row["last_used_at"] else "never used"
                print(f"{row['name']:<24} as {row['username']:<16} {state:<20} {used}")
        return 0
    if not args.name:
        raise UserError(f"`gridmap apikey {args.action}` needs the key's name")
    with engine.begin() as conn:
        try:
            if args.action == "create":
                if not args.user:
                    raise UserError("create needs --user USER (the key acts with that user's roles)")
                key = users.create_api_key(conn, args.user, args.name, days=args.days)
            else:
                users.revoke_api_key(conn, args.name)
        except users.UserError as exc:
            raise UserError(str(exc)) from exc
        audit.record(conn, actor="cli", action=f"apikey.{args.action}", table="auth_tokens", row_key=args.name,
                     after={"user": args.user, "days": args.days} if args.action == "create" else {"revoked": True})
    if args.action == "create":
        print(key)
        Progress().say("the key is shown once: store it in the other system now (send it as "
                       "'Authorization: Bearer KEY', or as api_key for Open311)")
    else:
        print(f"API key {args.name} revoked")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    import json

    from gridmap.services import planning

    engine = _engine()
    try:
        if args.action == "draft":
            plan_id, version = planning.new_draft(engine, args.target, actor=args.actor,
                                                  source=int(args.source) if args.source else "published")
            print(f"draft plan {version} (id {plan_id}) of {args.target}")
        elif args.action == "history":
            for row in planning.history(engine, args.target):
                print(f"plan {row['id']:>5}  v{row['version']:<4} {row['status']:<9} {row['origin'] or '':<10} "
                      f"{row['grids']:>5} grids  valid {row['valid_from'] or '-'} .. {row['valid_to'] or '-'}")
        elif args.action == "edits":
            with open(args.file, encoding="utf-8") as fh:
                body = json.load(fh)
            ops = body["operations"] if isinstance(body, dict) else body
            version = body.get("version") if isinstance(body, dict) else None
            result = planning.apply_edits(engine, int(args.target), ops, version=version, actor=args.actor)
            print(json.dumps(result.as_dict()["summary"], default=str))
        elif args.action == "validate":
            report = planning.validate(engine, int(args.target))
            for p in report["problems"]:
                print(f"{p['severity']:<8} {p['kind']:<16} {p['message_en']}")
            print(f"{report['errors']} errors, {report['warnings']} warnings")
            return 0 if report["valid"] else 1
        elif args.action == "diff":
            d = planning.diff(engine, int(args.target))
            print(f"against plan {d['against']}: {len(d['added'])} grids added, {len(d['removed'])} removed, "
                  f"{len(d['changed'])} changed, {d['units_moved']} units moved")
        elif args.action == "publish":
            out = planning.publish(engine, int(args.target), version=None, actor=args.actor)
            print(f"plan {out['id']} published; previous published plan: {out['previous'] or 'none'}")
        elif args.action == "revert":
            out = planning.revert(engine, int(args.target), actor=args.actor, publish_now=args.publish)
            print(f"new draft {out['plan_id']} from plan {args.target}" + (" (published)" if out["published"] else ""))
    except (planning.EditError, planning.VersionConflict, LookupError) as exc:
        raise UserError(str(exc)) from exc
    return 0


def cmd_incidents(args: argparse.Namespace) -> int:
    from gridmap.services import incidents
    from gridmap.store import incidents as store

    engine = _engine()
    if args.action == "categories":
        incidents.ensure_categories(engine)
        with engine.connect() as conn:
            for c in store.categories(conn):
                print(f"{c.code}  {c.name_zh} / {c.name_en}  -> {c.department_zh} ({c.department_code})  "
                      f"{c.time_limit:g} {c.time_unit.replace('_', ' ')}")
    elif args.action == "escalate":
        changed = incidents.escalate_overdue(engine, actor="cli")
        print(f"{len(changed)} incidents escalated")
        for c in changed:
            print(f"  {c['public_id']} -> level {c['level']}")
    return 0


def cmd_stations(args: argparse.Namespace) -> int:
    from gridmap.services import stations

    engine = _engine()
    try:
        if args.action == "types":
            for t in stations.station_types():
                print(f"{t['code']:<24} {t['name_zh']} / {t['name_en']}")
        elif args.action == "import":
            from gridmap.geo.io import read_vector

            if not args.file:
                raise UserError("stations import needs a FILE")
            frame = read_vector(args.file, crs=args.crs).frame
            n = stations.import_stations(engine, args.territory, frame, type_column=args.type_field,
                                         name_column=args.name_field, default_type=args.type)
            print(f"{n} stations imported into {args.territory}")
        elif args.action == "coverage":
            report = stations.coverage(engine, args.territory, minutes=args.minutes)
            for code, t in report["types"].items():
                share = "-" if t["share"] is None else f"{t['share']:.1%}"
                print(f"{code:<24} {t['stations']:>4} stations  {share:>6} of households within {args.minutes:g} min")
            print(f"{len(report['underserved'])} (grid, type) pairs below {report['threshold']:.0%}")
    except stations.StationError as exc:
        raise UserError(str(exc)) from exc
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from gridmap.services.exporting import ExportRequest, export_territory, parse_layers

    request = ExportRequest(territory=args.territory, format=args.format, crs=args.crs, encoding=args.encoding,
                            plan=args.plan, layers=parse_layers(args.layers))
    result = export_territory(_engine(), request, args.out)
    counts = ", ".join(f"{name} {n}" for name, n in result.layers.items())
    print(f"wrote {result.path} ({result.format}, {result.crs}, {result.encoding}): {counts}")
    return 0


# -- parser -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridmap", description="Plan and run community grids (网格化服务管理).")
    parser.add_argument("--version", action="version", version=f"gridmap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    db = sub.add_parser("db", help="the private local PostGIS cluster; dump and restore a territory")
    db.add_argument("action", choices=["start", "stop", "status", "url", "dump", "restore"])
    db.add_argument("file", nargs="?", help="restore: the dump (a zip from gridmap db dump)")
    db.add_argument("--territory", metavar="CODE", help="dump: the territory (with everything below it)")
    db.add_argument("--out", metavar="FILE.zip", help="dump: where to write it")
    db.add_argument("--replace", action="store_true", help="restore: replace the territory if it is present")
    db.set_defaults(func=cmd_db)

    mig = sub.add_parser("migrate", help="apply (or revert) schema migrations")
    mig.add_argument("--revision", default="head")
    mig.add_argument("--downgrade", metavar="REV", help="revert to REV ('base' removes all tables)")
    mig.set_defaults(func=cmd_migrate)

    demo = sub.add_parser("demo", help="load the demo territories (idempotent)")
    demo.add_argument("--only", action="append", metavar="NAME", help="reykjavik, monaco or yaan (repeatable)")
    demo.add_argument("--force", action="store_true", help="reload even if up to date")
    demo.set_defaults(func=cmd_demo)

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
    imp.add_argument("--actor", default="cli", help="who is importing (recorded in the audit log)")
    imp.set_defaults(func=cmd_import)

    part = sub.add_parser("partition", help="partition a territory into grids (writes a draft plan)")
    part.add_argument("--territory", required=True, metavar="CODE")
    part.add_argument("--min", type=int, default=300, help="minimum households per grid (default 300)")
    part.add_argument("--max", type=int, default=500, help="maximum households per grid (default 500)")
    part.add_argument("--seed", type=int, default=0)
    part.add_argument("--rebuild-units", action="store_true", help="rebuild units (only if no plan uses them)")
    part.add_argument("--report", metavar="FILE.html", help="also write the partition report (works offline)")
    part.add_argument("--actor", default="cli")
    part.set_defaults(func=cmd_partition)

    mer = sub.add_parser("merge", help="merge departmental grid layers into one draft plan (多网合一)")
    mer.add_argument("--territory", required=True, metavar="CODE")
    mer.add_argument("files", nargs="+", help="one GIS file per department (or with a department column)")
    mer.add_argument("--id-field", help="column with the department's own grid id (default: grid_id, id, 编号 ...)")
    mer.add_argument("--crs", help="CRS of files that do not declare one (e.g. gcj02)")
    mer.add_argument("--access-list", metavar="FILE", help="duty codes allowed for grid workers, one per line")
    mer.add_argument("--min", type=int, default=300)
    mer.add_argument("--max", type=int, default=500)
    mer.add_argument("--seed", type=int, default=0)
    mer.add_argument("--actor", default="cli")
    mer.set_defaults(func=cmd_merge)

    dep = sub.add_parser("departments", help="write generated departmental layers for a demo territory")
    dep.add_argument("--territory", required=True, metavar="CODE")
    dep.add_argument("--out", required=True, metavar="DIR")
    dep.add_argument("--count", type=int, default=19)
    dep.add_argument("--seed", type=int, default=0)
    dep.set_defaults(func=cmd_departments)

    ter = sub.add_parser("territories", help="list the territory tree")
    ter.set_defaults(func=cmd_territories)

    lay = sub.add_parser("layers", help="list a territory's layers")
    lay.add_argument("--territory", required=True, metavar="CODE")
    lay.set_defaults(func=cmd_layers)

    usr = sub.add_parser("user", help="manage users and their territory-scoped roles")
    usr.add_argument("action", choices=["add", "grant", "passwd", "list"])
    usr.add_argument("name", nargs="?")
    usr.add_argument("--role", choices=["admin", "planner", "handler", "worker", "viewer"])
    usr.add_argument("--territory", metavar="CODE", help="the role covers this territory and everything below")
    usr.add_argument("--display-name")
    usr.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    usr.add_argument("--department", metavar="CODE", help="grant handler: bind to one department (sees only its incidents)")
    usr.add_argument("--grids", metavar="CODE,CODE", help="grant worker: bind to these grid codes")
    usr.set_defaults(func=cmd_user)

    key = sub.add_parser("apikey", help="API keys for other systems: create, list, revoke")
    key.add_argument("action", choices=["create", "list", "revoke"])
    key.add_argument("name", nargs="?", help="the key's name (which system uses it)")
    key.add_argument("--user", help="create: the user whose roles the key carries")
    key.add_argument("--days", type=float, help="create: expire after this many days (default: never)")
    key.set_defaults(func=cmd_apikey)

    pln = sub.add_parser("plan", help="drafts, edits, validation, diff, publish, revert, history")
    pln.add_argument("action", choices=["draft", "edits", "validate", "diff", "publish", "revert", "history"])
    pln.add_argument("target", help="territory CODE (draft, history) or plan ID (the others)")
    pln.add_argument("file", nargs="?", help="edits: a JSON file {version, operations: [...]}")
    pln.add_argument("--source", help="draft: copy this plan id instead of the published plan")
    pln.add_argument("--publish", action="store_true", help="revert: publish the restored plan at once")
    pln.add_argument("--actor", default="cli")
    pln.set_defaults(func=cmd_plan)

    inc = sub.add_parser("incidents", help="the incident loop: categories, the supervision pass (cron)")
    inc.add_argument("action", choices=["categories", "escalate"])
    inc.set_defaults(func=cmd_incidents)

    sta = sub.add_parser("stations", help="service stations: types, import, 15-minute coverage")
    sta.add_argument("action", choices=["types", "import", "coverage"])
    sta.add_argument("file", nargs="?", help="import: a point file (any format import reads)")
    sta.add_argument("--territory", metavar="CODE", default="990100")
    sta.add_argument("--type-field", default="station_type")
    sta.add_argument("--name-field", default="name")
    sta.add_argument("--type", help="import: the type of every station when the file has no type column")
    sta.add_argument("--crs", help="import: CRS when the file has none (EPSG code or gcj02)")
    sta.add_argument("--minutes", type=float, default=15.0)
    sta.set_defaults(func=cmd_stations)

    exp = sub.add_parser("export", help="write a plan for a government GIS system (shp, gpkg, geojson, kml, csv)")
    exp.add_argument("--territory", required=True, metavar="CODE")
    exp.add_argument("--format", required=True, choices=["shp", "gpkg", "geojson", "kml", "csv"])
    exp.add_argument("--crs", default="4490",
                     help="4490 (CGCS2000, default), 4326, gk3 (3-degree Gauss-Krüger zone with zone prefix, "
                          "EPSG:4513-4533), gk3-cm (without, EPSG:4534-4554), gcj02, or any EPSG code")
    exp.add_argument("--encoding", default="utf-8", choices=["utf-8", "gbk"], help="attribute text (shp, csv)")
    exp.add_argument("--plan", default="published", help="published (default), draft, or a version number")
    exp.add_argument("--layers", default="grids", help="comma list of grids,units,stations,incidents,crosswalk")
    exp.add_argument("--out", required=True, metavar="PATH")
    exp.set_defaults(func=cmd_export)

    for name, func, helptext in (("serve", cmd_serve, "serve the web app and API"),
                                 ("up", cmd_up, "start the database, migrate, load the demo and serve")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
        p.add_argument("--log-level", default="info")
        if name == "up":
            p.add_argument("--no-serve", action="store_true", help="stop after loading the demo")
        p.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    from gridmap.geo.crs import CRSError
    from gridmap.geo.io import VectorReadError
    from gridmap.store.cluster import ClusterError
    from gridmap.store.db import DatabaseUnavailable
    from gridmap.store.layers import LayerExists
    from gridmap.services.partitioning import PartitionInputError
    from gridmap.store.territories import TerritoryNotFound

    try:
        return func(args)
    except (UserError, VectorReadError, CRSError, ClusterError, DatabaseUnavailable, LayerExists,
            TerritoryNotFound, PartitionInputError, ValueError, LookupError) as exc:
        print(f"gridmap: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
