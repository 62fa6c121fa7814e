"""Users, their territory-scoped roles, and bearer tokens.

Passwords are hashed with argon2id (``argon2-cffi``, OWASP's parameters: 19 MiB, 2 passes);
hashes made by earlier versions (scrypt, ``scrypt$N$r$p$salt$hash``) are still verified and replaced
by an argon2id hash at the user's next sign-in. Tokens are random
256-bit strings of which only the SHA-256 is stored, so a database dump yields no usable token.
A role held on a territory applies to that territory and everything below it; ``admin`` implies
every other role. ``admin`` may also be held with no territory (``territory_id IS NULL``): the
administrator of the whole deployment, over every territory present and future (the first user
that ``gridmap up`` creates holds it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gridmap.errors import Invalid
from gridmap.store.db import prepared
from gridmap.store.sql import with_ancestors, with_subtree

from gridmap.sign_in_roles import USER_ROLES

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
"""argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane: about 30 ms a hash here)."""
EVERYWHERE = "everywhere/全部"  # how a role without a territory is shown to people
_DUMMY_HASH: str | None = None


class UserError(Invalid):
    """A user, role or password request that cannot be honoured (unknown user, weak password ...),
    said in English and Chinese (``str(exc)`` is the English)."""


@dataclass(frozen=True)
class CurrentUser:
    """A signed-in user and the roles they hold: (role, territory code) pairs; the code is None for
    an admin of every territory."""

    id: int
    username: str
    display_name: str | None
    roles: tuple[tuple[str, str | None], ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        """The user for ``/api/auth/me``: a role over every territory has ``territory: null`` and
        ``everywhere: true``."""
        return {"id": self.id, "username": self.username, "display_name": self.display_name,
                "roles": [role_dict(r, t) for r, t in self.roles]}


def role_dict(role: str, territory: str | None) -> dict:
    """One role for people and programs: ``{"role", "territory"}``, plus ``everywhere: true`` for
    a role without a territory."""
    return {"role": role, "territory": territory} if territory is not None else \
        {"role": role, "territory": None, "everywhere": True}


def describe_role(role: str, territory: str | None) -> str:
    """``planner@980100``; ``admin@everywhere/全部`` for the administrator of every territory."""
    return f"{role}@{territory if territory is not None else EVERYWHERE}"


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (PHC string: ``$argon2id$v=19$m=…,t=…,p=…$salt$hash``)."""
    return HASHER.hash(password)


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``: an argon2id hash, or a scrypt one of an earlier
    version (``scrypt$N$r$p$salt$hash``, base64); constant-time either way."""
    if stored.startswith("scrypt$"):
        return _verify_scrypt(password, stored)
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash should be replaced at the next sign-in: any scrypt hash, or an
    argon2 one made with weaker parameters than the current ones."""
    if stored.startswith("scrypt$"):
        return True
    try:
        return HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _verify_scrypt(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                maxmem=2**26, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def create_user(conn: sa.Connection, username: str, password: str, *, display_name: str | None = None) -> int:
    """A new active user; returns its id. Passwords shorter than 8 characters are refused."""
    if not username or len(username) > 64 or not username.isprintable() or " " in username:
        raise UserError("a username is 1-64 printable characters without spaces",
                        "用户名须为 1-64 个可打印字符，不含空格")
    if len(password) < 8:
        raise UserError("a password needs at least 8 characters", "密码至少需要 8 个字符")
    if conn.execute(sa.text("SELECT 1 FROM users WHERE username = :u"), {"u": username}).first():
        raise UserError(f"user {username!r} already exists", f"用户 {username} 已存在")
    return conn.execute(sa.text(
        "INSERT INTO users (username, display_name, password_hash) VALUES (:u, :d, :h) RETURNING id"),
        {"u": username, "d": display_name, "h": hash_password(password)}).scalar_one()


def set_password(conn: sa.Connection, username: str, password: str) -> None:
    if len(password) < 8:
        raise UserError("a password needs at least 8 characters", "密码至少需要 8 个字符")
    done = conn.execute(sa.text("UPDATE users SET password_hash = :h WHERE username = :u"),
                        {"u": username, "h": hash_password(password)}).rowcount
    if not done:
        raise UserError(f"no user {username!r}", f"没有用户 {username}")
    conn.execute(sa.text("UPDATE auth_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND user_id = "
                         "(SELECT id FROM users WHERE username = :u)"), {"u": username})


def grant(conn: sa.Connection, username: str, role: str, territory_code: str | None, *,
          department: str | None = None, grid_codes: list[str] | None = None) -> None:
    """Give ``username`` ``role`` over ``territory_code`` and its subtree (idempotent; granting
    again replaces the binding). A ``handler`` may be bound to one ``department`` (code): they
    then see and work only the incidents routed to it; a ``worker`` may be bound to
    ``grid_codes``: they then report and follow up only there.

    ``territory_code=None`` (``admin`` only): administrator of every territory, present and future."""
    if role not in USER_ROLES:
        raise UserError(f"role must be one of {', '.join(USER_ROLES)}", f"角色须为 {'、'.join(USER_ROLES)} 之一")
    if territory_code is None and role != "admin":
        raise UserError(f"only admin may be held over every territory; give {role} a territory code",
                        f"只有管理员（admin）可以管理所有辖区；请为 {role} 角色给出辖区代码")
    if department is not None and role != "handler":
        raise UserError("only a handler is bound to a department", "只有处置员（handler）可以绑定部门")
    if grid_codes is not None and role != "worker":
        raise UserError("only a grid worker is bound to grids", "只有网格员（worker）可以绑定网格")
    department_id = None
    if department is not None:
        department_id = conn.execute(sa.text("SELECT id FROM departments WHERE code = :c"), {"c": department}).scalar()
        if department_id is None:
            raise UserError(f"no department with code {department!r}", f"没有编码为 {department} 的部门")
    user = conn.execute(sa.text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar()
    if user is None:
        raise UserError(f"no user {username!r}", f"没有用户 {username}")
    if territory_code is None:  # NULLs never collide in uq_user_roles: the partial index guards these
        conn.execute(sa.text(
            "INSERT INTO user_roles (user_id, role, territory_id) VALUES (:u, :r, NULL) "
            "ON CONFLICT (user_id, role) WHERE territory_id IS NULL DO NOTHING"), {"u": user, "r": role})
        return
    territory = conn.execute(sa.text("SELECT id FROM territories WHERE code = :c"), {"c": territory_code}).scalar()
    if territory is None:
        raise UserError(f"no territory with code {territory_code!r}", f"没有编码为 {territory_code} 的辖区")
    conn.execute(sa.text(
        "INSERT INTO user_roles (user_id, role, territory_id, department_id, grid_codes) VALUES (:u, :r, :t, :d, :g) "
        "ON CONFLICT ON CONSTRAINT uq_user_roles DO UPDATE SET department_id = EXCLUDED.department_id, "
        "grid_codes = EXCLUDED.grid_codes"),
        {"u": user, "r": role, "t": territory, "d": department_id, "g": list(grid_codes) if grid_codes else None})


def id_of(conn: sa.Connection, username: str) -> int | None:
    """The id of the account called ``username`` (None: no such account)."""
    return conn.execute(sa.text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar()


def exists(conn: sa.Connection, username: str) -> bool:
    return conn.execute(sa.text("SELECT 1 FROM users WHERE username = :u"), {"u": username}).first() is not None


def any_users(conn: sa.Connection) -> bool:
    return bool(conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM users)")).scalar())


def list_users(conn: sa.Connection) -> list[dict]:
    """Every user with their roles (``territory`` None: over every territory)."""
    rows = conn.execute(sa.text(
        "SELECT u.username, u.display_name, u.active, "
        "COALESCE(json_agg(json_build_object('role', r.role, 'territory', t.code) "
        "ORDER BY t.code NULLS FIRST, r.role) "
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
    if not (verify_password(password, row.password_hash) and row.active):
        return None
    if needs_rehash(row.password_hash):  # an old scrypt hash becomes argon2id now that the password is known
        conn.execute(sa.text("UPDATE users SET password_hash = :h WHERE id = :i AND password_hash = :old"),
                     {"h": hash_password(password), "i": row.id, "old": row.password_hash})  # not over a new password
    return row.id


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
    """The user a live (unexpired, unrevoked) token or API key belongs to, with their roles, or
    None. For an API key it also notes the time of use, at most once a minute (the caller
    commits). One statement: every signed-in request asks this first."""
    row = prepared(conn, (
        "WITH hit AS (SELECT a.token_hash, a.kind, a.last_used_at, u.id, u.username, u.display_name "
        "FROM auth_tokens a JOIN users u ON u.id = a.user_id "
        "WHERE a.token_hash = :h AND a.revoked_at IS NULL AND (a.expires_at IS NULL OR a.expires_at > now()) "
        "AND u.active), "
        "used AS (UPDATE auth_tokens t SET last_used_at = now() FROM hit WHERE t.token_hash = hit.token_hash "
        "AND hit.kind = 'api_key' AND (hit.last_used_at IS NULL OR hit.last_used_at < now() - interval '1 minute')) "
        "SELECT hit.id, hit.username, hit.display_name, COALESCE((SELECT json_agg(json_build_array(r.role, t.code) "
        "ORDER BY t.code NULLS FIRST, r.role) FROM user_roles r LEFT JOIN territories t ON t.id = r.territory_id "
        "WHERE r.user_id = hit.id), '[]') AS roles FROM hit"), {"h": _digest(token)}).first()
    if row is None:
        return None
    return CurrentUser(row.id, row.username, row.display_name, tuple((r, c) for r, c in row.roles))


def create_api_key(conn: sa.Connection, username: str, name: str, *, days: float | None = None) -> str:
    """A long-lived key for another system, acting as ``username`` (give that user only the roles
    the integration needs). Shown once; only its SHA-256 is kept. ``days=None``: no expiry."""
    user = conn.execute(sa.text("SELECT id FROM users WHERE username = :u AND active"), {"u": username}).scalar()
    if user is None:
        raise UserError(f"no active user {username!r}", f"没有启用中的用户 {username}")
    if not name or len(name) > 100:
        raise UserError("an API key needs a name of 1-100 characters", "API 密钥名称须为 1-100 个字符")
    if conn.execute(sa.text("SELECT 1 FROM auth_tokens WHERE kind = 'api_key' AND name = :n AND revoked_at IS NULL"),
                    {"n": name}).first():
        raise UserError(f"an API key named {name!r} exists; revoke it first", f"已有名为 {name} 的 API 密钥，请先撤销")
    key = "gmk_" + secrets.token_urlsafe(32)
    expires = None if days is None else datetime.now(timezone.utc) + timedelta(days=days)
    conn.execute(sa.text("INSERT INTO auth_tokens (token_hash, user_id, expires_at, kind, name) "
                         "VALUES (:h, :u, :e, 'api_key', :n)"), {"h": _digest(key), "u": user, "e": expires, "n": name})
    return key


def list_api_keys(conn: sa.Connection) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(sa.text(
        "SELECT a.name, u.username, a.created_at, a.expires_at, a.last_used_at, a.revoked_at FROM auth_tokens a "
        "JOIN users u ON u.id = a.user_id WHERE a.kind = 'api_key' ORDER BY a.created_at"))]


def revoke_api_key(conn: sa.Connection, name: str) -> None:
    done = conn.execute(sa.text("UPDATE auth_tokens SET revoked_at = now() WHERE kind = 'api_key' AND name = :n "
                                "AND revoked_at IS NULL"), {"n": name}).rowcount
    if not done:
        raise UserError(f"no live API key named {name!r}", f"没有名为 {name} 的有效 API 密钥")


@dataclass(frozen=True)
class IncidentScope:
    """One role row seen from the incident loop: where it applies and what binds it."""

    role: str
    communities: frozenset[str]
    department: str | None
    grids: frozenset[str] | None
    everywhere: bool = False  # an admin of every territory: covers every place

    def covers(self, community: str | None, grid: str | None) -> bool:
        """The place is in this role's territory (and grids, for a bound grid worker)."""
        if self.everywhere:
            return True
        return community in self.communities and (self.grids is None or grid in self.grids)

    def allows(self, incident: dict) -> bool:
        """The incident is this role's business: its place, and its department for a bound handler."""
        if not self.covers(incident.get("community_code"), incident.get("grid_code")):
            return False
        return self.department is None or incident.get("department_code") == self.department


def incident_scopes(conn: sa.Connection, user: CurrentUser, roles: tuple[str, ...]) -> list[IncidentScope]:
    """The user's role rows among ``roles`` (admin always counts) with the communities each covers
    (an admin of every territory covers every place, ``everywhere``)."""
    rows = prepared(conn, (
        "SELECT r.role, t.code, d.code AS department, r.grid_codes FROM user_roles r "
        "LEFT JOIN territories t ON t.id = r.territory_id LEFT JOIN departments d ON d.id = r.department_id "
        "WHERE r.user_id = :u AND r.role = ANY(:roles)"), {"u": user.id, "roles": sorted(set(roles) | {"admin"})}).all()
    scopes = []
    for role, code, department, grids in rows:
        if code is None:  # territory_id IS NULL: admin of every territory (ck_user_roles_territory)
            scopes.append(IncidentScope(role, frozenset(), None, None, everywhere=True))
            continue
        communities = frozenset(prepared(conn, (
            with_subtree() + "SELECT t.code FROM sub JOIN territories t ON t.id = sub.id WHERE t.level = 'community'"),
            {"territory": code}).scalars())
        scopes.append(IncidentScope(role, communities, department if role != "admin" else None,
                                    frozenset(grids) if grids and role != "admin" else None))
    return scopes


def has_role(conn: sa.Connection, user: CurrentUser, roles: tuple[str, ...], territory_code: str) -> bool:
    """Whether the user holds one of ``roles`` (or admin) on ``territory_code`` or an ancestor of it,
    or admin over every territory (then true for any territory that exists)."""
    wanted = list(set(roles) | {"admin"})
    return conn.execute(sa.text(
        with_ancestors() + "SELECT EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = :u AND r.role = ANY(:roles) "
        "AND (r.territory_id IN (SELECT id FROM up) OR (r.territory_id IS NULL AND EXISTS (SELECT 1 FROM up))))"),
        {"territory": territory_code, "u": user.id, "roles": wanted}).scalar_one()


def admin_everywhere(conn: sa.Connection, user: CurrentUser) -> bool:
    """Whether the user administers every territory (a role without a territory)."""
    return conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM user_roles WHERE user_id = :u AND role = 'admin' "
                                "AND territory_id IS NULL)"), {"u": user.id}).scalar_one()


def scopes_within(conn: sa.Connection, user: CurrentUser, roles: tuple[str, ...], territory_code: str) -> list[str]:
    """Territories strictly below ``territory_code`` where the user holds one of ``roles`` (or admin):
    a street planner's share of a city plan. An admin of every territory holds all of it: the
    territory's children (which, with everything below them, cover it whole)."""
    wanted = list(set(roles) | {"admin"})
    rows = conn.execute(sa.text(
        with_subtree() + "SELECT DISTINCT t.code FROM sub JOIN territories t ON t.id = sub.id "
        "JOIN user_roles r ON r.user_id = :u AND r.role = ANY(:roles) AND (r.territory_id = t.id OR "
        "(r.territory_id IS NULL AND t.parent_id = (SELECT id FROM territories WHERE code = :territory))) "
        "WHERE t.code <> :territory ORDER BY 1"),
        {"territory": territory_code, "u": user.id, "roles": wanted})
    return [r[0] for r in rows]


__all__ = ["exists", "id_of", "EVERYWHERE", "role_dict", "describe_role", "create_api_key", "list_api_keys", "revoke_api_key", "IncidentScope", "incident_scopes", "any_users", "CurrentUser", "scopes_within", "UserError", "hash_password", "verify_password", "create_user", "set_password", "grant",
           "list_users", "authenticate", "issue_token", "revoke_token", "user_for_token", "has_role", "admin_everywhere"]
