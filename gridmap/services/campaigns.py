"""Door-knocking campaigns (敲门行动): a drive over a territory (or an emergency's area) with a
purpose, a deadline and optionally questions, reaching every registered household and every
building with none registered; each knock by the grid's staff records its outcome (visited,
nobody home: revisit, refused, issue found: a need or an incident raised with it, linked);
progress per grid and per worker, grids behind an even pace flagged. In peacetime or inside an
emergency. Each write is one transaction with its audit entry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pandas as pd
import sqlalchemy as sa

from gridmap import emergency as rules_of
from gridmap.emergency import REACHED, VISIT_OUTCOMES, EmergencyError
from gridmap.errors import Invalid, StateConflict
from gridmap.services.profiles import of_territory
from gridmap.store import audit, layers, plans, territories
from gridmap.store import campaigns as store
from gridmap.store import emergencies as emergency_store


CLOCK_SKEW = timedelta(minutes=5)
"""A phone's clock may run this far ahead; a later time is refused (it would pin the door's latest knock)."""


def _now(at: datetime | None) -> datetime:
    return at or datetime.now(timezone.utc)


def check_questions(questions: list[dict] | None) -> list[dict]:
    """A campaign's questions: each a ``code`` and its text in Chinese (``text_zh``) and English
    (``text_en``, the Chinese when not given), ``required`` or not, and ``choices`` when it has them."""
    out, seen = [], set()
    for q in questions or []:
        code = str(q.get("code") or "").strip()
        zh = str(q.get("text_zh") or "").strip()
        if not code or not zh or code in seen:
            raise Invalid("each question needs its own code and its Chinese text (text_zh)",
                          "每个问题须有唯一的代码（code）和中文题目（text_zh）")
        seen.add(code)
        choices = [str(c) for c in q.get("choices") or []]
        out.append({"code": code, "text_zh": zh, "text_en": str(q.get("text_en") or zh), "required": bool(q.get("required")),
                    **({"choices": choices} if choices else {})})
    return out


def check_answers(questions: list[dict], answers: dict | None, outcome: str) -> dict:
    """The answers of a knock: only the campaign's questions, a choice among its choices, and every
    required one answered when the door opened (visited, issue found)."""
    answers = dict(answers or {})
    by_code = {q["code"]: q for q in questions}
    unknown = sorted(set(answers) - set(by_code))
    if unknown:
        raise Invalid(f"no question {', '.join(unknown)} in this campaign", f"本次行动没有问题 {'、'.join(unknown)}")
    for code, value in answers.items():
        choices = by_code[code].get("choices")
        if choices and str(value) not in choices:
            raise Invalid(f"{code}: {value!r} is not one of {', '.join(choices)}",
                          f"{code}：{value!r} 不在选项 {'、'.join(choices)} 中")
    if outcome in ("visited", "issue_found"):
        missing = [q["code"] for q in questions if q["required"] and answers.get(q["code"]) in (None, "")]
        if missing:
            raise Invalid(f"required questions unanswered: {', '.join(missing)}", f"必答问题未作答：{'、'.join(missing)}")
    return answers


def create(engine: sa.Engine, territory: str, *, name: str, deadline: datetime, actor: str, purpose: str | None = None,
           questions: list[dict] | None = None, starts_at: datetime | None = None, emergency_id: int | None = None,
           synthetic: bool = False) -> dict:
    """A campaign over ``territory`` (inside emergency ``emergency_id``'s area when given) to
    ``deadline``: its targets are taken now (households registered then, buildings with none)."""
    starts_at = _now(starts_at)
    deadline = deadline if deadline.tzinfo else deadline.replace(tzinfo=timezone.utc)
    if not (name or "").strip():
        raise Invalid("a campaign needs a name", "敲门行动须有名称")
    if deadline <= starts_at:
        raise Invalid("the deadline must come after the start", "截止时间须晚于开始时间")
    checked = check_questions(questions)
    with engine.begin() as conn:
        row = territories.get(conn, territory)
        found = plans.published_above(conn, territory)
        if found is None:
            raise Invalid(f"territory {territory} has no published plan: households are reached grid by grid",
                          f"辖区 {territory} 尚无已发布方案：敲门按网格进行")
        if emergency_id is not None:
            emergency = emergency_store.get(conn, emergency_id)
            if emergency["ended_at"] is not None:
                raise StateConflict(f"emergency {emergency_id} has ended", f"应急事件 {emergency_id} 已结束")
        buildings = layers.find(conn, territory, layers.ROLES["buildings"])
        campaign_id, count = store.create(conn, territory, row.id, found[1], buildings, name=name.strip(),
                                          purpose=purpose, questions=checked, starts_at=starts_at, deadline=deadline,
                                          emergency_id=emergency_id, actor=actor, synthetic=synthetic)
        if count == 0:
            raise Invalid("no household or building to reach in the area", "范围内没有可入户的住户或楼栋")
        if emergency_id is not None:
            emergency_store.event(conn, emergency_id, at=starts_at, actor=actor, kind="campaign",
                                  detail={"campaign_id": campaign_id, "name": name.strip(), "targets": count})
        audit.record(conn, actor=actor, action="campaign.create", table="campaigns", row_key=str(campaign_id),
                     after={"territory": territory, "name": name.strip(), "targets": count,
                            "deadline": deadline.isoformat(), "emergency_id": emergency_id})
        return _shown(store.get(conn, campaign_id))


def knock(engine: sa.Engine, target_id: int, outcome: str, *, visitor: str, user_id: int | None, client_id: str,
          answers: dict | None = None, note: str | None = None, need: dict | None = None,
          incident_category: str | None = None, at: datetime | None = None,
          authorize: Callable[[str, str], None] | None = None) -> dict:
    """A knock on a target's door. With ``issue_found``, a ``need`` (category, description, urgency)
    or an ``incident_category`` raises a need or an incident at the target, linked to the knock,
    in the same transaction. ``authorize`` gets (community, grid) and may refuse. The same
    ``client_id`` from the same visitor again (the phone retrying): kept once, nothing raised twice."""
    from gridmap.services import incidents, lists

    at = _now(at)
    if at > datetime.now(timezone.utc) + CLOCK_SKEW:
        raise Invalid(f"a knock at {at.isoformat()} is in the future", f"敲门时间 {at.isoformat()} 晚于现在")
    key = rules_of.key_of(VISIT_OUTCOMES, outcome, ("入户结果", "outcome"))
    if (need or incident_category) and key != "issue_found":
        raise EmergencyError("a need or an incident is raised only with the outcome issue_found",
                             "只有“发现问题”时才能登记需求或事件")
    with engine.begin() as conn:
        target = store.target(conn, target_id)
        campaign = store.get(conn, target["campaign_id"])
        if campaign["closed_at"] is not None:
            raise StateConflict(f"campaign {campaign['id']} is closed", f"敲门行动 {campaign['id']} 已结束")
        if authorize is not None:
            authorize(target["community_code"], target["grid_code"])
        checked = check_answers(campaign["questions"], answers, key)
        visit_id, new = store.visit(conn, campaign["id"], target_id, outcome=key, answers=checked, note=note, at=at,
                                    visitor=visitor, user_id=user_id, client_id=client_id, need_id=None,
                                    incident_public_id=None)
        raised: dict = {}
        if new and need:
            made = lists.create_need_on(conn, campaign["territory"], {
                **need, "lon": target["lon"], "lat": target["lat"], "source": "campaign",
                "address": need.get("address") or target["label"]}, actor=visitor)
            raised["need_id"] = int(made["id"])
        if new and incident_category:
            made = incidents.report_on(conn, incidents.Report(
                category_code=incident_category, lon=target["lon"], lat=target["lat"], description=note,
                address=target["label"], source="campaign", reported_at=at), actor=visitor)
            raised["incident_public_id"] = made["public_id"]
        if raised:
            store.link(conn, visit_id, need_id=raised.get("need_id"), incident_public_id=raised.get("incident_public_id"))
        if new:
            if campaign["emergency_id"] is not None:
                emergency_store.event(conn, campaign["emergency_id"], at=at, actor=visitor, kind="knock",
                                      grid_code=target["grid_code"],
                                      detail={"campaign_id": campaign["id"], "target_id": target_id, "outcome": key,
                                              **raised})
            audit.record(conn, actor=visitor, action="campaign.knock", table="campaign_visits", row_key=str(visit_id),
                         after={"campaign_id": campaign["id"], "target_id": target_id, "outcome": key, **raised})
    return {"visit_id": visit_id, "stored": new, "target_id": target_id, "grid_code": target["grid_code"],
            "outcome": key, "outcome_zh": VISIT_OUTCOMES[key][0], "outcome_en": VISIT_OUTCOMES[key][1], **raised}


def progress(engine: sa.Engine, campaign_id: int, *, now: datetime | None = None) -> dict:
    """Per grid: targets, reached, nobody home, refused, issues, not visited, the share reached
    against an even pace to the deadline and whether it is behind; per worker: knocks and reached;
    with the totals."""
    now = _now(now)
    with engine.connect() as conn:
        campaign = store.get(conn, campaign_id)
        rules = of_territory(conn, campaign["territory"]).emergency
        grids, workers = store.progress(conn, campaign_id)
    expected = rules_of.expected_share(campaign["starts_at"], campaign["deadline"], now)
    rows = []
    for r in grids.to_dict("records"):
        targets, reached = int(r["targets"]), int(r["reached"])
        rows.append({**{k: (int(v) if k != "grid_code" else v) for k, v in r.items()},
                     "share": round(reached / targets, 3) if targets else None,
                     "behind": rules_of.behind(reached, targets, expected, rules)})
    totals = {k: int(grids[k].sum()) if len(grids) else 0
              for k in ("targets", "households", "reached", "nobody_home", "refused", "issue_found", "not_visited")}
    return {"campaign": _shown(campaign), "now": now.isoformat(), "expected_share": round(expected, 3),
            "totals": {**totals, "share": round(totals["reached"] / totals["targets"], 3) if totals["targets"] else None,
                       "grids_behind": sum(r["behind"] for r in rows)},
            "grids": rows,
            "workers": [{"visitor": w["visitor"], "knocks": int(w["knocks"]), "targets": int(w["targets"]),
                         "reached": int(w["reached"]), "last_knock": pd.Timestamp(w["last_knock"]).isoformat()}
                        for w in workers.to_dict("records")],
            "outcomes": [{"outcome": k, "outcome_zh": zh, "outcome_en": en, "reached": k in REACHED}
                         for k, (zh, en) in VISIT_OUTCOMES.items()]}


def targets(engine: sa.Engine, campaign_id: int, grid_code: str) -> dict:
    """A grid's targets with their latest knock, as GeoJSON points."""
    with engine.connect() as conn:
        store.get(conn, campaign_id)
        frame = store.targets(conn, campaign_id, grid_code)
    features = [{"type": "Feature", "id": int(r["target_id"]), "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
                 "properties": {"target_id": int(r["target_id"]), "label": r["label"], "household": bool(r["household"]),
                                "outcome": None if pd.isna(r["outcome"]) else r["outcome"],
                                "visitor": None if pd.isna(r["visitor"]) else r["visitor"],
                                "visited_at": None if pd.isna(r["visited_at"]) else pd.Timestamp(r["visited_at"]).isoformat()}}
                for r in frame.to_dict("records")]
    return {"type": "FeatureCollection", "campaign_id": campaign_id, "grid_code": grid_code, "features": features}


def listing(engine: sa.Engine, territory: str) -> list[dict]:
    with engine.connect() as conn:
        territories.get(conn, territory)
        return [_shown(r) for r in store.listing(conn, territory)]


def close(engine: sa.Engine, campaign_id: int, *, actor: str, at: datetime | None = None) -> dict:
    at = _now(at)
    with engine.begin() as conn:
        campaign = store.get(conn, campaign_id)
        if campaign["closed_at"] is not None:
            raise StateConflict(f"campaign {campaign_id} is closed", f"敲门行动 {campaign_id} 已结束")
        store.close(conn, campaign_id, at)
        audit.record(conn, actor=actor, action="campaign.close", table="campaigns", row_key=str(campaign_id), after={})
        return _shown(store.get(conn, campaign_id))


def territory_of(engine: sa.Engine, *, campaign_id: int | None = None, target_id: int | None = None) -> str:
    """The territory a campaign (or a target's campaign) belongs to: for the role checks."""
    with engine.connect() as conn:
        if target_id is not None:
            campaign_id = store.target(conn, target_id)["campaign_id"]
        return store.get(conn, campaign_id)["territory"]


def _shown(row: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


__all__ = ["create", "knock", "progress", "targets", "listing", "close", "territory_of", "check_questions",
           "check_answers"]
