"""A user's journey through the gateway, against the real processes."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.e2e.conftest import System, second_gateway

pytestmark = pytest.mark.e2e

PASSWORD = "a long and unusual passphrase 7"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def test_register_login_me_refresh_reuse_logout(system: System):
    email = f"Journey.{secrets.token_hex(4)}@Example.COM"
    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:
        r = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        user = r.json()
        assert user["email"] == email.lower()
        assert user["workspace"]["role"] == "owner"

        r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        first = r.json()
        assert first["token_type"] == "bearer"
        assert 0 < first["expires_in"] <= 900
        assert r.headers["x-request-id"]
        assert "ratelimit-policy" in r.headers

        r = await client.get("/api/v1/auth/me", headers={"authorization": f"Bearer {first['access_token']}"})
        assert r.status_code == 200, r.text
        assert r.json()["id"] == user["id"]
        assert r.json()["workspace"]["id"] == user["workspace"]["id"]

        r = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert r.status_code == 200, r.text
        second = r.json()
        assert second["refresh_token"] != first["refresh_token"]
        r = await client.get("/api/v1/auth/me", headers={"authorization": f"Bearer {second['access_token']}"})
        assert r.status_code == 200

        # Reusing the rotated token is theft: the whole family is revoked, the newest token included.
        problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}), 401)
        problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}), 401)

        # A new login starts a new family; logout revokes it.
        third = (await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
        r = await client.post("/api/v1/auth/logout", json={"refresh_token": third["refresh_token"]})
        assert r.status_code == 204
        problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]}), 401)

    logs = system.logs()
    for secret in (PASSWORD, first["access_token"], first["refresh_token"], third["refresh_token"]):
        assert secret not in logs


async def test_request_id_and_trace_reach_the_service_logs(system: System):
    trace_id = secrets.token_hex(16)
    request_id = f"e2e-{secrets.token_hex(6)}"
    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:
        r = await client.get(
            "/.well-known/jwks.json",
            headers={"x-request-id": request_id, "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
        )
    assert r.status_code == 200
    assert r.headers["x-request-id"] == request_id
    assert r.json()["keys"][0]["alg"] == "EdDSA"
    # The gateway writes its line after the response has gone out: give it a moment.
    for _ in range(50):
        logs = [line for line in system.logs().splitlines() if request_id in line]
        services = {s for s in ("gateway", "auth") for line in logs if f'"service":"{s}"' in line}
        if services == {"gateway", "auth"}:
            break
        await asyncio.sleep(0.1)
    assert services == {"gateway", "auth"}
    assert all(trace_id in line for line in logs)


async def test_protected_routes_and_internal_paths(system: System):
    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:
        problem(await client.get("/api/v1/auth/me"), 401)
        problem(await client.get("/api/v1/auth/me", headers={"authorization": "Bearer owrr_not-an-access-token"}), 401)
        problem(await client.get("/internal/keys/due"), 404)
        # Paths outside /api/ are web's pages (GATEWAY_WEB_URL); an unknown API path is the gateway's own 404.
        problem(await client.get("/api/v1/nothing/here"), 404)
    async with httpx.AsyncClient(base_url=system.gateway_admin, timeout=10) as admin:
        metrics = (await admin.get("/metrics")).text
    assert "owr_http_requests_total" in metrics
    assert 'service="gateway"' in metrics


async def test_login_rate_limit_is_shared_by_two_gateways(system: System):
    """Ten login attempts per minute per IP, counted across both gateway processes."""
    other, other_url = second_gateway(system)
    try:
        body = {"email": f"nobody.{secrets.token_hex(4)}@example.com", "password": "x" * 12}
        statuses = []
        async with httpx.AsyncClient(timeout=10) as client:
            for i in range(12):
                base = system.gateway if i % 2 == 0 else other_url
                r = await client.post(f"{base}/api/v1/auth/register", json=body | {"email": f"{i}{body['email']}"})
                statuses.append(r.status_code)
                last = r
        assert statuses.count(429) >= 2, statuses
        assert last.status_code == 429
        refusal = problem(last, 429)
        assert int(last.headers["retry-after"]) >= 1
        assert last.headers["x-ratelimit-remaining"] == "0"
        assert last.headers["x-ratelimit-limit"] == "10"
        assert "login" in last.headers["ratelimit-policy"]
        assert refusal["request_id"] == last.headers["x-request-id"]
    finally:
        other.stop()
        # Give the next tests a fresh login window instead of this test's exhausted one.
        redis = Redis.from_url(system.env["REDIS_URL"])
        async for key in redis.scan_iter("owr:rl:login:*"):
            await redis.delete(key)
        await redis.aclose()


async def test_every_process_is_live_ready_and_scraped(system: System):
    ports = system.ports
    async with httpx.AsyncClient(timeout=10) as client:
        admins = (ports.auth_admin, ports.keys_admin, ports.usage_admin, ports.web_admin)
        for port in (ports.auth, ports.keys, ports.usage, *admins, ports.worker, ports.gateway_admin, ports.gateway):
            assert (await client.get(f"http://127.0.0.1:{port}/health/live")).status_code == 200
            ready = await client.get(f"http://127.0.0.1:{port}/health/ready")
            # The gateway's readiness (a Redis ping and an auth call) is on its admin port only.
            assert ready.status_code == (404 if port == ports.gateway else 200), (port, ready.text)
        for port in admins:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            assert "owr_http_requests_total" in text
        for port in (ports.auth, ports.keys, ports.usage):  # the API ports serve no metrics (finding 13)
            assert (await client.get(f"http://127.0.0.1:{port}/metrics")).status_code == 404
        worker = (await client.get(f"http://127.0.0.1:{ports.worker}/metrics")).text
        # The cron heartbeat runs at start-up, so its outcome is already counted.
        assert re.search(r'owr_jobs_total\{job="record_heartbeat",outcome="done"\} [1-9]', worker)
        assert "owr_queue_depth" in worker
        # Metrics are for the admin port only.
        assert (await client.get(f"http://127.0.0.1:{ports.gateway}/metrics")).status_code == 404
