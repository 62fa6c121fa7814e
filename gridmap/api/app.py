"""The FastAPI application factory."""

from __future__ import annotations

from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from gridmap import __version__
from gridmap.api import (
    auth,
    boundaries,
    campaigns,
    dashboard,
    emergencies,
    exports,
    openapi_doc,
    uploads,
    features,
    health,
    incidents,
    microgrids,
    open311,
    planning,
    plans,
    households,
    lists,
    patrols,
    registrations,
    staff,
    stations,
    territories,
    tiles,
)
from starlette.middleware.cors import CORSMiddleware
from starlette_compress import CompressMiddleware, add_compress_type

from gridmap.api.throttle import Throttle
from gridmap.api.errors import DATABASE_ERRORS, data_error, database_unavailable, refusal, validation_error
from gridmap.errors import Refusal
from gridmap.api.limits import BodyLimit, ConcurrencyLimit
from gridmap.services.incidents import calendar_from_env
from gridmap.settings import Settings
from gridmap.store.db import MAX_OVERFLOW, POOL_SIZE, engine_for, normalise_url, resolve_url
from gridmap.store.shared_cache import shared_cache
from gridmap.api import pages
from gridmap.web import STATIC



WARM_PASS_LIMIT_S = 3600.0
"""Longest a warming pass may take before its child process is ended (the next pass starts anew)."""


@asynccontextmanager
async def background_lifespan(app: FastAPI):
    """While serving, in the background:

    * the supervision pass (escalating overdue incidents) every GRIDMAP_ESCALATION_MINUTES minutes
      (default 15; 0 turns it off), and every minute while an emergency is on (missed check-ins,
      late departments, emergency cases going up);
    * the stations' walking service areas worked out and kept for every server process
      (:func:`gridmap.services.stations.warm_quietly`) soon after the start and then every
      GRIDMAP_WARM_MINUTES minutes (default 5; 0 turns it off), so a stations map is read, not
      computed, after an import, a station edit or new roads. One server process of several does it
      at a time (an advisory lock), in a child process it starts for the pass, at the lowest CPU
      priority, so requests never wait for it; a pass that finds everything kept costs a few queries.

    The map pages' builders (folium, 0.23 s to import) are loaded before the first request, so
    the first stations or incidents map a process draws does not wait for them.
    """
    import asyncio
    import importlib
    import logging
    import multiprocessing
    import os
    import threading
    import time

    from starlette.concurrency import run_in_threadpool

    from gridmap.services.stations import warm_quietly
    from gridmap.services.supervision import supervise
    from gridmap.store import locks

    importlib.import_module("gridmap.web.maps")  # loaded now rather than on the first map
    minutes = float(os.environ.get("GRIDMAP_ESCALATION_MINUTES", "15"))
    warm_minutes = app.state.settings.warm_minutes
    log = logging.getLogger("gridmap")

    async def supervision() -> None:
        last = 0.0
        while True:
            await asyncio.sleep(min(60.0, minutes * 60))
            try:
                # every period; every minute while an emergency is on (its limits are minutes)
                due = asyncio.get_running_loop().time() - last >= minutes * 60 - 1
                changed = await run_in_threadpool(supervise, app.state.engine, full=due)
                if due:
                    last = asyncio.get_running_loop().time()
                if changed:
                    log.info("supervision: %s", changed)
            except Exception:  # noqa: BLE001 - a database hiccup must not stop the loop
                log.exception("supervision pass failed; retrying next period")

    children: set = set()  # the warming pass's child process while one runs
    stopping = threading.Event()

    def warm_once() -> list[dict]:
        """One pass: this process takes the advisory lock (another server process holding it: nothing
        to do, no child started) and runs the pass in a spawned child (not forked: this process runs
        threads), a second at a time watching for its answer, its death, the time limit, the stop."""
        with locks.held(app.state.engine, locks.WARM_ANSWERS) as taken:
            if not taken or stopping.is_set():
                return []
            context = multiprocessing.get_context("spawn")
            receive, send = context.Pipe(duplex=False)
            url = app.state.engine.url.render_as_string(hide_password=False)
            child = context.Process(target=warm_quietly, args=(url, send), daemon=True, name="gridmap-warm")
            children.add(child)
            child.start()
            send.close()
            started = time.monotonic()
            try:
                while not receive.poll(1.0):
                    if not child.is_alive() and not receive.poll(0):
                        raise RuntimeError(f"the warming process ended (exit code {child.exitcode}) without an answer")
                    if stopping.is_set():
                        return []
                    if time.monotonic() - started > WARM_PASS_LIMIT_S:
                        raise TimeoutError(f"the warming pass took over {WARM_PASS_LIMIT_S:.0f} s")
                return receive.recv()
            finally:
                if child.is_alive():
                    child.terminate()
                child.join(10)
                children.discard(child)
                receive.close()

    async def warming() -> None:
        await asyncio.sleep(1.0)  # after the server answers its first requests
        while True:
            try:
                made = [f"{d['territory']}/{d['type']}" for d in await run_in_threadpool(warm_once) if d["made"]]
                if made:
                    log.info("service areas worked out and kept: %s", ", ".join(made))
            except Exception:  # noqa: BLE001 - a bad layer must not stop the server or the loop
                log.exception("working out service areas failed; retrying next period")
            await asyncio.sleep(warm_minutes * 60)

    tasks = [asyncio.create_task(loop()) for loop, on in ((supervision, minutes > 0), (warming, warm_minutes > 0)) if on]
    yield
    stopping.set()
    for task in tasks:
        task.cancel()
    for child in list(children):
        child.terminate()


def create_app(database_url: str | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the app for one database (default: as configured by the environment)."""
    settings = settings or Settings.from_env()
    url = normalise_url(database_url) if database_url else resolve_url(settings)
    app = FastAPI(
        lifespan=background_lifespan,
        title="gridmap",
        version=__version__,
        description="Community grids (网格化服务管理): territories, grids, stations and incidents.",
        docs_url=None,  # served below from vendored Swagger UI: no CDN
        redoc_url=None,
    )
    app.state.engine = engine_for(url)
    app.state.settings = settings
    app.state.calendar = calendar_from_env()
    app.state.throttle = Throttle(settings.redis_url)
    app.state.shared_cache = shared_cache(app.state.engine, settings.redis_url)
    app.state.kept_tiles = tiles.KeptTiles()  # published plans' tiles, built once a publish stamp
    app.state.kept_outlines = tiles.KeptTiles(tiles.KEPT_OUTLINE_BYTES)  # the choropleth's, likewise
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title="gridmap API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/vendor/swagger-ui/favicon-32x32.png",
        )

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        """The icon browsers ask every page for (from the package: nothing fetched at run time)."""
        return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon",
                            headers={"Cache-Control": "public, max-age=86400"})

    app.include_router(pages.router)
    app.include_router(pages.landing_router)
    app.include_router(health.router)
    app.include_router(territories.router)
    app.include_router(plans.router)
    app.include_router(planning.router)
    app.include_router(microgrids.router)
    app.include_router(auth.router)
    app.include_router(features.router)
    app.include_router(tiles.router)
    app.include_router(incidents.router)
    app.include_router(open311.router)
    app.include_router(open311.media_router)
    app.include_router(stations.router)
    app.include_router(staff.router)
    app.include_router(households.router)
    app.include_router(lists.router)
    app.include_router(registrations.router)
    app.include_router(patrols.router)
    app.include_router(emergencies.router)
    app.include_router(campaigns.router)
    app.include_router(dashboard.router)
    app.include_router(exports.router)
    app.include_router(uploads.router)
    app.include_router(boundaries.router)
    openapi_doc.install(app)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Refusal, refusal)
    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, database_unavailable)
    app.add_exception_handler(sa.exc.DataError, data_error)
    # responses compressed for clients that accept it (the planner's units: 4.5 MB of JSON -> about
    # 0.7 MB): Zstandard, Brotli or gzip, in that order of preference (starlette-compress); JSON,
    # GeoJSON, MVT, HTML, JS and CSS, not zips or PNGs. Each at level 1 (nginx's own default for
    # gzip): compression runs on the event loop, in front of every other request, and the
    # dashboard's choropleth (556 kB of GeoJSON) took 7.5 ms at Brotli 4 and 21 ms at gzip 6
    # against 2.7 and 4.2 ms at 1, for 2-15% more bytes (Zstandard 1: 1.6 ms against 2.8 ms at 4,
    # its output no larger on that body); Safari, so every iPhone, accepts Brotli and gzip but not
    # Zstandard
    add_compress_type("application/schema+json")
    app.add_middleware(CompressMiddleware, minimum_size=1024, zstd_level=1, brotli_quality=1, gzip_level=1)
    app.add_middleware(ConcurrencyLimit, limit=(POOL_SIZE + MAX_OVERFLOW) // 2)
    app.add_middleware(BodyLimit, max_body=settings.max_body_bytes, max_upload=settings.max_upload_bytes)
    if settings.cors_origins:  # web maps on other sites read the OGC API, tiles and Open311 (as tipg and
        # pg_tileserv allow); sign-in is a bearer token the page must hold, never a cookie sent for it
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=False,
                           allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
                           allow_headers=["Authorization", "Content-Type", "Accept", "Accept-Language"],
                           expose_headers=["Content-Crs", "ETag", "Retry-After", "Content-Disposition"], max_age=600)
    return app
