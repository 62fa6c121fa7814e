"""The commands on who may do what: ``gridmap user`` (users and their territory-scoped roles) and
``gridmap apikey`` (API keys for other systems)."""

from __future__ import annotations

import argparse
import sys

from gridmap.cli import checks
from gridmap.cli.checks import UserError
from gridmap.progress import Progress
from gridmap.sign_in_roles import ROLE_ZH, USER_ROLES


USER_ACTION_ZH = {"add": "添加", "grant": "授予角色", "passwd": "修改密码"}  # `user ACTION`'s line, in Chinese



def register(sub: argparse._SubParsersAction) -> None:
    """Add user and apikey to the ``gridmap`` parser."""
    usr = sub.add_parser("user", help="manage users and their territory-scoped roles (admin: also everywhere)")
    usr.add_argument("action", choices=["add", "grant", "passwd", "list"])
    usr.add_argument("name", nargs="?")
    usr.add_argument("--role", choices=list(USER_ROLES))
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
    key.add_argument("--days", type=checks.positive_float, help="create: expire after this many days (default: never)")
    key.set_defaults(func=cmd_apikey)


def _password(args: argparse.Namespace) -> str:
    """From --password-stdin, or asked for twice on a terminal."""
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise UserError("the passwords differ / 两次输入的密码不一致")
    return first


def _check_role_options(args: argparse.Namespace) -> None:
    """The role options of `user add` and `user grant` fit together (before any password is asked)."""
    if args.action in ("passwd", "list"):
        given = [o for o, v in (("--role", args.role), ("--territory", args.territory), ("--everywhere", args.everywhere),
                                ("--department", args.department), ("--grids", args.grids)) if v]
        if given:
            raise UserError(f"`gridmap user {args.action}` takes no {', '.join(given)} (those are for add and grant) / "
                            f"`gridmap user {args.action}` 不接受 {'、'.join(given)}（这些只用于 add 和 grant）")
        return
    if args.action == "grant" and not args.role:
        raise UserError("grant needs --role ROLE and --territory CODE (or --role admin --everywhere) / "
                        "grant 须给出 --role 角色 和 --territory 辖区代码（或 --role admin --everywhere）")
    if args.territory and args.everywhere:
        raise UserError("give --territory CODE or --everywhere, not both / --territory 与 --everywhere 只能给出其一")
    if not args.role:
        if args.territory or args.everywhere or args.department or args.grids:
            raise UserError("--territory, --everywhere, --department and --grids need --role ROLE / "
                            "--territory、--everywhere、--department、--grids 须与 --role 角色 一起使用")
        return
    if args.everywhere and args.role != "admin":
        raise UserError(f"--everywhere is for --role admin only (the administrator of every territory); "
                        f"give {args.role} a --territory CODE / --everywhere 只用于 --role admin（所有辖区的管理员）；"
                        f"{ROLE_ZH.get(args.role, args.role)}角色请给出 --territory 辖区代码")
    if not (args.territory or args.everywhere):
        raise UserError(f"--role {args.role} needs --territory CODE"
                        + (" (or --everywhere: admin of every territory, present and future)"
                           if args.role == "admin" else "")
                        + f" / --role {args.role} 须给出 --territory 辖区代码"
                        + ("（或 --everywhere：现有及今后所有辖区的管理员）" if args.role == "admin" else ""))
    if args.department and args.role != "handler":
        raise UserError("--department binds a handler only (--role handler) / --department 只用于处置员（--role handler）")
    if args.grids and args.role != "worker":
        raise UserError("--grids binds a grid worker only (--role worker) / --grids 只用于网格员（--role worker）")


def _list_users(args: argparse.Namespace, engine) -> int:
    from gridmap.store import users

    if args.name:
        raise UserError("`gridmap user list` takes no user name / `gridmap user list` 不接受用户名")
    with engine.connect() as conn:
        for row in users.list_users(conn):
            roles = ", ".join(users.describe_role(r["role"], r["territory"]) for r in row["roles"]) or "no roles"
            state = "active / 启用" if row["active"] else "disabled / 停用"
            print(f"{row['username']:<20} {state:<15} {roles}")
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    from gridmap.store import audit, users

    _check_role_options(args)
    engine = checks.engine()
    if args.action == "list":
        return _list_users(args, engine)
    if not args.name:
        raise UserError(f"`gridmap user {args.action}` needs a user name / `gridmap user {args.action}` 须给出用户名")
    with engine.connect() as conn:  # before the password is asked for
        exists = users.exists(conn, args.name)
    if args.action == "add" and exists:
        raise UserError(f"user {args.name!r} already exists; `gridmap user grant` gives it more roles / "
                        f"用户 {args.name} 已存在；可用 `gridmap user grant` 为其增加角色")
    if args.action != "add" and not exists:
        raise UserError(f"no user {args.name!r}; `gridmap user list` lists them, `gridmap user add` makes one / "
                        f"没有用户 {args.name}；`gridmap user list` 列出全部用户，`gridmap user add` 新建用户")
    if args.territory:
        checks.territory(engine, args.territory)
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
            raise UserError(checks.said(exc)) from exc
        audit.record(conn, actor="cli", action=f"user.{args.action}", table="users", row_key=args.name,
                     after={"role": args.role, "territory": territory, "everywhere": bool(args.everywhere),
                            "department": args.department, "grids": args.grids})
    done = f" ({users.describe_role(args.role, territory)})" if args.role else ""
    print(f"user {args.name}: {args.action} done{done} / 用户 {args.name}：已{USER_ACTION_ZH[args.action]}{done}")
    return 0


def cmd_apikey(args: argparse.Namespace) -> int:
    from gridmap.store import audit, users

    if args.action != "create" and (args.user or args.days is not None):
        raise UserError(f"`gridmap apikey {args.action}` takes no --user or --days (those are for create) / "
                        f"`gridmap apikey {args.action}` 不接受 --user 或 --days（这些只用于 create）")
    engine = checks.engine()
    if args.action == "list":
        if args.name:
            raise UserError("`gridmap apikey list` takes no key name / `gridmap apikey list` 不接受密钥名称")
        with engine.connect() as conn:
            for row in users.list_api_keys(conn):
                state = "revoked / 已撤销" if row["revoked_at"] else (
                    f"expires / 到期 {row['expires_at']:%Y-%m-%d}" if row["expires_at"] else "no expiry / 不过期")
                used = (f"last used / 最近使用 {row['last_used_at']:%Y-%m-%d %H:%M}" if row["last_used_at"]
                        else "never used / 从未使用")
                print(f"{row['name']:<24} as / 用户 {row['username']:<16} {state:<26} {used}")
        return 0
    if not args.name:
        raise UserError(f"`gridmap apikey {args.action}` needs the key's name / `gridmap apikey {args.action}` 须给出密钥名称")
    if args.action == "create" and not args.user:
        raise UserError("create needs --user USER (the key acts with that user's roles) / "
                        "create 须给出 --user 用户名（密钥以该用户的角色行事）")
    with engine.begin() as conn:
        try:
            if args.action == "create":
                key = users.create_api_key(conn, args.user, args.name, days=args.days)
            else:
                users.revoke_api_key(conn, args.name)
        except users.UserError as exc:
            raise UserError(checks.said(exc)) from exc
        audit.record(conn, actor="cli", action=f"apikey.{args.action}", table="auth_tokens", row_key=args.name,
                     after={"user": args.user, "days": args.days} if args.action == "create" else {"revoked": True})
    if args.action == "create":
        print(key)
        Progress().say("the key is shown once: store it in the other system now (send it as "
                       "'Authorization: Bearer KEY', or as api_key for Open311)",
                       "密钥只显示这一次：请立即保存到对方系统（以 'Authorization: Bearer KEY' 发送，Open311 用 api_key）")
    else:
        print(f"API key {args.name} revoked / API 密钥 {args.name} 已撤销")
    return 0
