"""Routing through a real gateway: prefixes, unknown paths, `/internal` in every spelling, health, metrics."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.gateway.conftest import (
    Gateway,
    GatewayFactory,
    SigningKey,
    Upstream,
    bearer,
    closed_port,
    raw_request,
    scrape_metrics,
)

PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path", "upstream_name", "needs_token"),
    [
        ("GET", "/api/v1/keys", "keys", True),
        ("GET", "/api/v1/keys/abc/audit", "keys", True),
        ("PATCH", "/api/v1/keys/abc", "keys", True),
        ("GET", "/api/v1/usage/summary", "usage", True),
        ("GET", "/api/v1/metrics", "usage", True),  # a workspace's own metrics; /metrics stays on the admin port
        ("GET", "/api/v1/budgets", "usage", True),
        ("POST", "/api/v1/channels/abc/test", "usage", True),
        ("POST", "/api/v1/channels/abc/resend-confirmation", "usage", True),
        ("POST", "/api/v1/channel-confirmations", "usage", False),
        ("GET", "/api/v1/alerts", "usage", True),
        ("PUT", "/api/v1/alert-rules", "usage", True),
        ("GET", "/api/v1/auth/me", "auth", True),
        ("DELETE", "/api/v1/auth/me", "auth", True),
        ("POST", "/api/v1/auth/login", "auth", False),
        ("POST", "/api/v1/auth/register", "auth", False),
        ("POST", "/api/v1/auth/refresh", "auth", False),
        ("POST", "/api/v1/auth/logout", "auth", False),
        ("POST", "/api/v1/auth/password-reset", "auth", False),
        ("POST", "/api/v1/auth/password-reset/confirm", "auth", False),
        ("POST", "/api/v1/auth/verify-email", "auth", False),
        ("POST", "/api/v1/auth/verify-email/resend", "auth", True),
    ],
)
async def test_routes_reach_their_upstream(
    gateway: Gateway,
    client: aiohttp.ClientSession,
    upstream: Upstream,
    signing_key: SigningKey,
    method: str,
    path: str,
    upstream_name: str,
    needs_token: bool,
):
    headers = bearer(signing_key.token()) if needs_token else {}
    async with client.request(method, gateway.url + path, headers=headers, json={"x": 1}) as response:
        assert response.status == 200
        echo = await response.json()
    assert echo["upstream"] == upstream_name
    assert echo["method"] == method
    assert echo["raw_path"] == path
    assert [s.upstream for s in upstream.seen] == [upstream_name]


async def test_path_and_query_are_forwarded_unchanged(gateway: Gateway, signing_key: SigningKey, upstream: Upstream):
    target = "/api/v1/keys/a%20b/%C3%A9?x=1&y=%2F&z=a+b&x=2"
    response = await raw_request(
        gateway.port, f"GET {target} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {signing_key.token()}"
    )
    assert response.status == 200
    assert [s.raw_path for s in upstream.seen] == [target]


async def test_jwks_is_public(gateway: Gateway, client: aiohttp.ClientSession, signing_key: SigningKey):
    async with client.get(gateway.url + "/.well-known/jwks.json") as response:
        assert response.status == 200
        assert (await response.json())["keys"][0]["kid"] == signing_key.kid


@pytest.mark.parametrize(
    "path", ["/", "/api/v1", "/api/v1/keysx", "/api/v2/keys", "/metrics", "/docs/x", "/api/v1/authx"]
)
async def test_unknown_paths_are_404_problems(
    gateway: Gateway, client: aiohttp.ClientSession, upstream: Upstream, signing_key: SigningKey, path: str
):
    async with client.get(gateway.url + path, headers=bearer(signing_key.token())) as response:
        assert response.status == 404
        assert response.content_type == PROBLEM
        body = await response.json()
    assert body["status"] == 404
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert upstream.seen == []


INTERNAL_SPELLINGS = [
    "/internal/keys/1/reveal",
    "/internal",
    "/INTERNAL/keys/1/reveal",
    "/Internal/keys",
    "//internal/keys/1/reveal",
    "/%69nternal/keys",
    "/%2finternal/keys/1/reveal",
    "/%2Finternal/keys",
    "/%5Cinternal/keys",
    "/./internal/keys",
    "/api/v1/keys/../../../internal/keys/1/reveal",
    "/api/v1/keys/%2e%2e/%2E%2E/%2e%2e/internal/keys",
    "/api/v1/keys/%252e%252e/%252e%252e/%252e%252e/internal/keys",
    "/internal;x=1/keys",
]


@pytest.mark.parametrize("target", INTERNAL_SPELLINGS)
async def test_internal_is_never_routed(gateway: Gateway, upstream: Upstream, signing_key: SigningKey, target: str):
    token = signing_key.token()

    async def problem(method: str, path: str) -> dict[str, object]:
        response = await raw_request(
            gateway.port, f"{method} {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\nContent-Length: 0"
        )
        assert response.status == 404, path
        assert response.headers["content-type"] == PROBLEM
        body: dict[str, object] = json.loads(response.body)
        del body["instance"], body["request_id"]
        return body

    for method in ("GET", "POST"):
        # Indistinguishable from a path that does not exist at all.
        assert await problem(method, target) == await problem(method, "/no/such/path")
    assert upstream.seen == []


@pytest.mark.parametrize(
    "target",
    [
        "/api/v1/keys/../auth/me",
        "/api/v1/keys/./abc",
        "/api/v1/keys/%2e%2e/abc",
        "/api/v1/keys/abc%2Fdef",
        "/api/v1/keys/abc%5cdef",
        "/api/v1/auth/%2E%2E/keys",
    ],
)
async def test_dot_segments_and_encoded_separators_are_400(
    gateway: Gateway, upstream: Upstream, signing_key: SigningKey, target: str
):
    response = await raw_request(
        gateway.port, f"GET {target} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {signing_key.token()}"
    )
    assert response.status == 400
    assert response.headers["content-type"] == PROBLEM
    assert upstream.seen == []


async def test_methods_restriction(make_gateway: GatewayFactory, client: aiohttp.ClientSession, upstream: Upstream):
    gw = await make_gateway(
        routes=[
            {
                "prefix": "/api/v1/auth/login",
                "upstream": "auth",
                "auth": "none",
                "policy": "anonymous",
                "methods": ["POST"],
            }
        ]
    )
    async with client.get(gw.url + "/api/v1/auth/login") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
        assert response.content_type == PROBLEM
    async with client.post(gw.url + "/api/v1/auth/login") as response:
        assert response.status == 200
    assert len(upstream.seen) == 1


async def test_liveness_on_both_ports_readiness_and_metrics_on_admin_only(
    gateway: Gateway, client: aiohttp.ClientSession, signing_key: SigningKey
):
    async with client.get(gateway.url + "/api/v1/keys", headers=bearer(signing_key.token())) as response:
        assert response.status == 200
    for base in (gateway.url, gateway.admin_url):
        async with client.get(base + "/health/live") as response:
            assert response.status == 200
            assert (await response.json())["status"] == "ok"
    # Readiness pings Redis and auth: never on the public port, where anyone could make it do so.
    async with client.get(gateway.url + "/health/ready") as response:
        assert response.status == 404
        assert response.content_type == PROBLEM
    async with client.get(gateway.admin_url + "/health/ready") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok", "checks": {"redis": "ok", "auth": "ok"}}
    text = await scrape_metrics(client, gateway)
    assert 'owr_http_requests_total{method="GET",route="/api/v1/keys",service="gateway",status="200"}' in text
    assert "owr_ratelimit_decisions_total" in text
    assert "owr_gateway_jwt_cache_total" in text
    assert "127.0.0.1" not in text  # no addresses (or anything user-specific) in labels


async def test_readiness_reports_auth_down_but_stays_ready(make_gateway: GatewayFactory, client: aiohttp.ClientSession):
    """auth and Redis are shared by every replica: an outage of either is reported, never a reason for every
    gateway to leave the load balancer at once (JWT routes still serve with the cached JWKS)."""
    gw = await make_gateway(auth_url=f"http://127.0.0.1:{closed_port()}")
    async with client.get(gw.admin_url + "/health/ready") as response:
        assert response.status == 200
        body = await response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"] == "ok"
    assert body["checks"]["auth"] != "ok"
    async with client.get(gw.admin_url + "/health/live") as response:
        assert response.status == 200
