"""Helpers of the budget, rule and digest tests: syncs at chosen moments, channels, and the outbox as stored."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.support.db import savepoint
from tests.support.tenants import Tenant
from tests.usage.channels_kit import create_channel, webhook
from tests.usage.conftest import Ingest, item, snapshot, today


def monday(weeks_back: int = 3) -> date:
    """A Monday `weeks_back` weeks before this week's (the tests' fixed, settled past)."""
    this_week = today() - timedelta(days=today().weekday())
    return this_week - timedelta(weeks=weeks_back)


def moment(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


class Key:
    """One key of a tenant, synced at moments the test chooses: each sync says the day's spend so far, the
    lifetime figure grows by what the day added."""

    def __init__(self, ingest: Ingest, tenant: Tenant, *, label: str = "sk-or-v1-bud...001", **fields: Any) -> None:
        self.ingest = ingest
        self.tenant = tenant
        self.id = str(uuid.uuid4())
        self.label = label
        self.fields = fields
        self.lifetime = Decimal(0)
        self.byok_lifetime = Decimal(0)
        self.days: dict[date, tuple[Decimal, Decimal]] = {}

    async def sync(self, when: datetime, daily: str, *, byok_daily: str = "0", **fields: Any) -> dict[str, Any]:
        day = when.date()
        spent, byok = self.days.get(day, (Decimal(0), Decimal(0)))
        self.lifetime += Decimal(daily) - spent
        self.byok_lifetime += Decimal(byok_daily) - byok
        self.days[day] = (Decimal(daily), Decimal(byok_daily))
        body = snapshot(
            self.lifetime,
            daily,
            byok_usage=self.byok_lifetime,
            byok_usage_daily=byok_daily,
            label=self.label,
            **{**self.fields, **fields},
        )
        return await self.ingest.snapshots(item(self.id, self.tenant.workspace_id, when, body))


def _order(event: dict[str, Any]) -> tuple[Any, ...]:
    threshold = event["data"].get("threshold") if isinstance(event["data"], dict) else None
    return (event["occurred_at"], threshold if isinstance(threshold, int) else 10**6, event["type"])


async def events(db_connection: AsyncConnection, tenant: Tenant, *types: str) -> list[dict[str, Any]]:
    """The workspace's events (of `types` when given) by the moment they happened (OpenRouter's clock), a
    moment's thresholds in ascending order and the rest by type (a test's requests share one transaction, so
    the rows' own creation times are all the same)."""
    async with savepoint(db_connection) as conn:
        rows = await conn.execute(
            text("SELECT id, type, dedup_key, occurred_at, data FROM usage.alert_events WHERE workspace_id = :w"),
            {"w": tenant.workspace_id},
        )
        found = sorted((dict(row._mapping) for row in rows), key=_order)
    return [event for event in found if not types or event["type"] in types]


async def deliveries(db_connection: AsyncConnection, event_id: uuid.UUID) -> set[uuid.UUID]:
    """The channels an event was queued for."""
    async with savepoint(db_connection) as conn:
        rows = await conn.execute(
            text("SELECT channel_id FROM usage.alert_deliveries WHERE event_id = :e"), {"e": event_id}
        )
        return {row.channel_id for row in rows}


async def add_channel(client: httpx.AsyncClient, tenant: Tenant, *, events: list[str] | None = None) -> str:
    """A webhook channel of the workspace, through the channels API; its id."""
    body = webhook() if events is None else webhook(events=events)
    channel_id: str = (await create_channel(client, tenant, body))["id"]
    return channel_id


async def create_budget(client: httpx.AsyncClient, tenant: Tenant, **body: Any) -> dict[str, Any]:
    body = {"name": "budget", "amount_usd": "10", "period": "weekly", **body}
    body.setdefault("scope", {"type": "workspace"})
    r = await client.post("/api/v1/budgets", headers=tenant.headers, json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def read_budget(client: httpx.AsyncClient, tenant: Tenant, budget_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/budgets/{budget_id}", headers=tenant.headers)
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


async def key_status(ingest: Ingest, *items: dict[str, Any], expect: int = 200) -> int:
    """POST /internal/key-status; how many events it raised."""
    r = await ingest.call("POST", "/internal/key-status", {"items": list(items)})
    assert r.status_code == expect, r.text
    return int(r.json()["raised"]) if expect == 200 else 0


def status_item(key: Key, status: str, when: datetime, name: str = "agent") -> dict[str, Any]:
    return {
        "key_id": key.id,
        "workspace_id": key.tenant.workspace_id,
        "name": name,
        "status": status,
        "observed_at": when,
    }
