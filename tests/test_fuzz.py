"""The whole OpenAPI surface fuzzed with schemathesis: generated and mutated requests to every
operation, signed in as an administrator (so requests reach the code behind the access checks),
against a real PostGIS holding Monaco with a published plan, stations and incidents.

Checked on every response: no server error, the status code, the content type and the body are
the ones the OpenAPI document declares. The number of generated cases per operation is bounded
so the suite stays fast; ``GRIDMAP_FUZZ_EXAMPLES`` raises it for a longer run.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gridmap.api.app import create_app
from gridmap.store.db import engine_for

from conftest import fresh_database

MONACO = "980100"
EXAMPLES = int(os.environ.get("GRIDMAP_FUZZ_EXAMPLES", "12"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_site(server_url: str):
    """A database of its own: Monaco published, categories, a few stations and incidents, an admin."""
    from fastapi.testclient import TestClient

    from gridmap.services import planning, stations
    from gridmap.services.demo import load_demo
    from gridmap.services.incidents import ensure_categories, load_demo_incidents
    from gridmap.services.partitioning import partition_territory
    from gridmap.store import users

    with fresh_database(server_url, "gridmap_fuzz") as url:
        engine = engine_for(url)
        load_demo(engine, ["monaco"])
        summary = partition_territory(engine, MONACO)
        planning.publish(engine, summary.plan_id, version=None, actor="test")
        planning.new_draft(engine, MONACO, actor="test")
        ensure_categories(engine)
        load_demo_incidents(engine, MONACO, count=200, seed=4)
        stations.create(engine, MONACO, station_type="pharmacy", name="Pharmacie", lon=7.4236, lat=43.7306, actor="test")
        with engine.begin() as conn:
            users.create_user(conn, "fuzzer", "fuzzing password")
            users.grant(conn, "fuzzer", "admin", MONACO)
        APP.state.engine = engine  # the app whose schema was loaded at import now serves this database
        token = TestClient(APP).post("/api/auth/token", data={"username": "fuzzer", "password": "fuzzing password"}
                                     ).json()["access_token"]
        yield APP, token, engine


# The OpenAPI document does not depend on the database: load it once, at collection.
APP = create_app(database_url="postgresql://unused@127.0.0.1:9/unused")
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.exclude(path="/api/auth/logout").parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_and_never_fails(case, fuzz_site) -> None:
    _, token, _ = fuzz_site
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
