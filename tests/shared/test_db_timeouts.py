"""Every service's database bounds (owr_shared.db, owr_shared.overload) against real PostgreSQL: a request
that finds no free connection in `db_pool_timeout`, or whose statement outlives `db_statement_timeout`, is
a fast 503 problem with Retry-After and is counted; any other database error stays a 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY
from pydantic_settings import SettingsConfigDict
from sqlalchemy import text

from owr_auth.settings import AuthSettings
from owr_keys.settings import KeysSettings
from owr_shared.app import create_service_app
from owr_shared.db import DbSession
from owr_shared.settings import BaseServiceSettings
from owr_usage.settings import UsageSettings
from tests.support.apps import running
from tests.support.http import assert_problem


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="T_", extra="ignore", frozen=True)


router = APIRouter()


@router.get("/setting/{name}")
async def show(name: str, session: DbSession) -> dict[str, Any]:
    value = await session.scalar(text("SELECT current_setting(:name)"), {"name": name})
    return {"value": value}


@router.get("/sleep")
async def sleep(session: DbSession) -> dict[str, Any]:
    await session.execute(text("SELECT pg_sleep(5)"))
    return {}


@router.get("/divide")
async def divide(session: DbSession) -> dict[str, Any]:
    await session.execute(text("SELECT 1 / 0"))
    return {}


@router.get("/locks/{first}/{second}")
async def locks(first: int, second: int, session: DbSession) -> dict[str, Any]:
    """Two locks in the order given, a moment apart: two requests in opposite orders deadlock."""
    await session.execute(text("SELECT pg_advisory_xact_lock(777000 + :n)"), {"n": first})
    await session.execute(text("SELECT pg_sleep(0.3)"))
    await session.execute(text("SELECT pg_advisory_xact_lock(777000 + :n)"), {"n": second})
    return {}


def shed(reason: str) -> float:
    return REGISTRY.get_sample_value("owr_requests_shed_total", {"service": "demo", "reason": reason}) or 0.0


@asynccontextmanager
async def demo(database_url: str, redis_url: str, **settings: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    values = {"OWR_ENV": "test", "DATABASE_URL": database_url, "REDIS_URL": redis_url, **settings}
    app = create_service_app(service="demo", settings=Settings(**values), routers=[router], title="demo")
    async with running(app) as client:
        yield app, client


async def test_the_server_side_timeouts_are_set_on_every_connection(database_url, redis_url):
    async with demo(database_url, redis_url, db_statement_timeout=1.5, db_idle_in_transaction_timeout=20) as (_, c):
        statement = await c.get("/setting/statement_timeout")
        idle = await c.get("/setting/idle_in_transaction_session_timeout")
    assert statement.json() == {"value": "1500ms"}
    assert idle.json() == {"value": "20s"}


async def test_a_statement_timeout_is_a_503_problem_with_retry_after(database_url, redis_url):
    before = shed("statement_timeout")
    async with demo(database_url, redis_url, db_statement_timeout=0.2) as (_, client):
        r = await client.get("/sleep")
        # The connection went back to the pool in a usable state: the next request is served.
        after = await client.get("/setting/statement_timeout")
    body = assert_problem(r, 503)
    assert body["type"].endswith("/query-timeout")
    assert r.headers["retry-after"] == "5"
    assert "pg_sleep" not in r.text
    assert after.status_code == 200
    assert shed("statement_timeout") == before + 1


async def test_a_saturated_pool_is_a_fast_503_problem_not_a_hang(database_url, redis_url):
    before = shed("pool_timeout")
    async with demo(database_url, redis_url, DB_POOL_SIZE=1, db_pool_timeout=0.3) as (app, client):
        async with AsyncExitStack() as held:
            for _ in range(2):  # the pool and its overflow
                await held.enter_async_context(app.state.engine.connect())
            # Far below the 30 s that used to end in a 500: a hang fails the test here.
            r = await asyncio.wait_for(client.get("/setting/statement_timeout"), timeout=10)
        served = await client.get("/setting/statement_timeout")
    body = assert_problem(r, 503)
    assert body["type"].endswith("/overloaded")
    assert r.headers["retry-after"] == "5"
    assert served.status_code == 200
    assert shed("pool_timeout") == before + 1


async def test_a_deadlock_is_a_503_problem_with_retry_after_and_the_other_side_is_served(database_url, redis_url):
    before = shed("contention")
    async with demo(database_url, redis_url) as (_, client):
        one, other = await asyncio.gather(client.get("/locks/1/2"), client.get("/locks/2/1"))
    statuses = sorted([one.status_code, other.status_code])
    assert statuses == [200, 503]
    refused = one if one.status_code == 503 else other
    body = assert_problem(refused, 503)
    assert body["type"].endswith("/overloaded")
    assert refused.headers["retry-after"] == "1"
    assert "advisory" not in refused.text
    assert shed("contention") == before + 1


async def test_other_database_errors_stay_500(database_url, redis_url):
    async with demo(database_url, redis_url) as (_, client):
        r = await client.get("/divide")
    body = assert_problem(r, 500)
    assert body["type"].endswith("/internal-error")
    assert "retry-after" not in r.headers


@pytest.mark.parametrize(
    ("cls", "prefix"), [(AuthSettings, "AUTH_"), (KeysSettings, "KEYS_"), (UsageSettings, "USAGE_")]
)
def test_every_service_reads_its_own_bounds(monkeypatch, cls, prefix):
    monkeypatch.setenv(f"{prefix}DB_POOL_TIMEOUT", "1.5")
    monkeypatch.setenv(f"{prefix}DB_STATEMENT_TIMEOUT", "7")
    monkeypatch.setenv(f"{prefix}DB_IDLE_IN_TRANSACTION_TIMEOUT", "45")
    settings = cls(OWR_ENV="test")
    assert (settings.db_pool_timeout, settings.db_statement_timeout, settings.db_idle_in_transaction_timeout) == (
        1.5,
        7,
        45,
    )


def test_the_defaults_are_short_bounds():
    auth, usage = AuthSettings(OWR_ENV="test"), UsageSettings(OWR_ENV="test")
    assert auth.db_pool_timeout <= 2
    assert usage.db_pool_timeout <= 2
    assert 0 < auth.db_statement_timeout < usage.db_statement_timeout  # usage's reports are the long ones
    assert auth.db_idle_in_transaction_timeout > 0
