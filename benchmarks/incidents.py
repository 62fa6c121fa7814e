"""Incidents at scale and the 15-minute coverage, measured in one run.

    .venv/bin/python benchmarks/incidents.py [--count 1000000] [--maps-only | --maps-of-loaded]
    (needs the bench extras for the MCLP peer: pip install -e '.[bench]')

1. Ingest N labelled-synthetic incidents over Reykjavík: route every point to its published grid
   (vectorised point-in-polygon over an index of prepared grids), COPY into a scratch table, then
   add community, street and the category's department in one INSERT ... SELECT (target:
   1,000,000 in under 60 s). Beside it, the same points routed by a lateral ST_Intersects join
   in PostGIS, the way a single report is routed.
2. The per-grid choropleth over all of them (incidents per 1,000 households, overdue rate,
   median handling time; target under 500 ms), and the dashboard summary.
3. Publishing with all of them loaded: a draft with one unit moved, then a fresh partition; the
   incidents follow the published plan (target: under 30 s with a million).
4. Coverage of every demo station type (walking network, 15 minutes), and suggested sites for
   new pharmacies: gridmap's greedy maximum coverage beside spopt's exact MCLP on the same
   candidates, demand and distances.

Runs in its own database (``<db>_bench``) on the configured server, which it creates.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridmap.geo import walking  # noqa: E402
from gridmap.geo.incident_demo import generate, places  # noqa: E402
from gridmap.services import stations  # noqa: E402
from gridmap.services.bootstrap import ensure_demo_plans  # noqa: E402
from gridmap.services.demo import load_demo  # noqa: E402
from gridmap.services.incidents import bulk_load, calendar_from_env, ensure_categories, make_months  # noqa: E402
from gridmap.store import frames, incident_stats, migrate, territories  # noqa: E402
from gridmap.store import incidents as store  # noqa: E402
from gridmap.store import layers as layer_store  # noqa: E402
from gridmap.store.databases import ensure_postgis_database  # noqa: E402
from gridmap.store.db import engine_for, resolve_url  # noqa: E402

REYKJAVIK = "990100"


def timed(fn, *args, repeat: int = 1, **kwargs):
    runs, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        runs.append(time.perf_counter() - started)
    return result, (statistics.median(runs) if repeat > 1 else runs[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=5)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--maps-only", action="store_true",
                      help="ingest, then the dashboard's maps and single reports only (no publish, coverage or sites)")
    only.add_argument("--maps-of-loaded", action="store_true",
                      help="no ingest: the dashboard's maps over the incidents an earlier run left in the benchmark's "
                           "database (ten million take minutes to load; their maps, seconds). The date ranges are "
                           "counted from today, as in the run that loaded them: run it in the same month")
    args = parser.parse_args()

    url = make_url(resolve_url())
    bench = url.set(database=f"{url.database}_bench").render_as_string(hide_password=False)
    ensure_postgis_database(bench)
    migrate.upgrade(bench)
    engine = engine_for(bench)
    load_demo(engine, ["reykjavik"])
    ensure_demo_plans(engine, (REYKJAVIK,))
    ensure_categories(engine)
    stations.load_demo_stations(engine, REYKJAVIK)
    if args.maps_of_loaded:
        with engine.connect() as conn:
            if not conn.execute(sa.text("SELECT EXISTS (SELECT FROM incidents)")).scalar_one():
                print("--maps-of-loaded: the benchmark's database holds no incidents; load them first "
                      "(--count N --maps-only)", file=sys.stderr)
                return 2
        measure_maps(engine)
        return 0
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE incidents CASCADE"))

    # 1. ingest ------------------------------------------------------------------------------
    import shapely

    with engine.connect() as conn:
        area = territories.outline_hex(conn, REYKJAVIK)
        layers = {r: frames.layer_in_area(conn, *layer_store.find(conn, REYKJAVIK, (r,)),
                                          shapely.from_wkb(bytes.fromhex(area)))
                  for r in ("buildings", "roads", "sites")}
        categories = store.categories(conn)

    where = places(layers["buildings"], layers["roads"], layers["sites"], shapely.from_wkb(bytes.fromhex(area)))
    now = datetime.now(timezone.utc)
    frame, gen_s = timed(generate, where, categories, count=args.count, start=now - timedelta(days=365),
                         calendar=calendar_from_env().for_synthetic_history(), now=now)
    print(f"generated {len(frame):,} incidents (with due times on the working calendar) in {gen_s:.1f} s")

    def ingest():
        make_months(engine, frame)  # the monthly partitions the load needs, each attached empty
        with engine.begin() as conn:
            return bulk_load(conn, frame, source="benchmark", synthetic=True, with_events=False)

    (stored, left_out), ingest_s = timed(ingest)
    print(f"ingest + route (points to grids in bulk, COPY, then community/street/department in one INSERT ... SELECT): "
          f"{stored:,} stored, {left_out:,} outside every grid, {ingest_s:.1f} s = {len(frame) / ingest_s:,.0f} rows/s "
          f"(target: 1,000,000 in < 60 s)")
    compare_routing(engine, frame.sample(n=min(len(frame), 200_000), random_state=0))
    _, vacuum_s = timed(store.vacuum_analyze, engine)
    print(f"VACUUM ANALYZE after the load (what autovacuum does on its own a little later): {vacuum_s:.1f} s")

    # 2. maps --------------------------------------------------------------------------------
    measure_maps(engine)
    measure_reports(engine, frame.sample(n=200, random_state=1), categories)
    if args.maps_only:
        return 0

    # 3. publish: incidents follow the newly published plan -------------------------------------
    measure_publish(engine)

    # 4. coverage and sites --------------------------------------------------------------------
    _, context_s = timed(stations.context, engine, REYKJAVIK)
    report, coverage_s = timed(stations.coverage, engine, REYKJAVIK)
    print(f"walking network + households: {context_s:.1f} s once; coverage of {len(report['types'])} station types "
          f"for {len(report['grids'])} grids: {coverage_s:.2f} s")
    compare_sites(engine, "pharmacy", args.k)
    return 0


def measure_maps(engine: sa.Engine) -> None:
    """The dashboard's figures read from the monthly rollups (migration 0023) under the filters
    it sends, each the median of 5 runs, beside the same figures counted from the incidents
    themselves (the peer: what the dashboard read before the rollups) for the whole year."""
    first = datetime.now(timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (first - timedelta(days=1)).replace(day=1)
    cases = (("all incidents", incident_stats.Filters()),
             ("one category", incident_stats.Filters(category="0201")),
             ("open statuses", incident_stats.Filters(statuses=("dispatched", "claimed", "handled", "verified"))),
             ("one whole month", incident_stats.Filters(start=last_month, end=first)),
             ("40 days, not whole months", incident_stats.Filters(start=last_month - timedelta(days=25),
                                                                  end=last_month + timedelta(days=15))))
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one()
        rows = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("incident_grid_months", "incident_handling_months", "incident_cell_months")}
        print(f"rollups over {total:,} incidents: " + ", ".join(f"{t} {n:,} rows" for t, n in rows.items()))
        for label, filters in cases:
            timings = []
            for metric in incident_stats.METRICS:
                fc, seconds = timed(incident_stats.choropleth, conn, REYKJAVIK, filters, metrics=(metric,), repeat=5)
                timings.append(f"{metric} {seconds * 1000:.0f} ms")
            _, all_s = timed(incident_stats.choropleth, conn, REYKJAVIK, filters, repeat=5)
            _, summary_s = timed(incident_stats.summary, conn, REYKJAVIK, filters, repeat=5)
            _, heat_s = timed(incident_stats.heat, conn, REYKJAVIK, filters, cell_deg=0.0026, repeat=5)
            months, play_s = timed(incident_stats.monthly_clusters, conn, REYKJAVIK, filters, cell_deg=0.005, repeat=5)
            # the dashboard's clusters at zoom 13 (cells of 0.0103°) over the whole city, no bbox
            cells, clusters_s = timed(incident_stats.clusters, conn, REYKJAVIK, filters, cell_deg=0.0103, repeat=5)
            print(f"{label} (target < 500 ms each): choropleth of {len(fc['features'])} grids {'; '.join(timings)}; "
                  f"all three {all_s * 1000:.0f} ms; summary {summary_s * 1000:.0f} ms; heat (zoom 13) "
                  f"{heat_s * 1000:.0f} ms; month play ({len(months)} months) {play_s * 1000:.0f} ms; "
                  f"clusters (zoom 13, {len(cells)} cells) {clusters_s * 1000:.0f} ms")
            conn.rollback()  # each case, and the peer after them, from the session's own settings
        raw_counts = ("SELECT i.grid_lineage, count(*), count(*) FILTER (WHERE COALESCE(i.closed_at, now()) > i.due_at "
                      "AND i.status <> 'rejected') FROM incidents i GROUP BY 1")
        raw_heat = "SELECT ST_SnapToGrid(i.geom, 0.0026), count(*) FROM incidents i GROUP BY 1"
        raw_months = ("SELECT date_trunc('month', i.reported_at), ST_SnapToGrid(i.geom, 0.005), count(*), avg(ST_X(i.geom)), "
                      "avg(ST_Y(i.geom)) FROM incidents i GROUP BY 1, 2")
        raw_clusters = ("SELECT avg(ST_Y(i.geom)), avg(ST_X(i.geom)), count(*), count(*) FILTER (WHERE i.status NOT IN "
                        "('closed', 'rejected')), min(i.public_id) FROM incidents i GROUP BY ST_SnapToGrid(i.geom, 0.0103)")
        peer = []
        for label, sql in (("per-grid counts and overdue", raw_counts), ("heat cells", raw_heat), ("month play", raw_months),
                           ("clusters", raw_clusters)):
            _, seconds = timed(lambda q=sql: conn.execute(sa.text(q)).all(), repeat=3)
            peer.append(f"{label} {seconds * 1000:.0f} ms")
        print("peer, the same figures counted from the incidents themselves (all incidents): " + "; ".join(peer))


def measure_reports(engine: sa.Engine, sample, categories) -> None:
    """Single reports as the API files them (routing, duplicates nearby, the rollups' triggers),
    one after another with every incident loaded: p50 and p95 (target p95 < 50 ms)."""
    from gridmap.services.incidents import Report, ReportError, report

    calendar = calendar_from_env()
    codes = [c.code for c in categories]
    times = []
    for n, row in enumerate(sample.itertuples()):
        item = Report(category_code=codes[n % len(codes)], lon=float(row.lon), lat=float(row.lat),
                      description="[benchmark] single report")
        started = time.perf_counter()
        try:
            report(engine, item, actor="benchmark", calendar=calendar)
        except ReportError:  # a point outside every published grid (left out of the load too)
            continue
        times.append(time.perf_counter() - started)
    times.sort()
    print(f"{len(times)} single reports: p50 {times[len(times) // 2] * 1000:.1f} ms, "
          f"p95 {times[int(len(times) * 0.95)] * 1000:.1f} ms (target p95 < 50 ms)")


def measure_publish(engine: sa.Engine) -> None:
    """Publish with every incident loaded: a draft with one unit moved (the planner's case: only
    the incidents of the two grids that changed are routed again), and a fresh partition with
    another seed (grids holding the same units keep their incidents; the rest are routed again
    in bulk). Each publish is one transaction; a report filed meanwhile waits for it."""
    from gridmap.services import planning
    from gridmap.services.partitioning import partition_territory

    with engine.connect() as conn:
        published = conn.execute(sa.text("SELECT id FROM plans WHERE status = 'published'")).scalar_one()
        unit, source, target = conn.execute(sa.text(
            "SELECT pu.unit_id, g.code, n.code FROM plan_units pu JOIN grids g ON g.id = pu.grid_id "
            "JOIN grids n ON n.plan_id = g.plan_id AND n.community_id = g.community_id AND n.id <> g.id "
            "WHERE pu.plan_id = :p AND (SELECT count(*) FROM plan_units x WHERE x.grid_id = g.id) > 1 "
            "ORDER BY pu.unit_id LIMIT 1"), {"p": published}).one()
        total = conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar_one()
    draft, _ = planning.new_draft(engine, REYKJAVIK, actor="benchmark")
    edit = planning.apply_edits(engine, draft, [{"op": "assign", "units": [unit], "grid": target}], version=1,
                                actor="benchmark")
    answer, seconds = timed(planning.publish, engine, draft, version=edit.version, actor="benchmark")
    print(f"publish after moving one unit ({source} → {target}) with {total:,} incidents: {seconds:.2f} s "
          f"(target < 30 s); {answer['incidents']}")
    fresh = partition_territory(engine, REYKJAVIK, seed=99)
    answer, seconds = timed(planning.publish, engine, fresh.plan_id, version=None, actor="benchmark")
    print(f"publish of a fresh partition (seed 99) with {total:,} incidents: {seconds:.2f} s; {answer['incidents']}")
    with engine.connect() as conn:
        lost = conn.execute(sa.text(
            "SELECT count(*) FROM incidents i WHERE NOT EXISTS (SELECT 1 FROM grids g WHERE g.lineage = i.grid_lineage "
            "AND g.plan_id = :p)"), {"p": fresh.plan_id}).scalar_one()
    print(f"incidents outside every grid of the new plan after both publishes: {lost}")
    store.vacuum_analyze(engine)


def compare_routing(engine: sa.Engine, sample) -> None:
    """The same points routed in bulk by gridmap and by PostGIS one lateral ST_Intersects per point
    (smaller code on a shared border, as for a single report); both must agree on every point."""
    import io

    import shapely

    from gridmap.geo import routing

    with engine.begin() as conn:
        def ours():
            grids = store.routing_grids(conn)
            where = routing.containing(sample["lon"].to_numpy(), sample["lat"].to_numpy(),
                                       shapely.from_wkb([bytes(g.wkb) for g in grids]), np.arange(len(grids)))
            ids = np.array([g.id for g in grids])
            return np.where(where >= 0, ids[where], -1)

        mine, ours_s = timed(ours)
        buffer = io.StringIO()
        sample[["lon", "lat"]].to_csv(buffer, header=False, index=False)
        buffer.seek(0)
        conn.execute(sa.text("CREATE TEMP TABLE sample_points (n serial, lon float8, lat float8) ON COMMIT DROP"))
        conn.connection.driver_connection.cursor().copy_expert("COPY sample_points (lon, lat) FROM STDIN WITH (FORMAT csv)", buffer)

        def lateral():
            return conn.execute(sa.text(
                "SELECT s.n, r.id FROM sample_points s LEFT JOIN LATERAL (SELECT g.id FROM grids g JOIN plans p "
                "ON p.id = g.plan_id AND p.status = 'published' WHERE ST_Intersects(g.geom, "
                "ST_SetSRID(ST_Point(s.lon, s.lat), 4490)) ORDER BY p.published_at DESC, g.code LIMIT 1) r ON true "
                "ORDER BY s.n")).all()

        theirs, theirs_s = timed(lateral)
    theirs = np.array([-1 if r.id is None else r.id for r in theirs])
    print(f"routing {len(sample):,} of the points: gridmap bulk {ours_s:.2f} s, PostGIS lateral ST_Intersects "
          f"{theirs_s:.2f} s ({theirs_s / ours_s:.1f}x); same grid for {np.mean(mine == theirs):.4%} of points")


def compare_sites(engine: sa.Engine, station_type: str, k: int) -> None:
    ctx = stations.context(engine, REYKJAVIK)
    limit = walking.DEFAULT_MINUTES * walking.DEFAULT_SPEED_M_PER_MIN
    with engine.connect() as conn:
        existing = frames.stations(conn, REYKJAVIK, station_type=station_type, places=False)
    ok = walking.covered(ctx.network, ctx.demand, existing, limit)
    unreached = ~ok
    nodes = walking.candidate_nodes(ctx.network, ctx.demand, unreached, 300, seed=0)
    matrix, build_s = timed(walking.candidate_coverage, ctx.network, ctx.demand, nodes, limit, unreached)
    weights = ctx.demand.households * unreached
    picks, greedy_s = timed(walking.greedy_sites, matrix, weights, k)
    greedy_value = sum(g for _, g in picks)
    print(f"new {station_type} sites, k={k}, 300 candidates, {int(unreached.sum()):,} unreached buildings: "
          f"coverage matrix {build_s:.2f} s")
    print(f"  gridmap greedy: {greedy_value:,.0f} households reached in {greedy_s * 1000:.1f} ms")
    try:
        from spopt.locate import MCLP
        import pulp
    except ImportError:
        print("  spopt MCLP: not installed (pip install -e '.[bench]')")
        return
    # the same problem for MCLP: demand points with weight, candidate sites, 0/1 reach as a cost
    active = np.flatnonzero(weights > 0)
    reach = matrix[:, active].toarray().T  # demand x candidates
    cost = np.where(reach > 0, 0.0, 2.0)
    model = MCLP.from_cost_matrix(cost, weights[active], service_radius=1.0, p_facilities=k)
    solver = pulp.PULP_CBC_CMD(msg=False)
    _, mclp_s = timed(model.solve, solver)
    chosen = [j for j in range(cost.shape[1]) if model.fac2cli[j]] if hasattr(model, "fac2cli") else []
    mclp_value = float(weights[active][(reach[:, chosen] > 0).any(axis=1)].sum()) if chosen else float("nan")
    same = len({r for r, _ in picks} & set(chosen))
    print(f"  spopt MCLP (CBC, exact): {mclp_value:,.0f} households reached in {mclp_s:.2f} s; "
          f"greedy reaches {greedy_value / mclp_value:.1%} of the optimum, {same}/{k} sites in common, "
          f"{mclp_s / max(greedy_s, 1e-9):,.0f}x the time")


if __name__ == "__main__":
    sys.exit(main())
