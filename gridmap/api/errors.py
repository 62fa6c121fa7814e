"""Error answers, in one place: every refusal gridmap raises (:mod:`gridmap.errors`) mapped to its
HTTP status by one table and answered in both languages; a 422 that survives any input; and a
503 with Retry-After while the database is unreachable (restarting, failing over), not a 500."""

from __future__ import annotations

import logging
import math
import time

import sqlalchemy as sa
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from gridmap import errors
from gridmap.incident_rules import CalendarNotCovered
from gridmap.store.databases import DatabaseUnavailable
from gridmap.store.plans import VersionConflict
from gridmap.vault import VaultUnavailable

STATUS: tuple[tuple[type[errors.Refusal], int], ...] = (
    (VersionConflict, 409), (errors.Unauthenticated, 401), (errors.Forbidden, 403), (errors.NotFound, 404),
    (errors.StateConflict, 409), (errors.Invalid, 422), (errors.TooManyRequests, 429), (CalendarNotCovered, 503),
    (VaultUnavailable, 503))
"""Each kind of refusal and its HTTP status (the first matching row wins: specific kinds first)."""


def bilingual_body(exc: BaseException, **extra) -> dict:
    """The JSON body of a refusal: ``detail`` (English, as clients have always read it),
    ``detail_en`` and ``detail_zh``."""
    said = errors.texts(exc)
    return {"detail": said["en"], "detail_en": said["en"], "detail_zh": said["zh"], **extra}


def status_of(exc: errors.Refusal) -> int:
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 400)


async def refusal(request, exc: errors.Refusal):
    """Any refusal, whichever route or dependency raised it: its status and both texts (a stale
    edit version adds the edits saved since; a 401 says how to authenticate)."""
    extra, headers = exc.details(), None
    if isinstance(exc, VersionConflict):
        from gridmap.api.plans import jsonable

        extra = jsonable({"your_version": exc.expected, "current_version": exc.current, "changes": exc.changes})
    if isinstance(exc, errors.Unauthenticated):
        headers = {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, errors.TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse(status_code=status_of(exc), content=bilingual_body(exc, **extra), headers=headers)

def utc(value):
    """A datetime from a request as UTC (naive ones are taken as UTC). PostgreSQL refuses offsets
    beyond ±15:59 that ISO 8601 parsers accept, so every instant goes to the database in UTC."""
    from datetime import timezone

    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


async def data_error(request, exc):
    """A value the database refuses (out of its range or form) is the client's input: 422 with
    the database's reason, not a 500. The routes check what they can first; this is the net."""
    reason = str(getattr(exc, "orig", exc)).splitlines()[0]
    return JSONResponse(status_code=422, content=bilingual_body(errors.Invalid(
        f"a value is outside what the database accepts: {reason}", f"有值超出了数据库接受的范围或格式：{reason}")))


DATABASE_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError, sa.exc.TimeoutError,
                   DatabaseUnavailable)


def _json_safe(value):
    """NaN and infinities (which JSON cannot carry) as text; bytes decoded; the rest as is."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


# pydantic's error types a request most often trips, said in Chinese (the English is pydantic's own message)
VALIDATION_ZH = {
    "missing": "缺少此项", "int_parsing": "应为整数", "int_type": "应为整数", "float_parsing": "应为数字",
    "float_type": "应为数字", "bool_parsing": "应为 true 或 false", "bool_type": "应为 true 或 false",
    "greater_than": "数值太小", "greater_than_equal": "数值太小", "less_than": "数值太大", "less_than_equal": "数值太大",
    "string_too_short": "文字太短", "string_too_long": "文字太长", "string_pattern_mismatch": "格式不符",
    "string_type": "应为文字", "literal_error": "不是可选的值之一", "enum": "不是可选的值之一",
    "json_invalid": "不是有效的 JSON", "model_attributes_type": "应为 JSON 对象", "dict_type": "应为 JSON 对象",
    "list_type": "应为列表", "datetime_parsing": "不是有效的时间", "datetime_from_date_parsing": "不是有效的时间",
    "date_parsing": "不是有效的日期", "too_short": "项数太少", "too_long": "项数太多", "extra_forbidden": "不接受此项",
    "value_error": "值无效", "finite_number": "应为有限的数",
}


async def validation_error(request, exc):
    """FastAPI's 422 for invalid requests, safe for any input: a body holding NaN, Infinity or
    undecodable bytes is echoed as text instead of crashing the error response itself. ``detail``
    stays FastAPI's list (what its clients parse); ``detail_en`` / ``detail_zh`` say it in a line."""
    found = [_safe(e) for e in exc.errors()]

    def where(e: dict) -> str:
        return ".".join(str(part) for part in e.get("loc", ()) if part not in ("body", "query", "path")) or "request"

    en = "; ".join(f"{where(e)}: {e.get('msg', '')}" for e in found)
    zh = "；".join(f"{where(e)}：{VALIDATION_ZH.get(e.get('type', ''), '值无效')}（{e.get('msg', '')}）" for e in found)
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(found),
                                                  "detail_en": f"invalid request: {en}", "detail_zh": f"请求无效：{zh}"})


def _safe(error: dict) -> dict:
    out = {key: _json_safe(value) for key, value in error.items() if key != "ctx"}
    if "ctx" in error:  # e.g. the exception a validator raised: keep its text
        out["ctx"] = {key: str(value) for key, value in error["ctx"].items()}
    return out


_last_logged = [0.0, 0]  # time of the last log line, requests answered 503 since


async def database_unavailable(request, exc):
    """The database cannot be reached or dropped the connection: 503, so clients retry; the pool
    pings connections before use, so service resumes by itself once the server is back. Logged
    at most every 10 seconds, with the count, so an outage does not flood the log."""
    _last_logged[1] += 1
    now = time.monotonic()
    if now - _last_logged[0] >= 10:
        logging.getLogger("gridmap").warning(
            "database unavailable (%d requests answered 503 since the last report); last: %s %s: %s",
            _last_logged[1], request.method, request.url.path,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        _last_logged[:] = [now, 0]
    return JSONResponse(status_code=503, headers={"Retry-After": "5"},
                        content=bilingual_body(errors.Refusal(
                            "the database is unavailable right now; try again in a few seconds",
                            "数据库暂时无法连接，请过几秒再试")))
