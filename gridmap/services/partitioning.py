"""``gridmap partition``: units for a territory's communities, then a draft plan in PostGIS.

Inputs come from the territory's layers (or its ancestors': the demo keeps them on the city):
roads, buildings, waterways, railways, compounds (``compounds`` or ``residential_areas``),
sites and the stairwells' doors (``entrances`` or ``单元门``, :func:`with_stairwells`). Units are built per community and reused while what they were built from is unchanged:
each build records its inputs (the input layers, the community's boundary, the unit rules of the
profile), and a community whose inputs changed since gets a new generation of units. The old
generation is retired, not changed or deleted while a plan uses it: a plan refers to its own
units, so published plans and history stay exactly as they were.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import geopandas as gpd
import numpy as np
import shapely
import sqlalchemy as sa

from gridmap.distributed import SERIAL_HERE, Placement
from gridmap.geo import stairwells
from gridmap.geo.coverage import stitch_borders
from gridmap.geo.grain import REFINE_ROUNDS, partition_at_building_grain
from gridmap.geo.partition import AssignedUnits, PartitionResult, assign_units
from gridmap.geo.pieces import PieceMemo
from gridmap.geo.profile import Profile
from gridmap.geo.unit_pieces import build_units_in_pieces
from gridmap.progress import QUIET, Progress
from gridmap.services import profiles
from gridmap.services.profiles import ProfileSpec
from gridmap.store import assignment, audit, frames, layers, plans
from gridmap.store import units as unit_store
from gridmap.store.territories import get

REBUILD_ASKED = "a rebuild was asked for (--rebuild-units)"
BUILDING_GRAIN = "built at building grain: a grid missed the band where units held several buildings"


class PartitionInputError(ValueError):
    """The territory lacks what a partition needs (communities, buildings ...)."""


@dataclass
class UnitBuild:
    """What :func:`ensure_units` did: the communities whose units it (re)built and why (false
    when every community's stored units were reused)."""

    communities: list[str] = field(default_factory=list)  # codes of the communities built
    reasons: list[str] = field(default_factory=list)      # why, once each ("buildings layer re-imported on ...")
    units: int = 0                                        # units stored
    retired: int = 0                                      # units of the old generation retired (plans keep theirs)
    deleted: int = 0                                      # units of an earlier generation no plan used, deleted
    reused: int = 0                                       # communities whose stored units were reused
    revised: int = 0                                      # neighbours' units given the new border vertices

    def __bool__(self) -> bool:
        return bool(self.communities)

    def __str__(self) -> str:
        if not self:
            return f"reused the stored units of {self.reused} communities (their inputs are unchanged)"
        text = (f"built {self.units} units for {len(self.communities)} "
                f"{'community' if len(self.communities) == 1 else 'communities'}: {'; '.join(self.reasons)}")
        if self.retired:
            text += f"; {self.retired} old units retired (plans keep using theirs)"
        if self.reused:
            text += f"; the stored units of {self.reused} other communities reused"
        if self.revised:
            text += f" ({self.revised} of their units took the new border vertices)"
        return text

    def zh(self) -> str:
        """The same in Chinese."""
        if not self:
            return f"沿用 {self.reused} 个社区已存的单元（其输入未变）"
        text = f"为 {len(self.communities)} 个社区构建 {self.units} 个单元：{'；'.join(map(reason_zh, self.reasons))}"
        if self.retired:
            text += f"；{self.retired} 个旧单元退役（已有方案仍用其原单元）"
        if self.reused:
            text += f"；沿用其他 {self.reused} 个社区已存的单元"
        if self.revised:
            text += f"（其中 {self.revised} 个单元补上了新的边界顶点）"
        return text


NOT_APPLIED_SHOWN = 10
"""Territories whose own rules a run did not apply named in its summary (the rest counted)."""


@dataclass
class PlanSummary:
    plan_id: int
    version: int
    territory: str
    result: PartitionResult
    units_built: UnitBuild
    not_applied: list[profiles.RulesNotApplied] = field(default_factory=list)

    def _not_applied(self) -> tuple[str, str] | None:
        """What the run did not apply: the rules of territories below it (English, Chinese)."""
        if not self.not_applied:
            return None
        shown = self.not_applied[:NOT_APPLIED_SHOWN]
        more = len(self.not_applied) - len(shown)
        listed_en = ", ".join(f"{r.code} {r.name or ''} ({r.profile}: {r.band[0]}–{r.band[1]})".replace("  ", " ")
                              for r in shown) + (f" and {more} more" if more > 0 else "")
        listed_zh = "、".join(f"{r.code} {r.name or ''}（{r.profile}：{r.band[0]}–{r.band[1]} 户）".replace("  ", " ")
                             for r in shown) + (f" 等 {len(self.not_applied)} 个" if more > 0 else "")
        s = self.result.report["summary"]
        n = len(self.not_applied)
        return (f"note: {n} {'territory' if n == 1 else 'territories'} below {self.territory} "
                f"{'has' if n == 1 else 'have'} rules of {'its' if n == 1 else 'their'} own, which this plan does not apply (a plan follows one set of rules: every grid here was measured against "
                f"{s['min_households']}–{s['max_households']}): {listed_en}; to plan one by its own rules, partition "
                "it on its own (gridmap partition --territory CODE), which makes a plan of its own",
                f"注意：{self.territory} 下有 {len(self.not_applied)} 个辖区设有自己的规则配置，本方案未采用（一个方案只按一套规则："
                f"这里的网格都按 {s['min_households']}–{s['max_households']} 户衡量）：{listed_zh}；要按其自己的规则划分，"
                "请单独划分该辖区（gridmap partition --territory 代码），得到它自己的方案")

    def __str__(self) -> str:
        s = self.result.report["summary"]
        text = (f"draft plan {self.version} (id {self.plan_id}) for {self.territory}: {s['grids']} grids "
                f"({s['comprehensive']} comprehensive, {s['dedicated']} dedicated) from {s['units']} units; "
                f"{s['in_band']}/{s['comprehensive']} comprehensive grids in [{s['min_households']}, "
                f"{s['max_households']}] households; median {s['households_median']:.0f}; "
                f"{len(self.result.flags)} flags")
        said = self._not_applied()
        return text + (f"\nunits: {self.units_built}" if self.units_built else "") + (f"\n{said[0]}" if said else "")

    def zh(self) -> str:
        """The same in Chinese (the CLI prints both)."""
        s = self.result.report["summary"]
        text = (f"辖区 {self.territory} 的方案草稿 {self.version}（编号 {self.plan_id}）：{s['grids']} 个网格"
                f"（综合网格 {s['comprehensive']} 个，专属网格 {s['dedicated']} 个），由 {s['units']} 个单元组成；"
                f"{s['in_band']}/{s['comprehensive']} 个综合网格户数在 [{s['min_households']}, {s['max_households']}] 内；"
                f"户数中位数 {s['households_median']:.0f}；{len(self.result.flags)} 条标记")
        said = self._not_applied()
        return text + (f"\n单元：{self.units_built.zh()}" if self.units_built else "") + (f"\n{said[1]}" if said else "")


def input_layer(conn: sa.Connection, territory: str, role: str, area,
                where_in: tuple[str, tuple[str, ...]] | None = None) -> gpd.GeoDataFrame | None:
    """The layer serving ``role`` (roads, buildings ...) for the territory, cut to the bounding
    box of ``area`` (a geometry, or a list: any of their boxes), and to the features whose
    attribute ``where_in[0]`` is one of ``where_in[1]`` when given; None when neither the
    territory nor its ancestors have one."""
    found = layers.find(conn, territory, layers.ROLES[role])
    return frames.layer_in_area(conn, found[0], found[1], area, where_in) if found else None


def with_stairwells(buildings: gpd.GeoDataFrame, entrances: gpd.GeoDataFrame | None, *,
                    progress: Progress = QUIET) -> gpd.GeoDataFrame:
    """``buildings`` with the 单元 counts and cuts that the ``entrances`` layer (read by
    :func:`input_layer`, role ``entrances``; None when the territory has none) gives those
    without their own (:func:`gridmap.geo.stairwells.attach`), what it gave said in ``progress``.
    The one place the units and the micro-grids of a territory take their buildings' 单元 from."""
    if entrances is None or not len(entrances):
        return buildings
    out, summary = stairwells.attach(buildings, entrances)
    progress.say(summary.en(), summary.zh())
    return out


def load_inputs(conn: sa.Connection, territory: str, communities: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame | None]:
    """The territory's input layers, cut to the communities' bounding boxes (each its own: the
    communities a refinement rebuilds lie apart, and one box around them held nearly the whole
    district: 1.0 s of reading for 13 of Reykjavík's 72 communities)."""
    bounds = communities.bounds.to_numpy()
    areas = list(shapely.box(bounds[:, 0], bounds[:, 1], bounds[:, 2], bounds[:, 3]))
    # doors and the buildings they may belong to a little beyond: a door a few metres outside a
    # community's box, and a neighbour's building nearer to one inside, count as in a whole read
    wider = list(shapely.box(*(bounds + stairwells.READ_MARGIN_DEG * np.array([-1, -1, 1, 1])).T))
    return {role: input_layer(conn, territory, role, wider if role in ("buildings", "entrances") else areas)
            for role in layers.ROLES}


# -- what units are built from, and whether that changed ---------------------------------------------
def rules_fingerprint(profile: Profile) -> str:
    """A SHA-256 of the rules that shape units: the profile's ``units`` section and its ``roads``
    section without ``major_classes`` (which roads are major steers the partition, not the units,
    so changing it does not make units stale; nor does the band: oversize units are split by the
    size limit alone, and a band that needs a finer grain gets it from the partition's refinement
    at building grain)."""
    data = profile.to_dict()
    roads = {k: v for k, v in data.get("roads", {}).items() if k != "major_classes"}
    text = json.dumps({"units": data.get("units", {}), "roads": roads}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _when(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _layer_change(role: str, before: dict | None, now: dict | None, digest: Callable[[int], str]) -> str | None:
    """Why the layer serving ``role`` differs from the one a build used (None: it does not)."""
    if before is None and now is None:
        return None
    if before is None:
        return f"{role} layer added ({now['territory']}/{now['name']}, imported on {_when(now['imported_at'])})"
    if now is None:
        return f"{role} layer removed ({before['territory']}/{before['name']})"
    if before.get("id") == now["id"] and before.get("features") == now["features"]:
        return None  # a layer's features never change after its import
    if before.get("digest") == digest(now["id"]):
        return None  # imported again with the very same content
    if (before.get("territory"), before.get("name")) == (now["territory"], now["name"]):
        return f"{now['name']} layer re-imported on {_when(now['imported_at'])}"
    return (f"{role} layer is now {now['territory']}/{now['name']} (imported on {_when(now['imported_at'])}), "
            f"was {before.get('territory')}/{before.get('name')}")


def stale_communities(conn: sa.Connection, territory: str, community_ids: dict[str, int], profile: Profile, *,
                      rebuild: bool = False, atomize: frozenset[str] = frozenset()) -> tuple[dict[str, list[str]], dict]:
    """Why each community's stored units are stale (``{code: [reasons]}``, an empty list when
    they are current), and the inputs a build would record now (``{"layers", "rules",
    "boundaries", "profile"}``, layer digests computed once each)."""
    digests: dict[int, str] = {}

    def digest(layer_id: int) -> str:
        if layer_id not in digests:
            digests[layer_id] = layers.digest(conn, layer_id)
        return digests[layer_id]

    now_layers = {role: layers.serving(conn, territory, names) for role, names in layers.ROLES.items()}
    rules = rules_fingerprint(profile)
    boundaries = unit_store.boundary_fingerprints(conn, list(community_ids.values()))
    builds = unit_store.current_builds(conn, list(community_ids.values()))
    layer_reasons: dict[str, list[str]] = {}  # per recorded layers (the same for most communities)
    reasons: dict[str, list[str]] = {}
    for code, community_id in community_ids.items():
        build = builds.get(community_id)
        if rebuild:
            reasons[code] = [REBUILD_ASKED]
        elif atomize:  # unless another run built it at building grain meanwhile
            reasons[code] = ([BUILDING_GRAIN] if code in atomize and not (build and build["id"] and
                             (build.get("inputs") or {}).get("grain") == "building") else [])
        elif build is None:
            reasons[code] = ["no units yet"]
        elif build["id"] is None:
            reasons[code] = ["units stored before their inputs were recorded"]
        elif build.get("mixed"):
            reasons[code] = [f"community {code} has units of more than one build"]
        else:
            inputs = build["inputs"]
            key = json.dumps(inputs.get("layers", {}), sort_keys=True)
            if key not in layer_reasons:
                recorded = inputs.get("layers", {})
                layer_reasons[key] = [r for r in (_layer_change(role, recorded.get(role), now_layers[role], digest)
                                                  for role in layers.ROLES) if r]
            found = list(layer_reasons[key])
            if inputs.get("boundary") != boundaries.get(community_id):
                found.append(f"community {code} boundary changed")
            if inputs.get("rules") != rules:
                found.append(f"the unit rules changed (profile {profile.name!r}, sections units and roads)")
            reasons[code] = found
    current = {"layers": {role: (None if s is None else {**s, "digest": digest(s["id"])}) for role, s in now_layers.items()},
               "rules": rules, "boundaries": boundaries, "profile": profile.name} \
        if any(reasons.values()) else {}
    return reasons, current


_REASONS_ZH: list[tuple[re.Pattern[str], str]] = [(re.compile(pattern), zh) for pattern, zh in (
    (re.escape(REBUILD_ASKED) + "$", "要求重建单元（--rebuild-units）"),
    (re.escape(BUILDING_GRAIN) + "$", "按楼栋粒度构建：单元含多栋楼处有网格落在区间外"),
    (r"no units yet$", "尚无单元"),
    (r"units stored before their inputs were recorded$", "单元存储时尚未记录其输入数据"),
    (r"community (\S+) has units of more than one build$", r"社区 \1 的单元来自不止一次构建"),
    (r"community (\S+) boundary changed$", r"社区 \1 边界已改变"),
    (r"the boundaries of (\d+) communities changed \((.*)\)$", r"\1 个社区边界已改变（\2）"),
    (r"the unit rules changed \(profile (.+), sections units and roads\)$", r"单元规则已改变（规则配置 \1 的 units 与 roads 部分）"),
    (r"(\S+) layer added \((.+), imported on (.+)\)$", r"新增 \1 图层（\2，导入于 \3）"),
    (r"(\S+) layer removed \((.+)\)$", r"\1 图层已移除（\2）"),
    (r"(.+) layer re-imported on (.+)$", r"\1 图层于 \2 重新导入"),
    (r"(\S+) layer is now (.+) \(imported on (.+)\), was (.+)$", r"\1 图层现为 \2（导入于 \3），原为 \4"),
)]


def reason_zh(reason: str) -> str:
    """A reason for rebuilding units (the English kept in the audit log) said in Chinese."""
    for pattern, zh in _REASONS_ZH:
        if pattern.match(reason):
            return pattern.sub(zh, reason)
    return reason


def _summarised(reasons: dict[str, list[str]]) -> list[str]:
    """The distinct reasons, in order; many changed boundaries are said once."""
    seen: list[str] = []
    for code in sorted(reasons):
        seen += [r for r in reasons[code] if r not in seen]
    boundaries = [r for r in seen if r.startswith("community ") and r.endswith(" boundary changed")]
    if len(boundaries) > 5:
        codes = [r.split()[1] for r in boundaries]
        seen = [r for r in seen if r not in boundaries] + [
            f"the boundaries of {len(codes)} communities changed ({', '.join(codes[:5])} ...)"]
    return seen


def ensure_units(engine: sa.Engine, territory: str, *, profile: Profile | None = None, rebuild: bool = False,
                 atomize: frozenset[str] = frozenset(), actor: str = "partition", progress: Progress = QUIET
                 ) -> tuple[gpd.GeoDataFrame, UnitBuild]:
    """The territory's current units, after building new ones for every community whose stored
    units are missing or stale (an input layer replaced, the community's boundary changed, the
    unit rules of ``profile`` changed; default profile: the territory's), or for all with
    ``rebuild``, or, with ``atomize``, for those communities alone at building grain (one unit per
    building in blocks and split compounds). Stale units are retired in the same transaction that
    stores their successors: plans keep using the units they have. Returns the current units and
    what was built (false when nothing was)."""
    try:
        return _ensure_units(engine, territory, profile, rebuild, atomize, actor, progress, first_attempt=True)
    except _Superseded:  # another run stored units for these communities meanwhile: look again
        progress.say("another run stored units for these communities meanwhile; checking them again",
                     "另一次运行同时存储了这些社区的单元，重新检查")
        return _ensure_units(engine, territory, profile, rebuild, atomize, actor, progress, first_attempt=False)


class _Superseded(Exception):
    """Units were stored for the communities being rebuilt since they were found stale."""


def _ensure_units(engine: sa.Engine, territory: str, profile: Profile | None, rebuild: bool,
                  atomize: frozenset[str], actor: str, progress: Progress, *, first_attempt: bool
                  ) -> tuple[gpd.GeoDataFrame, UnitBuild]:
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:  # one snapshot
        profile = profile or profiles.of_territory(conn, territory)
        communities = frames.communities(conn, territory)
        if communities.empty:
            raise PartitionInputError(f"territory {territory} has no communities to partition")
        ids = dict(zip(communities["code"], communities["id"].astype(int)))
        reasons, current = stale_communities(conn, territory, ids, profile, rebuild=rebuild, atomize=atomize)
        stale = [code for code in ids if reasons[code]]
        if not stale:
            existing = frames.current_units(conn, territory)
            progress.say(f"reusing {len(existing)} stored units of {len(ids)} communities (their inputs are unchanged)",
                         f"沿用 {len(ids)} 个社区已存储的 {len(existing)} 个单元（输入数据未变）")
            return existing, UnitBuild(reused=len(ids))
        said = _summarised({code: reasons[code] for code in stale})
        progress.say(f"building the units of {len(stale)} of {len(ids)} communities: {'; '.join(said)}",
                     f"重建 {len(ids)} 个社区中 {len(stale)} 个的单元：{'；'.join(map(reason_zh, said))}")
        subset = communities[communities["code"].isin(stale)]
        with progress.step(f"loading input layers for {len(stale)} communities", f"读取 {len(stale)} 个社区的输入图层"):
            inputs = load_inputs(conn, territory, subset)
        territory_id = get(conn, territory).id
        stale_builds = unit_store.current_builds(conn, [ids[code] for code in stale])
        seen = _generations(stale_builds)
        # built at building grain before (a miss there needed it): rebuilt at that grain again
        fine = frozenset(code for code in stale if code in atomize or (not rebuild and (
            (stale_builds.get(ids[code]) or {}).get("inputs") or {}).get("grain") == "building"))
    if inputs["buildings"] is not None:  # doors read against every building near them, then the community's own
        inputs["buildings"] = _own_buildings(with_stairwells(inputs["buildings"], inputs["entrances"],
                                                             progress=progress), subset)
    if inputs["buildings"] is None:
        raise PartitionInputError(f"territory {territory} (and its ancestors) has no 'buildings' layer; "
                                  "import one with `gridmap import ... --layer buildings`")
    with progress.step("building units (compounds, blocks, sites)", "构建单元（小区、街坊、场所）"):
        # a city's territory in pieces of bounded size, one after the other (memory follows the piece)
        units = build_units_in_pieces(subset[["code", "name", "geometry"]], inputs["roads"], inputs["buildings"],
                                      waterways=inputs["waterways"], railways=inputs["railways"],
                                      compounds=inputs["compounds"], sites=inputs["sites"], rules=profile.units,
                                      road_rules=profile.roads, atomize=fine)
    stale_ids = [ids[code] for code in stale]
    builds = {ids[code]: {"inputs": {"layers": current["layers"], "rules": current["rules"],
                                     "boundary": current["boundaries"][ids[code]], "profile": current["profile"],
                                     **({"grain": "building"} if code in fine else {})},
                          "reasons": reasons[code]} for code in stale}
    with progress.step(f"storing {len(units)} units", f"存储 {len(units)} 个单元"), engine.begin() as conn:
        unit_store.lock_rebuilds(conn)
        if first_attempt and not rebuild and _generations(unit_store.current_builds(conn, stale_ids)) != seen:
            raise _Superseded  # nothing stored: two partitions after one re-import build the units once
        # the units of the other communities along the rebuilt borders (of this territory or not)
        near = unit_store.current_near(conn, stale_ids)
        geoms, gained = stitch_borders(units.geometry.values, shapely.from_wkb(near["wkb"].to_numpy()))
        units = units.set_geometry(gpd.GeoSeries(geoms, index=units.index, crs=units.crs))
        neighbours = sorted({int(near["community_id"].iloc[i]) for i in gained})
        deleted = unit_store.collect_retired(conn, stale_ids + neighbours)
        retired = unit_store.retire(conn, stale_ids)
        build_ids = unit_store.record_builds(conn, builds, territory_id=territory_id, actor=actor)
        stored = unit_store.add_generation(conn, units, ids, build_ids)
        revised = unit_store.revise_current(conn, {int(near["id"].iloc[i]): g for i, g in gained.items()})
        if atomize:  # this run's own coarser units, which it read a moment ago and no plan took: gone now
            deleted += unit_store.collect_retired(conn, stale_ids + neighbours, including_now=True)
        audit.record(conn, actor=actor, action="build_units", table="units", row_key=territory,
                     after={"units": stored, "communities": sorted(stale), "reasons": said, "retired": retired,
                            "deleted": deleted, "builds": sorted(build_ids.values()),
                            "neighbours_revised": {str(k): v for k, v in revised.items()}})
    done = UnitBuild(sorted(stale), said, stored, retired, deleted, len(ids) - len(stale), len(revised))
    if retired:
        progress.say(f"retired {retired} old units (plans keep using theirs)",
                     f"停用 {retired} 个旧单元（已有方案仍使用各自的单元）")
    if revised:
        progress.say(f"{len(revised)} units of neighbouring communities took the new border vertices "
                     "(same key and households; plans keep the old ones)",
                     f"相邻社区的 {len(revised)} 个单元采用了新的边界顶点（编号与户数不变；已有方案保留旧的）")
    with engine.connect() as conn:
        return frames.current_units(conn, territory), done


def _own_buildings(buildings: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The buildings whose representative point lies in one of ``communities``: a building is an
    atom and counts in one community only, the one holding its point, so a build of some
    communities never counts again a building its neighbours' stored units already count."""
    area = shapely.union_all(np.asarray(communities.to_crs(buildings.crs).geometry.values, dtype=object))
    shapely.prepare(area)
    points = shapely.point_on_surface(np.asarray(buildings.geometry.values, dtype=object))
    return buildings[shapely.contains(area, points)]


def _generations(builds: dict[int, dict]) -> dict[int, tuple]:
    """Which units a community has now (build and count), to notice a rebuild by someone else."""
    return {community: (build["id"], build["units"]) for community, build in builds.items()}


def _joined(first: UnitBuild, second: UnitBuild) -> UnitBuild:
    """What two unit builds of one partition did together (the second at building grain)."""
    if not first:
        return second
    return UnitBuild(sorted(set(first.communities) | set(second.communities)),
                     first.reasons + [r for r in second.reasons if r not in first.reasons],
                     first.units + second.units, first.retired + second.retired, first.deleted + second.deleted,
                     first.reused, first.revised + second.revised)


def partition_territory(
    engine: sa.Engine,
    territory: str,
    *,
    profile: ProfileSpec = None,
    min_households: int | None = None,
    max_households: int | None = None,
    seed: int = 0,
    author: str = "cli",
    rebuild_units: bool = False,
    progress: Progress = QUIET,
    placement: Placement = SERIAL_HERE,
) -> PlanSummary:
    """Partition ``territory`` and store the result as a new draft plan (one transaction).

    The rules are ``profile``'s (default: the territory's), the band overridden by
    ``min_households``/``max_households`` when given; the plan stores the profile it was made with.
    The pieces are cut where ``placement`` says (default: serially, in this process; the CLI
    passes the settings' choice: a Dask cluster for a large territory or when a scheduler is
    named, :mod:`gridmap.distributed`); the plan is the same either way.
    """
    placement.check()
    with engine.connect() as conn:
        rules = profiles.for_run(conn, territory, profile, min_households=min_households,
                                 max_households=max_households)
        not_applied = profiles.not_applied_below(conn, territory, rules)
    units, built = ensure_units(engine, territory, profile=rules, rebuild=rebuild_units, actor=author,
                                progress=progress)
    with engine.connect() as conn:
        # the partition reads the major roads only (grid borders along them are preferred)
        roads = input_layer(conn, territory, "roads", shapely.box(*units.total_bounds),
                            (rules.roads.class_column, rules.roads.major_classes))
    lo, hi = rules.band

    def run(units: gpd.GeoDataFrame, memo: PieceMemo) -> AssignedUnits:
        with progress.step(f"partitioning {len(units)} units into grids of {lo}-{hi} households",
                           f"将 {len(units)} 个单元划分为每格 {lo}–{hi} 户的网格"):
            return assign_units(units, seed=seed, roads=roads, rules=rules.partition, road_rules=rules.roads,
                                runner=runner, memo=memo)

    def at_building_grain(codes: frozenset[str]) -> gpd.GeoDataFrame:
        nonlocal built
        units, fine = ensure_units(engine, territory, profile=rules, atomize=codes, actor=author, progress=progress)
        built = _joined(built, fine)
        return units

    # a miss where units hold several buildings: one unit per building there, and partition again
    with placement.runner(len(units), progress) as runner:
        assigned = partition_at_building_grain(units, run, at_building_grain, lo, hi, rounds=REFINE_ROUNDS,
                                               said=progress.say)
    with progress.step("dissolving the grids and measuring them", "合并网格并统计"):
        result = assigned.assembled()
    result.report["profile"] = rules.describe()  # the report says which rules it measured against
    if not_applied:  # and whose rules below it it did not apply
        result.report["profile"]["not_applied_below"] = [
            {"code": r.code, "name": r.name, "profile": r.profile, "band": list(r.band)} for r in not_applied]
    with progress.step("writing the draft plan", "写入方案草稿"), engine.begin() as conn:
        target = get(conn, territory)
        communities = frames.communities(conn, territory)
        ids = dict(zip(communities["code"], communities["id"].astype(int)))
        params = profiles.parameters_of(rules, seed=seed)
        plan_id, version = plans.create(conn, territory_id=target.id, origin="partition", author=author,
                                        parameters=params, report=result.report)
        assignment.write(conn, plan_id, result.grids, result.units, ids)
        audit.record(conn, actor=author, action="partition", table="plans", row_key=str(plan_id),
                     after={"territory": territory, "version": version, **result.report["summary"]})
    return PlanSummary(plan_id, version, territory, result, built, not_applied)
