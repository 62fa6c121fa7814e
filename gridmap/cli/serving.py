"""The commands that run the service: ``gridmap serve`` (the web app and API) and ``gridmap up``
(the quickstart: start the database, migrate, load the demo, then serve)."""

from __future__ import annotations

import argparse

from gridmap.cli import checks
from gridmap.progress import Progress


def register(sub: argparse._SubParsersAction) -> None:
    """Add serve and up to the ``gridmap`` parser."""
    for name, func, helptext in (("serve", cmd_serve, "serve the web app and API"),
                                 ("up", cmd_up, "start the database, migrate, load the demo and serve")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=checks.port, default=8000)
        p.add_argument("--log-level", default="info")
        p.add_argument("--workers", type=checks.positive_int, default=1,
                       help="server processes (uvicorn workers) sharing the port; default 1")
        if name == "up":
            p.add_argument("--no-serve", action="store_true", help="stop after loading the demo")
            p.add_argument("--no-demo", action="store_true",
                           help="load no demo territories, plans, incidents or registrations: a database for a "
                                "district's own data alone (migrations, incident categories and the admin user only)")
        p.set_defaults(func=func)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gridmap.api.app import create_app

    url = checks.database_url()  # fail fast, with the message that says what to run
    checks.can_listen(args.host, args.port)
    workers = getattr(args, "workers", 1)
    Progress().say(f"serving on http://{args.host}:{args.port}  (API docs at /docs)"
                   + (f", {workers} processes" if workers > 1 else ""),
                   f"服务地址 http://{args.host}:{args.port}（接口文档在 /docs）" + (f"，{workers} 个进程" if workers > 1 else ""))
    if workers == 1:
        uvicorn.run(create_app(database_url=url), host=args.host, port=args.port, log_level=args.log_level)
        return 0
    # several processes: each builds the app itself (uvicorn's factory), on the database found here;
    # what they share lives in PostgreSQL (the units cache is checked against the plan's row, the
    # supervision pass runs in one of them at a time)
    import os

    os.environ["GRIDMAP_DATABASE_URL"] = url
    uvicorn.run("gridmap.api.app:create_app", factory=True, host=args.host, port=args.port, workers=workers,
                log_level=args.log_level)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Everything the quickstart needs, in order; each step is idempotent."""
    from gridmap.services.demo import load_demo
    from gridmap.settings import Settings
    from gridmap.store import migrate
    from gridmap.store.cluster import cluster_from_settings
    from gridmap.store.databases import ensure_postgis_database
    from gridmap.store.db import engine_for, normalise_url

    if not args.no_serve:
        checks.can_listen(args.host, args.port)
    progress = Progress()
    settings = Settings.from_env()
    if settings.database_url:
        url = normalise_url(settings.database_url)
        ensure_postgis_database(url, progress)
    else:
        url = cluster_from_settings(settings).start(progress)
    with progress.step("applying migrations", "执行数据库迁移"):
        migrate.upgrade(url)
    engine = engine_for(url)
    if not args.no_demo:
        for result in load_demo(engine, progress=progress):
            if result.loaded:  # skipped demos were announced by load_demo already
                progress.say(str(result), result.zh())
    from gridmap.services.bootstrap import (
        ensure_admin,
        ensure_demo_incidents,
        ensure_demo_plans,
        ensure_demo_registrations,
        ensure_demo_stations,
        ensure_district_demo,
        ensure_incident_categories,
        ensure_secret_key,
    )

    if not args.no_demo:
        ensure_district_demo(engine, progress=progress)
        ensure_demo_plans(engine, progress=progress)
    ensure_incident_categories(engine, progress=progress)
    if not args.no_demo:
        ensure_demo_stations(engine, progress=progress)
        ensure_demo_incidents(engine, progress=progress)
        ensure_demo_registrations(engine, progress=progress)
    ensure_admin(engine, settings.home, progress=progress)
    ensure_secret_key(settings, progress=progress)
    if args.no_serve:
        return 0
    return cmd_serve(args)
