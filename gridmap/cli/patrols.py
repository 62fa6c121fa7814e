"""``gridmap patrols``: a grid worker's track from a GPX or GeoJSON file, and a week's coverage
per grid (the share of its streets walked, who walked, which staff did not)."""

from __future__ import annotations

import argparse
import json

from gridmap.cli import checks
from gridmap.cli.checks import UserError


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``patrols`` to the ``gridmap`` parser."""
    cmd = sub.add_parser("patrols", help="patrols (巡查): tracks from GPX/GeoJSON, a week's coverage per grid")
    cmd.add_argument("action", choices=["import", "coverage"])
    cmd.add_argument("file", nargs="?", help="import: the track (.gpx, or .geojson Points with a time)")
    cmd.add_argument("--territory", required=True, metavar="CODE")
    cmd.add_argument("--walker", metavar="USERNAME", help="import: whose walk it was (an account)")
    cmd.add_argument("--crs", choices=["4490", "gcj02"], help="import: the track's coordinates (default CGCS2000/WGS84)")
    cmd.add_argument("--week", metavar="YYYY-Www", help="coverage: the ISO week (default this week)")
    cmd.add_argument("--json", action="store_true", help="coverage: every grid as JSON")
    cmd.set_defaults(func=cmd_patrols)


def cmd_patrols(args: argparse.Namespace) -> int:
    from gridmap.services import patrols

    engine = checks.engine()
    checks.territory(engine, args.territory)
    if args.action == "import":
        if not args.file or not args.walker:
            raise UserError("usage: gridmap patrols import FILE --territory CODE --walker USERNAME [--crs gcj02] / "
                            "用法：gridmap patrols import 文件 --territory 辖区代码 --walker 账号")
        path = checks.input_file(args.file, "track")
        from gridmap.store import users

        with engine.connect() as conn:
            user_id = users.id_of(conn, args.walker)
        if user_id is None:
            raise UserError(f"no account {args.walker!r} / 没有账号 {args.walker!r}")
        points, source = patrols.read_points(path, crs=args.crs)
        done = patrols.record(engine, args.territory, points, user_id=user_id, walker=args.walker, source=source)
        state = ("stored", "已保存") if done["stored"] else ("already stored", "此前已保存")
        print(f"track of {done['points']} points ({done['dropped']} dropped), {done['length_m']:.0f} m, "
              f"{done['started_at']} – {done['ended_at']}: {state[0]} / 轨迹 {done['points']} 点，{done['length_m']:.0f} 米：{state[1]}")
        return 0
    found = patrols.coverage(engine, args.territory, week=args.week)
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=1))
        return 0
    t = found["totals"]
    share = "-" if t["share"] is None else f"{t['share']:.1%}"
    print(f"{args.territory}, week {found['week'][0]}: {t['grids_patrolled']} of {t['grids']} grids patrolled, "
          f"{share} of {t['street_m'] / 1000:.1f} km of streets walked / 本周 {t['grids_patrolled']}/{t['grids']} 个网格"
          f"有巡查，街道 {t['street_m'] / 1000:.1f} 公里中已巡 {share}")
    for g in found["grids"]:
        if g["not_patrolled"]:
            print(f"  {g['grid_code']}: not patrolled by / 未巡查：{'、'.join(g['not_patrolled'])}")
    return 0
