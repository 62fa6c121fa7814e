"""A scripted emergency drill anyone can run on the demo territories (``gridmap drill --territory
CODE --scenario flood``): the grids along the water switch into flood mode; a roll call with some
workers on time, some late and some missing; reports of flooding; grid statuses; a door-knocking
campaign; a whistle with one department on time, one only acknowledging and one silent; the
supervision pass; the switch back; and the report. Every step goes through the HTTP API with the
accounts the drill sets up (a grid worker per grid, an administrator, the departments' handlers),
so the drill exercises what real use exercises; what it did is tallied beside the report so the
two can be compared. The drill's records are labelled synthetic afterwards.

The drill replays the first ``replay_minutes`` of the event: it is switched on that long ago, and
check-ins, reports and the whistle carry the times they would have had; everything else happens
now. A territory of real data is refused: a drill there runs with its own staff, not with
generated accounts.
"""

from __future__ import annotations

import json
import random
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from gridmap.errors import Invalid, Refusal
from gridmap.store import emergencies as emergency_store
from gridmap.store import layers, plans, territories, users

SCENARIOS = {"flood": {"kind": "防汛", "reason": "演练：强降雨，沿河网格防汛（合成数据）", "layer": "waterways", "within_m": 150.0,
                       "categories": ("9001", "9002")}}
"""What each scenario switches on, where (grids near a layer's features) and what is reported."""
DEPARTMENTS = ("YJ", "MZ", "ZJ")
TOKEN_TTL = timedelta(hours=2)


@dataclass
class Drill:
    """The drill's setup: its grids (code, community, a point inside) and the bearer token of each
    account it acts as."""

    territory: str
    scenario: str
    grids: list[dict]
    tokens: dict[str, str]
    workers: dict[str, str] = field(default_factory=dict)
    """grid code -> the worker account of that grid"""


def prepare(engine: sa.Engine, territory: str, scenario: str = "flood", *, max_grids: int = 40) -> Drill:
    """The drill's grids (the scenario's, nearest first) and accounts: an administrator, a grid
    worker per grid (on the staff, assigned to it), a handler per department called."""
    if scenario not in SCENARIOS:
        raise Invalid(f"unknown scenario {scenario!r} (one of {', '.join(SCENARIOS)})",
                      f"未知的演练场景 {scenario!r}（可用：{'、'.join(SCENARIOS)}）")
    spec = SCENARIOS[scenario]
    from gridmap.services import incidents, staff

    incidents.ensure_categories(engine)
    with engine.begin() as conn:
        territories.get(conn, territory)
        if not layers.marked_synthetic(conn, territory):
            raise Invalid(f"territory {territory} holds real data: a drill there runs with its own staff accounts; "
                          "gridmap drill runs on the demo territories", f"辖区 {territory} 为真实数据：请用本辖区人员账号开展演练；"
                          "gridmap drill 仅用于演示辖区")
        found = plans.published_above(conn, territory)
        if found is None:
            raise Invalid(f"territory {territory} has no published plan", f"辖区 {territory} 尚无已发布方案")
        layer = layers.find(conn, territory, (spec["layer"],))
        if layer is None:
            raise Invalid(f"territory {territory} has no {spec['layer']} layer for the {scenario} scenario",
                          f"辖区 {territory} 没有 {spec['layer']} 图层，无法开展该场景演练")
        if any(e["ended_at"] is None for e in emergency_store.listing(conn, territory)):
            raise Invalid(f"an emergency is on in territory {territory}: a drill needs it ended first",
                          f"辖区 {territory} 正处于应急状态：请先结束后再演练")
        near = emergency_store.grids_near(conn, territory, found[1], layer, within_m=spec["within_m"], limit=max_grids)
        if near.empty:
            raise Invalid(f"no grid of territory {territory} lies within {spec['within_m']:g} m of its {spec['layer']}",
                          f"辖区 {territory} 没有距 {spec['layer']} {spec['within_m']:g} 米内的网格")
        accounts = {f"drill-{territory}-admin": ("admin", {})}
        accounts.update({f"drill-{territory}-{d}": ("handler", {"department": d}) for d in DEPARTMENTS})
        workers = {g: f"drill-{territory}-{g}" for g in near["grid_code"]}
        accounts.update({name: ("worker", {"grid_codes": [g]}) for g, name in workers.items()})
        for name, (role, extra) in accounts.items():
            if not users.exists(conn, name):
                users.create_user(conn, name, secrets.token_urlsafe(18), display_name=f"演练 {name}")
            users.grant(conn, name, role, territory, **extra)
    held = {r["name"] for r in staff.people(engine, territory)}
    for grid, name in workers.items():
        label = f"演练网格员{grid}"
        if label not in held:
            person = staff.create(engine, territory, name=label, role="专职网格员", actor="drill")
            staff.assign(engine, person["staff_id"], grid, actor="drill", valid_from=date.today() - timedelta(days=1))
            staff.update(engine, person["staff_id"], {"username": name}, actor="drill")
    with engine.begin() as conn:
        tokens = {name: users.issue_token(conn, users.id_of(conn, name), TOKEN_TTL)[0] for name in accounts}
    return Drill(territory, scenario, near.to_dict("records"), tokens, workers)


def _json(body: bytes) -> dict:
    """An answer's JSON; a body that is none (a proxy's or a crashed server's page) as its text."""
    try:
        return json.loads(body or b"null")
    except ValueError:
        return {"detail": body.decode("utf-8", errors="replace")[:500]}


class Api:
    """The HTTP API at ``base`` as the drill's accounts: JSON in, JSON out."""

    def __init__(self, base: str, tokens: dict[str, str]):
        self.base, self.tokens = base.rstrip("/"), tokens

    def __call__(self, method: str, path: str, who: str, body: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.base + path, method=method, data=None if body is None else json.dumps(body).encode("utf-8"),
            headers={"Authorization": f"Bearer {self.tokens[who]}", "Accept": "application/json",
                     **({"Content-Type": "application/json"} if body is not None else {})})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _json(error.read())

    def ok(self, method: str, path: str, who: str, body: dict | None = None) -> dict:
        status, data = self(method, path, who, body)
        if status >= 300:
            detail = data if not isinstance(data, dict) else data.get("detail_en") or data.get("detail")
            detail_zh = data.get("detail_zh", detail) if isinstance(data, dict) else detail
            raise DrillStopped(f"the drill stopped: {method} {path} as {who} answered {status}: {detail}",
                               f"演练中止：{method} {path}（{who}）返回 {status}：{detail_zh}")
        return data


class DrillStopped(Refusal):
    """A step of the drill was refused by the API (its answer said why)."""


def run(base_url: str, drill: Drill, *, seed: int = 0, replay_minutes: int = 50,
        now: datetime | None = None) -> dict:
    """Run the drill against the API at ``base_url``; returns what it did (``tally``), the report
    the API gives, and the emergency's id."""
    rng = random.Random(seed)
    api = Api(base_url, drill.tokens)
    admin = f"drill-{drill.territory}-admin"
    now = now or datetime.now(timezone.utc)
    began = now - timedelta(minutes=replay_minutes)
    spec = SCENARIOS[drill.scenario]
    codes = [g["grid_code"] for g in drill.grids]
    on = api.ok("POST", f"/api/territories/{drill.territory}/emergencies", admin, {
        "kind": spec["kind"], "reason": spec["reason"], "grids": codes, "started_at": began.isoformat()})
    try:
        return _play(api, drill, on, rng, admin, began, now, replay_minutes)
    except BaseException as stopped:
        api("POST", f"/api/emergencies/{on['id']}/end", admin, {"note": "演练中断 / the drill stopped"})  # not left on
        stopped.emergency_id = on["id"]  # (its records are labelled synthetic all the same)
        raise


def _play(api: Api, drill: Drill, on: dict, rng: random.Random, admin: str, began: datetime, now: datetime,
          replay_minutes: int) -> dict:
    """The drill's steps after the switch (see :func:`run`)."""
    spec = SCENARIOS[drill.scenario]
    eid, due = on["id"], datetime.fromisoformat(on["checkin_due"])
    tally: dict = {"grids": len(on["grids"]), "on_time": 0, "late": 0, "missing": 0, "incidents": 0,
                   "statuses": {}, "knocks": 0, "reached": 0, "needs": 0}

    # roll call: about 70% on time, 20% late (after the deadline, before now), 10% never
    on_time_window = (due - began).total_seconds() / 60
    late_window = (now - due).total_seconds() / 60
    if late_window < 2:
        raise Invalid("replay_minutes must run past the check-in deadline", "回放时长须超过签到期限")
    for grid in drill.grids:
        worker, roll = drill.workers[grid["grid_code"]], rng.random()
        if roll < 0.1:
            tally["missing"] += 1
            continue
        late = roll < 0.3
        at = due + timedelta(minutes=rng.uniform(0.5, late_window - 0.5)) if late else \
            began + timedelta(minutes=rng.uniform(0.5, on_time_window - 0.5))
        api.ok("POST", f"/api/emergencies/{eid}/checkins", worker, {
            "client_id": f"drill-{grid['grid_code']}", "grid_code": grid["grid_code"], "lon": grid["lon"],
            "lat": grid["lat"], "at": at.isoformat()})
        tally["late" if late else "on_time"] += 1
    # the supervision pass twice: missed check-ins to the community, then to the street
    passes = [api.ok("POST", "/api/incidents/escalate", admin) for _ in range(2)]
    tally["checkins_escalated"] = sum(len(p["checkins_missed"]) for p in passes)

    # reports of flooding from a third of the grids, filed by the grid centre
    reported = []
    for grid in drill.grids[::3]:
        made = api.ok("POST", "/api/incidents", drill.workers[grid["grid_code"]], {
            "category_code": rng.choice(spec["categories"]), "lon": grid["lon"], "lat": grid["lat"], "crs": "4490",
            "description": "演练：路面积水（合成数据）",
            "reported_at": (began + timedelta(minutes=rng.uniform(5, replay_minutes - 5))).isoformat()})
        reported.append(made["public_id"])
        tally["incidents"] += 1
    for public_id in reported[::2]:
        api.ok("POST", f"/api/incidents/{public_id}/transitions", admin, {"action": "file"})
    tally["filed"] = len(reported[::2])

    # grid statuses: a third affected, one in six needs support; one affected grid already cleared
    for n, grid in enumerate(drill.grids):
        status = "affected" if n % 3 == 0 else "needs_support" if n % 6 == 1 else None
        if status:
            api.ok("POST", f"/api/emergencies/{eid}/grids/{grid['grid_code']}/status", drill.workers[grid["grid_code"]],
                   {"status": status})
    if drill.grids:
        first = drill.grids[0]["grid_code"]
        api.ok("POST", f"/api/emergencies/{eid}/grids/{first}/status", drill.workers[first], {"status": "cleared"})
    board = api.ok("GET", f"/api/emergencies/{eid}/board", admin)
    tally["statuses"] = {k: board["totals"][f"status_{k}"] for k in ("normal", "affected", "needs_support", "cleared")}

    # door-knocks inside the emergency: in each grid, up to six doors; most open, some nobody home,
    # one issue found (a need) in the first grid
    campaign = api.ok("POST", f"/api/territories/{drill.territory}/campaigns", admin, {
        "name": "演练：防汛敲门（合成数据）", "purpose": "转移提醒", "emergency_id": eid,
        "deadline": (now + timedelta(hours=6)).isoformat()})
    for n, grid in enumerate(drill.grids):
        worker = drill.workers[grid["grid_code"]]
        doors = api.ok("GET", f"/api/campaigns/{campaign['id']}/grids/{grid['grid_code']}/targets", worker)["features"]
        for k, door in enumerate(doors[:6]):
            outcome = "nobody_home" if k == 5 else "issue_found" if (n == 0 and k == 0) else "visited"
            body = {"outcome": outcome, "client_id": f"drill-{door['id']}"}
            if outcome == "issue_found":
                body["need"] = {"category": "其他", "description": "演练：老人行动不便需协助转移（合成数据）", "urgency": "high"}
                tally["needs"] += 1
            api.ok("POST", f"/api/campaign-targets/{door['id']}/knocks", worker, body)
            tally["knocks"] += 1
            tally["reached"] += outcome != "nobody_home"

    # the whistle on the first report, five minutes in: YJ acknowledges and arrives in time, MZ
    # acknowledges in time and never arrives, ZJ stays silent; the supervision pass finds the late ones
    whistle = None
    if reported:
        blown_at = began + timedelta(minutes=5)
        whistle = api.ok("POST", "/api/whistles", admin, {
            "incident": reported[0], "departments": list(DEPARTMENTS), "ack_minutes": 10, "arrive_minutes": 30,
            "blown_at": blown_at.isoformat()})
        answers = (("YJ", "acknowledge", 3), ("YJ", "arrive", 25), ("MZ", "acknowledge", 8))
        for department, step, minutes in answers:
            api.ok("POST", f"/api/whistles/{whistle['id']}/departments/{department}/{step}",
                   f"drill-{drill.territory}-{department}", {"at": (blown_at + timedelta(minutes=minutes)).isoformat()})
        for _ in range(2):
            api.ok("POST", "/api/incidents/escalate", admin)
        tally["whistle"] = {"departments": len(DEPARTMENTS), "acknowledged": 2, "arrived": 1, "arrived_on_time": 1}

    api.ok("POST", f"/api/emergencies/{eid}/end", admin, {"note": "演练结束"})
    report = api.ok("GET", f"/api/emergencies/{eid}/report", admin)
    return {"emergency_id": eid, "campaign_id": campaign["id"], "whistle_id": whistle["id"] if whistle else None,
            "tally": tally, "report": report}


def label_synthetic(engine: sa.Engine, drill: Drill, emergency_id: int) -> dict[str, int]:
    """Label the drill's records synthetic (see the module docstring)."""
    with engine.begin() as conn:
        return emergency_store.mark_synthetic(conn, emergency_id, list(drill.tokens))


def agrees(result: dict) -> list[str]:
    """Where the report disagrees with what the drill did (empty: it agrees)."""
    tally, report = result["tally"], result["report"]
    checks = {"grids": report["checkins"]["grids"], "on_time": report["checkins"]["on_time"],
              "late": report["checkins"]["late"], "missing": report["checkins"]["missing"],
              "incidents": report["incidents"]["total"], "reached": report["households"]["reached"]}
    out = [f"{k}: did {tally[k]}, report says {v}" for k, v in checks.items() if tally[k] != v]
    if tally.get("whistle"):
        for key in ("acknowledged", "arrived", "arrived_on_time"):
            said = sum(d[key] for d in report["whistles"]["departments"])
            if said != tally["whistle"][key]:
                out.append(f"whistle {key}: did {tally['whistle'][key]}, report says {said}")
    return out


__all__ = ["SCENARIOS", "Drill", "DrillStopped", "prepare", "run", "label_synthetic", "agrees", "Api"]
