"""Request-scoped dependencies: the database connection, the signed-in user, access checks.

Refusals are raised as :mod:`gridmap.errors` kinds (401 :class:`Unauthenticated`, 403
:class:`Forbidden`) with both languages; ``api.errors`` answers them."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from gridmap.errors import Forbidden, Unauthenticated

from gridmap.store import users
from gridmap.store.db import statement_by_statement
from gridmap.store.users import CurrentUser, incident_scopes

bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)
READ_ROLES = ("planner", "handler", "worker", "viewer")
from gridmap.sign_in_roles import ROLE_ZH  # noqa: E402  (re-exported: api.incidents uses it from here)
# what require_role's callers say they were refused, in Chinese ("{user} 无权在辖区 X {action}")
ACTION_ZH = {"edit plans": "编辑方案", "create drafts": "新建草稿", "publish plans": "发布方案",
             "revert plans": "恢复方案", "read drafts": "查看草稿", "export drafts": "导出草稿",
             "import layers": "导入图层", "create stations": "新建站点", "edit stations": "编辑站点",
             "close stations": "关闭站点", "read staff": "查看网格人员", "manage staff": "管理网格人员", "import territories": "导入辖区", "set profiles": "设置辖区规则",
             "delete drafts": "删除草稿", "print drafts": "打印草稿",
             "read the households register": "查看住户登记", "manage the households register": "管理住户登记",
             "export the households register in full": "导出完整住户登记（不脱敏）",
             "read the lists": "查看需求、资源和项目清单", "record needs": "登记和处理需求",
             "manage the lists": "管理资源和项目清单", "record patrols": "记录巡查轨迹", "read patrols": "查看巡查",
             "run emergencies": "启动或结束应急状态", "read emergencies": "查看应急状态",
             "check in": "应急签到", "run campaigns": "组织敲门行动", "knock on doors": "入户敲门",
             "read campaigns": "查看敲门行动", "blow the whistle": "吹哨", "answer whistles": "响应吹哨并报到",
             "read whistles": "查看吹哨报到"}


def place_check(engine: sa.Engine, user: CurrentUser, roles: tuple[str, ...], action: str):
    """A check of where ``user`` may act (their roles' communities, and grids for a grid worker
    bound to grids), for a service to call with {grid: community} before it stores anything."""
    def check(places: dict[str, str]) -> None:
        with engine.connect() as conn:
            scopes = incident_scopes(conn, user, roles)
        refused = sorted(g for g, c in places.items() if not any(s.covers(c, g) for s in scopes))
        if refused:
            raise Forbidden(f"{user.username} may not {action} in grid {', '.join(refused)}",
                            f"{user.username} 无权在网格 {'、'.join(refused)} {ACTION_ZH.get(action, action)}")
    return check


def get_conn(request: Request) -> Iterator[sa.Connection]:
    """A read connection per request; writes open their own transaction with engine.begin().

    Closing a connection whose server went away (a restart between the query and the end of the
    request) must not turn an answered request into an error: the pool discards that connection."""
    conn = request.app.state.engine.connect()
    try:
        yield conn
    finally:
        try:
            conn.close()
        except sa.exc.DBAPIError:
            pass


def optional_user(request: Request, token: str | None = Depends(bearer)) -> CurrentUser | None:
    """The user a bearer token belongs to, None without a token; 401 for a bad or expired one."""
    if not token:
        return None
    with statement_by_statement(request.app.state.engine) as conn:
        user = users.user_for_token(conn, token)
    if user is None:
        raise Unauthenticated("the sign-in token is invalid or has expired; sign in again", "登录凭据无效或已过期；请重新登录")
    return user


SIGN_IN_FIRST = ("sign in first (POST /api/auth/token)", "请先登录（POST /api/auth/token）")


# (the dependencies that only look at what they are given are coroutines: FastAPI runs them in the
# event loop, where a plain function would be handed to a worker thread and back, on every request)
async def signed_in(user: CurrentUser | None = Depends(optional_user)) -> CurrentUser:
    if user is None:
        raise Unauthenticated(*SIGN_IN_FIRST)
    return user


def may_read_published(request: Request, user: CurrentUser | None) -> CurrentUser | None:
    """Reading published data: open, unless GRIDMAP_PUBLIC_READ=false asks for a signed-in user."""
    if user is None and not request.app.state.settings.public_read:
        raise Unauthenticated("this deployment requires signing in to read data", "本系统要求登录后才能查看数据")
    return user


async def public_reader(request: Request, user: CurrentUser | None = Depends(optional_user)) -> CurrentUser | None:
    """:func:`may_read_published`, as a dependency."""
    return may_read_published(request, user)


def require_role(conn: sa.Connection, user: CurrentUser | None, roles: tuple[str, ...], territory: str,
                 action: str) -> CurrentUser:
    """401 without a user; 403 unless the user holds one of ``roles`` (or admin) over ``territory``."""
    if user is None:
        raise Unauthenticated(*SIGN_IN_FIRST)
    if not users.has_role(conn, user, roles, territory):
        raise Forbidden(f"{user.username} may not {action} in territory {territory} "
                        f"(needs the role {' or '.join(roles)} there or above)",
                        f"{user.username} 无权在辖区 {territory} {ACTION_ZH.get(action, action)}"
                        f"（需要该辖区或上级辖区的{'或'.join(ROLE_ZH.get(r, r) for r in roles)}角色）")
    return user


def require_role_reaching(conn: sa.Connection, user: CurrentUser | None, roles: tuple[str, ...], territory: str,
                          action: str) -> CurrentUser:
    """As :func:`require_role`, but a role on a part of ``territory`` counts too (a community's
    grid worker in an emergency switched on over their street): what they may do there is then
    checked grid by grid (:func:`place_check`)."""
    if user is not None and not users.has_role(conn, user, roles, territory) \
            and users.scopes_within(conn, user, roles, territory):
        return user
    return require_role(conn, user, roles, territory, action)


def require_admin(conn: sa.Connection, user: CurrentUser | None, territory: str | None, action: str) -> CurrentUser:
    """401 without a user; 403 unless the user administers ``territory`` (or above), or, with no
    territory (something new at the top of the tree), every territory."""
    if territory is not None:
        return require_role(conn, user, ("admin",), territory, action)
    if user is None:
        raise Unauthenticated(*SIGN_IN_FIRST)
    if not users.admin_everywhere(conn, user):
        raise Forbidden(f"{user.username} may not {action}: that needs an administrator of every territory "
                        "(or name the parent territory you administer)",
                        f"{user.username} 无权{ACTION_ZH.get(action, action)}：需要全部辖区的管理员"
                        "（或指定您管理的上级辖区）")
    return user
