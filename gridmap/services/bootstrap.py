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
from gridmap.store import audit, plans, territories, users

DEMO_PLANS = ("990100", "980100", "511802")  # Reykjavík, Monaco and 雨城区 (the district's own files)
DISTRICT_DEMO = Path(__file__).resolve().parents[2] / "data" / "districts" / "yucheng"
DISTRICT_LAYERS = (  # file, layer name, kind, the CRS to read it in (None: the file's own)
    ("道路.shp", "roads", "roads", None), ("河流.gpkg", "waterways", "waterways", None),
    ("小区.shp", "compounds", "compounds", "gcj02"), ("公共设施.gpkg", "sites", "sites", None),
    ("楼栋.shp", "buildings", "buildings", None))
"""The Chinese demo district as a district office hands it over, imported the way a user would
(README, "Your own district"); the compounds were digitised on an Amap basemap (GCJ-02)."""


def ensure_district_demo(engine: sa.Engine, folder: Path = DISTRICT_DEMO, *, progress: Progress = QUIET) -> bool:
    """Import the Chinese demo district's files (communities, streets, its profile and layers)
    when its district is loaded (the Ya'an demo) and has no communities yet; returns whether it did."""
    from gridmap.services.boundaries import import_boundaries
    from gridmap.services.importing import import_file
    from gridmap.services.profiles import set_for_territory

    if not (folder / "社区.shp").exists():
        return False
    with engine.connect() as conn:
        if not territories.exists(conn, "511802") or territories.codes_below(conn, "511802", "community"):
            return False
    with progress.step("the Chinese demo district 雨城区 from its own files (labelled synthetic)",
                       "从区县自己的文件导入中文示例区 雨城区（标注为合成数据）"):
        import_boundaries(engine, folder / "社区.shp", streets=folder / "街道.gpkg", parent="511800", actor="gridmap up")
        set_for_territory(engine, "511802", folder / "规则.toml", actor="gridmap up")
        for file, layer, kind, crs in DISTRICT_LAYERS:
            import_file(engine, folder / file, territory="511802", layer=layer, kind=kind, crs=crs, actor="gridmap up")
    return True


def ensure_demo_plans(engine: sa.Engine, codes: tuple[str, ...] = DEMO_PLANS, *, progress: Progress = QUIET) -> list[str]:
    """Partition and publish each demo city that is loaded and has no plan yet; returns those done."""
    done = []
    for code in codes:
        with engine.connect() as conn:
            count = plans.count_for(conn, code)
            empty = count is not None and not territories.codes_below(conn, code, "community")
        if count is None or count > 0 or empty:  # not loaded, planned already, or no communities to plan
            continue
        summary = partition_territory(engine, code, author="gridmap up", progress=progress)
        publish(engine, summary.plan_id, version=None, actor="gridmap up")
        progress.say(f"published {summary}".replace("\n", "; "), f"已发布{summary.zh()}".replace("\n", "；"))
        done.append(code)
    return done


def ensure_incident_categories(engine: sa.Engine, *, progress: Progress = QUIET) -> None:
    """The shipped incident category table, if the database has none yet."""
    from gridmap.services.incidents import ensure_categories

    count = ensure_categories(engine)
    progress.say(f"{count} incident categories (Open311 services)", f"{count} 个事件类别（Open311 服务）")


def ensure_demo_stations(engine: sa.Engine, *, progress: Progress = QUIET) -> None:
    """The Reykjavík demo's service stations (OpenStreetMap points mapped onto station types)."""
    from gridmap.services.stations import load_demo_stations

    count = load_demo_stations(engine)
    if count:
        progress.say(f"{count} demo service stations in Reykjavík", f"雷克雅未克 {count} 个示例服务站点")


def ensure_demo_incidents(engine: sa.Engine, *, progress: Progress = QUIET) -> None:
    """A year of labelled-synthetic incidents over Reykjavík, so the maps are alive on first start."""
    from gridmap.services.incidents import load_demo_incidents

    with progress.step("demo incidents (labelled synthetic)", "示例事件（标注为合成数据）"):
        stored, left_out = load_demo_incidents(engine)
    if left_out:
        progress.say(f"{stored} demo incidents stored; {left_out} generated points fell outside the published grids",
                     f"已存储 {stored} 条示例事件；{left_out} 个生成的点落在已发布网格之外")


def ensure_demo_registrations(engine: sa.Engine, codes: tuple[str, ...] = ("990100", "511802"), *,
                              progress: Progress = QUIET) -> int:
    """双报到 at the seed's scale in Reykjavík and 雨城区 (19,000 synthetic registrations each, with
    their hours this year), when they are the demo's data and have none; a demo set up in an earlier
    year gets this year's hours. Returns how many registrations were added."""
    from gridmap.services.registrations import ensure_demo

    added = 0
    from gridmap.store import layers
    from gridmap.store import registrations as registered

    from gridmap.services.registrations import ensure_demo_hours

    for code in codes:
        with engine.connect() as conn:  # a real office's territory of the same code gets no synthetic people
            if not territories.exists(conn, code) or not layers.marked_synthetic(conn, code):
                continue
            exists = registered.count(conn, code)
        if exists:  # set up in an earlier year: this year's synthetic hours, once
            ensure_demo_hours(engine, code)
            continue
        with progress.step(f"synthetic 双报到 registrations in {code}", f"生成 {code} 的合成双报到记录"):
            added += ensure_demo(engine, code)
    return added


def ensure_secret_key(settings, *, progress: Progress = QUIET) -> Path | None:
    """Write a key for personal data (the households register) to ``$GRIDMAP_HOME/secret.key``
    (mode 0600) when neither ``GRIDMAP_SECRET_KEY`` nor that file holds one; returns the file when
    written. A key is never replaced: data encrypted under it would be lost."""
    from gridmap.vault import new_key

    if settings.secret_keys:
        return None
    path = settings.secret_key_file
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # an empty or unreadable file a person left there: not ours to overwrite
        return None
    with os.fdopen(fd, "w") as fh:
        fh.write(new_key() + "\n")
    progress.say(f"wrote the key of personal data to {path} (keep a copy: without it the households register "
                 "cannot be read; GRIDMAP_SECRET_KEY overrides it)",
                 f"已将个人信息密钥写入 {path}（请另行备份：丢失后住户登记无法读取；GRIDMAP_SECRET_KEY 优先）")
    return path


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
                 "`gridmap user add` creates more",
                 f"已创建用户 admin，密码 {password}（也保存在 {path}）；用 `gridmap user add` 创建更多用户")
    return password
