"""The web dashboard behind the gateway (issue 14): every path outside the API's prefixes goes to web,
unauthenticated at the gateway, under its own per-address limit, with the pages' security headers."""

from __future__ import annotations

import aiohttp

from tests.gateway.conftest import GatewayFactory, Upstream


async def test_pages_go_to_web_and_the_api_prefixes_never_do(
    make_gateway: GatewayFactory, client: aiohttp.ClientSession, upstream: Upstream
):
    gw = await make_gateway(web_url=upstream.url("keys"))
    for path in ("/", "/keys", "/keys/3f1c", "/static/dist/app.1234.css", "/login"):
        upstream.clear()
        async with client.get(gw.url + path, headers={"Cookie": "owr_session=abc"}) as response:
            assert response.status == 200, path
            csp = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp
            assert "frame-ancestors 'none'" in csp
            assert "unsafe-inline" not in csp
            assert response.headers["Referrer-Policy"] == "same-origin"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["RateLimit-Policy"] == '"web";q=300;w=60'
        (seen,) = upstream.seen
        assert seen.raw_path == path
        assert ("cookie", "owr_session=abc") in [(k.lower(), v) for k, v in seen.headers]
    for path in ("/api/v1/nothing", "/api", "/.well-known/other", "/internal/keys", "/metrics", "/health/x"):
        upstream.clear()
        async with client.get(gw.url + path) as response:
            assert response.status == 404, path
            assert response.headers["Content-Type"] == "application/problem+json"
            assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert upstream.seen == []


async def test_without_web_every_unknown_path_is_a_404(make_gateway: GatewayFactory, client: aiohttp.ClientSession):
    gw = await make_gateway()
    async with client.get(gw.url + "/") as response:
        assert response.status == 404
