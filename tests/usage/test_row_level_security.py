"""Row-level security as a second wall in usage: an unfiltered read sees only the caller's workspace, the
internal API spans, and the export pool's connections stand behind the request's wall too."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from owr_shared.wall import DENY, Wall
from owr_usage.app import create_app
from owr_usage.reports.repository import RowFilter, Sort, stream_rows
from owr_usage.snapshots.models import KeyState
from owr_usage.tables import metadata
from tests.support.wall import probe_client, walls_of
from tests.usage.conftest import days_ago, make_settings, today
from tests.usage.test_reports import key_with_days


@pytest.fixture
async def probe(database_url, redis_url, keyring, db_connection) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, redis_url), jwks_fetcher=keyring.fetch)
    async with probe_client(app, KeyState, "usage:ingest", db_connection) as client:
        yield client


async def test_an_unfiltered_query_sees_only_the_callers_workspace(probe, ingest, alice, bob, service_headers):
    for tenant in (alice, bob):
        await key_with_days(ingest, tenant, "sk-or-v1-rls...001", spends={1: "1"})
    assert (await probe.get("/probe/user", headers=alice.headers)).json() == [alice.workspace_id]
    assert (await probe.get("/probe/user", headers=bob.headers)).json() == [bob.workspace_id]
    assert (await probe.get("/probe/nobody")).json() == []
    spanning = (await probe.get("/probe/service", headers=service_headers("usage:ingest"))).json()
    assert {alice.workspace_id, bob.workspace_id} <= set(spanning)


async def test_the_export_pool_stands_behind_the_requests_wall(usage_app, committed_ingest, tenant_factory):
    """Exports stream on connections of their own, after the request's session closed: a filter naming one
    workspace under another's wall (or none) reads nothing."""
    alice, bob = tenant_factory(), tenant_factory()
    await key_with_days(committed_ingest, alice, "sk-or-v1-rls...002", spends={2: "1", 1: "2"})
    engine = usage_app.state.export_engine
    alices = RowFilter(uuid.UUID(alice.workspace_id), days_ago(3), today())

    async def exported(wall: Wall) -> int:
        rows = 0
        async for batch in stream_rows(engine, wall, alices, Sort("date", descending=False), for_csv=True, batch=100):
            rows += len(batch)
        return rows

    assert await exported(Wall(workspace_id=uuid.UUID(alice.workspace_id))) > 0
    assert await exported(Wall(workspace_id=uuid.UUID(bob.workspace_id))) == 0
    assert await exported(DENY) == 0


async def test_every_workspace_owned_table_is_behind_the_wall(db_connection):
    walls = await walls_of(db_connection, metadata)
    # 13 tables of figures, the tombstones (erased_workspaces), the 10 of budgets, alerts and channels (with the
    # email channels' confirmations), the key anomalies, and the 2 of key actions (key_actions, key_kill_switches).
    assert len(walls) == 27
    assert all(walls.values()), walls
