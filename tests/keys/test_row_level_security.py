"""Row-level security as a second wall: a query that forgot its workspace filter still sees only the
caller's workspace; service tokens and commands span; a transaction that declared nothing sees nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from owr_keys.app import create_app
from owr_keys.keys.models import OpenRouterKey
from owr_keys.tables import metadata
from owr_shared.wall import DENY, SPANS, Wall, WalledSession, guard
from tests.keys.conftest import make_settings, store_key
from tests.support.db import savepoint
from tests.support.wall import probe_client, walls_of


@pytest.fixture
async def probe(database_url, redis_url, keyring, db_connection) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, redis_url), jwks_fetcher=keyring.fetch)
    async with probe_client(app, OpenRouterKey, "keys:due", db_connection) as client:
        yield client


@pytest.fixture
async def two_workspaces(client, db_connection, alice, bob) -> None:
    await store_key(client, alice)
    await store_key(client, bob)
    async with savepoint(db_connection) as conn:  # the test's own login: no wall
        stored = select(func.count(func.distinct(OpenRouterKey.workspace_id))).where(
            OpenRouterKey.workspace_id.in_([uuid.UUID(alice.workspace_id), uuid.UUID(bob.workspace_id)])
        )
        assert await conn.scalar(stored) == 2


async def test_an_unfiltered_query_of_a_user_sees_only_their_workspace(probe, two_workspaces, alice, bob):
    assert (await probe.get("/probe/user", headers=alice.headers)).json() == [alice.workspace_id]
    assert (await probe.get("/probe/user", headers=bob.headers)).json() == [bob.workspace_id]


async def test_a_service_token_spans_the_workspaces(probe, two_workspaces, alice, bob, service_headers):
    seen = (await probe.get("/probe/service", headers=service_headers("keys:due"))).json()
    assert {alice.workspace_id, bob.workspace_id} <= set(seen)


async def test_a_transaction_that_declared_nothing_sees_nothing(probe, two_workspaces):
    r = await probe.get("/probe/nobody")
    assert r.status_code == 200, r.text
    assert r.json() == []


def walled_session(db_connection, wall: Wall) -> AsyncSession:
    session = AsyncSession(
        bind=db_connection, join_transaction_mode="create_savepoint", sync_session_class=WalledSession
    )
    guard(session, wall)
    return session


async def test_a_row_cannot_be_moved_into_or_written_for_another_workspace(db_connection, two_workspaces, alice, bob):
    alices, bobs = uuid.UUID(alice.workspace_id), uuid.UUID(bob.workspace_id)
    async with walled_session(db_connection, Wall(workspace_id=alices)) as session:
        touched = await session.execute(
            update(OpenRouterKey).where(OpenRouterKey.workspace_id == bobs).values(name="renamed by alice")
        )
        assert touched.rowcount == 0  # type: ignore[attr-defined]
        with pytest.raises(DBAPIError, match="row-level security"):
            await session.execute(
                update(OpenRouterKey).where(OpenRouterKey.workspace_id == alices).values(workspace_id=bobs)
            )
        await session.rollback()


async def test_a_walled_session_without_a_wall_denies_and_spans_when_told(db_connection, two_workspaces, alice, bob):
    count = select(func.count()).select_from(OpenRouterKey)
    async with walled_session(db_connection, DENY) as session:
        assert await session.scalar(count) == 0
        await session.rollback()
    async with walled_session(db_connection, SPANS) as session:
        assert (await session.scalar(count) or 0) >= 2
        await session.rollback()


async def test_every_workspace_owned_table_is_behind_the_wall(db_connection):
    walls = await walls_of(db_connection, metadata)
    assert walls
    assert all(walls.values()), walls
