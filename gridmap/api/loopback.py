"""The app served on a free loopback port in a thread: what ``gridmap drill`` drives through HTTP
when no server is named, and what the tests serve pages from."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def loopback_server(database_url: str, settings=None, *, start_timeout: float = 20.0) -> Iterator[str]:
    """Run the real app under uvicorn on 127.0.0.1 and a free port; yields its base URL and stops
    it on exit (``settings``: the app's, else the environment's)."""
    import uvicorn

    from gridmap.api.app import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(database_url=database_url, settings=settings), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the local server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


__all__ = ["loopback_server"]
