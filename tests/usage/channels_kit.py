"""Helpers of the channel and delivery tests: a movable clock, channels, and the worker's calls."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.support.db import savepoint
from tests.support.tenants import Tenant


class MovableClock:
    """The app's clock (`app.state.clock`) under a test's hand."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def receiver_url(host: str = "receiver.example.com") -> str:
    """A webhook URL whose path holds a token, as real ones do: it must never come back."""
    return f"https://{host}/hooks/{secrets.token_urlsafe(24)}"


def webhook(name: str = "ops", **fields: Any) -> dict[str, Any]:
    return {"type": "webhook", "name": name, "url": receiver_url(), **fields}


async def create_channel(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], expect: int = 201
) -> dict[str, Any]:
    r = await client.post("/api/v1/channels", headers=tenant.headers, json=body)
    assert r.status_code == expect, r.text
    created: dict[str, Any] = r.json()
    return created


async def send_test(client: httpx.AsyncClient, tenant: Tenant, channel_id: str) -> str:
    r = await client.post(f"/api/v1/channels/{channel_id}/test", headers=tenant.headers)
    assert r.status_code == 202, r.text
    event_id: str = r.json()["event_id"]
    return event_id


async def claim(
    client: httpx.AsyncClient, headers: dict[str, str], *, limit: int = 200, lease_seconds: int = 60
) -> dict[str, Any]:
    r = await client.post(
        "/internal/deliveries/claim", headers=headers, json={"limit": limit, "lease_seconds": lease_seconds}
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def confirmation_token(item: dict[str, Any]) -> str:
    """The one-time token of a claimed `channel.confirmation` (its link is `.../confirm-email-channel?token=`)."""
    assert item["event"]["type"] == "channel.confirmation", item["event"]
    url: str = item["confirmation_url"]
    prefix = "/confirm-email-channel?token="
    assert prefix in url, "the link goes to the web app's confirmation page"
    return url.split(prefix, 1)[1]


async def confirm_email(client: httpx.AsyncClient, deliver: dict[str, str], tenant: Tenant, channel_id: str) -> None:
    """As the worker and the recipient would: claim the channel's confirmation email, send it, use its link."""
    items = [item for item in of(await claim(client, deliver), tenant) if item["channel"]["id"] == channel_id]
    [item] = [item for item in items if item["event"]["type"] == "channel.confirmation"]
    await report(client, deliver, item["id"], "delivered", status_code=250)
    r = await client.post("/api/v1/channel-confirmations", json={"token": confirmation_token(item)})
    assert r.status_code == 200, r.text


def of(claimed: dict[str, Any], tenant: Tenant) -> list[dict[str, Any]]:
    """The claimed deliveries of `tenant`'s workspace (a claim spans every workspace)."""
    return [item for item in claimed["items"] if item["channel"]["workspace_id"] == tenant.workspace_id]


async def report(
    client: httpx.AsyncClient, headers: dict[str, str], delivery_id: str, outcome: str, expect: int = 200, **fields: Any
) -> dict[str, Any]:
    r = await client.post(
        f"/internal/deliveries/{delivery_id}/result", headers=headers, json={"outcome": outcome, **fields}
    )
    assert r.status_code == expect, r.text
    body: dict[str, Any] = r.json()
    return body


async def quiet_outbox(db_connection: AsyncConnection, tenant: Tenant) -> None:
    """Lease every other workspace's pending delivery far away, inside the test's rolled-back transaction, so a
    claim sees this tenant's alone (committed tests and the fuzz leave deliveries that no worker sends)."""
    async with savepoint(db_connection) as conn:
        await conn.execute(
            text(
                "UPDATE usage.alert_deliveries SET lease_until = 'infinity'"
                " WHERE status = 'pending' AND workspace_id <> :ws"
            ),
            {"ws": tenant.workspace_id},
        )
