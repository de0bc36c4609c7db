"""Overload is answered, not queued: bounded waits for a connection or a slot, per-caller concurrency
limits, and the 503/429 problems (counted in `owr_requests_shed_total`) that every service answers with.

A request that cannot get a pooled connection within `db_pool_timeout`, whose statement outlives
`db_statement_timeout`, that PostgreSQL aborts to break a deadlock, that finds the database not answering (`owr_shared.db_faults`), or that finds no free slot of a capped resource gets a 503 with `Retry-After`
at once; a caller already running its share of an expensive read gets a 429. Never a 500, never a hang.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Hashable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import ClassVar

from asyncpg import PostgresError
from fastapi import FastAPI, Request
from prometheus_client import Counter
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.responses import Response

from owr_shared.db_faults import UNREACHABLE, is_unreachable
from owr_shared.errors import (
    CONCURRENCY_LIMITED,
    DATABASE_UNAVAILABLE,
    OVERLOADED,
    QUERY_TIMEOUT,
    RETRY_SOON,
    ProblemError,
    render_problem,
)
from owr_shared.logging import get_logger

log = get_logger(__name__)

REQUESTS_SHED = Counter(
    "owr_requests_shed_total",
    "Requests refused at once instead of queued (503 or 429), by service and reason.",
    ["service", "reason"],
)

# SQLSTATEs of a server-side bound: a statement cancelled by statement_timeout, a session ended by
# idle_in_transaction_session_timeout.
TIMEOUT_SQLSTATES = frozenset({"57014", "25P03"})
# SQLSTATEs of two transactions in each other's way: a deadlock PostgreSQL broke by aborting this one, a
# serialization failure, a lock not available. The work rolled back whole, so a retry is safe.
CONTENTION_SQLSTATES = frozenset({"40P01", "40001", "55P03"})


class Shed(ProblemError):
    """A request refused because the service is at a bound; `reason` labels the shed counter."""

    reason: ClassVar[str] = "overloaded"
    status, slug, title = OVERLOADED
    default_headers = RETRY_SOON


class PoolExhausted(Shed):
    reason = "pool_timeout"
    default_detail = "No database connection became free in time; retry shortly."


class SlotsExhausted(Shed):
    reason = "slots"
    default_detail = "The service is running as many of these requests as it allows; retry shortly."


class StatementTimedOut(Shed):
    reason = "statement_timeout"
    status, slug, title = QUERY_TIMEOUT
    default_detail = "The query took longer than the service allows; retry shortly."


class Contended(Shed):
    reason = "contention"
    default_detail = "Another change to the same data ran at the same moment, and this one was undone; retry."
    default_headers = {"Retry-After": "1"}


class DatabaseUnavailable(Shed):
    """PostgreSQL did not accept a connection or stopped answering within the client-side bounds."""

    reason = "database_unavailable"
    status, slug, title = DATABASE_UNAVAILABLE
    default_detail = "The database is not answering; retry shortly."


class CallerLimited(Shed):
    reason = "caller_limit"
    status, slug, title = CONCURRENCY_LIMITED
    default_detail = "Your workspace is already running as many of these requests as it may at once."
    default_headers = {"Retry-After": "1"}


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, raised by SQLAlchemy (wrapped) or by asyncpg directly."""
    for candidate in (exc, getattr(exc, "orig", None), exc.__cause__):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None


def is_timeout(exc: BaseException) -> bool:
    return sqlstate(exc) in TIMEOUT_SQLSTATES


def install_overload_handlers(app: FastAPI, service: str) -> None:
    """Answer every `Shed`, a pool timeout and a statement timeout with its problem, and count it."""

    async def on_shed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Shed)
        REQUESTS_SHED.labels(service, exc.reason).inc()
        log.warning("request_shed", path=request.url.path, reason=exc.reason)
        return render_problem(exc, request)

    async def on_pool_timeout(request: Request, exc: Exception) -> Response:
        return await on_shed(request, PoolExhausted())

    async def on_database_error(request: Request, exc: Exception) -> Response:
        if is_timeout(exc):
            return await on_shed(request, StatementTimedOut())
        if sqlstate(exc) in CONTENTION_SQLSTATES:
            return await on_shed(request, Contended())
        if is_unreachable(exc):
            return await on_shed(request, DatabaseUnavailable())
        raise exc  # the unexpected-error handler answers 500 and logs it, as for any other fault

    app.add_exception_handler(Shed, on_shed)
    app.add_exception_handler(PoolTimeout, on_pool_timeout)
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(PostgresError, on_database_error)  # asyncpg's own, where a read uses the driver
    # A connect or checkout that found no server raises these unwrapped (db_faults.UNREACHABLE).
    for unreachable in (*UNREACHABLE, DisconnectionError):
        app.add_exception_handler(unreachable, on_database_error)


class CallerLimit:
    """At most `limit` requests of one caller (a workspace) at once in this process; the next is refused."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._running: dict[Hashable, int] = {}

    @asynccontextmanager
    async def hold(self, caller: Hashable) -> AsyncIterator[None]:
        running = self._running.get(caller, 0)
        if running >= self.limit:
            raise CallerLimited()
        self._running[caller] = running + 1
        try:
            yield
        finally:
            left = self._running[caller] - 1
            if left:
                self._running[caller] = left
            else:
                del self._running[caller]


class Slots:
    """A process-wide cap of `capacity` at once: a request waits at most `wait` seconds for a slot."""

    def __init__(self, capacity: int, wait: float) -> None:
        self.capacity = capacity
        self.wait = wait
        self._free = asyncio.Semaphore(capacity)

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        try:
            await asyncio.wait_for(self._free.acquire(), self.wait)
        except TimeoutError:
            raise SlotsExhausted() from None
        try:
            yield
        finally:
            self._free.release()


async def started_stream(chunks: AsyncGenerator[bytes], holds: AsyncExitStack) -> AsyncIterator[bytes]:
    """Read `chunks`' first chunk now, while a connection or statement timeout can still be a 503 before
    any header is sent; the returned stream yields every chunk and releases `holds` when it ends."""
    try:
        first = await anext(chunks, None)
    except BaseException:
        await holds.aclose()
        raise

    async def stream() -> AsyncIterator[bytes]:
        async with holds:
            try:
                if first is None:
                    return
                yield first
                async for chunk in chunks:
                    yield chunk
            finally:
                await chunks.aclose()

    return stream()
