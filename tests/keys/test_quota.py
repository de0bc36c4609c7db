"""The keys-per-workspace cap (`KEYS_MAX_KEYS_PER_WORKSPACE`): a key beyond it is a 409 `too-many-keys`,
and concurrent additions to one workspace never pass it."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from owr_keys.app import create_app
from tests.keys.conftest import make_settings, new_secret, store_key
from tests.support import apps
from tests.support.http import assert_problem
from tests.support.tokens import TestKeyring

CAP = 5


@pytest.fixture(scope="module")
async def capped_app(database_url: str, redis_url: str, keyring: TestKeyring) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(database_url, redis_url, max_keys_per_workspace=CAP), jwks_fetcher=keyring.fetch)
    async with app.router.lifespan_context(app):
        yield app


def test_the_default_cap_is_a_thousand(database_url, redis_url):
    assert make_settings(database_url, redis_url).max_keys_per_workspace == 1000


async def test_a_key_beyond_the_cap_is_a_409_and_deleting_one_makes_room(capped_app, db_connection, alice, bob):
    async with apps.rolled_back_client(capped_app, db_connection) as client:
        stored = [await store_key(client, alice, name=f"k{n}") for n in range(CAP)]
        r = await client.post("/api/v1/keys", headers=alice.headers, json={"name": "one more", "key": new_secret()})
        body = assert_problem(r, 409)
        assert body["type"].endswith("/too-many-keys")
        assert str(CAP) in body["detail"]
        # Inactive keys are stored keys too.
        await client.patch(f"/api/v1/keys/{stored[0]['id']}", headers=alice.headers, json={"is_active": False})
        r = await client.post("/api/v1/keys", headers=alice.headers, json={"name": "x", "key": new_secret()})
        assert r.status_code == 409
        await store_key(client, bob)  # another workspace counts its own keys
        assert (await client.delete(f"/api/v1/keys/{stored[1]['id']}", headers=alice.headers)).status_code == 204
        await store_key(client, alice, name="room again")
        assert (await client.get("/api/v1/keys", headers=alice.headers)).json()["total"] == CAP


async def test_concurrent_additions_never_pass_the_cap(capped_app, tenant_factory, service_headers):
    """Many additions at once, each on its own connection: exactly the cap is stored, the rest are 409."""
    tenant = tenant_factory()
    async with apps.committed_client(capped_app) as client:

        async def add(n: int) -> int:
            r = await client.post("/api/v1/keys", headers=tenant.headers, json={"name": f"k{n}", "key": new_secret()})
            return r.status_code

        statuses = Counter(await asyncio.gather(*(add(n) for n in range(4 * CAP))))
        assert statuses == {201: CAP, 409: 3 * CAP}
        assert (await client.get("/api/v1/keys", headers=tenant.headers)).json()["total"] == CAP
        # Committed rows: gone again, so no later claim test meets these due keys.
        erase = await client.delete(
            f"/internal/workspaces/{tenant.workspace_id}", headers=service_headers("workspaces:delete")
        )
        assert erase.status_code == 204
