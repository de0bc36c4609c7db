"""A test's own SQL inside its rolled-back transaction (see tests/README.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection


@asynccontextmanager
async def savepoint(connection: AsyncConnection) -> AsyncIterator[AsyncConnection]:
    """`connection` (the test's `db_connection`) inside a savepoint: where a committed test would use
    `engine.begin()` or `engine.connect()`, this sees the rows the rolled-back client wrote, and its own
    writes last until the test's transaction is rolled back."""
    async with connection.begin_nested():
        yield connection
