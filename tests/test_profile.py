"""The city profile: one object for every rule a city sets, read from TOML, stored per territory,
passed down to units, partition and merge, stored with each plan and shown in its report."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import gridmap as gm
from gridmap.api.app import create_app
from gridmap.geo.codes import CJT_20
from gridmap.geo.partition import PartitionRules, partition, with_band
from gridmap.geo.profile import PRESETS, Profile, ProfileError, load
from gridmap.geo.synthetic import unit_grid
from gridmap.services import profiles
from gridmap.services.partitioning import partition_territory
from gridmap.services.planning import report as plan_report
from gridmap.services.planning import validate
from samples import signed_in_client

MONACO = "980100"


# -- the object and its file ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_survives_its_own_toml(name: str) -> None:
    preset = PRESETS[name]
    assert Profile.from_toml(preset.to_toml()) == preset
    assert Profile.from_dict(preset.to_dict()) == preset


def test_a_file_overrides_its_base_and_keeps_the_rest() -> None:
    text = """
name = "yucheng"
title_zh = "雨城区网格规则"
base = "cjt-349"
micro_band = [40, 90]
[partition]
min_households = 250
max_households = 450
[roads]
major_classes = ["primary"]
[units.household_rule]
dwelling_m2 = 95
"""
    profile = Profile.from_toml(text)
    assert profile.name == "yucheng" and profile.title_zh == "雨城区网格规则"
    assert profile.band == (250, 450) and profile.micro_band == (40, 90)
    assert profile.partition.code_scheme == CJT_20  # from the base
    assert profile.roads.major_classes == ("primary",)
    assert profile.roads.barrier_classes == PRESETS["default"].roads.barrier_classes
    assert profile.units.household_rule.dwelling_m2 == 95.0
    assert profile.units.household_rule.net_share == PRESETS["default"].units.household_rule.net_share
    assert Profile.from_toml(profile.to_toml()) == profile


@pytest.mark.parametrize("text, en, zh", [
    ("[partition]\nmin = 300", "unknown key 'partition.min'", "未知的键 'partition.min'"),
    ("[partition]\nmin_households = 600", "600–500 is not a band", "户数区间 600–500 无效"),
    ("[partition]\nmin_households = 0", "0–500 is not a band", "户数区间 0–500 无效"),
    ("micro_band = [80, 50]", "micro-grid band 80–50", "微网格户数区间 80–50"),
    ("micro_band = [50]", "'micro_band' must be a pair", "'micro_band' 应为区间"),
    ("[partition]\nmax_households = 450.5", "must be a whole number", "应为整数"),
    ("[units.household_rule]\ndwelling_m2 = \"big\"", "'units.household_rule.dwelling_m2' must be a number", "应为数字"),
    ("[roads]\nmajor_classes = \"primary\"", "'roads.major_classes' must be a list", "应为列表"),
    ("[partition]\ncode_scheme = \"beijing-16\"", "unknown code scheme 'beijing-16'", "编码规则 'beijing-16' 未知"),
    ("base = \"shanghai\"", "unknown base profile 'shanghai'", "没有名为 'shanghai' 的预设规则"),
    ("[partition\nmin_households = 300", "is not valid TOML", "不是有效的 TOML"),
])
def test_a_bad_file_is_refused_naming_the_key_in_both_languages(text: str, en: str, zh: str) -> None:
    with pytest.raises(ProfileError) as refused:
        Profile.from_toml(text, source="rules.toml")
    assert en in refused.value.en and zh in refused.value.zh


def test_load_takes_a_preset_or_a_file(tmp_path: Path) -> None:
    assert load(None) is PRESETS["default"] and load("cjt-349") is PRESETS["cjt-349"]
    path = tmp_path / "rules.toml"
    path.write_text('name = "mine"\n[partition]\nmax_households = 420\n', encoding="utf-8")
    assert load(path).band == (300, 420) and load(str(path)).name == "mine"
    with pytest.raises(ProfileError, match="neither a preset"):
        load(tmp_path / "missing.toml")


# -- the band: one override rule ----------------------------------------------------------------------------
def test_an_explicit_band_wins_even_when_it_is_the_default_band() -> None:
    """The old check `(min, max) != (300, 500)` let an explicit 300–500 lose to the rules' band."""
    units = unit_grid(144, seed=3)
    narrow = PartitionRules(min_households=250, max_households=400)
    result = partition(units, rules=narrow, min_households=300, max_households=500)
    assert (result.report["summary"]["min_households"], result.report["summary"]["max_households"]) == (300, 500)
    kept = partition(units, rules=narrow)
    assert (kept.report["summary"]["min_households"], kept.report["summary"]["max_households"]) == (250, 400)


def test_overriding_the_band_drops_a_target_outside_it() -> None:
    rules = PartitionRules(target_households=450.0)
    assert with_band(rules, 50, 80).target_households is None
    assert with_band(rules, 400, 500).target_households == 450.0
    with pytest.raises(ValueError, match="not a band"):
        with_band(rules, 90, 80)


def test_the_notebook_api_takes_a_profile_and_the_micro_band(monaco_units) -> None:
    _, units = monaco_units
    one_community = units[units["community_code"] == units["community_code"].iloc[0]]
    micro = gm.partition(one_community, micro=True)
    s = micro.report["summary"]
    assert (s["min_households"], s["max_households"]) == (50, 80)
    coded = gm.partition(one_community, profile="cjt-349")
    assert coded.grids["grid_code"].str.fullmatch(r"\d{20}").all()
    assert (coded.report["summary"]["min_households"], coded.report["summary"]["max_households"]) == (300, 500)


# -- stored per territory, with each plan, in its report ------------------------------------------------
def _a_community_of(engine: sa.Engine, code: str) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "WITH RECURSIVE sub AS (SELECT id, code, level FROM territories WHERE code = :c UNION ALL "
            "SELECT t.id, t.code, t.level FROM territories t JOIN sub ON t.parent_id = sub.id) "
            "SELECT min(code) FROM sub WHERE level = 'community'"), {"c": code}).scalar_one()


def test_a_territory_follows_its_own_or_its_ancestors_profile(monaco: sa.Engine, tmp_path: Path) -> None:
    community = _a_community_of(monaco, MONACO)
    with monaco.connect() as conn:
        assert profiles.of_territory(conn, community) == PRESETS["default"]
    profiles.set_for_territory(monaco, MONACO, "cjt-349", actor="test")
    with monaco.connect() as conn:
        assert profiles.of_territory(conn, community) == PRESETS["cjt-349"]  # inherited
    own = tmp_path / "own.toml"
    own.write_text('name = "la-condamine"\nbase = "cjt-349"\n[partition]\nmin_households = 200\n'
                   'max_households = 350\n', encoding="utf-8")
    profiles.set_for_territory(monaco, community, own, actor="test")
    with monaco.connect() as conn:
        assert profiles.of_territory(conn, community).band == (200, 350)
        assert profiles.of_territory(conn, MONACO) == PRESETS["cjt-349"]  # the ancestor keeps its own
        audited = conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'set_profile'")).scalar_one()
    assert audited == 2
    profiles.set_for_territory(monaco, community, None, actor="test")
    with monaco.connect() as conn:
        assert profiles.of_territory(conn, community) == PRESETS["cjt-349"]
    with pytest.raises(LookupError), monaco.connect() as conn:
        profiles.of_territory(conn, "000000")


def test_a_plan_is_made_with_and_measured_against_its_territorys_profile(monaco: sa.Engine, database_url: str,
                                                                          tmp_path: Path) -> None:
    rules = tmp_path / "monaco.toml"
    rules.write_text('name = "monaco"\ntitle_zh = "摩纳哥规则"\nbase = "cjt-349"\n'
                     '[partition]\nmin_households = 200\nmax_households = 350\n', encoding="utf-8")
    profiles.set_for_territory(monaco, MONACO, rules, actor="test")
    summary = partition_territory(monaco, MONACO)
    s = summary.result.report["summary"]
    assert (s["min_households"], s["max_households"]) == (200, 350)
    assert summary.result.grids["grid_code"].str.fullmatch(r"\d{20}").all()  # CJ/T 349 codes
    # the plan keeps the profile: changing the territory's afterwards changes nothing about it
    profiles.set_for_territory(monaco, MONACO, "default", actor="test")
    report = plan_report(monaco, summary.plan_id)
    assert report["profile"]["name"] == "monaco" and report["profile"]["band"] == [200, 350]
    assert (report["summary"]["min_households"], report["summary"]["max_households"]) == (200, 350)
    checked = validate(monaco, summary.plan_id)
    below = [p for p in checked["problems"] if p["kind"] == "below_min"]
    assert all("200" in p["message_en"] for p in below)
    client = signed_in_client(monaco, database_url, "viewer", "viewer", MONACO)
    page = client.get(f"/plans/{summary.plan_id}/report").text
    assert 'id="profile"' in page and "摩纳哥规则" in page and "200–350" in page
    state = client.get(f"/api/plans/{summary.plan_id}").json()
    assert state["parameters"]["profile"]["name"] == "monaco"
    # an explicit band overrides the profile, and the plan records the band it used
    second = partition_territory(monaco, MONACO, min_households=300, max_households=500)
    with monaco.connect() as conn:
        stored = conn.execute(sa.text("SELECT parameters FROM plans WHERE id = :p"), {"p": second.plan_id}).scalar_one()
    assert (stored["min_households"], stored["max_households"]) == (300, 500)
    assert stored["profile"]["partition"]["min_households"] == 300 and stored["profile"]["name"] == "default"
    assert TestClient(create_app(database_url=database_url)).get("/api/health").status_code == 200


def test_a_district_wide_partition_says_whose_own_rules_it_did_not_apply(monaco: sa.Engine, tmp_path: Path) -> None:
    """A village with rules of its own (a rural band) inside a territory partitioned as a whole:
    the plan follows one set of rules, and its summary and report say which territory's own rules
    it did not apply and how to apply them; one whose rules equal the run's is not named."""
    community = _a_community_of(monaco, MONACO)
    rural = tmp_path / "rural.toml"
    rural.write_text('name = "农村规则"\nbase = "default"\n[partition]\nmin_households = 150\nmax_households = 300\n',
                     encoding="utf-8")
    profiles.set_for_territory(monaco, community, rural, actor="test")
    summary = partition_territory(monaco, MONACO)
    s = summary.result.report["summary"]
    assert (s["min_households"], s["max_households"]) == (300, 500)  # the run's rules, everywhere
    assert [(r.code, r.profile, r.band) for r in summary.not_applied] == [(community, "农村规则", (150, 300))]
    assert f"1 territory below {MONACO} has rules of its own, which this plan does not apply" in str(summary)
    assert f"{community}" in str(summary) and "(农村规则: 150–300)" in str(summary)
    assert "gridmap partition --territory CODE" in str(summary)
    assert "设有自己的规则配置，本方案未采用" in summary.zh() and "（农村规则：150–300 户）" in summary.zh()
    assert summary.result.report["profile"]["not_applied_below"] == [
        {"code": community, "name": summary.not_applied[0].name, "profile": "农村规则", "band": [150, 300]}]
    renamed = tmp_path / "renamed.toml"  # the run's rules under a name of its own: applied alike, not named
    renamed.write_text('name = "城区规则"\ntitle_zh = "城区规则"\nbase = "default"\n', encoding="utf-8")
    profiles.set_for_territory(monaco, community, renamed, actor="test")
    again = partition_territory(monaco, MONACO)
    assert again.not_applied == [] and "rules of their own" not in str(again)
    assert "not_applied_below" not in again.result.report["profile"]


def test_plans_made_before_profiles_keep_their_band(monaco: sa.Engine) -> None:
    summary = partition_territory(monaco, MONACO, min_households=250, max_households=450)
    with monaco.begin() as conn:  # as an older gridmap stored it: the band only
        conn.execute(sa.text("UPDATE plans SET parameters = parameters - 'profile', report_version = NULL "
                             "WHERE id = :p"), {"p": summary.plan_id})
    report = plan_report(monaco, summary.plan_id)
    assert report["profile"]["band"] == [250, 450] and report["profile"]["name"] == "default"


# -- the command ------------------------------------------------------------------------------------------
def test_cli_profile_show_set_and_partition(monaco: sa.Engine, database_url: str, tmp_path: Path, monkeypatch,
                                            capsys) -> None:
    """The commands in this process (``samples.run_cli``: the same main(), a second apiece less)."""
    from samples import run_cli

    monkeypatch.setenv("GRIDMAP_DATABASE_URL", database_url)

    def gridmap(*args: str) -> subprocess.CompletedProcess:
        status, out, err = run_cli(capsys, *args)
        return subprocess.CompletedProcess(["gridmap", *args], status, out, err)

    listed = gridmap("profile", "presets")
    assert listed.returncode == 0 and all(name in listed.stdout for name in PRESETS)
    written = gridmap("profile", "show", "cjt-349", "--toml")
    assert written.returncode == 0, written.stderr
    path = tmp_path / "rules.toml"
    path.write_text(written.stdout.replace("max_households = 500", "max_households = 420"), encoding="utf-8")
    assert load(path).band == (300, 420)
    bad = tmp_path / "bad.toml"
    bad.write_text("[partition]\nminimum = 3\n", encoding="utf-8")
    refused = gridmap("profile", "set", str(bad), "--territory", MONACO)
    assert refused.returncode == 1 and "unknown key 'partition.minimum'" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    with monaco.connect() as conn:  # nothing stored
        assert conn.execute(sa.text("SELECT count(*) FROM territories WHERE profile IS NOT NULL")).scalar_one() == 0
    assert gridmap("profile", "set", str(path), "--territory", MONACO).returncode == 0
    shown = gridmap("profile", "show", "--territory", MONACO)
    assert "300–420 households per grid" in shown.stdout and "cjt-20" in shown.stdout
    made = gridmap("partition", "--territory", MONACO, "--min", "250")
    assert made.returncode == 0, made.stderr
    assert "[250, 420]" in made.stdout  # the profile's maximum, the command's minimum
    with_file = gridmap("partition", "--territory", MONACO, "--profile", "default")
    assert "[300, 500]" in with_file.stdout
    assert re.search(r"draft plan 2 ", with_file.stdout)
    wrong = gridmap("partition", "--territory", MONACO, "--min", "600")
    assert wrong.returncode == 1 and "600–420" in wrong.stderr and "not a band" in wrong.stderr


def test_the_api_reads_and_sets_a_territorys_profile(monaco: sa.Engine, database_url: str) -> None:
    anonymous = TestClient(create_app(database_url=database_url))
    shown = anonymous.get(f"/api/territories/{MONACO}/profile").json()
    assert shown["name"] == "default" and shown["held_by"] is None and shown["band"] == [300, 500]
    assert Profile.from_toml(shown["toml"]) == PRESETS["default"]
    text = 'name = "monaco"\nbase = "cjt-349"\n[partition]\nmax_households = 450\n'
    assert anonymous.put(f"/api/territories/{MONACO}/profile", content=text,
                         headers={"Content-Type": "application/toml"}).status_code == 401
    planner = signed_in_client(monaco, database_url, "planner", "planner", MONACO)
    assert planner.put(f"/api/territories/{MONACO}/profile", content=text,
                       headers={"Content-Type": "application/toml"}).status_code == 403
    admin = signed_in_client(monaco, database_url, "admin-mc", "admin", MONACO)
    done = admin.put(f"/api/territories/{MONACO}/profile", content=text, headers={"Content-Type": "application/toml"})
    assert done.status_code == 200, done.text
    assert done.json()["held_by"] == MONACO and done.json()["band"] == [300, 450]
    assert done.json()["code_scheme"] == "cjt-20"
    bad = admin.put(f"/api/territories/{MONACO}/profile", content="[partition]\nmin = 1\n",
                    headers={"Content-Type": "application/toml"})
    assert bad.status_code == 422 and "未知的键" in bad.json()["detail_zh"]
    preset = admin.put(f"/api/territories/{MONACO}/profile", content="db11-2157",
                       headers={"Content-Type": "text/plain"})
    assert preset.status_code == 200 and preset.json()["name"] == "db11-2157"
    assert admin.delete(f"/api/territories/{MONACO}/profile").status_code == 204
    assert anonymous.get(f"/api/territories/{MONACO}/profile").json()["held_by"] is None
    assert anonymous.get("/api/territories/000000/profile").status_code == 404


def test_a_file_with_one_title_or_a_name_is_not_called_the_default_rules() -> None:
    """A district's 规则.toml said title_zh only, and the report called it "default rules"."""
    from gridmap.geo.profile import Profile

    only_zh = Profile.from_toml('name = "jincheng"\ntitle_zh = "锦城区网格规则"\n')
    assert (only_zh.title_zh, only_zh.title_en) == ("锦城区网格规则", "锦城区网格规则")
    only_name = Profile.from_toml('name = "jincheng"\n')
    assert (only_name.title_zh, only_name.title_en) == ("jincheng", "jincheng")
    both = Profile.from_toml('title_zh = "锦城区"\ntitle_en = "Jincheng"\n')
    assert (both.title_zh, both.title_en) == ("锦城区", "Jincheng")
    assert Profile.from_toml("[partition]\nmin_households = 250\n").title_en == "default rules"
    blank = Profile.from_toml('title_zh = ""\n')  # says nothing: the base's titles
    assert (blank.title_zh, blank.title_en) == ("默认规则", "default rules")
