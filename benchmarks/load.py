"""A bounded load test on loopback: N concurrent clients for S seconds against a real
``gridmap serve`` process, mixing incident reports, map reads and planner edits.

    .venv/bin/python benchmarks/load.py [--clients 50] [--seconds 60] [--territory 990100] [--workers 1,2]
                                        [--baseline REV]

Runs in its own database (``<db>_load`` on the configured server, created, filled with the demo
territory and a published plan, dropped at the end). Each client is signed in; a tenth of them
are planners, each editing a draft of their own (so edits never conflict). The mix per request:
45% incident reports (``POST /api/incidents`` at a point inside a published grid), 45% map reads
(OGC API Features items in a bounding box, a vector tile, the dashboard choropleth, a point
lookup), 10% planner edits (``set`` on a grid of the client's draft).

Prints requests, errors (any non-2xx answer or dropped connection), throughput and p50/p95/max
latency per kind, and checks that the incidents stored equal the incidents acknowledged.
``--baseline REV`` (a commit or tag of main) first runs that revision's own load test, from a git
worktree of it, with the same options, then this checkout's, and prints the two side by side:
requests a second and each kind's p95, in the same run on the same machine.
The generator lives in ``tests/loadgen.py``: tests/test_load.py runs it with a small, bounded
configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from loadgen import Server, prepare, run_load  # noqa: E402  (the generator the test suite runs too)

def main() -> int:
    from sqlalchemy.engine import make_url

    from gridmap.services.bootstrap import ensure_demo_plans
    from gridmap.services.demo import load_demo
    from gridmap.services.incidents import ensure_categories
    from gridmap.store import migrate
    from gridmap.store.databases import drop_database, ensure_postgis_database
    from gridmap.store.db import engine_for, resolve_url

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--territory", default="990100")
    parser.add_argument("--workers", default="1", help="server processes; a list (1,2) runs each in turn")
    parser.add_argument("--baseline", help="a git revision whose own load test runs first, for comparison")
    args = parser.parse_args()
    if args.baseline:
        options = ["--clients", str(args.clients), "--seconds", str(args.seconds), "--territory", args.territory,
                   "--workers", args.workers]
        theirs = baseline_run(args.baseline, options)
        mine = subprocess.run([sys.executable, __file__, *options], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})  # (its server too: this checkout's code)
        print(f"## this checkout\n{mine.stdout}{mine.stderr[-2000:] if mine.returncode else ''}", flush=True)
        print(comparison(theirs, mine.stdout, args.baseline))
        return mine.returncode
    url = make_url(resolve_url()).set(database=f"{make_url(resolve_url()).database}_load_{secrets.token_hex(2)}")
    url = url.render_as_string(hide_password=False)
    ensure_postgis_database(url)
    try:
        migrate.upgrade(url)
        engine = engine_for(url)
        load_demo(engine, ["reykjavik" if args.territory.startswith("99") else "monaco"])
        ensure_demo_plans(engine, (args.territory,))
        ensure_categories(engine)
        setup = prepare(engine, args.territory, planners=max(1, args.clients // 10))
        ok = True
        for workers in [int(w) for w in str(args.workers).split(",")]:  # each in the same run, one after the other
            server = Server(url, workers=workers)
            try:
                result = asyncio.run(run_load(server.url, args.territory, setup, clients=args.clients,
                                              seconds=args.seconds))
            finally:
                server.stop()
            if result.errors:
                print(server.errors()[-3000:])
            stored = engine.connect().execute(sa.text("SELECT count(*) FROM incidents WHERE public_id = ANY(:ids)"),
                                              {"ids": result.acknowledged}).scalar()
            print(f"{args.clients} clients for {args.seconds:.0f} s against {args.territory} on loopback, "
                  f"gridmap serve --workers {workers}")
            print(result.report())
            print(f"incidents stored {stored} = acknowledged {len(result.acknowledged)}: "
                  f"{'yes' if stored == len(result.acknowledged) else 'NO'}")
            for error in result.errors[:10]:
                print("  error:", error)
            ok = ok and not result.errors and stored == len(result.acknowledged)
        engine.dispose()
        return 0 if ok else 1
    finally:
        drop_database(url)


def baseline_run(revision: str, options: list[str]) -> str:
    """The output of ``revision``'s own benchmarks/load.py with ``options``, run from a temporary git
    worktree of it (its code first on the path, its server started from there)."""
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False)  # (one a killed run left)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), revision], check=True)
        try:
            env = {**os.environ, "PYTHONPATH": str(tree)}
            run = subprocess.run([sys.executable, str(tree / "benchmarks" / "load.py"), *options], cwd=tree, env=env,
                                 capture_output=True, text=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    print(f"## baseline {revision}\n{run.stdout}{run.stderr[-2000:] if run.returncode else ''}", flush=True)
    return run.stdout


def _figures(report: str) -> list[dict]:
    """Per server run of a report: requests a second and each kind's p95 (ms)."""
    runs = []
    for block in report.split("incidents stored")[:-1]:
        rate = re.findall(r"\((\d+)/s\)", block)
        p95 = dict(re.findall(r"^\s+(\w+)\s+\d+ requests\s+p50\s+[\d.]+ ms\s+p95\s+([\d.]+) ms", block, re.M))
        if rate:
            runs.append({"rps": float(rate[-1]), "p95": {k: float(v) for k, v in p95.items()}})
    return runs


def comparison(baseline: str, current: str, revision: str) -> str:
    """The two reports side by side: requests a second and each kind's p95, as ratios."""
    lines = [f"## this checkout against {revision}, same run"]
    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}" if b else "n/a"

    for index, (old, new) in enumerate(zip(_figures(baseline), _figures(current))):
        lines.append(f"server run {index + 1}: {new['rps']:.0f} requests/s against {old['rps']:.0f} "
                     f"({ratio(new['rps'], old['rps'])}x)")
        for kind in sorted(set(old["p95"]) & set(new["p95"])):
            lines.append(f"  {kind:8} p95 {new['p95'][kind]:7.1f} ms against {old['p95'][kind]:7.1f} ms "
                         f"({ratio(new['p95'][kind], old['p95'][kind])} of it)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
