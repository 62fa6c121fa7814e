"""First-start conveniences for ``gridmap up``: a published plan for each demo city, and an
administrator account, so the planner and the maps have something to show and someone to sign in.

Both are idempotent: a territory that has any plan is left alone, and no account is created once
any user exists.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import sqlalchemy as sa

from gridmap.progress import QUIET, Progress
from gridmap.services.partitioning import partition_territory
from gridmap.services.planning import publish
from gridmap.store import audit, plans, users

DEMO_PLANS = ("990100", "980100")  # Reykjavík and Monaco (Ya'an has boundaries only, no buildings)


def ensure_demo_plans(engine: sa.Engine, codes: tuple[str, ...] = DEMO_PLANS, *, progress: Progress = QUIET) -> list[str]:
    """Partition and publish each demo city that is loaded and has no plan yet; returns those done."""
    done = []
    for code in codes:
        with engine.connect() as conn:
            count = plans.count_for(conn, code)
        if count is None or count > 0:  # not loaded, or planned already
            continue
        summary = partition_territory(engine, code, author="gridmap up", progress=progress)
        publish(engine, summary.plan_id, version=None, actor="gridmap up")
        progress.say(f"published {summary}")
        done.append(code)
    return done


def ensure_incident_categories(engine: sa.Engine, *, progress: Progress = QUIET) -> None:
    """The shipped incident category table, if the database has none yet."""
    from gridmap.services.incidents import ensure_categories

    progress.say(f"{ensure_categories(engine)} incident categories (Open311 services)")


def ensure_demo_stations(engine: sa.Engine, *, progress: Progress = QUIET) -> None:
    """The Reykjavík demo's service stations (OpenStreetMap points mapped onto station types)."""
    from gridmap.services.stations import load_demo_stations

    count = load_demo_stations(engine)
    if count:
        progress.say(f"{count} demo service stations in Reykjavík")


def ensure_demo_incidents(engine: sa.Engine, *, progress: Progress = QUIET) -> None:
    """A year of labelled-synthetic incidents over Reykjavík, so the maps are alive on first start."""
    from gridmap.services.incidents import load_demo_incidents

    with progress.step("demo incidents (labelled synthetic)"):
        stored, left_out = load_demo_incidents(engine)
    if left_out:
        progress.say(f"{stored} demo incidents stored; {left_out} generated points fell outside the published grids")


def ensure_admin(engine: sa.Engine, home: Path, *, progress: Progress = QUIET) -> str | None:
    """Create user ``admin`` when there are no users: the deployment's administrator, admin over
    every territory present and future (a role without a territory), so territories loaded later
    are administrable too. The random password goes to ``home/admin-password`` (mode 0600).
    Returns the password when created.

    An ``admin`` made by older versions holds admin on the root territories of that time only and
    keeps working there; ``gridmap user grant admin --role admin --everywhere`` extends it."""
    with engine.begin() as conn:
        if users.any_users(conn):
            return None
        password = secrets.token_urlsafe(12)
        users.create_user(conn, "admin", password, display_name="Administrator 管理员")
        users.grant(conn, "admin", "admin", None)
        audit.record(conn, actor="gridmap up", action="user.create", table="users", row_key="admin",
                     after={"roles": [users.role_dict("admin", None)]})
    home.mkdir(parents=True, exist_ok=True)
    path = home / "admin-password"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    progress.say(f"created user 'admin' with password {password} (also in {path}); "
                 "`gridmap user add` creates more")
    return password
