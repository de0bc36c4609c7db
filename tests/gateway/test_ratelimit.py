"""Rate limits: headers, refusals, sharing across gateways, and behaviour when Redis is down or slow."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
from redis.asyncio import Redis

from tests.gateway.conftest import Gateway, GatewayFactory, SigningKey, Upstream, bearer, closed_port, metric

PROBLEM = "application/problem+json"
WINDOW = 3600


def limits(**policies: int) -> dict[str, dict[str, int]]:
    base = {"anonymous": 1000, "login": 1000, "user": 1000}
    base.update(policies)
    return {name: {"limit": limit, "window": WINDOW} for name, limit in base.items()}


async def away_from_window_edge() -> None:
    """Fixed windows reset on the hour here; never straddle a reset inside one test."""
    left = WINDOW - time.time() % WINDOW
    if left < 5:
        await asyncio.sleep(left + 0.1)


async def two_gateways(make_gateway: GatewayFactory, user_limit: int) -> tuple[Gateway, Gateway]:
    """Two gateways sharing one Redis and one `user` limit, well inside the current window."""
    gateways = [await make_gateway(rate_limits=limits(user=user_limit)) for _ in range(2)]
    await away_from_window_edge()
    return gateways[0], gateways[1]


def parse_ratelimit(value: str) -> tuple[str, int, int]:
    match = re.fullmatch(r'"(\w+)";r=(\d+);t=(\d+)', value)
    assert match, value
    return match.group(1), int(match.group(2)), int(match.group(3))


async def test_limit_headers_and_refusal(
    make_gateway: GatewayFactory,
    client: aiohttp.ClientSession,
    upstream: Upstream,
    signing_key: SigningKey,
    redis_client: Redis,
):
    gw = await make_gateway(rate_limits=limits(user=3))
    await away_from_window_edge()
    token = signing_key.token()
    for expected_remaining in (2, 1, 0):
        async with client.get(gw.url + "/api/v1/usage/daily", headers=bearer(token)) as response:
            assert response.status == 200
            headers = response.headers
        assert headers["RateLimit-Policy"] == f'"user";q=3;w={WINDOW}'
        name, remaining, reset = parse_ratelimit(headers["RateLimit"])
        assert (name, remaining) == ("user", expected_remaining)
        assert 0 < reset <= WINDOW
        assert headers["X-RateLimit-Limit"] == "3"
        assert headers["X-RateLimit-Remaining"] == str(expected_remaining)
        assert abs(int(headers["X-RateLimit-Reset"]) - reset) <= 1
    limited = metric("owr_ratelimit_decisions_total", policy="user", decision="limited", backend="redis")
    async with client.get(gw.url + "/api/v1/usage/daily", headers=bearer(token)) as response:
        assert response.status == 429
        assert response.content_type == PROBLEM
        body = await response.json()
        headers = response.headers
    assert body["status"] == 429
    assert body["request_id"] == headers["X-Request-ID"]
    assert parse_ratelimit(headers["RateLimit"])[:2] == ("user", 0)
    assert headers["X-RateLimit-Remaining"] == "0"
    assert 0 < int(headers["Retry-After"]) <= WINDOW
    assert abs(int(headers["Retry-After"]) - int(headers["X-RateLimit-Reset"])) <= 1
    assert len(upstream.seen) == 3
    assert metric("owr_ratelimit_decisions_total", policy="user", decision="limited", backend="redis") == limited + 1
    # Another user has a budget of their own.
    async with client.get(gw.url + "/api/v1/usage/daily", headers=bearer(signing_key.token())) as response:
        assert response.status == 200
    # The counter lives in Redis under the documented key.
    keys = [k.decode() async for k in redis_client.scan_iter("owr:rl:user:*")]
    assert len(keys) == 2
    assert all(re.fullmatch(r"owr:rl:user:[0-9a-f-]+:\d+", k) for k in keys)
    assert 0 < await redis_client.pttl(keys[0]) <= WINDOW * 1000


async def test_login_policy_is_per_ip(
    make_gateway: GatewayFactory, client: aiohttp.ClientSession, upstream: Upstream, redis_client: Redis
):
    gw = await make_gateway(rate_limits=limits(login=2))
    await away_from_window_edge()
    statuses = []
    for path in ("/api/v1/auth/login", "/api/v1/auth/register", "/api/v1/auth/login"):
        async with client.post(gw.url + path, json={"email": "a@b.c", "password": "x"}) as response:
            statuses.append(response.status)
            policy = response.headers["RateLimit-Policy"]
    assert statuses == [200, 200, 429]
    assert policy == f'"login";q=2;w={WINDOW}'
    assert len(upstream.seen) == 2
    assert [k async for k in redis_client.scan_iter("owr:rl:login:127.0.0.1:*")]
    # The anonymous policy is a separate budget.
    async with client.post(gw.url + "/api/v1/auth/refresh", json={}) as response:
        assert response.status == 200
        assert response.headers["RateLimit-Policy"].startswith('"anonymous"')


async def test_two_gateways_share_one_limit(
    make_gateway: GatewayFactory,
    client: aiohttp.ClientSession,
    upstream: Upstream,
    signing_key: SigningKey,
    redis_client: Redis,
):
    first, second = await two_gateways(make_gateway, user_limit=4)
    token = signing_key.token()
    statuses = []
    for i in range(6):
        gw = first if i % 2 == 0 else second
        async with client.get(gw.url + "/api/v1/keys", headers=bearer(token)) as response:
            statuses.append((response.status, response.headers["X-RateLimit-Remaining"]))
    assert statuses == [(200, "3"), (200, "2"), (200, "1"), (200, "0"), (429, "0"), (429, "0")]
    assert len(upstream.seen) == 4


async def test_concurrent_requests_are_counted_exactly(
    make_gateway: GatewayFactory,
    client: aiohttp.ClientSession,
    upstream: Upstream,
    signing_key: SigningKey,
    redis_client: Redis,
):
    """Many requests in flight at once (batched into shared Redis round trips) never overshoot."""
    first, second = await two_gateways(make_gateway, user_limit=25)
    token = signing_key.token()

    async def one(i: int) -> int:
        gw = first if i % 2 == 0 else second
        async with client.get(gw.url + "/api/v1/keys", headers=bearer(token)) as response:
            await response.read()
            return response.status

    statuses = await asyncio.gather(*(one(i) for i in range(60)))
    assert statuses.count(200) == 25
    assert statuses.count(429) == 35
    assert len(upstream.seen) == 25


async def test_redis_down_fails_open_for_general_routes_and_closed_for_login(
    make_gateway: GatewayFactory, client: aiohttp.ClientSession, upstream: Upstream, signing_key: SigningKey
):
    gw = await make_gateway(REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0", rate_limits=limits(user=2, login=5))
    errors = metric("owr_ratelimit_backend_errors_total")
    local_allowed = metric("owr_ratelimit_decisions_total", policy="user", decision="allowed", backend="local")
    local_limited = metric("owr_ratelimit_decisions_total", policy="user", decision="limited", backend="local")
    unavailable = metric("owr_ratelimit_decisions_total", policy="login", decision="unavailable", backend="redis")
    token = signing_key.token()
    started = time.monotonic()
    statuses = []
    for _ in range(3):
        async with client.get(gw.url + "/api/v1/keys", headers=bearer(token)) as response:
            statuses.append(response.status)
            remaining = response.headers["X-RateLimit-Remaining"]
    # Served by the per-process fallback, which applies the same limit.
    assert statuses == [200, 200, 429]
    assert remaining == "0"
    assert len(upstream.seen) == 2
    assert metric("owr_ratelimit_decisions_total", policy="user", decision="allowed", backend="local") == (
        local_allowed + 2
    )
    assert metric("owr_ratelimit_decisions_total", policy="user", decision="limited", backend="local") == (
        local_limited + 1
    )
    # Login and register fail closed.
    for path in ("/api/v1/auth/login", "/api/v1/auth/register"):
        async with client.post(gw.url + path, json={}) as response:
            assert response.status == 503
            assert response.content_type == PROBLEM
            assert int(response.headers["Retry-After"]) >= 1
            body = await response.json()
        assert "redis" not in str(body).lower()
    assert len(upstream.seen) == 2
    assert metric("owr_ratelimit_decisions_total", policy="login", decision="unavailable", backend="redis") == (
        unavailable + 2
    )
    # The breaker: one failed attempt, then Redis is skipped for a second instead of failing each request.
    assert time.monotonic() - started < 1.0
    assert metric("owr_ratelimit_backend_errors_total") == errors + 1


async def test_redis_is_retried_after_the_breaker_interval(
    make_gateway: GatewayFactory, client: aiohttp.ClientSession, signing_key: SigningKey
):
    gw = await make_gateway(REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0", redis_breaker_seconds=0.2)
    errors = metric("owr_ratelimit_backend_errors_total")
    for _ in range(2):
        async with client.get(gw.url + "/api/v1/keys", headers=bearer(signing_key.token())) as response:
            assert response.status == 200
    assert metric("owr_ratelimit_backend_errors_total") == errors + 1
    await asyncio.sleep(0.3)
    async with client.get(gw.url + "/api/v1/keys", headers=bearer(signing_key.token())) as response:
        assert response.status == 200
    assert metric("owr_ratelimit_backend_errors_total") == errors + 2


async def test_slow_redis_times_out_quickly(
    make_gateway: GatewayFactory, client: aiohttp.ClientSession, signing_key: SigningKey
):
    """A Redis that accepts connections but never answers costs one short timeout, not a hung request."""
    accepted: list[asyncio.StreamWriter] = []

    async def swallow(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        gw = await make_gateway(REDIS_URL=f"redis://127.0.0.1:{port}/0", redis_timeout=0.2)
        local = metric("owr_ratelimit_decisions_total", policy="user", decision="allowed", backend="local")
        started = time.monotonic()
        async with client.get(gw.url + "/api/v1/keys", headers=bearer(signing_key.token())) as response:
            assert response.status == 200
        elapsed = time.monotonic() - started
        assert 0.2 <= elapsed < 0.8
        assert accepted  # it did try Redis
        assert metric("owr_ratelimit_decisions_total", policy="user", decision="allowed", backend="local") == local + 1
        started = time.monotonic()
        async with client.post(gw.url + "/api/v1/auth/login", json={}) as response:
            assert response.status == 503  # breaker open: answered at once
        assert time.monotonic() - started < 0.15
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_redis_recovers_from_a_flushed_script_cache(
    gateway: Gateway, client: aiohttp.ClientSession, signing_key: SigningKey, redis_client: Redis
):
    await redis_client.script_flush()
    errors = metric("owr_ratelimit_backend_errors_total")
    async with client.get(gateway.url + "/api/v1/keys", headers=bearer(signing_key.token())) as response:
        assert response.status == 200
        assert response.headers["RateLimit-Policy"].startswith('"user"')
    assert metric("owr_ratelimit_backend_errors_total") == errors


async def test_health_is_never_rate_limited(
    make_gateway: GatewayFactory, client: aiohttp.ClientSession, redis_client: Redis
):
    gw = await make_gateway(rate_limits=limits(anonymous=1, user=1))
    for _ in range(3):
        async with client.get(gw.url + "/health/live") as response:
            assert response.status == 200
            assert "RateLimit" not in response.headers
