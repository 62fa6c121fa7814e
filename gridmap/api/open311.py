"""Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2/) under ``/open311/v2/``, JSON and XML.

Services are the incident categories; a request is an incident. Statuses map to ``open`` and
``closed``; ``agency_responsible`` is the department, ``expected_datetime`` the due time. Posting
is open to anyone when GRIDMAP_OPEN311_PUBLIC=true, otherwise to signed-in users: a bearer token,
or the same token as the ``api_key`` field that GeoReport clients send.
Reporters' names, e-mail addresses and phone numbers are stored but never returned.
Errors are GeoReport error lists: ``[{"code": 400, "description": "..."}]``.
"""

from __future__ import annotations

import math
from datetime import datetime
from xml.etree import ElementTree

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from gridmap.api.deps import get_conn, optional_user, public_reader
from gridmap.api.errors import utc
from gridmap.api.incidents import to_storage
from gridmap.errors import Invalid, TooManyRequests
from gridmap.services.media import MAX_MEDIA_BYTES, MEDIA_TYPES, photo_path, store_photo
from gridmap.incident_rules import CalendarNotCovered
from gridmap.incident_rules import open311_status
from gridmap.services import incidents as service
from gridmap.store import incidents as store
from gridmap.store import users
from gridmap.store.users import CurrentUser

router = APIRouter(prefix="/open311/v2", tags=["Open311 GeoReport v2"])
FORMATS = ("json", "xml")


def _time(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def render(data: list[dict], fmt: str, root: str, item: str | None, status: int = 200) -> Response:
    """GeoReport's answer: JSON as is, or XML with each entry as an ``item`` element under ``root``
    (``item`` None: the one entry's fields straight under ``root``, as a service definition is)."""
    if fmt == "json":
        return JSONResponse(data, status_code=status)
    top = ElementTree.Element(root)
    for entry in data:
        _xml(top if item is None else ElementTree.SubElement(top, item), entry)
    body = ElementTree.tostring(top, encoding="utf-8", xml_declaration=True)
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8")


def attribute_code(key: str) -> str | None:
    """The question code of a GeoReport answer field: ``attribute[code]`` or ``attribute[code][]``."""
    if not key.startswith("attribute["):
        return None
    code = key[len("attribute["):].removesuffix("[]")
    return code[:-1] if code.endswith("]") and len(code) > 1 else None


XML_ITEM = {"attributes": "attribute", "values": "value"}
"""The element of each item of a list in GeoReport XML (``<attributes><attribute>…``)."""


def _xml(node: ElementTree.Element, entry: dict) -> None:
    for key, value in entry.items():
        child = ElementTree.SubElement(node, key)
        if isinstance(value, list):
            for v in value:
                element = ElementTree.SubElement(child, XML_ITEM.get(key, "value"))
                if isinstance(v, dict):
                    _xml(element, v)
                else:
                    element.text = str(v)
        elif value is not None:
            child.text = str(value).lower() if isinstance(value, bool) else str(value)


def error(fmt: str, code: int, description: str) -> Response:
    return render([{"code": code, "description": description}], fmt if fmt in FORMATS else "json",
                  "errors", "error", status=code)


def service_of(cat) -> dict:
    return {"service_code": cat.code, "service_name": f"{cat.name_zh} {cat.name_en}", "description":
            cat.description or cat.name_en, "metadata": bool(cat.attributes), "type": "realtime",
            "keywords": f"{cat.name_zh},{cat.name_en}", "group": cat.group}


def request_of(row: dict) -> dict:
    """An incident as a GeoReport service request (no personal data)."""
    photos = row.get("photo_urls") or []
    return {
        "service_request_id": row["public_id"], "status": open311_status(row["status"]),
        "status_notes": row["status"], "service_name": f"{row['category_zh']} {row['category_en']}",
        "service_code": row["category_code"], "description": row["description"],
        "agency_responsible": f"{row['department']} {row['department_en'] or ''}".strip(),
        "service_notice": f"grid {row['grid_code']}", "requested_datetime": _time(row["reported_at"]),
        "updated_datetime": _time(row["updated_at"]), "expected_datetime": _time(row["due_at"]),
        "address": row["address"], "address_id": None, "zipcode": None, "lat": row["lat"], "long": row["lon"],
        "media_url": photos[0] if photos else None,
    }


@router.get("/discovery.{fmt}", summary="Discovery: where the endpoints are")
def discovery(fmt: str, request: Request) -> Response:
    if fmt not in FORMATS:
        return error("json", 404, "format must be json or xml")
    base = str(request.base_url).rstrip("/") + "/open311/v2/"
    doc = {"changeset": "2026-11-22T00:00:00Z", "contact": "gridmap", "key_service": "sign in: POST /api/auth/token",
           "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2", "url": base,
                          "changeset": "2026-11-22T00:00:00Z", "type": "production", "formats":
                          ["application/json", "text/xml"]}]}
    if fmt == "json":
        return JSONResponse(doc)
    return render([{"contact": doc["contact"], "url": base}], "xml", "discovery", "endpoint")


@router.get("/services.{fmt}", summary="GET Service List")
def services(fmt: str, conn: sa.Connection = Depends(get_conn)) -> Response:
    if fmt not in FORMATS:
        return error("json", 404, "format must be json or xml")
    return render([service_of(c) for c in store.categories(conn)], fmt, "services", "service")


@router.get("/services/{code}.{fmt}", summary="GET Service Definition")
def definition(code: str, fmt: str, conn: sa.Connection = Depends(get_conn)) -> Response:
    if fmt not in FORMATS:
        return error("json", 404, "format must be json or xml")
    category = store.category(conn, code)
    if category is None:
        return error(fmt, 404, f"no service {code}")
    doc = {"service_code": code, "attributes": [a.georeport() for a in category.attributes]}
    if fmt == "json":
        return JSONResponse(doc)
    return render([doc], "xml", "service_definition", None)


DEFAULT_RADIUS_M = 500.0  # lat/long without a radius: the neighbourhood, as SeeClickFix-style apps assume
MAX_RADIUS_M = 50_000.0
def media_folder(request: Request):
    """Where report photos are kept: ``$GRIDMAP_HOME/media``."""
    return request.app.state.settings.home / "media"


TEXT_LIMITS = {"description": 4000, "address_string": 500, "first_name": 100, "last_name": 100, "email": 200,
               "phone": 50, "media_url": 2000}




@router.post("/requests.{fmt}", summary="POST Service Request (form-encoded as the specification says, or JSON)")
async def create(fmt: str, request: Request, user: CurrentUser | None = Depends(optional_user)) -> Response:
    if fmt not in FORMATS:
        return error("json", 404, "format must be json or xml")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            fields = await request.json()
        except ValueError:
            return error(fmt, 400, "the body is not valid JSON")
        if not isinstance(fields, dict):
            return error(fmt, 400, "the body must be a JSON object")
        answers = fields.pop("attribute", None) or {}  # {"attribute": {"code": value}} ...
        if not isinstance(answers, dict):
            return error(fmt, 400, "attribute must be an object of answers by attribute code")
        for key in [k for k in fields if attribute_code(k)]:  # ... or the form's keys, as JSON
            answers[attribute_code(key)] = fields.pop(key)
    else:
        fields, answers = {}, {}
        for key, value in (await request.form()).multi_items():
            code = attribute_code(key)
            if code is None:
                fields[key] = value
            else:  # attribute[code]=v, or attribute[code][]=v once per value of a multivaluelist: every
                answers.setdefault(code, []).append(value)  # value kept (one answer to a single question is
                # a list of one; more than one is refused by the check, not dropped here)
    if user is None and fields.get("api_key"):  # GeoReport clients send their key as a form field
        with request.app.state.engine.begin() as conn:
            user = users.user_for_token(conn, str(fields["api_key"]))
        if user is None:
            return error(fmt, 403, "api_key is not valid (use a token from POST /api/auth/token)")
    if user is None and not request.app.state.settings.open311_public:
        return error(fmt, 401, "public submission is off here: send api_key (an API key, or a sign-in token)")
    if user is None:
        try:
            request.app.state.throttle.public_submission(request.client.host if request.client else "?",
                                                         request.app.state.settings.open311_rate_per_minute)
        except TooManyRequests as refused:
            response = error(fmt, 429, refused.en)
            response.headers["Retry-After"] = str(refused.retry_after)
            return response
    code = str(fields.get("service_code") or "")
    if not code or len(code) > 32:
        return error(fmt, 400, "service_code is required (at most 32 characters)")
    try:
        lat, lon = float(fields["lat"]), float(fields["long"])
    except (KeyError, TypeError, ValueError):
        return error(fmt, 400, "lat and long are required (this endpoint routes by location, not by address)")
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return error(fmt, 400, "lat must be within -90..90 and long within -180..180")
    too_long = [k for k, most in TEXT_LIMITS.items() if len(str(fields.get(k) or "")) > most]
    if too_long:
        return error(fmt, 400, "too long: " + ", ".join(f"{k} (at most {TEXT_LIMITS[k]} characters)" for k in too_long))
    lon, lat = to_storage(lon, lat, "gcj02" if str(fields.get("crs", "")).lower() == "gcj02" else "4490")
    name = " ".join(str(fields[k]) for k in ("first_name", "last_name") if fields.get(k)) or None
    contact = "; ".join(str(fields[k]) for k in ("email", "phone") if fields.get(k)) or None
    media = [str(fields["media_url"])] if fields.get("media_url") else []
    upload = fields.get("media")
    if upload is not None and not isinstance(upload, str):  # a photo sent as a file (multipart/form-data)
        data = await upload.read(MAX_MEDIA_BYTES + 1)
        try:
            stored_name = store_photo(media_folder(request), data)
        except Invalid as refused:
            return error(fmt, 413 if len(data) > MAX_MEDIA_BYTES else 400, refused.en)
        media.insert(0, f"{str(request.base_url).rstrip('/')}/media/{stored_name}")
    try:
        stored = service.report(request.app.state.engine, service.Report(
            category_code=code, lon=lon, lat=lat, description=str(fields.get("description") or "") or None,
            reporter_name=name, reporter_contact=contact, reporter_role="resident" if user is None else "staff",
            photo_urls=media, address=str(fields.get("address_string") or "") or None, source="open311",
            attributes=answers),
            actor=user.username if user else "open311", calendar=request.app.state.calendar,
            authorize=None if user is None else _reporter_check(request, user))
    except service.ReportError as exc:
        return error(fmt, 400, str(exc))
    except _NotYours as exc:
        return error(fmt, 403, str(exc))
    except CalendarNotCovered as exc:  # the server lacks the year's holidays: GeoReport's error shape, 503
        response = error(fmt, 503, exc.en)
        response.headers["Retry-After"] = "3600"
        return response
    notice = f"routed to {stored['department']} {stored['department_en'] or ''}; expected by {_time(stored['due_at'])}"
    if stored["possible_duplicates"]:
        notice += "; similar open requests nearby: " + ", ".join(d["public_id"] for d in stored["possible_duplicates"])
    return render([{"service_request_id": stored["public_id"], "service_notice": notice,
                    "account_id": fields.get("account_id")}], fmt, "service_requests", "request", status=201)


class _NotYours(PermissionError):
    pass


def _reporter_check(request: Request, user: CurrentUser):
    """A signed-in caller (a hotline system's key, a grid worker's app) files only where its user
    may report: the same rule as POST /api/incidents. Anonymous public submission is the other path."""
    from gridmap.api.incidents import may_report

    def check(conn: sa.Connection, community: str, grid: str) -> None:
        if not may_report(conn, user, community, grid):
            raise _NotYours(f"{user.username} may not file requests in grid {grid}")

    return check


def _read_gate(request: Request, fmt: str, user: CurrentUser | None, api_key: str | None) -> Response | None:
    """The error answer for reading requests, or None: an unknown format is 404; and reading
    follows GRIDMAP_PUBLIC_READ: when it is off, a Bearer token or the ``api_key`` parameter
    GeoReport clients send is needed."""
    if fmt not in FORMATS:
        return error("json", 404, "format must be json or xml")
    if user is not None or request.app.state.settings.public_read:
        return None
    if api_key:
        with request.app.state.engine.begin() as conn:
            if users.user_for_token(conn, api_key) is not None:
                return None
        return error(fmt, 403, "api_key is not valid")
    return error(fmt, 401, "this deployment requires an api_key (or a sign-in token) to read requests")


@router.get("/requests.{fmt}", summary="GET Service Requests (service_request_id, service_code, start_date, "
            "end_date, status filters, and lat/long/radius; 90 days and 1,000 requests by default)")
def requests(fmt: str, request: Request, service_request_id: str | None = None, service_code: str | None = None,
             start_date: str | None = None, end_date: str | None = None, status: str | None = None,
             lat: str | None = None, long: str | None = None, radius: str | None = None,
             api_key: str | None = None, conn: sa.Connection = Depends(get_conn),
             user: CurrentUser | None = Depends(optional_user)) -> Response:
    refused = _read_gate(request, fmt, user, api_key)
    if refused is not None:
        return refused
    near = None
    if lat is not None or long is not None:  # the location extension stock Open311 apps send
        try:
            lat_f, lon_f = float(lat or ""), float(long or "")
            radius_m = float(radius) if radius is not None else DEFAULT_RADIUS_M
        except ValueError:
            return error(fmt, 400, "lat, long and radius (metres) are numbers")
        if not (math.isfinite(lat_f) and math.isfinite(lon_f) and -90 <= lat_f <= 90 and -180 <= lon_f <= 180):
            return error(fmt, 400, "lat must be within -90..90 and long within -180..180")
        if not (math.isfinite(radius_m) and 0 < radius_m <= MAX_RADIUS_M):
            return error(fmt, 400, f"radius is in metres, above 0 and at most {MAX_RADIUS_M:,.0f}")
        near = (lon_f, lat_f, radius_m)
    elif radius is not None:
        return error(fmt, 400, "radius needs lat and long")
    try:
        start = utc(datetime.fromisoformat(start_date.replace("Z", "+00:00"))) if start_date else None
        end = utc(datetime.fromisoformat(end_date.replace("Z", "+00:00"))) if end_date else None
    except ValueError:
        return error(fmt, 400, "start_date and end_date are W3C date-times, e.g. 2026-11-01T00:00:00Z")
    ids = service_request_id.split(",") if service_request_id else None
    states = None
    if status:
        wanted = set(status.split(","))
        if wanted - {"open", "closed"}:
            return error(fmt, 400, "status is open, closed or both")
        from gridmap.incident_rules import STATES

        states = [s for s in STATES if open311_status(s) in wanted]
    if ids is None and start is None and end is None:
        from datetime import timedelta, timezone

        start = datetime.now(timezone.utc) - timedelta(days=90)  # the specification's default window
    rows = store.search(conn, public_ids=ids, category=service_code, statuses=states, start=start, end=end,
                        near=near, limit=1000)
    return render([request_of(r) for r in rows], fmt, "service_requests", "request")


@router.get("/requests/{request_id}.{fmt}", summary="GET Service Request")
def one(request_id: str, fmt: str, request: Request, api_key: str | None = None,
        conn: sa.Connection = Depends(get_conn), user: CurrentUser | None = Depends(optional_user)) -> Response:
    refused = _read_gate(request, fmt, user, api_key)
    if refused is not None:
        return refused
    try:
        row = store.get(conn, request_id)
    except store.IncidentNotFound:
        return error(fmt, 404, f"no service request {request_id}")
    return render([request_of(row)], fmt, "service_requests", "request")


media_router = APIRouter(tags=["Open311 GeoReport v2"])


@media_router.get("/media/{name}", summary="A photo sent with a report (JPEG, PNG or WebP)", response_class=FileResponse,
                  responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}}})
def photo(name: str, request: Request, _reader: CurrentUser | None = Depends(public_reader)) -> FileResponse:
    """Served as published data is: to anyone unless the deployment requires sign-in for reading."""
    path = photo_path(media_folder(request), name)
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix.lstrip(".")],
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})  # named by its content
