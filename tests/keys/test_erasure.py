"""A workspace's erasure against writes that race it (finding 17 of the hardening issue).

The erasure tombstones the workspace under its erasure lock; every writer shares that lock until it
commits and refuses an erased workspace. So a write that began first is waited for and erased with the
rest, and a write that comes after finds the tombstone. The race itself runs on two real connections.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from owr_keys.audit.models import AuditEvent
from owr_keys.erasure import service as erasure
from owr_keys.erasure.models import ErasedWorkspace
from owr_shared.db import create_sessionmaker, transaction
from tests.keys.conftest import new_secret, store_key
from tests.support.http import assert_problem


async def test_an_erased_workspace_stores_no_new_key(client, alice, bob, service_headers):
    await store_key(client, alice)
    r = await client.delete(f"/internal/workspaces/{alice.workspace_id}", headers=service_headers("workspaces:delete"))
    assert r.status_code == 204
    # A token that outlived the account (or a request in flight) finds the tombstone.
    r = await client.post("/api/v1/keys", headers=alice.headers, json={"name": "late", "key": new_secret()})
    assert assert_problem(r, 410)["type"].endswith("/workspace-erased")
    assert (await client.get("/api/v1/keys", headers=alice.headers)).json()["total"] == 0
    # Another workspace is untouched.
    await store_key(client, bob)


async def _audit_rows(engine: AsyncEngine, workspace_id: uuid.UUID) -> int:
    async with transaction(create_sessionmaker(engine)) as session:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.workspace_id == workspace_id)
        return int(await session.scalar(query) or 0)


async def test_the_erasure_waits_for_a_write_already_under_way_and_erases_it(db_engine: AsyncEngine):
    sessions = create_sessionmaker(db_engine)
    workspace_id = uuid.uuid4()
    writer_may_commit = asyncio.Event()

    async def writer() -> None:
        async with transaction(sessions) as session:
            assert await erasure.erased_among(session, [workspace_id]) == set()
            session.add(
                AuditEvent(
                    key_id=uuid.uuid4(),
                    workspace_id=workspace_id,
                    actor_type="service",
                    actor_id="w",
                    action="revealed",
                )
            )
            await session.flush()
            await writer_may_commit.wait()

    async def erase() -> None:
        async with transaction(sessions) as session:
            await erasure.erase(session, workspace_id=workspace_id)

    writing = asyncio.create_task(writer())
    await asyncio.sleep(0.2)
    erasing = asyncio.create_task(erase())
    await asyncio.sleep(0.5)
    assert not erasing.done(), "the erasure must wait for the write that holds the workspace"
    writer_may_commit.set()
    await asyncio.wait_for(asyncio.gather(writing, erasing), timeout=10)

    assert await _audit_rows(db_engine, workspace_id) == 0
    async with transaction(sessions) as session:
        assert await session.get(ErasedWorkspace, workspace_id) is not None
        # A writer that comes after the erasure finds the tombstone.
        assert await erasure.erased_among(session, [workspace_id]) == {workspace_id}


@pytest.mark.parametrize("pages", [1, 3])
async def test_the_workspaces_holding_keys_are_listed_in_pages(client, tenant_factory, service_headers, pages):
    tenants = [tenant_factory() for _ in range(3)]
    for tenant in tenants:
        await store_key(client, tenant)
    mine = sorted(tenant.workspace_id for tenant in tenants)
    limit = 3 // pages
    seen: list[str] = []
    after = None
    headers = service_headers("workspaces:delete")
    while True:
        params = {"limit": limit} | ({"after": after} if after else {})
        r = await client.get("/internal/workspaces", headers=headers, params=params)
        assert r.status_code == 200, r.text
        seen += [w for w in r.json()["items"] if w in mine]
        after = r.json()["next_after"]
        if after is None:
            break
    assert seen == mine
    assert_problem(await client.get("/internal/workspaces", headers=service_headers("keys:due")), 403)
    assert_problem(await client.get("/internal/workspaces", headers=headers, params={"limit": 0}), 422)
