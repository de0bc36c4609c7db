"""Usage test scaffolding: the real app on the session's migrated database.

Tokens come from the shared test keyring (`tests/support/tokens.py`) with usage's audience; tenants
and `service_headers` from `tests/support/tenants.py`. `client` and `ingest` roll back with the test;
`committed_client` and `committed_ingest` commit, for the reads that run on the app's own pool (summary,
export) and for concurrency (the isolation rule of tests/README.md).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import orjson
import pytest
from fastapi import FastAPI

from owr_usage.app import create_app
from owr_usage.settings import UsageSettings
from tests.support.settings import service_settings
from tests.support.tenants import ServiceHeaders, Tenant
from tests.support.tokens import TestKeyring
from tests.usage.channels_kit import MovableClock, quiet_outbox

T = TypeVar("T")
ALL_SCOPES = ("usage:ingest", "usage:cleanup", "alerts:deliver", "workspaces:delete")


def make_settings(database_url: str, redis_url: str, **overrides: Any) -> UsageSettings:
    return service_settings(
        UsageSettings,
        database_url,
        redis_url,
        {"DB_POOL_SIZE": 5},
        overrides,
    )


@pytest.fixture(scope="session")
def keyring() -> TestKeyring:
    return TestKeyring(service_audience="owr-usage", default_scopes=ALL_SCOPES)


@pytest.fixture(scope="session")
async def usage_app(database_url: str, redis_url: str, keyring: TestKeyring) -> AsyncIterator[FastAPI]:
    """One app for most tests (its lifespan runs once)."""
    app = create_app(make_settings(database_url, redis_url), jwks_fetcher=keyring.fetch)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
def service_app(usage_app: FastAPI) -> FastAPI:
    """What `client` (rolled back) and `committed_client` call."""
    return usage_app


@pytest.fixture
def clock(usage_app: FastAPI) -> Iterator[MovableClock]:
    """The usage app's clock (deliveries, rotations, audit), a second from now until the test moves it; restored
    after. Ahead because the outbox's deliveries are due at the database's transaction start, which in a
    rolled-back test is the first statement's time, possibly just after this fixture ran."""
    with replaced_state(usage_app, "clock", MovableClock(datetime.now(UTC) + timedelta(seconds=1))) as movable:
        yield movable


@contextmanager
def replaced_state(app: FastAPI, name: str, value: T) -> Iterator[T]:
    """`app.state.<name>` is `value` inside (pytest's monkeypatch cannot restore a Starlette State's attribute)."""
    saved = getattr(app.state, name)
    setattr(app.state, name, value)
    try:
        yield value
    finally:
        setattr(app.state, name, saved)


@pytest.fixture
def ingest(client: httpx.AsyncClient, service_headers: ServiceHeaders) -> Ingest:
    return Ingest(client, service_headers("usage:ingest"))


@pytest.fixture
def committed_ingest(committed_client: httpx.AsyncClient, service_headers: ServiceHeaders) -> Ingest:
    return Ingest(committed_client, service_headers("usage:ingest"))


# --- helpers ---------------------------------------------------------------------------------------


def today() -> date:
    return datetime.now(UTC).date()


def at(day: date, hour: int = 12, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    """A UTC time on `day`."""
    return datetime.combine(day, time(hour, minute, second, micro), tzinfo=UTC)


def days_ago(n: int) -> date:
    return today() - timedelta(days=n)


def window(first: date, last: date | None = None) -> dict[str, Any]:
    """Query parameters of a read from `first` (to `last` when given); `from` is a keyword in Python."""
    params: dict[str, Any] = {"from": first.isoformat()}
    if last is not None:
        params["to"] = last.isoformat()
    return params


def snapshot(
    usage: str | Decimal,
    usage_daily: str | Decimal,
    *,
    byok_usage: str | Decimal = "0",
    byok_usage_daily: str | Decimal = "0",
    **fields: Any,
) -> dict[str, Any]:
    """A `GET /key` body as the worker forwards it (money as exact decimals)."""
    body: dict[str, Any] = {
        "label": "sk-or-v1-0e6...c96",
        "is_management_key": False,
        "limit": Decimal("100"),
        "limit_reset": "monthly",
        "limit_remaining": Decimal("74.5"),
        "include_byok_in_limit": False,
        "usage": Decimal(usage),
        "usage_daily": Decimal(usage_daily),
        "usage_weekly": Decimal(usage_daily),
        "usage_monthly": Decimal(usage_daily),
        "byok_usage": Decimal(byok_usage),
        "byok_usage_daily": Decimal(byok_usage_daily),
        "byok_usage_weekly": Decimal(byok_usage_daily),
        "byok_usage_monthly": Decimal(byok_usage_daily),
        "is_free_tier": False,
        "expires_at": None,
    }
    body.update(fields)
    return body


def item(
    key_id: str | uuid.UUID, workspace_id: str, observed_at: datetime | str, body: dict[str, Any]
) -> dict[str, Any]:
    """One delivery item (`observed_at` may be a string, to test its parsing)."""
    return {"key_id": key_id, "workspace_id": workspace_id, "observed_at": observed_at, "snapshot": body}


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    raise TypeError(type(value).__name__)


def dumps(value: Any) -> bytes:
    """JSON with decimals as exact numbers, as the worker sends them."""
    return orjson.dumps(value, default=_default)


class Ingest:
    """Calls of the internal API with exact JSON, as the worker makes them."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = {**headers, "content-type": "application/json"}

    async def call(self, method: str, url: str, body: Any) -> httpx.Response:
        return await self.client.request(method, url, headers=self.headers, content=dumps(body))

    async def snapshots(self, *items: dict[str, Any], expect: int = 200) -> dict[str, Any]:
        r = await self.call("POST", "/internal/snapshots", {"items": list(items)})
        assert r.status_code == expect, r.text
        result: dict[str, Any] = r.json()
        return result


def money(value: Any) -> Decimal:
    """A JSON number read back exactly (the response is parsed with floats as Decimal)."""
    return Decimal(str(value))


async def read_key(
    client: httpx.AsyncClient, tenant: Tenant, key_id: str, expect: int = 200, **params: Any
) -> dict[str, Any]:
    """GET the key's usage, parsing numbers exactly."""
    r = await client.get(f"/api/v1/usage/keys/{key_id}", headers=tenant.headers, params=params)
    assert r.status_code == expect, r.text
    body: dict[str, Any] = json.loads(r.content, parse_float=Decimal)
    return body


def daily(body: dict[str, Any]) -> dict[str, tuple[Decimal, Decimal, bool]]:
    """{date: (spend, byok_spend, provisional)} of a read."""
    return {d["date"]: (Decimal(d["spend"]), Decimal(d["byok_spend"]), d["provisional"]) for d in body["daily"]}


@pytest.fixture
def deliver(service_headers: ServiceHeaders) -> dict[str, str]:
    """The worker's headers for the delivery routes (`alerts:deliver`)."""
    return service_headers("alerts:deliver")


@pytest.fixture
async def quiet(db_connection: Any, alice: Tenant) -> None:
    """`alice`'s workspace with its outbox leased away (channels_kit.quiet_outbox)."""
    await quiet_outbox(db_connection, alice)
