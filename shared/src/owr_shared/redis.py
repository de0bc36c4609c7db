"""Redis clients with short timeouts, so a dead Redis costs milliseconds rather than a hung request."""

from __future__ import annotations

from redis.asyncio import Redis


def create_redis(url: str, *, timeout: float = 0.5, max_connections: int = 64) -> Redis:
    """Create the process's Redis client; call from the lifespan, never at import."""
    client: Redis = Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        max_connections=max_connections,
        decode_responses=False,
    )
    return client


async def ping_redis(client: Redis) -> None:
    await client.ping()
