"""Request-scoped dependencies: the database connection for this app instance."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from fastapi import Request


def get_engine(request: Request) -> sa.Engine:
    return request.app.state.engine


def get_conn(request: Request) -> Iterator[sa.Connection]:
    """A read connection per request; writes open their own transaction with engine.begin()."""
    with request.app.state.engine.connect() as conn:
        yield conn
