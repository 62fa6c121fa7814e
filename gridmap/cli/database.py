"""The database commands: ``gridmap db`` (the private local PostGIS cluster; dump and restore a
territory), ``gridmap migrate`` (the schema) and ``gridmap demo`` (load the demo territories)."""

from __future__ import annotations

import argparse

from gridmap.cli import checks
from gridmap.cli.checks import UserError
from gridmap.progress import Progress


def register(sub: argparse._SubParsersAction) -> None:
    """Add db, migrate and demo to the ``gridmap`` parser."""
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


def cmd_db(args: argparse.Namespace) -> int:
    from gridmap.settings import Settings
    from gridmap.store.cluster import cluster_from_settings

    if args.action in ("dump", "restore"):
        return _backup(args)
    if args.file or args.territory or args.out or args.replace:
        raise UserError(f"`gridmap db {args.action}` takes no FILE, --territory, --out or --replace "
                        f"(those are for dump and restore) / `gridmap db {args.action}` 不接受文件、--territory、--out "
                        "或 --replace 参数（这些只用于 dump 和 restore）")
    settings = Settings.from_env()
    cluster = cluster_from_settings(settings)
    if settings.database_url and args.action in ("start", "stop"):
        Progress().say("GRIDMAP_DATABASE_URL is set: the local cluster is not used by gridmap",
                       "已设置 GRIDMAP_DATABASE_URL：gridmap 不使用本地集群")
    if args.action == "start":
        cluster.start(Progress())
        _say_status(cluster.status())
    elif args.action == "stop":
        stopped = cluster.stop(Progress())
        print("stopped / 已停止" if stopped else "was not running / 原本未运行")
    elif args.action == "status":
        status = cluster.status()
        _say_status(status)
        return 0 if status.running else 3
    elif args.action == "url":
        print(settings.database_url or cluster.url())
    return 0


def _say_status(status) -> None:
    """The cluster's state: a line in English, then the same in Chinese."""
    print(status.describe())
    print(f"  {status.describe_zh()}")


def _backup(args: argparse.Namespace) -> int:
    from gridmap.store import backup

    if args.action == "dump":
        if not args.territory or not args.out or args.file:
            raise UserError("usage: gridmap db dump --territory CODE --out FILE.zip / "
                            "用法：gridmap db dump --territory 辖区代码 --out 文件.zip")
        out = checks.output_file(args.out, "--out")
        engine = checks.engine()
        checks.territory(engine, args.territory)
        done = backup.dump(engine, args.territory, out)
        print(f"dumped {done}")
        print(f"  已导出{done.zh()}")
    else:
        if not args.file or args.territory or args.out:
            raise UserError("usage: gridmap db restore FILE.zip [--replace] (the dump names its territory) / "
                            "用法：gridmap db restore 文件.zip [--replace]（辖区由备份文件本身指明）")
        path = checks.input_file(args.file, "dump")
        done = backup.restore(checks.engine(), path, replace=args.replace)
        print(f"restored {done}")
        print(f"  已恢复{done.zh()}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from alembic.util import CommandError

    from gridmap.store import migrate

    url = checks.database_url()
    progress = Progress()
    try:
        if args.downgrade:
            with progress.step(f"downgrading the schema to {args.downgrade}", f"将数据库结构降级到 {args.downgrade}"):
                migrate.downgrade(url, args.downgrade)
        else:
            with progress.step(f"migrating the schema to {args.revision}", f"将数据库结构迁移到 {args.revision}"):
                migrate.upgrade(url, args.revision)
    except CommandError as exc:  # an unknown revision: alembic checks before it changes anything
        raise UserError(f"{exc}; the revisions are {', '.join(migrate.revisions())} (or head, base) / "
                        f"无法识别的数据库结构版本；可选版本为 {'、'.join(migrate.revisions())}（或 head、base）") from exc
    revision = migrate.current_revision(url) or "base"
    print(f"schema at revision {revision} / 数据库结构版本 {revision}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gridmap.services.demo import available, load_demo

    unknown = sorted(set(args.only or []) - set(available()))
    if unknown:
        raise UserError(f"unknown demo {', '.join(unknown)}; available: {', '.join(available())} / "
                        f"没有示例 {'、'.join(unknown)}：可选 {'、'.join(available())}")
    for result in load_demo(checks.engine(), args.only, force=args.force, progress=Progress()):
        if result.loaded:  # skipped demos were announced by load_demo already
            print(result)
            print(f"  {result.zh()}")
    return 0
