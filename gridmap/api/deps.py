"""Request-scoped dependencies: the database connection, the signed-in user, access checks."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from gridmap.store import users
from gridmap.store.users import CurrentUser

bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)
READ_ROLES = ("planner", "handler", "worker", "viewer")


def get_engine(request: Request) -> sa.Engine:
    return request.app.state.engine


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
    with request.app.state.engine.begin() as conn:
        user = users.user_for_token(conn, token)
    if user is None:
        raise HTTPException(401, "the sign-in token is invalid or has expired; sign in again",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


def signed_in(user: CurrentUser | None = Depends(optional_user)) -> CurrentUser:
    if user is None:
        raise HTTPException(401, "sign in first (POST /api/auth/token)", headers={"WWW-Authenticate": "Bearer"})
    return user


def public_reader(request: Request, user: CurrentUser | None = Depends(optional_user)) -> CurrentUser | None:
    """Reading published data: open, unless GRIDMAP_PUBLIC_READ=false asks for a signed-in user."""
    if user is None and not request.app.state.settings.public_read:
        raise HTTPException(401, "this deployment requires signing in to read data",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


def require_role(conn: sa.Connection, user: CurrentUser | None, roles: tuple[str, ...], territory: str,
                 action: str) -> CurrentUser:
    """401 without a user; 403 unless the user holds one of ``roles`` (or admin) over ``territory``."""
    if user is None:
        raise HTTPException(401, "sign in first (POST /api/auth/token)", headers={"WWW-Authenticate": "Bearer"})
    if not users.has_role(conn, user, roles, territory):
        raise HTTPException(403, f"{user.username} may not {action} in territory {territory} "
                                 f"(needs the role {' or '.join(roles)} there or above)")
    return user
