"""Users, their territory-scoped roles, and bearer tokens.

Passwords are hashed with scrypt (a memory-hard KDF from the standard library); tokens are random
256-bit strings of which only the SHA-256 is stored, so a database dump yields no usable token.
A role held on a territory applies to that territory and everything below it; ``admin`` implies
every other role.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from gridmap.store.models import USER_ROLES

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_DUMMY_HASH: str | None = None


class UserError(ValueError):
    """A user, role or password request that cannot be honoured (unknown user, weak password ...)."""


@dataclass(frozen=True)
class CurrentUser:
    """A signed-in user and the roles they hold: (role, territory code) pairs."""

    id: int
    username: str
    display_name: str | None
    roles: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        return {"id": self.id, "username": self.username, "display_name": self.display_name,
                "roles": [{"role": r, "territory": t} for r, t in self.roles]}


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) for ``password``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=2**26)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a hash made by :func:`hash_password` (constant-time compare)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                maxmem=2**26, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def create_user(conn: sa.Connection, username: str, password: str, *, display_name: str | None = None) -> int:
    """A new active user; returns its id. Passwords shorter than 8 characters are refused."""
    if not username or len(username) > 64 or not username.isprintable() or " " in username:
        raise UserError("a username is 1-64 printable characters without spaces")
    if len(password) < 8:
        raise UserError("a password needs at least 8 characters")
    if conn.execute(sa.text("SELECT 1 FROM users WHERE username = :u"), {"u": username}).first():
        raise UserError(f"user {username!r} already exists")
    return conn.execute(sa.text(
        "INSERT INTO users (username, display_name, password_hash) VALUES (:u, :d, :h) RETURNING id"),
        {"u": username, "d": display_name, "h": hash_password(password)}).scalar_one()


def set_password(conn: sa.Connection, username: str, password: str) -> None:
    if len(password) < 8:
        raise UserError("a password needs at least 8 characters")
    done = conn.execute(sa.text("UPDATE users SET password_hash = :h WHERE username = :u"),
                        {"u": username, "h": hash_password(password)}).rowcount
    if not done:
        raise UserError(f"no user {username!r}")
    conn.execute(sa.text("UPDATE auth_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND user_id = "
                         "(SELECT id FROM users WHERE username = :u)"), {"u": username})


def grant(conn: sa.Connection, username: str, role: str, territory_code: str) -> None:
    """Give ``username`` ``role`` over ``territory_code`` and its subtree (idempotent)."""
    if role not in USER_ROLES:
        raise UserError(f"role must be one of {', '.join(USER_ROLES)}")
    user = conn.execute(sa.text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar()
    territory = conn.execute(sa.text("SELECT id FROM territories WHERE code = :c"), {"c": territory_code}).scalar()
    if user is None:
        raise UserError(f"no user {username!r}")
    if territory is None:
        raise UserError(f"no territory with code {territory_code!r}")
    conn.execute(sa.text("INSERT INTO user_roles (user_id, role, territory_id) VALUES (:u, :r, :t) "
                         "ON CONFLICT ON CONSTRAINT uq_user_roles DO NOTHING"), {"u": user, "r": role, "t": territory})


def any_users(conn: sa.Connection) -> bool:
    return bool(conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM users)")).scalar())


def list_users(conn: sa.Connection) -> list[dict]:
    rows = conn.execute(sa.text(
        "SELECT u.username, u.display_name, u.active, "
        "COALESCE(json_agg(json_build_object('role', r.role, 'territory', t.code) ORDER BY t.code, r.role) "
        "FILTER (WHERE r.id IS NOT NULL), '[]') AS roles FROM users u LEFT JOIN user_roles r ON r.user_id = u.id "
        "LEFT JOIN territories t ON t.id = r.territory_id GROUP BY u.id ORDER BY u.username"))
    return [dict(r._mapping) for r in rows]


def authenticate(conn: sa.Connection, username: str, password: str) -> int | None:
    """The user's id if the password is right and the user active; None otherwise.

    An unknown user costs the same hashing work as a wrong password, so timing does not reveal
    which usernames exist."""
    global _DUMMY_HASH
    row = conn.execute(sa.text("SELECT id, password_hash, active FROM users WHERE username = :u"),
                       {"u": username}).first()
    if row is None:
        _DUMMY_HASH = _DUMMY_HASH or hash_password(secrets.token_hex(8))
        verify_password(password, _DUMMY_HASH)
        return None
    return row.id if verify_password(password, row.password_hash) and row.active else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(conn: sa.Connection, user_id: int, ttl: timedelta) -> tuple[str, datetime]:
    """A new bearer token for the user and its expiry time."""
    token = secrets.token_urlsafe(32)
    expires = datetime.now(timezone.utc) + ttl
    conn.execute(sa.text("INSERT INTO auth_tokens (token_hash, user_id, expires_at) VALUES (:h, :u, :e)"),
                 {"h": _digest(token), "u": user_id, "e": expires})
    return token, expires


def revoke_token(conn: sa.Connection, token: str) -> None:
    conn.execute(sa.text("UPDATE auth_tokens SET revoked_at = now() WHERE token_hash = :h AND revoked_at IS NULL"),
                 {"h": _digest(token)})


def user_for_token(conn: sa.Connection, token: str) -> CurrentUser | None:
    """The user a live (unexpired, unrevoked) token belongs to, with their roles, or None (one query)."""
    row = conn.execute(sa.text(
        "SELECT u.id, u.username, u.display_name, COALESCE((SELECT json_agg(json_build_array(r.role, t.code) "
        "ORDER BY t.code, r.role) FROM user_roles r JOIN territories t ON t.id = r.territory_id "
        "WHERE r.user_id = u.id), '[]') AS roles FROM auth_tokens a JOIN users u ON u.id = a.user_id "
        "WHERE a.token_hash = :h AND a.revoked_at IS NULL AND a.expires_at > now() AND u.active"),
        {"h": _digest(token)}).first()
    if row is None:
        return None
    return CurrentUser(row.id, row.username, row.display_name, tuple((r, c) for r, c in row.roles))


def has_role(conn: sa.Connection, user: CurrentUser, roles: tuple[str, ...], territory_code: str) -> bool:
    """Whether the user holds one of ``roles`` (or admin) on ``territory_code`` or an ancestor of it."""
    wanted = list(set(roles) | {"admin"})
    return conn.execute(sa.text(
        "WITH RECURSIVE up AS (SELECT id, parent_id FROM territories WHERE code = :code "
        "UNION ALL SELECT t.id, t.parent_id FROM territories t JOIN up ON t.id = up.parent_id) "
        "SELECT EXISTS (SELECT 1 FROM user_roles r JOIN up ON up.id = r.territory_id "
        "WHERE r.user_id = :u AND r.role = ANY(:roles))"),
        {"code": territory_code, "u": user.id, "roles": wanted}).scalar_one()


def scopes_within(conn: sa.Connection, user: CurrentUser, roles: tuple[str, ...], territory_code: str) -> list[str]:
    """Territories strictly below ``territory_code`` where the user holds one of ``roles`` (or admin):
    a street planner's share of a city plan."""
    wanted = list(set(roles) | {"admin"})
    rows = conn.execute(sa.text(
        "WITH RECURSIVE sub AS (SELECT id, code FROM territories WHERE code = :code "
        "UNION ALL SELECT c.id, c.code FROM territories c JOIN sub ON c.parent_id = sub.id) "
        "SELECT DISTINCT sub.code FROM sub JOIN user_roles r ON r.territory_id = sub.id "
        "WHERE r.user_id = :u AND r.role = ANY(:roles) AND sub.code <> :code ORDER BY 1"),
        {"code": territory_code, "u": user.id, "roles": wanted})
    return [r[0] for r in rows]


def community_ids_under(conn: sa.Connection, codes: list[str]) -> set[int]:
    """Ids of the communities at or below any of ``codes``."""
    rows = conn.execute(sa.text(
        "WITH RECURSIVE sub AS (SELECT id, level FROM territories WHERE code = ANY(:codes) "
        "UNION SELECT c.id, c.level FROM territories c JOIN sub ON c.parent_id = sub.id) "
        "SELECT id FROM sub WHERE level = 'community'"), {"codes": codes})
    return {r[0] for r in rows}


__all__ = ["any_users", "CurrentUser", "scopes_within", "community_ids_under", "UserError", "hash_password", "verify_password", "create_user", "set_password", "grant",
           "list_users", "authenticate", "issue_token", "revoke_token", "user_for_token", "has_role"]
