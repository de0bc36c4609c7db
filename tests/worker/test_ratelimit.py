"""The shared GCRA limiter against real Redis, and its per-process fallback."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from owr_worker.ratelimit import RATE_KEY, LocalGcra, RateLimiter


async def test_burst_then_one_slot_per_interval(redis_client):
    limiter = RateLimiter(redis_client, rate=10, burst=3)
    waits = [await limiter.reserve() for _ in range(6)]
    assert waits[:3] == [0, 0, 0]
    # Slots 4..6 are 0.1 s apart (reserved at once, so each waits one interval longer than the last).
    for n, wait in enumerate(waits[3:], start=1):
        assert wait == pytest.approx(0.1 * n, abs=0.02)
    assert 0 < await redis_client.pttl(RATE_KEY) <= 2000


async def test_processes_share_one_budget(redis_url, redis_client):
    other = Redis.from_url(redis_url)
    try:
        a = RateLimiter(redis_client, rate=5, burst=1)
        b = RateLimiter(other, rate=5, burst=1)
        waits = [await a.reserve(), await b.reserve(), await a.reserve(), await b.reserve()]
    finally:
        await other.aclose()
    assert waits[0] == 0
    assert waits[1:] == pytest.approx([0.2, 0.4, 0.6], abs=0.03)


async def test_acquire_sleeps_until_the_slot(redis_client):
    limiter = RateLimiter(redis_client, rate=20, burst=1)
    start = time.perf_counter()
    await asyncio.gather(*(limiter.acquire() for _ in range(5)))
    elapsed = time.perf_counter() - start
    assert 0.18 <= elapsed < 0.6  # 4 intervals of 50 ms after the first


async def test_unreachable_redis_falls_back_to_a_local_limiter():
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        limiter = RateLimiter(dead, rate=10, burst=2)
        waits = [await limiter.reserve() for _ in range(4)]
    finally:
        await dead.aclose()
    assert waits[:2] == [0, 0]
    assert waits[2] == pytest.approx(0.1, abs=0.02)
    assert waits[3] == pytest.approx(0.2, abs=0.02)


def test_local_gcra_refills_with_time():
    now = [100.0]
    gcra = LocalGcra(rate=2, burst=1, clock=lambda: now[0])
    assert gcra.reserve() == 0
    assert gcra.reserve() == pytest.approx(0.5)
    now[0] += 5
    assert gcra.reserve() == 0
