"""Request limits, enforced before a route sees the request: body size, and how many requests
are inside the app at once (:class:`ConcurrencyLimit`, writes admitted first).

Body size: a pure ASGI middleware; a declared ``Content-Length`` above the limit is refused at once with
413; a body sent without one (chunked) is counted as it arrives and cut off at the limit, so a
client cannot stream an endless body into memory or onto disk. Uploads (the layer import
endpoint) get their own, larger limit.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from dataclasses import dataclass


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
    """At most ``limit`` requests inside the app at once; the rest wait their turn in the event
    loop, writes ahead of reads (:class:`WritesFirst`).

    A request may need two database connections at a time (the request's own and a write
    transaction, or a sign-in check). Without a cap, a burst of requests can each take one
    connection and all wait for a second one that never frees: the pool starves and every
    request times out. Capping concurrency at half the pool makes that impossible, and costs
    nothing on a machine whose cores are saturated by far fewer requests anyway."""

    def __init__(self, app, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._gate: WritesFirst | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path", "").startswith("/static/"):
            return await self.app(scope, receive, send)
        if self._gate is None:  # created inside the running loop
            self._gate = WritesFirst(self.limit)
        write = scope.get("method", "GET") not in READ_METHODS
        await self._gate.acquire(write)
        try:
            await self.app(scope, receive, send)
        finally:
            self._gate.release()


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

MAX_PASSED = 2
"""How many writes may go ahead of a waiting read. A report that arrives behind a burst of map
reads (the command post's screens refreshing together) goes in first; under a steady mix that
keeps the gate full, each read is soon passed twice and the line is nearly first come first
served, which keeps the maps' latency where it was. Measured with 50 clients on loopback (each
run's p95 as a share of 309fe0b's in the same run): never passed, reports 0.24-0.34 and reads
0.19-0.24; passed at most twice, 0.24 and 0.20; writes always first, 0.13 and 0.33 (reads
starve); the slots alternating while both wait, 0.18 and 0.27."""


class WritesFirst:
    """A semaphore of ``limit`` slots whose waiters are served writes first: an incident report,
    a check-in or a planner's edit is a person waiting on an answer, where a map read is a
    refresh that can wait a moment. Without it every request queues in one line, and under a
    dashboard's burst of reads a grid worker's report waits behind all of them. A free slot goes
    to the oldest write unless the oldest read has been passed by ``MAX_PASSED`` writes already,
    then to that read; among writes and among reads, first come first served. A waiter
    cancelled (the server shutting down; uvicorn does not cancel a request whose client has gone,
    which waits its turn and runs) leaves the line, and one cancelled just after it was handed a
    slot passes the slot on."""

    def __init__(self, limit: int, max_passed: int = MAX_PASSED) -> None:
        self._free = limit
        self._max_passed = max_passed
        self._writes: deque[_Waiter] = deque()
        self._reads: deque[_Waiter] = deque()
        self._arrivals = 0

    async def acquire(self, write: bool) -> None:
        if self._free > 0 and not (self._writes or self._reads):
            self._free -= 1
            return
        self._arrivals += 1
        waiter = _Waiter(asyncio.get_running_loop().create_future(), self._arrivals)
        line = self._writes if write else self._reads
        line.append(waiter)
        try:
            await waiter.future
        except asyncio.CancelledError:
            if waiter.future.done() and not waiter.future.cancelled():
                self.release()  # handed a slot, then cancelled before using it
            elif waiter in line:
                line.remove(waiter)
            raise

    def release(self) -> None:
        writes, reads = _pending(self._writes), _pending(self._reads)
        if writes and (not reads or self._reads[0].passed < self._max_passed):
            chosen = self._writes.popleft()
            for read in self._reads:  # the reads it goes ahead of
                if read.arrival > chosen.arrival:
                    break
                read.passed += 1
        elif reads:
            chosen = self._reads.popleft()
        else:
            self._free += 1
            return
        chosen.future.set_result(None)


@dataclass(eq=False)
class _Waiter:
    future: asyncio.Future
    arrival: int
    passed: int = 0  # writes let in ahead of it


def _pending(line: deque[_Waiter]) -> bool:
    """Whether ``line`` holds a waiter still waiting (dropping the cancelled at its head)."""
    while line and line[0].future.done():
        line.popleft()
    return bool(line)
