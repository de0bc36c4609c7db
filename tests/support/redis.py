"""Redis hygiene between suites that share the session's Redis database."""

from __future__ import annotations

from collections.abc import AsyncIterator

from redis.asyncio import Redis


async def flush(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


async def leave_redis_clean(redis_url: str) -> AsyncIterator[None]:
    """Flush the test's Redis database after it: no later test or suite (e2e's worker, its login limits)
    inherits its queued jobs, failure counters or lockouts.

    A suite enables it with `_leave_redis_clean = pytest.fixture(autouse=True)(leave_redis_clean)`.
    """
    yield
    await flush(redis_url)
