"""Account deletion against late writers, on the real processes (finding 17 of the hardening issue).

The account's sessions end before any service erases; keys and usage tombstone the workspace, so a sync
that was in flight and reports afterwards stores nothing; auth's sweep (the worker's hourly cron calls it
with the worker's client credentials) erases rows a service holds for a workspace auth does not know.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx

from owr_shared.wire import codec
from tests.e2e.conftest import System
from tests.e2e.test_journey import problem
from tests.e2e.test_keys_journey import openrouter_key, signed_in, worker_token
from tests.usage.conftest import at, days_ago, item, snapshot


async def ingest(system: System, usage: dict[str, str], *items: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{system.ports.usage}", timeout=10) as client:
        r = await client.post(
            "/internal/snapshots",
            content=codec.dumps({"items": list(items)}),
            headers={**usage, "content-type": "application/json"},
        )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def sweep(system: System) -> httpx.Response:
    credentials = f"{system.env['WORKER_SERVICE_CLIENT_ID']}:{system.env['WORKER_SERVICE_CLIENT_SECRET']}"
    basic = {"authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
    async with httpx.AsyncClient(base_url=system.auth, timeout=60) as client:
        return await client.post("/internal/workspaces/sweep", headers=basic)


async def test_a_sync_that_outlives_the_account_stores_nothing(system: System) -> None:
    usage = await worker_token(system, scope="usage:ingest", audience="owr-usage")
    async with httpx.AsyncClient(base_url=system.gateway, timeout=10) as client:
        user = await signed_in(client)
        workspace_id = (await client.get("/api/v1/auth/me", headers=user)).json()["workspace"]["id"]
        key = (await client.post("/api/v1/keys", headers=user, json={"name": "k", "key": openrouter_key()})).json()
        first = item(key["id"], workspace_id, at(days_ago(1)), snapshot("1", "1"))
        assert (await ingest(system, usage, first))["stored"] == 1

        assert (await client.delete("/api/v1/auth/me", headers=user)).status_code == 204
        # The token died with the account, before any service erased.
        problem(await client.get("/api/v1/keys", headers=user), 401)

    # The sync that revealed the key before the deletion reports now: usage keeps nothing of it.
    late = item(key["id"], workspace_id, at(days_ago(0), 0, 0, 1), snapshot("2", "1"))
    assert await ingest(system, usage, late) == {"stored": 0, "duplicates": 0, "erased": 1}


async def test_the_sweep_erases_what_a_service_holds_for_an_unknown_workspace(system: System) -> None:
    usage = await worker_token(system, scope="usage:ingest", audience="owr-usage")
    orphan = str(uuid.uuid4())
    key_id = str(uuid.uuid4())
    assert (await ingest(system, usage, item(key_id, orphan, at(days_ago(1)), snapshot("1", "1"))))["stored"] == 1

    r = await sweep(system)
    assert r.status_code == 200, r.text
    assert r.json()["orphans_erased"] >= 1
    # Erased and tombstoned: the next report for it is dropped.
    again = item(key_id, orphan, at(days_ago(0), 0, 0, 1), snapshot("2", "1"))
    assert (await ingest(system, usage, again))["erased"] == 1

    # Idempotent, and only for a client holding `workspaces:sweep`.
    assert (await sweep(system)).status_code == 200
    async with httpx.AsyncClient(base_url=system.auth, timeout=10) as client:
        problem(await client.post("/internal/workspaces/sweep"), 401)
