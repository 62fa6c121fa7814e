"""Request size limits, enforced before a route sees the body.

A pure ASGI middleware: a declared ``Content-Length`` above the limit is refused at once with
413; a body sent without one (chunked) is counted as it arrives and cut off at the limit, so a
client cannot stream an endless body into memory or onto disk. Uploads (the layer import
endpoint) get their own, larger limit.
"""

from __future__ import annotations

import asyncio
import json
import re


class BodyLimit:
    """413 for bodies above ``max_body`` bytes (``max_upload`` on paths matching ``upload_paths``)."""

    def __init__(self, app, *, max_body: int, max_upload: int, upload_paths: str = r"^/api/territories/[^/]+/layers$"):
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload
        self.upload_paths = re.compile(upload_paths)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_upload if self.upload_paths.match(scope.get("path", "")) else self.max_body
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return await _answer(send, 400, "Content-Length is not a number", "Content-Length 不是数字")
            if size > limit:
                return await _answer(send, 413, f"the request body is {size:,} bytes; at most {limit:,} are accepted",
                                     f"请求体有 {size:,} 字节；最多接受 {limit:,} 字节")
        received = 0
        too_large = False

        async def counted_receive():
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # stop reading: to the app the client has gone away
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if not too_large:  # once over the limit, the app's own answer is replaced by the 413
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large:
            await _answer(send, 413, f"the request body exceeds {limit:,} bytes", f"请求体超过 {limit:,} 字节")


async def _answer(send, status: int, en: str, zh: str) -> None:
    body = json.dumps({"detail": en, "detail_en": en, "detail_zh": zh}, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class ConcurrencyLimit:
    """At most ``limit`` requests inside the app at once; the rest wait their turn in the event loop.

    A request may need two database connections at a time (the request's own and a write
    transaction, or a sign-in check). Without a cap, a burst of requests can each take one
    connection and all wait for a second one that never frees: the pool starves and every
    request times out. Capping concurrency at half the pool makes that impossible, and costs
    nothing on a machine whose cores are saturated by far fewer requests anyway."""

    def __init__(self, app, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._semaphore: asyncio.Semaphore | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path", "").startswith("/static/"):
            return await self.app(scope, receive, send)
        if self._semaphore is None:  # created inside the running loop
            self._semaphore = asyncio.Semaphore(self.limit)
        async with self._semaphore:
            await self.app(scope, receive, send)
