"""A test's own SQL inside its rolled-back transaction (see tests/README.md), and fresh migrated databases."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from owr_shared.migrate import upgrade
from tools.devinfra import create_database, drop_database


@contextmanager
def migrated_database(admin_url: str, prefix: str = "owr_test") -> Iterator[str]:
    """A new database on `admin_url`'s server with every service's migrations applied (its libpq URL),
    dropped on exit: the session's, or a stack's that no other process may touch."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    url = create_database(admin_url, name)
    try:
        upgrade(database_url=url)
        yield url
    finally:
        drop_database(admin_url, name)


@asynccontextmanager
async def savepoint(connection: AsyncConnection) -> AsyncIterator[AsyncConnection]:
    """`connection` (the test's `db_connection`) inside a savepoint: where a committed test would use
    `engine.begin()` or `engine.connect()`, this sees the rows the rolled-back client wrote, and its own
    writes last until the test's transaction is rolled back. It runs as the test's login (a superuser), not
    as the role the last request's wall took (`owr_shared.wall`: SET LOCAL outlives a released savepoint)."""
    async with connection.begin_nested():
        await connection.execute(text("SET LOCAL ROLE NONE"))
        yield connection
