"""Which rules apply: a territory's profile, a plan's profile, and the one that a run uses.

A territory follows its own stored profile, else its nearest ancestor's, else the ``default``
preset. A run (partition, merge) uses the profile asked for (a preset name, a TOML file, a
:class:`Profile`) or else the territory's, with ``--min``/``--max`` overriding the band; the plan
it makes stores that profile whole, and everything later said about the plan (its report, its
checks, the planner's band) reads the plan's copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from gridmap.geo.profile import PRESETS, Profile, load
from gridmap.store import audit, territories

ProfileSpec = Profile | str | Path | None
"""A profile, a preset's name, a TOML file's path, or None (the territory's)."""


def of_territory(conn: sa.Connection, territory: str) -> Profile:
    """The profile ``territory`` follows (its own, an ancestor's, or the default)."""
    if not territories.exists(conn, territory):
        raise territories.TerritoryNotFound.of(territory)
    holder, data = territories.profile_of(conn, territory)
    return Profile.from_dict(data, source=f"profile of {holder}") if data else PRESETS["default"]


def of_parameters(parameters: dict | None) -> Profile:
    """The profile a plan was made with (its stored parameters). Plans made before profiles
    existed stored only their band: the default profile with that band."""
    parameters = parameters or {}
    if parameters.get("profile"):
        return Profile.from_dict(parameters["profile"], source="plan profile")
    return PRESETS["default"].with_band(parameters.get("min_households"), parameters.get("max_households"))


def for_run(conn: sa.Connection, territory: str, spec: ProfileSpec = None, *, min_households: int | None = None,
            max_households: int | None = None) -> Profile:
    """The profile a partition or merge of ``territory`` runs with (see the module docstring)."""
    if isinstance(spec, Profile):
        profile = spec
    elif spec is None:
        profile = of_territory(conn, territory)
    else:
        profile = load(spec)
    return profile.with_band(min_households, max_households)


@dataclass(frozen=True)
class RulesNotApplied:
    """A territory below a run's own whose stored profile differs from the run's: ``code``,
    ``name``, its profile's ``profile`` name and ``band`` (a plan follows one set of rules: a
    district-wide partition measures every community by the district's)."""

    code: str
    name: str | None
    profile: str
    band: tuple[int, int]


def not_applied_below(conn: sa.Connection, territory: str, run: Profile) -> list[RulesNotApplied]:
    """The territories below ``territory`` whose own profile a run of ``territory`` with ``run``
    does not apply (their rules differ from the run's)."""
    found = []
    for code, name, data in territories.own_profiles_below(conn, territory):
        own = Profile.from_dict(data, source=f"profile of {code}")
        if _rules(own) != _rules(run):
            found.append(RulesNotApplied(code, name, own.name, tuple(own.band)))
    return found


NAMING_KEYS = ("name", "title_zh", "title_en")
"""What names a profile without being one of its rules: two profiles that differ only there apply alike."""


def _rules(profile: Profile) -> dict:
    return {k: v for k, v in profile.to_dict().items() if k not in NAMING_KEYS}


def parameters_of(profile: Profile, **extra) -> dict:
    """What a plan stores of the run that made it: the profile whole, its band at the top (read by
    older clients and by SQL), and ``extra`` (seed, departments ...)."""
    lo, hi = profile.band
    return {"min_households": lo, "max_households": hi, "profile": profile.to_dict(), **extra}


def set_for_territory(engine: sa.Engine, territory: str, spec: ProfileSpec, *, actor: str) -> Profile | None:
    """Store ``spec`` as ``territory``'s own profile (None: follow the parent's again); audited."""
    profile = None if spec is None else (spec if isinstance(spec, Profile) else load(spec))
    with engine.begin() as conn:
        if not territories.exists(conn, territory):
            raise territories.TerritoryNotFound.of(territory)
        before = territories.profile_of(conn, territory)
        territories.set_profile(conn, territory, None if profile is None else profile.to_dict())
        audit.record(conn, actor=actor, action="set_profile", table="territories", row_key=territory,
                     before={"held_by": before[0], "name": (before[1] or {}).get("name")},
                     after=None if profile is None else profile.describe())
    return profile


__all__ = ["ProfileSpec", "RulesNotApplied", "of_territory", "of_parameters", "for_run", "not_applied_below",
           "parameters_of", "set_for_territory"]
