"""The shared GCRA limiter against real Redis, and its per-process fallback."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from owr_worker.ratelimit import RATE_KEY, LocalGcra, RateLimiter


def within_elapsed(wait: float, expected: float, elapsed: float) -> bool:
    """A wait reserved `elapsed` seconds into a run is the slot's distance, less the time already gone."""
    return expected - elapsed - 0.005 <= wait <= expected + 0.005


async def test_burst_then_one_slot_per_interval(redis_client):
    limiter = RateLimiter(redis_client, rate=10, burst=3)
    start = time.perf_counter()
    waits = [await limiter.reserve() for _ in range(6)]
    elapsed = time.perf_counter() - start
    assert waits[:3] == [0, 0, 0]
    # Slots 4..6 are 0.1 s apart (reserved at once, so each waits one interval longer than the last).
    for n, wait in enumerate(waits[3:], start=1):
        assert within_elapsed(wait, 0.1 * n, elapsed), (n, wait, elapsed)
    assert 0 < await redis_client.pttl(RATE_KEY) <= 2000


async def test_processes_share_one_budget(redis_url, redis_client):
    other = Redis.from_url(redis_url)
    try:
        a = RateLimiter(redis_client, rate=5, burst=1)
        b = RateLimiter(other, rate=5, burst=1)
        start = time.perf_counter()
        waits = [await a.reserve(), await b.reserve(), await a.reserve(), await b.reserve()]
        elapsed = time.perf_counter() - start
    finally:
        await other.aclose()
    assert waits[0] == 0
    assert all(within_elapsed(w, e, elapsed) for w, e in zip(waits[1:], (0.2, 0.4, 0.6), strict=True)), waits


async def test_acquire_sleeps_until_the_slot(redis_client):
    limiter = RateLimiter(redis_client, rate=20, burst=1)
    start = time.perf_counter()
    await asyncio.gather(*(limiter.acquire() for _ in range(5)))
    elapsed = time.perf_counter() - start
    assert elapsed >= 0.18  # 4 intervals of 50 ms after the first (a loaded machine only adds to it)


async def test_unreachable_redis_falls_back_to_a_local_limiter():
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        limiter = RateLimiter(dead, rate=10, burst=2)
        start = time.perf_counter()
        waits = [await limiter.reserve() for _ in range(4)]
        elapsed = time.perf_counter() - start
    finally:
        await dead.aclose()
    assert waits[:2] == [0, 0]
    assert within_elapsed(waits[2], 0.1, elapsed), waits
    assert within_elapsed(waits[3], 0.2, elapsed), waits


def test_local_gcra_refills_with_time():
    now = [100.0]
    gcra = LocalGcra(rate=2, burst=1, clock=lambda: now[0])
    assert gcra.reserve() == 0
    assert gcra.reserve() == pytest.approx(0.5)
    now[0] += 5
    assert gcra.reserve() == 0
