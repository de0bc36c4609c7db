"""The gateway passes a service's overload answer through: a real usage service (its own saturated pool,
real PostgreSQL) behind a real gateway answers 503 problem+json with Retry-After, and its 429 as well."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import pytest

from owr_usage.app import create_app
from tests.gateway.conftest import GatewayFactory, SigningKey, Upstream, bearer
from tests.support.apps import served
from tests.usage.conftest import make_settings

SUMMARY = "/api/v1/usage/summary"


@pytest.fixture
async def usage_behind_gateway(database_url, redis_url, upstream: Upstream, make_gateway: GatewayFactory) -> Any:
    """A usage service of one connection (and one overflow) that waits 0.3 s for it, behind a gateway."""

    async def jwks() -> dict[str, Any]:
        return upstream.jwks  # the keys the gateway verifies with: the same tokens pass both

    settings = make_settings(database_url, redis_url, DB_POOL_SIZE=1, db_pool_timeout=0.3)
    app = create_app(settings, jwks_fetcher=jwks)
    async with served(app) as port:
        gateway = await make_gateway(usage_url=f"http://127.0.0.1:{port}")
        yield app, gateway


async def test_a_services_503_reaches_the_client_with_its_retry_after(
    usage_behind_gateway, signing_key: SigningKey, client
):
    app, gateway = usage_behind_gateway
    headers = bearer(signing_key.token())
    async with AsyncExitStack() as held:
        for _ in range(2):
            await held.enter_async_context(app.state.engine.connect())
        async with client.get(gateway.url + SUMMARY, headers=headers) as r:
            status, retry_after, media, body = r.status, r.headers.get("retry-after"), r.content_type, await r.json()
    assert status == 503
    assert retry_after == "5"
    assert media == "application/problem+json"
    assert body["type"].endswith("/overloaded")
    assert body["status"] == 503
    async with client.get(gateway.url + SUMMARY, headers=headers) as r:
        assert r.status == 200  # the pool is free again: served through the same gateway
