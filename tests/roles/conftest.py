"""The role matrix's system: auth, keys and usage apps in-process, one client routing each request to the
service the gateway's routing table names, every request on the test's rolled-back transaction.

keys and usage verify the very tokens auth mints (their JWKS is auth's keyring), so every caller is a real
member: registered, invited, accepted and switched into the workspace, with the role auth gave them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, ExitStack
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from owr_auth.app import create_app as create_auth_app
from owr_gateway.routing import RouteTable
from owr_gateway.settings import GatewaySettings
from owr_keys.app import create_app as create_keys_app
from owr_usage.app import create_app as create_usage_app
from tests.auth.conftest import make_settings as auth_settings
from tests.keys.conftest import make_settings as keys_settings
from tests.support.apps import bound_to_connection
from tests.support.ports import closed_port
from tests.support.redis import leave_redis_clean
from tests.usage.conftest import make_settings as usage_settings

_leave_redis_clean = pytest.fixture(autouse=True)(leave_redis_clean)
REPORTS = "usage-reports"


@pytest.fixture(scope="session")
def route_table() -> RouteTable:
    """The gateway's own routing table: which service answers which public path."""
    return RouteTable(GatewaySettings(OWR_ENV="test").routes)


@pytest.fixture(scope="session")
async def system(database_url: str, redis_url: str) -> AsyncIterator[dict[str, FastAPI]]:
    """auth (its peers out of reach: a deletion is left for the sweep), and keys and usage trusting it."""
    auth = create_auth_app(
        auth_settings(database_url, redis_url, keys_url=f"http://127.0.0.1:{closed_port()}", usage_url=None)
    )
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(auth.router.lifespan_context(auth))

        async def jwks() -> dict[str, Any]:
            jwks_document: dict[str, Any] = auth.state.keyring.jwks()
            return jwks_document

        keys = create_keys_app(keys_settings(database_url, redis_url), jwks_fetcher=jwks)
        usage = create_usage_app(usage_settings(database_url, redis_url), jwks_fetcher=jwks)
        # Usage's reports choose their own isolation level and pools: they cannot join the test's
        # transaction, so they run on an app of their own (committed; no figures are needed to check roles).
        reports = create_usage_app(usage_settings(database_url, redis_url), jwks_fetcher=jwks)
        for app in (keys, usage, reports):
            await stack.enter_async_context(app.router.lifespan_context(app))
        yield {"auth": auth, "keys": keys, "usage": usage, REPORTS: reports}


class RoutedTransport(httpx.AsyncBaseTransport):
    """Each request to the app the routing table names, as the gateway would send it."""

    def __init__(self, apps: dict[str, FastAPI], routes: RouteTable, connection: AsyncConnection) -> None:
        self._transports = {
            name: httpx.ASGITransport(app=app, raise_app_exceptions=False) for name, app in apps.items()
        }
        self._routes = routes
        self._connection = connection

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        route = self._routes.match(request.url.path)
        if route is None:
            return httpx.Response(404)
        if request.url.path.startswith("/api/v1/usage/"):
            return await self._transports[REPORTS].handle_async_request(request)
        # keys' and usage's requests take the wall's role (SET LOCAL outlives their released savepoint):
        # back to the test's login, which auth's tables need.
        await self._connection.execute(text("SET LOCAL ROLE NONE"))
        return await self._transports[route.upstream].handle_async_request(request)


@pytest.fixture
async def system_client(
    system: dict[str, FastAPI], route_table: RouteTable, db_connection: AsyncConnection, redis_client: Redis
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the three services, every write rolled back with the test."""
    with ExitStack() as stack:
        for name, app in system.items():
            if name != REPORTS:
                stack.enter_context(bound_to_connection(app, db_connection))
        transport = RoutedTransport(system, route_table, db_connection)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


@pytest.fixture
def auth_app(system: dict[str, FastAPI]) -> FastAPI:
    return system["auth"]
