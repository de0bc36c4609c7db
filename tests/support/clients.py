"""The `client` and `committed_client` fixtures of the service suites (the isolation rule, tests/README.md).

Registered as a plugin (tests/conftest.py). A suite provides `service_app`: its started app, plus
whatever each test needs reset first (Redis flushed, stubs cleared).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.support import apps


@pytest.fixture
async def client(service_app: FastAPI, db_connection: AsyncConnection) -> AsyncIterator[httpx.AsyncClient]:
    """The default: every write vanishes with the test's transaction."""
    async with apps.rolled_back_client(service_app, db_connection) as c:
        yield c


@pytest.fixture
async def committed_client(service_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """For tests that need several connections: writes are committed, so use fresh tenants or emails."""
    async with apps.committed_client(service_app) as c:
        yield c
