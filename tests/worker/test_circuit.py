"""The shared circuit breaker against real Redis: open after N failures, one half-open probe, close."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from owr_worker.circuit import CLOSED, OPEN, PROBE, CircuitBreaker, CircuitOpenError


def gauge() -> float | None:
    return REGISTRY.get_sample_value("owr_openrouter_circuit_open")


def breaker(redis, threshold=3, open_seconds=0.3, probe_ttl=5.0):
    return CircuitBreaker(redis, threshold=threshold, open_seconds=open_seconds, probe_ttl_seconds=probe_ttl)


async def test_opens_after_consecutive_failures(redis_client):
    circuit = breaker(redis_client)
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
        a, b = breaker(redis_client, threshold=2), breaker(other, threshold=2)
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
