"""Under load (issue 12), against real PostgreSQL: no request deadlocks the pool, a full pool or a slow
statement is a fast 503, and one workspace cannot take the expensive reads' whole capacity.

Each test runs its own app (its own pools and limits) with a committed client: the requests must run
at once on separate connections (the isolation rule of tests/README.md), so tenants are fresh."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from owr_usage.app import create_app
from tests.support.apps import running
from tests.support.http import assert_problem
from tests.support.tenants import ServiceHeaders, Tenant, TenantFactory
from tests.support.tokens import TestKeyring
from tests.usage.conftest import Ingest, make_settings
from tests.usage.test_reports import key_with_days, span

SUMMARY = "/api/v1/usage/summary"
EXPORT = "/api/v1/usage/export"
PRICES = "/api/v1/insights/prices"
RECONCILIATION = "/api/v1/insights/reconciliation"
# The tables the summary and the export read first: a test holding them makes those reads wait.
REPORT_TABLES = "usage.daily_model_totals, usage.daily_usage"


@asynccontextmanager
async def usage_app(
    database_url: str, redis_url: str, keyring: TestKeyring, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, redis_url, **overrides), jwks_fetcher=keyring.fetch)
    async with running(app) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def tenants_with_spend(
    client: httpx.AsyncClient, service_headers: ServiceHeaders, tenant_factory: TenantFactory, n: int
) -> list[Tenant]:
    ingest = Ingest(client, service_headers("usage:ingest"))
    tenants = [tenant_factory() for _ in range(n)]
    for tenant in tenants:
        await key_with_days(ingest, tenant, "sk-or-v1-aaa...001", spends={3: "1.25", 2: "0.5", 1: "2"})
    return tenants


def shed(reason: str) -> float:
    return REGISTRY.get_sample_value("owr_requests_shed_total", {"service": "usage", "reason": reason}) or 0.0


@asynccontextmanager
async def reports_locked(db_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """Hold the report tables exclusively (on a committed connection of the test) until the block ends."""
    async with db_engine.connect() as conn:
        await conn.execute(text(f"LOCK TABLE {REPORT_TABLES} IN ACCESS EXCLUSIVE MODE"))
        try:
            yield conn
        finally:
            await conn.rollback()


async def until_waiting(conn: AsyncConnection, n: int) -> None:
    """Until `n` backends of this database wait for a lock (the requests are inside their reads)."""
    deadline = time.monotonic() + 20
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while (await conn.scalar(query) or 0) < n:
        await conn.execute(text("SELECT pg_stat_clear_snapshot()"))  # the view is cached per transaction
        assert time.monotonic() < deadline, f"fewer than {n} requests reached the database"
        await asyncio.sleep(0.05)


async def test_summaries_at_four_times_the_pool_all_complete(
    database_url, redis_url, keyring, service_headers, tenant_factory
):
    # A pool of 2 + 2 overflow: 16 summaries at once, 4 workspaces of 4 (their per-workspace share). A summary
    # that held one connection and waited for a second deadlocked such a pool from 4 requests on.
    async with usage_app(database_url, redis_url, keyring, DB_POOL_SIZE=2) as client:
        tenants = await tenants_with_spend(client, service_headers, tenant_factory, 4)
        calls = [client.get(SUMMARY, headers=t.headers, params=span(5)) for t in tenants for _ in range(4)]
        answers = await asyncio.gather(*calls)
    assert [r.status_code for r in answers] == [200] * 16
    assert {r.json()["totals"]["cost"] for r in answers} == {4.25}  # 1.25 + 0.5 + 2 + today's 0.5


async def test_concurrent_exports_all_complete_within_the_export_cap(
    database_url, redis_url, keyring, service_headers, tenant_factory
):
    # 12 exports at once on an export pool of 2: beyond the cap they wait for a slot, none is refused.
    async with usage_app(database_url, redis_url, keyring, DB_POOL_SIZE=2, export_concurrency=2) as client:
        tenants = await tenants_with_spend(client, service_headers, tenant_factory, 6)
        calls = [
            client.get(EXPORT, headers=t.headers, params={**span(5), "format": fmt})
            for t in tenants
            for fmt in ("csv", "json")
        ]
        answers = await asyncio.gather(*calls)
    assert [r.status_code for r in answers] == [200] * 12
    for r in answers:
        if r.headers["content-type"].startswith("text/csv"):
            assert len(r.text.strip().splitlines()) == 1 + 4  # the header and the key's four days
        else:
            assert len(r.json()) == 4


async def test_a_saturated_pool_answers_503_at_once(database_url, redis_url, keyring, tenant_factory):
    before = shed("pool_timeout")
    async with usage_app(database_url, redis_url, keyring, DB_POOL_SIZE=1, db_pool_timeout=0.3) as client:
        alice = tenant_factory()
        async with AsyncExitStack() as held:
            for _ in range(2):  # the request pool and its overflow
                await held.enter_async_context(client.app.state.engine.connect())  # type: ignore[attr-defined]
            # Never the 30 s queue that ended in a 500: a hang fails the test here.
            r = await asyncio.wait_for(client.get(SUMMARY, headers=alice.headers), timeout=10)
        after = await client.get(SUMMARY, headers=alice.headers)
    body = assert_problem(r, 503)
    assert body["type"].endswith("/overloaded")
    assert r.headers["retry-after"] == "5"
    assert after.status_code == 200
    assert shed("pool_timeout") == before + 1


async def test_a_full_export_pool_answers_503_once_its_wait_is_over(
    database_url, redis_url, keyring, tenant_factory, db_engine
):
    before = shed("slots")
    settings = {"export_concurrency": 1, "export_concurrency_per_workspace": 1, "db_pool_timeout": 0.3}
    async with usage_app(database_url, redis_url, keyring, **settings) as client:
        alice, bob = tenant_factory(), tenant_factory()
        async with reports_locked(db_engine) as lock:
            first = asyncio.create_task(client.get(EXPORT, headers=alice.headers))
            await until_waiting(lock, 1)
            refused = await asyncio.wait_for(client.get(EXPORT, headers=bob.headers), timeout=10)
        assert (await first).status_code == 200
    body = assert_problem(refused, 503)
    assert body["type"].endswith("/overloaded")
    assert refused.headers["retry-after"] == "5"
    assert shed("slots") == before + 1


async def test_a_statement_timeout_answers_503(database_url, redis_url, keyring, tenant_factory, db_engine):
    before = shed("statement_timeout")
    async with usage_app(database_url, redis_url, keyring, db_statement_timeout=0.3) as client:
        alice = tenant_factory()
        async with reports_locked(db_engine):
            summary = await asyncio.wait_for(client.get(SUMMARY, headers=alice.headers), timeout=10)
            export = await asyncio.wait_for(client.get(EXPORT, headers=alice.headers), timeout=10)
    for r in (summary, export):
        body = assert_problem(r, 503)  # the export's first batch is read before its headers are sent
        assert body["type"].endswith("/query-timeout")
        assert r.headers["retry-after"] == "5"
    assert shed("statement_timeout") == before + 2


async def test_a_workspace_over_its_share_is_refused_while_another_is_served(
    database_url, redis_url, keyring, tenant_factory, db_engine
):
    before = shed("caller_limit")
    settings = {"summary_concurrency_per_workspace": 2, "export_concurrency_per_workspace": 1}
    async with usage_app(database_url, redis_url, keyring, **settings) as client:
        alice, bob = tenant_factory(), tenant_factory()
        async with reports_locked(db_engine) as lock:
            running = [asyncio.create_task(client.get(SUMMARY, headers=alice.headers)) for _ in range(2)]
            running.append(asyncio.create_task(client.get(EXPORT, headers=alice.headers)))
            await until_waiting(lock, 3)
            over = [
                await asyncio.wait_for(client.get(path, headers=alice.headers), timeout=10)
                for path in (SUMMARY, EXPORT)
            ]
            # Bob's reads are admitted while Alice is over her share: they wait on the same lock.
            bobs = [asyncio.create_task(client.get(path, headers=bob.headers)) for path in (SUMMARY, EXPORT)]
            await until_waiting(lock, 5)
        served = await asyncio.gather(*running, *bobs)
    for r in over:
        body = assert_problem(r, 429)
        assert body["type"].endswith("/concurrency-limited")
        assert r.headers["retry-after"] == "1"
    assert [r.status_code for r in served] == [200] * 5
    assert shed("caller_limit") == before + 2


async def test_prices_and_reconciliation_share_the_summaries_limit(
    database_url, redis_url, keyring, tenant_factory, db_engine
):
    """`/insights/prices` and `/insights/reconciliation` count in the workspace's share of expensive reads with
    the summary: over it, each is a fast 429 with Retry-After while another workspace is still served."""
    before = shed("caller_limit")
    async with usage_app(database_url, redis_url, keyring, summary_concurrency_per_workspace=2) as client:
        alice, bob = tenant_factory(), tenant_factory()
        async with reports_locked(db_engine) as lock:
            running = [asyncio.create_task(client.get(path, headers=alice.headers)) for path in (SUMMARY, PRICES)]
            await until_waiting(lock, 2)
            over = [
                await asyncio.wait_for(client.get(path, headers=alice.headers), timeout=10)
                for path in (PRICES, RECONCILIATION, SUMMARY)
            ]
            bobs = asyncio.create_task(client.get(PRICES, headers=bob.headers))
            await until_waiting(lock, 3)
        served = await asyncio.gather(*running, bobs)
    for r in over:
        body = assert_problem(r, 429)
        assert body["type"].endswith("/concurrency-limited")
        assert r.headers["retry-after"] == "1"
    assert [r.status_code for r in served] == [200] * 3
    assert shed("caller_limit") == before + 3
    # The share is given back: a later reconciliation read is served.
    async with usage_app(database_url, redis_url, keyring, summary_concurrency_per_workspace=1) as client:
        assert (await client.get(RECONCILIATION, headers=alice.headers)).status_code == 200
