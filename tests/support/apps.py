"""A service's FastAPI app in-process behind an httpx client, and the one isolation rule (tests/README.md).

`rolled_back_client` is the default for HTTP-level tests: every request's session joins the test's
outer transaction (a savepoint per request, committed or rolled back exactly as `DbSession` does), and
the outer transaction is rolled back after the test. `committed_client` is for the tests that need
several connections (concurrency, the app's own pool, SKIP LOCKED, other processes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker

from owr_shared.admin import AdminPortSplit

ADMIN_PORT = 9999


async def admin_get(app: FastAPI, path: str) -> httpx.Response:
    """GET `path` on the app's admin port (`/metrics`, health), as Prometheus or a probe would: the
    API port never serves `/metrics`."""
    transport = httpx.ASGITransport(app=AdminPortSplit(app, ADMIN_PORT))
    async with httpx.AsyncClient(transport=transport, base_url=f"http://test:{ADMIN_PORT}") as client:
        return await client.get(path)


@asynccontextmanager
async def committed_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose lifespan already runs: requests use the app's own pool and commit."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@contextmanager
def bound_to_connection(app: FastAPI, connection: AsyncConnection) -> Iterator[None]:
    """While inside, the app's `DbSession` opens its sessions on `connection`, inside its transaction.

    The app's sessionmaker is swapped rather than the dependency overridden, so each request still runs
    the real transaction boundary of `owr_shared.db` (its commit releases a savepoint).
    """
    own = getattr(app.state, "sessionmaker", None)
    if own is None:
        raise RuntimeError("the app has no sessionmaker: start its lifespan first")
    # The app's own options (its session class among them: walled or not, `owr_shared.wall`), on `connection`.
    app.state.sessionmaker = async_sessionmaker(
        **{**own.kw, "bind": connection, "join_transaction_mode": "create_savepoint"}
    )
    try:
        yield
    finally:
        app.state.sessionmaker = own


@asynccontextmanager
async def rolled_back_client(app: FastAPI, connection: AsyncConnection) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose every write vanishes with `connection`'s transaction (the test's `db_connection`)."""
    with bound_to_connection(app, connection):
        async with committed_client(app) as client:
            yield client


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield a client that calls it in-process (committed)."""
    async with app.router.lifespan_context(app), committed_client(app) as client:
        yield client


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[int]:
    """Serve `app` (its lifespan included) with uvicorn in this event loop on an ephemeral loopback port;
    yields the port. For a real HTTP hop in front of an in-process app (the gateway's pass-through)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or task.done():
                raise RuntimeError("the app did not start")
            await asyncio.sleep(0.01)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task
