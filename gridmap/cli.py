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
    gridmap user add NAME [--role ROLE --territory CODE | --role admin --everywhere]
                 | grant NAME --role R (--territory CODE | --everywhere) [--department D | --grids G,G]
                 | passwd NAME | list
    gridmap apikey create NAME --user USER [--days N] | list | revoke NAME
    gridmap plan draft CODE | edits ID FILE.json | validate ID | diff ID | publish ID | revert ID | history CODE
    gridmap incidents categories | escalate     the category table; the supervision pass (for cron)
    gridmap stations types | import FILE --territory CODE | coverage --territory CODE [--minutes 15]
    gridmap export --territory CODE --format shp|gpkg|geojson|kml|csv --crs 4490|4326|gk3|gk3-cm|gcj02
                   [--encoding utf-8|gbk] [--plan published|draft|VERSION] [--layers grids,units,...] --out PATH
    gridmap up [--host H] [--port P] [--no-serve]   db start + migrate + demo + plans + admin + serve

Arguments are checked (files, folders, numbers, territories, formats) before anything is written.
Every error is one line on stderr with a non-zero status; GRIDMAP_DEBUG=1 adds the traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from gridmap import __version__
from gridmap.progress import Progress

DEBUG_VARIABLE = "GRIDMAP_DEBUG"  # =1: show the traceback of an error as well


class UserError(Exception):
    """An error to show as one line without a traceback (exit status 1): what went wrong and,
    where it is not obvious, what to do."""


def _engine():
    from gridmap.store.db import get_engine

    return get_engine()


def _database_url() -> str:
    from gridmap.store.db import resolve_url

    return resolve_url()


# -- checks made before anything is written ------------------------------------------------
# Every command checks what it can (files, folders, numbers, territories, formats) first, so a
# mistake in the arguments never leaves a half-done job (a stored plan without its report ...).
def _input_file(path: str, what: str = "input file") -> Path:
    """``path`` is an existing, readable file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{what} {path}: no such file; check the path")
    if p.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file")
    if not os.access(p, os.R_OK):
        raise UserError(f"{what} {path} is not readable; check its permissions")
    return p


def _writable_folder(folder: Path, shown: str, what: str) -> None:
    if not folder.exists():
        raise UserError(f"{what} {shown}: the folder {folder} does not exist; create it first "
                        f"(mkdir -p {folder}) or choose another path")
    if not folder.is_dir():
        raise UserError(f"{what} {shown}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{what} {shown}: the folder {folder} is not writable; choose another path")


def _output_file(path: str, what: str = "output file") -> Path:
    """``path`` can be written: its folder exists and is writable, and it is not a folder itself."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name (e.g. {p / 'out'}...)")
    _writable_folder(p.parent, path, what)
    if p.exists() and not os.access(p, os.W_OK):
        raise UserError(f"{what} {path} exists and is not writable; choose another path")
    return p


def _output_folder(path: str, what: str = "output folder") -> Path:
    """``path`` is a writable folder, or can be made in a writable folder that exists."""
    p = Path(path).expanduser()
    if p.exists():
        if not p.is_dir():
            raise UserError(f"{what} {path} is a file, not a folder; choose a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise UserError(f"{what} {path} is not writable; choose another folder")
    else:
        _writable_folder(p.parent, path, what)
    return p


def _territory(engine, code: str) -> None:
    """The territory exists (else: how to list and load territories)."""
    from gridmap.store import territories

    with engine.connect() as conn:
        try:
            territories.get(conn, code)
        except territories.TerritoryNotFound:
            raise UserError(f"no territory with code {code!r}: `gridmap territories` lists them "
                            "(`gridmap demo`, `gridmap db restore` load more)") from None


def _household_band(low: int, high: int) -> None:
    if high < low:
        raise UserError(f"--min {low} is above --max {high}: the minimum households per grid must not exceed "
                        "the maximum")


def _crs(value: str | None) -> None:
    """An input CRS that gridmap understands (EPSG code, WKT, gcj02)."""
    if value is None:
        return
    from gridmap.geo.crs import CRSError, parse_crs

    try:
        parse_crs(value)
    except CRSError:
        raise UserError(f"unknown coordinate system --crs {value!r}: give an EPSG code such as 4490 or 4326, "
                        "WKT, or gcj02") from None


def _text_encoding(value: str | None) -> None:
    if value is None:
        return
    import codecs

    try:
        codecs.lookup(value)
    except LookupError:
        raise UserError(f"unknown text encoding --encoding {value!r}; e.g. utf-8 or gbk") from None


def _plan_id(text: str) -> int:
    if not text.isdigit():
        raise UserError(f"a plan ID is a number, not {text!r}; `gridmap plan history CODE` lists a territory's plans")
    return int(text)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive (1 or more)")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (1-65535)")
    return value


def _can_listen(host: str, port: int) -> None:
    """Nothing else listens on host:port (checked before `up` does its work, and before serving)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        raise UserError(f"cannot serve on {host}:{port} ({exc.strerror or exc}); choose another --port or "
                        "--host, or stop what runs there") from None


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line too: the problem and where the usage is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


# -- db ---------------------------------------------------------------------------------
def cmd_db(args: argparse.Namespace) -> int:
    from gridmap.settings import Settings
    from gridmap.store.cluster import cluster_from_settings

    if args.action in ("dump", "restore"):
        return _backup(args)
    if args.file or args.territory or args.out or args.replace:
        raise UserError(f"`gridmap db {args.action}` takes no FILE, --territory, --out or --replace "
                        "(those are for dump and restore)")
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
        if not args.territory or not args.out or args.file:
            raise UserError("usage: gridmap db dump --territory CODE --out FILE.zip")
        out = _output_file(args.out, "--out")
        engine = _engine()
        _territory(engine, args.territory)
        print(f"dumped {backup.dump(engine, args.territory, out)}")
    else:
        if not args.file or args.territory or args.out:
            raise UserError("usage: gridmap db restore FILE.zip [--replace] (the dump names its territory)")
        path = _input_file(args.file, "dump")
        print(f"restored {backup.restore(_engine(), path, replace=args.replace)}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from alembic.util import CommandError

    from gridmap.store import migrate

    url = _database_url()
    progress = Progress()
    try:
        if args.downgrade:
            with progress.step(f"downgrading the schema to {args.downgrade}"):
                migrate.downgrade(url, args.downgrade)
        else:
            with progress.step(f"migrating the schema to {args.revision}"):
                migrate.upgrade(url, args.revision)
    except CommandError as exc:  # an unknown revision: alembic checks before it changes anything
        raise UserError(f"{exc}; the revisions are {', '.join(migrate.revisions())} (or head, base)") from exc
    print(f"schema at revision {migrate.current_revision(url) or 'base'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gridmap.services.demo import available, load_demo

    unknown = sorted(set(args.only or []) - set(available()))
    if unknown:
        raise UserError(f"unknown demo {', '.join(unknown)}; available: {', '.join(available())}")
    for result in load_demo(_engine(), args.only, force=args.force, progress=Progress()):
        if result.loaded:  # skipped demos were announced by load_demo already
            print(result)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from gridmap.services.importing import import_file

    path = _input_file(args.file)
    _crs(args.crs)
    _text_encoding(args.encoding)
    if args.layer is not None and not args.layer.strip():
        raise UserError("--layer needs a name")
    engine = _engine()
    _territory(engine, args.territory)
    summary = import_file(engine, path, territory=args.territory, layer=args.layer, crs=args.crs,
                          encoding=args.encoding, source_layer=args.source_layer, kind=args.kind,
                          expect=args.expect, replace=args.replace, actor=args.actor, progress=Progress())
    print(summary)
    return 0


def cmd_partition(args: argparse.Namespace) -> int:
    from gridmap.services.partitioning import partition_territory

    _household_band(args.min, args.max)
    report = _output_file(args.report, "--report") if args.report else None
    engine = _engine()
    _territory(engine, args.territory)
    summary = partition_territory(engine, args.territory, min_households=args.min, max_households=args.max,
                                  seed=args.seed, author=args.actor, rebuild_units=args.rebuild_units,
                                  progress=Progress(total=None))
    print(summary)
    if report is not None:
        from gridmap.web.reports import partition_report_html

        html_text = partition_report_html(summary.result.grids, summary.result.report, summary.result.flags,
                                          title=f"{args.territory} · draft plan {summary.version}", standalone=True)
        try:
            report.write_text(html_text, encoding="utf-8")
        except OSError as exc:  # checked writable above; a full disk is still possible
            raise UserError(f"draft plan {summary.version} (id {summary.plan_id}) is stored, but its report could "
                            f"not be written to {args.report} ({exc.strerror or exc}); the planner shows it at "
                            f"/plans/{summary.plan_id}/report") from exc
        print(f"report written to {args.report}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from gridmap.services.merging import merge_files

    _household_band(args.min, args.max)
    files = [_input_file(f, "departmental file") for f in args.files]
    _crs(args.crs)
    access = None
    if args.access_list:
        path = _input_file(args.access_list, "--access-list")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"--access-list {args.access_list} is not UTF-8 text ({exc.reason}); save it as "
                            "UTF-8, one duty code per line") from exc
        access = {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}
    engine = _engine()
    _territory(engine, args.territory)
    summary = merge_files(engine, args.territory, files, crs=args.crs, id_field=args.id_field,
                          min_households=args.min, max_households=args.max, access_list=access, seed=args.seed,
                          author=args.actor, progress=Progress())
    print(summary)
    return 0


def cmd_departments(args: argparse.Namespace) -> int:
    """Write generated departmental layers (one GeoPackage per department) for demos and tests."""
    from gridmap.geo.departments import departmental_layers
    from gridmap.services.partitioning import ensure_units
    from gridmap.store import plans

    out = _output_folder(args.out, "--out")
    engine = _engine()
    _territory(engine, args.territory)
    progress = Progress()
    units, _ = ensure_units(engine, args.territory, progress=progress)
    with engine.connect() as conn:
        communities = plans.communities_of(conn, args.territory)
    with progress.step(f"generating {args.count} departmental layers"):
        generated = departmental_layers(units, communities[["code", "name", "geometry"]], seed=args.seed,
                                        count=args.count)
    out.mkdir(exist_ok=True)
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

    engine = _engine()
    _territory(engine, args.territory)
    with engine.connect() as conn:
        rows = layers.list_for(conn, args.territory)
    if not rows:
        Progress().say(f"territory {args.territory} has no layers of its own (import some with `gridmap import`)")
    for row in rows:
        print(f"{row['name']:<24} {row['feature_count']:>8}  {row['geometry_type'] or '':<16} {row['source_file'] or ''}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gridmap.api.app import create_app

    url = _database_url()  # fail fast, with the message that says what to run
    _can_listen(args.host, args.port)
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

    if not args.no_serve:
        _can_listen(args.host, args.port)
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


def _check_role_options(args: argparse.Namespace) -> None:
    """The role options of `user add` and `user grant` fit together (before any password is asked)."""
    if args.action in ("passwd", "list"):
        given = [o for o, v in (("--role", args.role), ("--territory", args.territory), ("--everywhere", args.everywhere),
                                ("--department", args.department), ("--grids", args.grids)) if v]
        if given:
            raise UserError(f"`gridmap user {args.action}` takes no {', '.join(given)} (those are for add and grant)")
        return
    if args.action == "grant" and not args.role:
        raise UserError("grant needs --role ROLE and --territory CODE (or --role admin --everywhere)")
    if args.territory and args.everywhere:
        raise UserError("give --territory CODE or --everywhere, not both")
    if not args.role:
        if args.territory or args.everywhere or args.department or args.grids:
            raise UserError("--territory, --everywhere, --department and --grids need --role ROLE")
        return
    if args.everywhere and args.role != "admin":
        raise UserError(f"--everywhere is for --role admin only (the administrator of every territory); "
                        f"give {args.role} a --territory CODE")
    if not (args.territory or args.everywhere):
        raise UserError(f"--role {args.role} needs --territory CODE"
                        + (" (or --everywhere: admin of every territory, present and future)"
                           if args.role == "admin" else ""))
    if args.department and args.role != "handler":
        raise UserError("--department binds a handler only (--role handler)")
    if args.grids and args.role != "worker":
        raise UserError("--grids binds a grid worker only (--role worker)")


def cmd_user(args: argparse.Namespace) -> int:
    import json

    import sqlalchemy as sa

    from gridmap.store import audit, users

    _check_role_options(args)
    engine = _engine()
    if args.action == "list":
        if args.name:
            raise UserError("`gridmap user list` takes no user name")
        with engine.connect() as conn:
            for row in users.list_users(conn):
                roles = ", ".join(users.describe_role(r["role"], r["territory"]) for r in row["roles"]) or "no roles"
                print(f"{row['username']:<20} {'active' if row['active'] else 'disabled':<9} {roles}")
        return 0
    if not args.name:
        raise UserError(f"`gridmap user {args.action}` needs a user name")
    with engine.connect() as conn:  # before the password is asked for
        exists = conn.execute(sa.text("SELECT 1 FROM users WHERE username = :u"), {"u": args.name}).first()
    if args.action == "add" and exists:
        raise UserError(f"user {args.name!r} already exists; `gridmap user grant` gives it more roles")
    if args.action != "add" and not exists:
        raise UserError(f"no user {args.name!r}; `gridmap user list` lists them, `gridmap user add` makes one")
    if args.territory:
        _territory(engine, args.territory)
    territory = None if args.everywhere else args.territory
    grids = [g.strip() for g in args.grids.split(",") if g.strip()] if args.grids else None
    password = _password(args) if args.action in ("add", "passwd") else None
    with engine.begin() as conn:  # one transaction: a refused grant leaves no user behind
        try:
            if args.action == "add":
                users.create_user(conn, args.name, password, display_name=args.display_name)
            elif args.action == "passwd":
                users.set_password(conn, args.name, password)
            if args.role:
                users.grant(conn, args.name, args.role, territory, department=args.department, grid_codes=grids)
        except users.UserError as exc:
            raise UserError(str(exc)) from exc
        audit.record(conn, actor="cli", action=f"user.{args.action}", table="users", row_key=args.name,
                     after=json.loads(json.dumps({"role": args.role, "territory": territory,
                                                  "everywhere": bool(args.everywhere),
                                                  "department": args.department, "grids": args.grids})))
    done = f" ({users.describe_role(args.role, territory)})" if args.role else ""
    print(f"user {args.name}: {args.action} done{done}")
    return 0


def cmd_apikey(args: argparse.Namespace) -> int:
    from gridmap.store import audit, users

    if args.action != "create" and (args.user or args.days is not None):
        raise UserError(f"`gridmap apikey {args.action}` takes no --user or --days (those are for create)")
    engine = _engine()
    if args.action == "list":
        if args.name:
            raise UserError("`gridmap apikey list` takes no key name")
        with engine.connect() as conn:
            for row in users.list_api_keys(conn):
                state = "revoked" if row["revoked_at"] else (f"expires {row['expires_at']:%Y-%m-%d}"
                                                             if row["expires_at"] else "no expiry")
                used = f"last used {row['last_used_at']:%Y-%m-%d %H:%M}" if row["last_used_at"] else "never used"
                print(f"{row['name']:<24} as {row['username']:<16} {state:<20} {used}")
        return 0
    if not args.name:
        raise UserError(f"`gridmap apikey {args.action}` needs the key's name")
    if args.action == "create" and not args.user:
        raise UserError("create needs --user USER (the key acts with that user's roles)")
    with engine.begin() as conn:
        try:
            if args.action == "create":
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


def _edits_file(path_text: str | None) -> tuple[list, int | None]:
    """The operations (and the version they were made against) of a `plan edits` JSON file."""
    import json

    if not path_text:
        raise UserError("usage: gridmap plan edits ID FILE.json (a JSON file {version, operations: [...]})")
    path = _input_file(path_text, "edits file")
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"edits file {path_text} is not UTF-8 text ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"edits file {path_text} is not valid JSON: {exc.msg} at line {exc.lineno} "
                        f"column {exc.colno}") from exc
    if isinstance(body, list):
        ops, version = body, None
    elif isinstance(body, dict) and isinstance(body.get("operations"), list):
        ops, version = body["operations"], body.get("version")
    else:
        raise UserError(f"edits file {path_text} needs {{\"version\": N, \"operations\": [...]}} or a list of "
                        "operations")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise UserError(f"edits file {path_text}: \"version\" must be a whole number (the draft version the edits "
                        "were made against)")
    if not ops or not all(isinstance(op, dict) for op in ops):
        raise UserError(f"edits file {path_text}: \"operations\" must be a non-empty list of objects such as "
                        "{\"op\": \"assign\", \"units\": [...], \"grid\": \"...\"}")
    return ops, version


def cmd_plan(args: argparse.Namespace) -> int:
    import json

    from gridmap.services import planning

    if args.file and args.action != "edits":
        raise UserError(f"`gridmap plan {args.action}` takes no FILE (only edits does)")
    if args.source and args.action != "draft":
        raise UserError("--source is for `gridmap plan draft` only")
    if args.publish and args.action != "revert":
        raise UserError("--publish is for `gridmap plan revert` only")
    by_territory = args.action in ("draft", "history")
    plan_id = None if by_territory else _plan_id(args.target)
    source = "published"
    if args.source:
        source = _plan_id(args.source)
    ops, version = _edits_file(args.file) if args.action == "edits" else (None, None)
    engine = _engine()
    if by_territory:
        _territory(engine, args.target)
    try:
        if args.action == "draft":
            plan_id, version = planning.new_draft(engine, args.target, actor=args.actor, source=source)
            print(f"draft plan {version} (id {plan_id}) of {args.target}")
        elif args.action == "history":
            for row in planning.history(engine, args.target):
                print(f"plan {row['id']:<5} v{row['version']:<4} {row['status']:<10} {row['origin'] or '':<10} "
                      f"{row['grids']:>5} grids  valid {row['valid_from'] or '-'} .. {row['valid_to'] or '-'}")
        elif args.action == "edits":
            result = planning.apply_edits(engine, plan_id, ops, version=version, actor=args.actor)
            print(json.dumps(result.as_dict()["summary"], default=str))
        elif args.action == "validate":
            report = planning.validate(engine, plan_id)
            for p in report["problems"]:
                print(f"{p['severity']:<8} {p['kind']:<16} {p['message_en']}")
            print(f"{report['errors']} errors, {report['warnings']} warnings")
            return 0 if report["valid"] else 1
        elif args.action == "diff":
            d = planning.diff(engine, plan_id)
            print(f"against plan {d['against']}: {len(d['added'])} grids added, {len(d['removed'])} removed, "
                  f"{len(d['changed'])} changed, {d['units_moved']} units moved")
        elif args.action == "publish":
            out = planning.publish(engine, plan_id, version=None, actor=args.actor)
            print(f"plan {out['id']} published; previous published plan: {out['previous'] or 'none'}")
        elif args.action == "revert":
            out = planning.revert(engine, plan_id, actor=args.actor, publish_now=args.publish)
            print(f"new draft {out['plan_id']} from plan {plan_id}" + (" (published)" if out["published"] else ""))
    except planning.VersionConflict as exc:
        raise UserError(f"{exc}; see `gridmap plan history`, then make the edits against the current version") from exc
    except (planning.EditError, LookupError) as exc:
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

    if args.file and args.action != "import":
        raise UserError(f"`gridmap stations {args.action}` takes no FILE (only import does)")
    if args.action == "types":
        for t in stations.station_types():
            print(f"{t['code']:<24} {t['name_zh']} / {t['name_en']}")
        return 0
    if args.action == "import":
        if not args.file:
            raise UserError("usage: gridmap stations import FILE --territory CODE [--type TYPE]")
        path = _input_file(args.file)
        _crs(args.crs)
        if args.type is not None and args.type not in stations.TYPE_CODES:
            raise UserError(f"unknown station type --type {args.type!r}; `gridmap stations types` lists them")
    engine = _engine()
    _territory(engine, args.territory)
    try:
        if args.action == "import":
            from gridmap.geo.io import read_vector

            frame = read_vector(path, crs=args.crs).frame
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
    import re

    from gridmap.geo.crs import CRSError, output_crs
    from gridmap.services.exporting import ExportRequest, export_territory, parse_layers

    if not re.fullmatch(r"published|draft|[0-9]{1,9}", args.plan):
        raise UserError(f"--plan {args.plan!r}: give published, draft or a version number")
    layers = parse_layers(args.layers)
    try:
        target = output_crs(args.crs, 116.4, 39.9)  # the zone of gk3 does not matter for the check
    except CRSError:
        raise UserError(f"unknown --crs {args.crs!r}; choose 4490, 4326, gk3, gk3-cm, gcj02 or an EPSG code") from None
    if args.format in ("geojson", "kml") and not target.geographic:
        raise UserError(f"{args.format} is always longitude/latitude; choose --crs 4326, 4490 or gcj02, or "
                        "--format gpkg, shp or csv for a projected CRS")
    if args.encoding == "gbk" and args.format not in ("shp", "csv"):
        raise UserError(f"{args.format} is UTF-8 by definition; --encoding gbk is for shp and csv")
    if args.format == "kml" and "crosswalk" in layers:
        raise UserError("KML holds map features only; leave the crosswalk out of --layers, or choose gpkg")
    out = _output_file(args.out, "--out")
    engine = _engine()
    _territory(engine, args.territory)
    request = ExportRequest(territory=args.territory, format=args.format, crs=args.crs, encoding=args.encoding,
                            plan=args.plan, layers=layers)
    result = export_territory(engine, request, out)
    counts = ", ".join(f"{name} {n}" for name, n in result.layers.items())
    print(f"wrote {result.path} ({result.format}, {result.crs}, {result.encoding}): {counts}")
    return 0


# -- parser -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gridmap", description="Plan and run community grids (网格化服务管理).",
                     epilog=f"Errors are one line; {DEBUG_VARIABLE}=1 shows their traceback too.")
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
    part.add_argument("--min", type=_positive_int, default=300, help="minimum households per grid (default 300)")
    part.add_argument("--max", type=_positive_int, default=500, help="maximum households per grid (default 500)")
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
    mer.add_argument("--min", type=_positive_int, default=300)
    mer.add_argument("--max", type=_positive_int, default=500)
    mer.add_argument("--seed", type=int, default=0)
    mer.add_argument("--actor", default="cli")
    mer.set_defaults(func=cmd_merge)

    dep = sub.add_parser("departments", help="write generated departmental layers for a demo territory")
    dep.add_argument("--territory", required=True, metavar="CODE")
    dep.add_argument("--out", required=True, metavar="DIR")
    dep.add_argument("--count", type=_positive_int, default=19)
    dep.add_argument("--seed", type=int, default=0)
    dep.set_defaults(func=cmd_departments)

    ter = sub.add_parser("territories", help="list the territory tree")
    ter.set_defaults(func=cmd_territories)

    lay = sub.add_parser("layers", help="list a territory's layers")
    lay.add_argument("--territory", required=True, metavar="CODE")
    lay.set_defaults(func=cmd_layers)

    usr = sub.add_parser("user", help="manage users and their territory-scoped roles (admin: also everywhere)")
    usr.add_argument("action", choices=["add", "grant", "passwd", "list"])
    usr.add_argument("name", nargs="?")
    usr.add_argument("--role", choices=["admin", "planner", "handler", "worker", "viewer"])
    usr.add_argument("--territory", metavar="CODE", help="the role covers this territory and everything below")
    usr.add_argument("--everywhere", action="store_true",
                     help="with --role admin: administrator of every territory, present and future (全部)")
    usr.add_argument("--display-name")
    usr.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    usr.add_argument("--department", metavar="CODE", help="grant handler: bind to one department (sees only its incidents)")
    usr.add_argument("--grids", metavar="CODE,CODE", help="grant worker: bind to these grid codes")
    usr.set_defaults(func=cmd_user)

    key = sub.add_parser("apikey", help="API keys for other systems: create, list, revoke")
    key.add_argument("action", choices=["create", "list", "revoke"])
    key.add_argument("name", nargs="?", help="the key's name (which system uses it)")
    key.add_argument("--user", help="create: the user whose roles the key carries")
    key.add_argument("--days", type=_positive_float, help="create: expire after this many days (default: never)")
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
    sta.add_argument("--minutes", type=_positive_float, default=15.0)
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
        p.add_argument("--port", type=_port, default=8000)
        p.add_argument("--log-level", default="info")
        if name == "up":
            p.add_argument("--no-serve", action="store_true", help="stop after loading the demo")
        p.set_defaults(func=func)
    return parser


def _one_line(text: str, limit: int = 600) -> str:
    line = " ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _explain(exc: BaseException) -> str:
    """One line saying what went wrong and what to do, for any exception."""
    import sqlalchemy as sa

    from gridmap.services.planning import VersionConflict
    from gridmap.store.cluster import ClusterError
    from gridmap.store.db import DatabaseUnavailable

    debug = f"run again with {DEBUG_VARIABLE}=1 to see the traceback"
    if isinstance(exc, (UserError, ClusterError, DatabaseUnavailable, VersionConflict)):
        return _one_line(exc)
    if isinstance(exc, sa.exc.OperationalError) and exc.statement is None:  # failed to connect
        first = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
        return _one_line(f"cannot connect to the database: {first} — is it running "
                         "(`gridmap db status`, `gridmap db start`), and is GRIDMAP_DATABASE_URL right?")
    if isinstance(exc, sa.exc.ProgrammingError) and "does not exist" in str(exc.orig):
        first = str(exc.orig).strip().splitlines()[0]
        return _one_line(f"the database schema is missing or old ({first}): run `gridmap migrate`")
    if isinstance(exc, sa.exc.DBAPIError) or type(exc).__module__.startswith("psycopg2"):
        orig = getattr(exc, "orig", None) or exc  # raw psycopg2 errors come from COPY (db dump, restore)
        first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        return _one_line(f"database error: {first}; {debug}")
    if isinstance(exc, (KeyError, IndexError)):  # their text is a bare key: a bug, not a message
        return _one_line(f"unexpected {type(exc).__name__}: {exc}; this is a bug: {debug} and report it")
    if isinstance(exc, (ValueError, LookupError)):  # the project's own errors (bad file, CRS, territory ...)
        return _one_line(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        return _one_line(f"cannot use{where}: {exc.strerror}; check the path, its permissions and free space")
    return _one_line(f"unexpected {type(exc).__name__}: {exc or 'no message'}; this is a bug: {debug} and report it")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Every error ends as one line on stderr (``gridmap: error: ...``) and a
    non-zero status: 1 for errors, 2 for wrong arguments, 130 when interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return func(args)
    except KeyboardInterrupt:
        print("gridmap: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `gridmap ... | head`: the reader has gone, nothing to say
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into messages
        if os.environ.get(DEBUG_VARIABLE, "").strip() not in ("", "0", "false", "no"):
            import traceback

            traceback.print_exc()
        print(f"gridmap: error: {_explain(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
