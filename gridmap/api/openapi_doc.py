"""The OpenAPI document tells the truth about errors and media types.

FastAPI documents a 200 and a 422 (its own validation error shape) per operation. gridmap's
routes also answer 400/401/403/404/409/413/429/503 with ``{"detail": "a readable reason"}``, and
several 200s are GeoJSON. ``install`` post-processes the generated document once: every
operation gets a ``default`` error response with that shape, the 422 may carry either shape, and
GeoJSON routes (marked with ``GEOJSON_OK``) declare ``application/geo+json``. Clients and the
schemathesis fuzz test then validate against what the server really sends.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

GEOJSON_OK = {200: {"description": "GeoJSON (RFC 7946)",
                    "content": {"application/geo+json": {"schema": {"type": "object"}}}}}
ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "properties": {"detail": {"anyOf": [{"type": "string"}, {"type": "array", "items": {}}, {"type": "object"}]}},
    "required": ["detail"],
}
OPEN311_ERROR_SCHEMA = {  # GeoReport v2: errors are a list of {code, description}
    "title": "Open311Errors",
    "type": "array",
    "items": {"type": "object", "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
              "required": ["code", "description"]},
}
METHODS = ("get", "post", "put", "patch", "delete")


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` with one that documents errors and media types as they are."""

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = ERROR_SCHEMA
        components["Open311Errors"] = OPEN311_ERROR_SCHEMA
        for path, path_item in schema.get("paths", {}).items():
            error_ref = {"$ref": "#/components/schemas/" + ("Open311Errors" if path.startswith("/open311/") else "Error")}
            error_content = {"application/json": {"schema": error_ref}}
            if path.startswith("/open311/"):
                error_content["text/xml"] = {"schema": {"type": "string"}}
            for method in METHODS:
                operation = path_item.get(method)
                if not operation:
                    continue
                responses = operation.setdefault("responses", {})
                if path.startswith("/open311/"):  # GeoReport v2 answers in JSON or XML, by the path's suffix
                    for code, response in responses.items():
                        if code.startswith("2"):
                            response.setdefault("content", {})["text/xml"] = {"schema": {"type": "string"}}
                responses.setdefault("default", {"description": "an error, with the reason", "content": error_content})
                if "422" in responses:
                    content = responses["422"].setdefault("content", {}).setdefault("application/json", {})
                    original = content.get("schema")
                    content["schema"] = {"anyOf": [original, error_ref]} if original else error_ref
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
