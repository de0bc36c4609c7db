"""Issue 13 at the gateway: security headers, docs without a CDN, failed-authentication limits, API tokens
inside their owner's budget, readiness off the public port. Real gateways in front of the recording upstream."""

from __future__ import annotations

import re
import uuid
from typing import Any

import aiohttp
from redis.asyncio import Redis

from tests.gateway.conftest import GatewayFactory, SigningKey, Upstream, bearer
from tests.gateway.test_ratelimit import WINDOW, away_from_window_edge, limits

API_TOKENS = {"service_client_secret": "gateway-secret", "api_token_pepper": "pepper"}


def assert_api_security_headers(headers: Any, *, hsts: bool) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    csp = headers["Content-Security-Policy"]
    assert csp.startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in csp
    assert headers.getall("Content-Security-Policy") == [csp]  # the upstream's own copy never passes
    if hsts:
        assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    else:
        assert "Strict-Transport-Security" not in headers


async def test_every_answer_carries_the_security_headers(
    make_gateway: GatewayFactory, client: aiohttp.ClientSession, signing_key: SigningKey
):
    gw = await make_gateway()
    token = bearer(signing_key.token())
    for method, path, headers, status in (
        ("GET", "/api/v1/keys", token, 200),  # relayed from the upstream
        ("GET", "/api/v1/keys?status=500", token, 500),  # the upstream's error, relayed
        ("GET", "/api/v1/keys", {}, 401),  # the gateway's refusal
        ("GET", "/internal/keys", {}, 404),
        ("GET", "/health/live", {}, 200),
        ("GET", "/api/v1/openapi.json", {}, 200),  # answered by the gateway itself
    ):
        async with client.request(method, gw.url + path, headers=headers) as response:
            assert response.status == status, path
            assert_api_security_headers(response.headers, hsts=False)


async def test_hsts_only_when_the_client_came_over_tls(
    make_gateway: GatewayFactory, client: aiohttp.ClientSession, signing_key: SigningKey
):
    token = bearer(signing_key.token())
    https = {**token, "X-Forwarded-Proto": "https"}
    untrusted = await make_gateway()
    behind_proxy = await make_gateway(trusted_proxies=["127.0.0.1"])
    tls_at_the_edge = await make_gateway(public_tls=True)
    for gw, headers, hsts in (
        (untrusted, https, False),  # anyone may say https: only a trusted proxy is believed
        (behind_proxy, https, True),
        (behind_proxy, token, False),
        (tls_at_the_edge, token, True),
    ):
        async with client.get(gw.url + "/api/v1/keys", headers=headers) as response:
            assert response.status == 200
            assert_api_security_headers(response.headers, hsts=hsts)
        async with client.get(
            gw.url + "/api/v1/keys", headers={k: v for k, v in headers.items() if k != "Authorization"}
        ) as response:
            assert response.status == 401
            assert_api_security_headers(response.headers, hsts=hsts)


async def test_docs_are_served_from_the_installed_package_under_their_own_policy(
    make_gateway: GatewayFactory, client: aiohttp.ClientSession
):
    gw = await make_gateway()
    async with client.get(gw.url + "/docs") as response:
        assert response.status == 200
        page = await response.text()
        csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]  # no inline script runs
    assert "/api/v1/openapi.json" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing from another origin
    assert not re.search(r"<script>", page)  # every script is a file of this origin
    sources = re.findall(r"(?:src|href)=\"([^\"]+)\"", page)
    assert len(sources) == 3
    for source in sources:
        async with client.get(gw.url + source) as response:
            assert response.status == 200, source
            body = await response.read()
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.content_type in ("text/css", "text/javascript")
        assert len(body) > 50
    async with client.get(gw.url + "/docs/swagger-ui-bundle.js") as response:
        assert b"SwaggerUIBundle" in await response.read()
    async with client.get(gw.url + "/docs/../etc/passwd") as response:
        assert response.status in (400, 404)


async def test_docs_and_the_document_are_rate_limited(
    make_gateway: GatewayFactory, client: aiohttp.ClientSession, redis_client: Redis
):
    gw = await make_gateway(rate_limits=limits(anonymous=3))
    await away_from_window_edge()
    statuses = []
    for path in ("/docs", "/docs/start.js", "/docs/swagger-ui.css", "/docs", "/api/v1/openapi.json"):
        async with client.get(gw.url + path) as response:
            statuses.append(response.status)
            if response.status == 429:
                assert response.headers["Retry-After"]
                assert_api_security_headers(response.headers, hsts=False)
    assert statuses == [200, 200, 200, 429, 429]


async def test_invalid_api_tokens_are_remembered_and_then_limited_per_client(
    make_gateway: GatewayFactory, client: aiohttp.ClientSession, upstream: Upstream, redis_client: Redis
):
    gw = await make_gateway(rate_limits=limits(auth_failure=3), **API_TOKENS)
    await away_from_window_edge()
    invalid = bearer("owr_" + "A" * 40)
    statuses = []
    for _ in range(5):
        async with client.get(gw.url + "/api/v1/keys", headers=invalid) as response:
            statuses.append(response.status)
    assert statuses == [401, 401, 401, 429, 429]
    assert upstream.introspections == 1  # auth's "not active" was remembered
    assert not [seen for seen in upstream.seen if seen.upstream == "keys"]
    # Past the limit, a token nobody has seen yet is not sent to auth either.
    async with client.get(gw.url + "/api/v1/keys", headers=bearer("owr_" + "B" * 40)) as response:
        assert response.status == 429
    assert upstream.introspections == 1


async def test_invalid_jwts_are_limited_per_client_and_valid_ones_pass(
    make_gateway: GatewayFactory,
    client: aiohttp.ClientSession,
    signing_key: SigningKey,
    redis_client: Redis,
):
    gw = await make_gateway(rate_limits=limits(auth_failure=3))
    await away_from_window_edge()
    statuses = []
    for forged in ("a.b.c", signing_key.token(iss="someone-else"), "not-a-jwt", "x.y.z"):
        async with client.get(gw.url + "/api/v1/usage/daily", headers=bearer(forged)) as response:
            statuses.append(response.status)
            limited_headers = response.headers
    assert statuses == [401, 401, 401, 429]
    assert limited_headers["RateLimit-Policy"] == f'"auth_failure";q=3;w={WINDOW}'
    async with client.get(gw.url + "/api/v1/usage/daily", headers=bearer(signing_key.token())) as response:
        assert response.status == 200  # a real user behind the same address is not locked out
    assert [k async for k in redis_client.scan_iter("owr:rl:auth_failure:127.0.0.1:*")]


def grant(signing_key: SigningKey, user_id: str, per_minute: int | None = None) -> dict[str, Any]:
    """auth's introspection answer for an active API token of `user_id`."""
    return {
        "active": True,
        "token_id": str(uuid.uuid4()),
        "user_id": user_id,
        "access_token": signing_key.token(user_id),
        "rate_limit_per_minute": per_minute,
        "cache_seconds": 60,
    }


async def test_api_tokens_count_against_their_owners_budget(
    make_gateway: GatewayFactory, client: aiohttp.ClientSession, upstream: Upstream, signing_key: SigningKey
):
    per_minute = {"anonymous": 1000, "login": 1000, "user": 4, "token": 1000, "auth_failure": 1000}
    gw = await make_gateway(
        rate_limits={name: {"limit": n, "window": 60} for name, n in per_minute.items()}, **API_TOKENS
    )
    user_id = str(uuid.uuid4())
    first, second = "owr_" + uuid.uuid4().hex, "owr_" + uuid.uuid4().hex
    upstream.grants[first] = grant(signing_key, user_id, per_minute=100_000)
    upstream.grants[second] = grant(signing_key, user_id)
    session = bearer(signing_key.token(user_id))
    statuses = []
    for headers in (bearer(first), bearer(second), session, bearer(first), bearer(second), session):
        async with client.get(gw.url + "/api/v1/keys", headers=headers) as response:
            statuses.append(response.status)
            if response.status == 200 and headers != session:
                # A token's own limit is capped at what its owner may do.
                assert response.headers["RateLimit-Policy"] == '"token";q=4;w=60'
    # Four requests of one user, whichever way they came; then the user's budget is spent for both ways.
    assert statuses == [200, 200, 200, 200, 429, 429]
    async with client.get(gw.url + "/api/v1/keys", headers=bearer(signing_key.token())) as response:
        assert response.status == 200  # another user is not affected
