"""A database that does not answer is a fast 503, never a hang.

A frozen PostgreSQL (stopped process, dead network path) accepts nothing and answers nothing, so every
wait on it needs a client-side bound: the connect (`<PREFIX>_DB_CONNECT_TIMEOUT`), the liveness check of
a pooled connection at checkout (the same bound; SQLAlchemy's `pool_pre_ping` has none), and each
statement (asyncpg's `command_timeout`, one second past the server's `statement_timeout`, which a frozen
server never enforces). What fails there is answered as `DatabaseUnavailable`.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_

# Errors of a connection that could not be made, or died, or did not answer in time.
UNREACHABLE = (TimeoutError, OSError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)


def bound_checkout_ping(engine: AsyncEngine, timeout: float) -> None:
    """Check each pooled connection as it is checked out, within `timeout` seconds; a connection that
    fails is discarded and the pool connects anew (itself bounded by the connect timeout)."""

    @event.listens_for(engine.sync_engine, "checkout")
    def ping(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        try:
            await_(driver.fetchval("SELECT 1", timeout=timeout))
        except (*UNREACHABLE, asyncpg.PostgresError) as exc:
            # Closed here at once: SQLAlchemy's own close of a discarded connection waits up to 2 s for a
            # server that will not answer.
            driver.terminate()
            raise DisconnectionError("the pooled connection did not answer") from exc


def is_unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be reached or stopped answering (not a query's fault)."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or (exc.orig is not None and is_unreachable(exc.orig))
    return isinstance(exc, (*UNREACHABLE, DisconnectionError)) or isinstance(exc.__cause__, UNREACHABLE)
