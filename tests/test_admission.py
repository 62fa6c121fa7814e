"""The server's admission of requests (gridmap.api.limits): at most ``limit`` inside the app,
writes admitted ahead of reads, no read passed by more than MAX_PASSED writes, cancelled waiters
never losing a slot.

Plain asyncio, no database: the gate decides the order; what runs inside is a stand-in that
records when it was let in."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from gridmap.api.limits import MAX_PASSED, ConcurrencyLimit, WritesFirst


def run(coro):
    return asyncio.run(coro)


async def _admitted_order(limit: int, kinds: list[bool]) -> tuple[list[int], int]:
    """Requests ``kinds`` (True: a write) queued while ``limit`` holders keep the gate full; the
    holders then leave one by one. Returns the order the queued ones were admitted in, and the
    most that were ever inside at once."""
    gate = WritesFirst(limit)
    inside, most, order = 0, 0, []
    hold = asyncio.Event()

    async def request(number: int | None, write: bool, wait: asyncio.Event | None) -> None:
        nonlocal inside, most
        await gate.acquire(write)
        inside += 1
        most = max(most, inside)
        if number is not None:
            order.append(number)
        try:
            if wait is not None:
                await wait.wait()
            await asyncio.sleep(0)
        finally:
            inside -= 1
            gate.release()

    holders = [asyncio.create_task(request(None, False, hold)) for _ in range(limit)]
    await asyncio.sleep(0)
    queued = [asyncio.create_task(request(i, w, None)) for i, w in enumerate(kinds)]
    await asyncio.sleep(0)
    assert order == []  # the gate is full: nobody queued got in yet
    hold.set()
    await asyncio.gather(*holders, *queued)
    return order, most


def passed_counts(order: list[int], kinds: list[bool]) -> dict[int, int]:
    """For each read (by number), how many writes that queued after it got in before it."""
    position = {number: at for at, number in enumerate(order)}
    return {r: sum(1 for w in range(r + 1, len(kinds)) if kinds[w] and position[w] < position[r])
            for r in range(len(kinds)) if not kinds[r]}


def test_writes_pass_the_reads_that_queued_before_them() -> None:
    kinds = [False] * 6 + [True] * 3  # six reads queue, then three writes
    order, most = run(_admitted_order(2, kinds))
    assert most == 2
    assert sorted(order) == list(range(9))
    assert [i for i in order if i >= 6] == [6, 7, 8]  # first come first served among writes
    assert [i for i in order if i < 6] == list(range(6))  # and among reads
    first = min(MAX_PASSED, 3)
    assert order[:first] == [6, 7, 8][:first]  # in one line they would have come after all six reads
    assert max(passed_counts(order, kinds).values()) == MAX_PASSED


def test_a_stream_of_writes_never_starves_a_read() -> None:
    kinds = [False] + [True] * 20
    order, _ = run(_admitted_order(1, kinds))
    assert order.index(0) == MAX_PASSED


@settings(max_examples=60, deadline=None)
@given(limit=st.integers(1, 4), kinds=st.lists(st.booleans(), max_size=30))
def test_every_request_gets_in_once_reads_are_passed_by_few_and_pass_no_write(limit: int, kinds: list[bool]) -> None:
    order, most = run(_admitted_order(limit, kinds))
    assert sorted(order) == list(range(len(kinds)))
    assert most <= limit
    assert all(n <= MAX_PASSED for n in passed_counts(order, kinds).values())
    position = {number: at for at, number in enumerate(order)}
    assert all(position[w] < position[r] for w in range(len(kinds)) if kinds[w]
               for r in range(w + 1, len(kinds)) if not kinds[r])  # no read goes ahead of an older write
    for line in (True, False):  # first come first served within each kind
        mine = [i for i in order if kinds[i] == line]
        assert mine == sorted(mine)


def test_a_cancelled_waiter_leaves_its_place_and_loses_no_slot() -> None:
    async def scenario() -> int:
        gate = WritesFirst(1)
        await gate.acquire(False)  # the only slot taken
        gone = asyncio.create_task(gate.acquire(True))
        kept = asyncio.create_task(gate.acquire(False))
        await asyncio.sleep(0)
        gone.cancel()  # the client went away while waiting
        await asyncio.sleep(0)
        gate.release()
        await asyncio.wait_for(kept, 1)  # the read behind it is let in, not the cancelled write
        gate.release()
        # handed a slot and cancelled before it ran: the slot passes on
        await gate.acquire(False)
        handed = asyncio.create_task(gate.acquire(True))
        await asyncio.sleep(0)
        gate.release()  # the slot goes to `handed` ...
        handed.cancel()  # ... which is cancelled before it resumes
        await asyncio.gather(handed, return_exceptions=True)
        await asyncio.wait_for(gate.acquire(False), 1)  # the slot was passed on, not lost
        gate.release()
        return gate._free

    assert run(scenario()) == 1


def test_the_middleware_admits_by_method_and_lets_static_files_and_websockets_past() -> None:
    seen: list[str] = []
    hold = asyncio.Event()

    async def app(scope, receive, send) -> None:
        seen.append(" ".join(part for part in (scope["type"], scope.get("method"), scope.get("path")) if part))
        if scope.get("path") == "/api/hold":
            await hold.wait()
        await asyncio.sleep(0)

    async def scenario() -> None:
        limited = ConcurrencyLimit(app, limit=1)
        holder = asyncio.create_task(limited({"type": "http", "method": "GET", "path": "/api/hold"}, None, None))
        await asyncio.sleep(0)  # the only slot is taken
        waiting = [asyncio.create_task(limited({"type": "http", "method": m, "path": "/api/x"}, None, None))
                   for m in ("HEAD", "OPTIONS", "POST")]
        await asyncio.sleep(0)
        # while the gate is full: static files and websockets go straight in
        await asyncio.wait_for(limited({"type": "http", "method": "GET", "path": "/static/app.js"}, None, None), 1)
        await asyncio.wait_for(limited({"type": "websocket", "path": "/ws"}, None, None), 1)
        assert seen == ["http GET /api/hold", "http GET /static/app.js", "websocket /ws"]
        hold.set()
        await asyncio.gather(holder, *waiting)

    run(scenario())
    # the POST passed the HEAD and OPTIONS that queued before it: both are reads
    assert seen[3:] == ["http POST /api/x", "http HEAD /api/x", "http OPTIONS /api/x"]
