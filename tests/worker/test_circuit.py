"""The shared circuit breaker against real Redis: open after N failures, one half-open probe, close; and the
gate that asks it and the limiter in one call."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from owr_worker.circuit import CLOSED, FAILING, FAILURES_KEY, OPEN, PROBE, CircuitBreaker, CircuitOpenError
from owr_worker.gate import UpstreamGate
from owr_worker.ratelimit import RATE_KEY, RateLimiter


def gauge() -> float | None:
    return REGISTRY.get_sample_value("owr_openrouter_circuit_open")


def breaker(redis: Redis, threshold: int = 3, open_seconds: float = 0.3, probe_ttl: float = 5.0) -> CircuitBreaker:
    return CircuitBreaker(redis, threshold=threshold, open_seconds=open_seconds, probe_ttl_seconds=probe_ttl)


async def test_opens_after_consecutive_failures(redis_client):
    # Open long enough that a loaded machine cannot reach the half-open probe before the check below.
    circuit = breaker(redis_client, open_seconds=30)
    assert await circuit.state() == CLOSED
    assert [await circuit.record_failure() for _ in range(3)] == [False, False, True]
    assert gauge() == 1
    with pytest.raises(CircuitOpenError):
        await circuit.before_request()


async def test_a_success_resets_the_count(redis_client):
    circuit = breaker(redis_client)
    await circuit.record_failure()
    await circuit.record_failure()
    await circuit.record_success()
    assert await circuit.record_failure() is False
    assert await circuit.state() == CLOSED
    assert gauge() == 0


async def test_half_open_lets_one_probe_through_and_its_success_closes(redis_client):
    circuit = breaker(redis_client, threshold=1)
    assert await circuit.record_failure() is True
    assert await circuit.state() == OPEN
    await asyncio.sleep(0.35)
    states = await asyncio.gather(*(circuit.state() for _ in range(5)))
    assert sorted(states) == [OPEN, OPEN, OPEN, OPEN, PROBE]
    await circuit.record_success()
    assert await circuit.state() == CLOSED


async def test_a_failed_probe_opens_again(redis_client):
    circuit = breaker(redis_client, threshold=5)
    for _ in range(5):
        await circuit.record_failure()
    await asyncio.sleep(0.35)
    assert await circuit.state() == PROBE
    assert await circuit.record_failure() is True  # one failure is enough while half-open
    assert await circuit.state() == OPEN


async def test_a_lost_probe_frees_its_slot(redis_client):
    circuit = breaker(redis_client, threshold=1, open_seconds=0.1, probe_ttl=0.2)
    await circuit.record_failure()
    await asyncio.sleep(0.15)
    assert await circuit.state() == PROBE
    assert await circuit.state() == OPEN
    await asyncio.sleep(0.25)
    assert await circuit.state() == PROBE


async def test_processes_share_the_state(redis_url, redis_client):
    other = Redis.from_url(redis_url)
    try:
        a, b = breaker(redis_client, threshold=2, open_seconds=30), breaker(other, threshold=2, open_seconds=30)
        await a.record_failure()
        assert await b.record_failure() is True
        assert await a.state() == OPEN
    finally:
        await other.aclose()


async def test_unreachable_redis_lets_requests_through():
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        circuit = breaker(dead, threshold=1)
        assert await circuit.record_failure() is False
        await circuit.before_request()
        await circuit.record_success()
    finally:
        await dead.aclose()


async def test_a_success_after_a_clean_verdict_writes_nothing(redis_client):
    circuit = breaker(redis_client, threshold=3)
    verdict = await circuit.before_request()
    assert verdict == CLOSED
    await redis_client.set(FAILURES_KEY, 1)  # another process counts a failure meanwhile
    await circuit.record_success(verdict)
    assert await redis_client.get(FAILURES_KEY) == b"1"  # not reset by a request that saw none
    verdict = await circuit.before_request()
    assert verdict == FAILING
    assert await circuit.state() == CLOSED  # to callers, still closed
    await circuit.record_success(verdict)
    assert not await redis_client.exists(FAILURES_KEY)


async def test_the_gate_gives_the_verdict_and_a_slot_in_one_call(redis_client):
    circuit = breaker(redis_client, threshold=1)
    limiter = RateLimiter(redis_client, rate=10, burst=2)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    limiter._sleep = sleep
    gate = UpstreamGate(circuit, limiter)
    start = time.perf_counter()
    assert [await gate.admit() for _ in range(3)] == [CLOSED, CLOSED, CLOSED]
    elapsed = time.perf_counter() - start
    # The third waited one interval after the burst of two, less the time the three calls took.
    assert len(slept) == 1
    assert 0.1 - elapsed - 0.005 <= slept[0] <= 0.105, (slept, elapsed)
    await circuit.record_failure()
    tat = await redis_client.get(RATE_KEY)
    with pytest.raises(CircuitOpenError):
        await gate.admit()
    assert await redis_client.get(RATE_KEY) == tat  # refused: no slot taken
    await asyncio.sleep(0.35)
    assert await gate.admit() == PROBE
    await circuit.record_success(PROBE)
    assert await gate.admit() == CLOSED


async def test_the_gate_without_redis_lets_requests_through_at_the_local_rate():
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        gate = UpstreamGate(breaker(dead), RateLimiter(dead, rate=10, burst=1, sleep=sleep))
        start = time.perf_counter()
        assert [await gate.admit() for _ in range(2)] == [CLOSED, CLOSED]
        elapsed = time.perf_counter() - start
        assert len(slept) == 1
        assert 0.1 - elapsed - 0.005 <= slept[0] <= 0.105, (slept, elapsed)
    finally:
        await dead.aclose()
