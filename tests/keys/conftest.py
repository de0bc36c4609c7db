"""Keys test scaffolding: the real app on the session's migrated database and Redis.

Tokens are minted with the shared test keyring (`tests/support/tokens.py`), whose JWKS the app gets
through `jwks_fetcher`; tenants (`alice`, `bob`, `tenant_factory`) and `service_headers` come from
`tests/support/tenants.py`. `client` rolls back with the test, `committed_client` commits (the isolation
rule of tests/README.md); both call `service_app`.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from owr_keys.app import create_app
from owr_keys.settings import KeysSettings
from tests.support.redis import leave_redis_clean
from tests.support.settings import service_settings
from tests.support.tenants import Tenant
from tests.support.tokens import TestKeyring

ALL_SCOPES = ("keys:due", "keys:reveal", "keys:status", "workspaces:delete")
# The session's database and Redis are shared with the end-to-end suite, whose keys and worker processes
# keep running: its rows are sealed under its own KEKs, and its worker consumes the default queue. So
# these tests use KEK version names and a queue of their own.
OLD_VERSION, NEW_VERSION = "tests-old", "tests-new"
KEK_OLD = base64.b64encode(os.urandom(32)).decode()
KEK_NEW = base64.b64encode(os.urandom(32)).decode()
FINGERPRINT_KEY = base64.b64encode(os.urandom(32)).decode()
QUEUE = f"arq:queue:keys-tests-{secrets.token_hex(4)}"


def keks_json(versions: dict[str, str]) -> str:
    return json.dumps(versions)


BOTH_KEKS = {OLD_VERSION: KEK_OLD, NEW_VERSION: KEK_NEW}


def new_secret() -> str:
    """A key shaped like a real one: `sk-or-v1-` + 64 hex."""
    return "sk-or-v1-" + secrets.token_hex(32)


def make_settings(database_url: str, redis_url: str, **overrides: Any) -> KeysSettings:
    return service_settings(
        KeysSettings,
        database_url,
        redis_url,
        {
            "keks": keks_json(BOTH_KEKS),
            "active_kek_version": OLD_VERSION,
            "queue_name": QUEUE,
            "fingerprint_key": FINGERPRINT_KEY,
            "DB_POOL_SIZE": 5,
        },
        overrides,
    )


@pytest.fixture(scope="session")
def keyring() -> TestKeyring:
    return TestKeyring(service_audience="owr-keys", default_scopes=ALL_SCOPES)


@pytest.fixture
def settings_factory(database_url: str, redis_url: str) -> Callable[..., KeysSettings]:
    return lambda **overrides: make_settings(database_url, redis_url, **overrides)


@pytest.fixture(scope="session")
async def keys_app(database_url: str, redis_url: str, keyring: TestKeyring) -> AsyncIterator[FastAPI]:
    """One app for most tests (its lifespan runs once)."""
    app = create_app(make_settings(database_url, redis_url), jwks_fetcher=keyring.fetch)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
def service_app(keys_app: FastAPI, redis_client: Redis) -> FastAPI:
    """What `client` (rolled back) and `committed_client` call: the shared app, Redis flushed."""
    return keys_app


# Queued jobs stay in this test: a later suite's worker must not meet them.
_leave_redis_clean = pytest.fixture(autouse=True)(leave_redis_clean)


# --- helpers ---------------------------------------------------------------------------------------


async def store_key(
    client: httpx.AsyncClient, tenant: Tenant, secret: str | None = None, name: str = "my key"
) -> dict[str, Any]:
    r = await client.post("/api/v1/keys", headers=tenant.headers, json={"name": name, "key": secret or new_secret()})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body
