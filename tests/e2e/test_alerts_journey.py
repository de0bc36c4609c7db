"""Issue 15's "done means", on the real processes and the emulator: a $10 weekly budget on a key, a signed
webhook to a local receiver that fails twice, spend across three syncs (40 % -> 85 % -> 120 %), a new week
that re-arms the budget, and a revoked key that sends one `key.invalid` email to a real SMTP server (to an address
that confirmed with its emailed link first: double opt-in).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from tests.e2e.conftest import System
from tests.e2e.emulator_admin import EmulatorAdmin
from tests.e2e.test_account_email_journey import emailed_link, verified_sign_up
from tests.e2e.test_sync_journey import Watcher, at, last_monday_before, spend, wait_for
from tests.support.mail import Inbox
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

CONFIRM_SUBJECT = "[OpenRouter Watcher] Confirm that this address should receive alerts"


@dataclass
class Receiver:
    """A webhook receiver on loopback: it answers 500 to the first `failures` attempts of the first event it
    sees, and 200 to everything else."""

    url: str = ""
    failures: int = 2
    # (body, headers, the status it answered)
    requests: list[tuple[bytes, dict[str, str], int]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        first_id = self.requests[0][1]["webhook-id"] if self.requests else headers["webhook-id"]
        seen = sum(1 for _, h, _ in self.requests if h["webhook-id"] == first_id)
        status = 500 if headers["webhook-id"] == first_id and seen < self.failures else 200
        self.requests.append((body, headers, status))
        return web.Response(status=status, text="ok" if status == 200 else "not yet")

    def events(self, secret: str) -> list[tuple[str, dict[str, Any], int]]:
        """Every request, verified with the channel's secret by a stranger's verifier: (webhook-id, body, status)."""
        verifier = Webhook(secret)
        verified = []
        for body, headers, status in self.requests:
            verifier.verify(body, headers)
            verified.append((headers["webhook-id"], json.loads(body), status))
        return verified

    def accepted(self, secret: str) -> list[tuple[str, dict[str, Any]]]:
        """The events that were answered 200: one entry per delivered event."""
        return [(webhook_id, body) for webhook_id, body, status in self.events(secret) if status == 200]


@asynccontextmanager
async def served(receiver: Receiver) -> AsyncIterator[Receiver]:
    """`receiver` listening on a free loopback port (its `url` set) until the block ends."""
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with served(Receiver()) as receiver:
        yield receiver


async def budget(watcher: Watcher, budget_id: str) -> dict[str, Any]:
    r = await watcher.client.get(f"/api/v1/budgets/{budget_id}", headers=watcher.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def of_type(events: list[tuple[str, dict[str, Any]]], kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [event for event in events if event[1]["type"] == kind]


async def test_a_weekly_budget_warns_once_per_threshold_retries_signed_and_re_arms_and_a_dead_key_emails(
    system: System, emulator: EmulatorAdmin, receiver: Receiver, mail_inbox: Inbox
) -> None:
    # A Tuesday two weeks back (the emulator's clock stays behind the real one), and the Monday after it.
    monday = last_monday_before(datetime.now(UTC).date()) - timedelta(days=14)
    tuesday, next_monday = monday + timedelta(days=1), monday + timedelta(days=7)
    await emulator.set_clock(at(tuesday, 9))
    account = await emulator.account("100")
    key = await emulator.key(account, "inference", name="agent")

    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        watcher = Watcher(
            client, await verified_sign_up(client, mail_inbox, "alerts")
        )  # alerts need a verified address
        key_id = await watcher.add("agent", key["key"])
        r = await client.post(
            "/api/v1/channels",
            headers=watcher.headers,
            json={"type": "webhook", "name": "ops hook", "url": receiver.url},
        )
        assert r.status_code == 201, r.text
        hook = r.json()
        secret = hook["secret"]
        assert secret.startswith("whsec_")
        r = await client.post(
            "/api/v1/channels",
            headers=watcher.headers,
            json={"type": "email", "name": "on call", "email": "oncall@example.com", "events": ["key.invalid"]},
        )
        assert r.status_code == 201, r.text
        on_call = r.json()
        assert on_call["confirmation"] == "pending"
        # Double opt-in: the address gets its confirmation link first, and no alert until the link is used.
        link, token = await emailed_link(mail_inbox, "oncall@example.com", CONFIRM_SUBJECT)
        assert urlsplit(link).path == "/confirm-email-channel"
        r = await client.post("/api/v1/channel-confirmations", json={"token": token})
        assert r.status_code == 200, r.text
        r = await client.get(f"/api/v1/channels/{on_call['id']}", headers=watcher.headers)
        assert r.json()["confirmation"] == "confirmed"
        r = await client.post(
            "/api/v1/budgets",
            headers=watcher.headers,
            json={
                "name": "agent weekly",
                "scope": {"type": "key", "id": key_id},
                "amount_usd": "10",
                "period": "weekly",
                "channel_ids": [hook["id"]],
            },
        )
        assert r.status_code == 201, r.text
        budget_id = r.json()["id"]

        # 40 %: under every threshold. $4 by Tuesday 10:00 forecasts about $20 for the week, so the forecast
        # warns: the receiver's first event, answered 500 twice, arrives a third time with the same id.
        await emulator.set_clock(at(tuesday, 10))
        await emulator.events([spend(key["hash"], at(tuesday, 9, 10), "4")])
        await watcher.sync(key_id)
        first = await budget(watcher, budget_id)
        assert Decimal(first["spend_usd"]) == Decimal(4)
        assert first["state"] == "ok"
        assert first["period_start"].startswith(str(monday))
        assert Decimal(first["forecast_usd"]) > Decimal(10)

        async def forecast_delivered() -> list[tuple[str, dict[str, Any]]] | None:
            return of_type(receiver.accepted(secret), "budget.forecast_exceeded") or None

        await wait_for(forecast_delivered, seconds=60, what="the forecast event, after two failures")
        attempts = [(webhook_id, status) for webhook_id, _, status in receiver.events(secret)]
        first_id = attempts[0][0]
        assert [status for webhook_id, status in attempts if webhook_id == first_id] == [500, 500, 200]
        assert not of_type(receiver.accepted(secret), "budget.threshold_crossed")

        # 85 %: the 50 % and 80 % thresholds, once each.
        await emulator.set_clock(at(tuesday, 11))
        await emulator.events([spend(key["hash"], at(tuesday, 10, 10), "4.5")])
        await watcher.sync(key_id)

        async def both_thresholds() -> list[tuple[str, dict[str, Any]]] | None:
            crossed = of_type(receiver.accepted(secret), "budget.threshold_crossed")
            return crossed if len(crossed) >= 2 else None

        crossed = await wait_for(both_thresholds, seconds=60, what="the 50 % and 80 % events")
        assert sorted(event["data"]["threshold"] for _, event in crossed) == [50, 80]

        # 120 %: one `budget.exceeded`.
        await emulator.set_clock(at(tuesday, 12))
        await emulator.events([spend(key["hash"], at(tuesday, 11, 10), "3.5")])
        await watcher.sync(key_id)

        async def exceeded() -> list[tuple[str, dict[str, Any]]] | None:
            return of_type(receiver.accepted(secret), "budget.exceeded") or None

        (_, over) = (await wait_for(exceeded, seconds=30, what="budget.exceeded"))[0]
        assert over["data"]["budget_id"] == budget_id
        assert Decimal(over["data"]["spend_usd"]) == Decimal(12)
        assert over["data"]["period"]["kind"] == "weekly"
        assert (await budget(watcher, budget_id))["state"] == "exceeded"

        # More syncs in the same week repeat nothing.
        await emulator.set_clock(at(tuesday, 13))
        await watcher.sync(key_id)
        await asyncio.sleep(3)
        accepted = receiver.accepted(secret)
        assert len(of_type(accepted, "budget.threshold_crossed")) == 2
        assert len(of_type(accepted, "budget.exceeded")) == 1
        assert len({webhook_id for webhook_id, _ in accepted}) == len(accepted)

        # Past Monday 00:00 UTC the budget re-arms: a new period, and 60 % crosses 50 % again.
        await emulator.set_clock(at(next_monday, 0, 30))
        await emulator.events([spend(key["hash"], at(next_monday, 0, 10), "6")])
        await watcher.sync(key_id)
        rearmed = await budget(watcher, budget_id)
        assert rearmed["period_start"].startswith(str(next_monday))
        assert Decimal(rearmed["spend_usd"]) == Decimal(6)
        assert rearmed["state"] == "warning"

        async def crossed_again() -> list[tuple[str, dict[str, Any]]] | None:
            found = of_type(receiver.accepted(secret), "budget.threshold_crossed")
            return found if len(found) == 3 else None

        latest = (await wait_for(crossed_again, seconds=30, what="the new week's 50 % event"))[-1][1]
        assert latest["data"]["threshold"] == 50
        assert latest["data"]["period"]["start"].startswith(str(next_monday))

        # A revoked key: one `key.invalid` email.
        await emulator.revoke(key["hash"])
        await watcher.sync(key_id, status="invalid")

        def invalid_mail() -> list[Any]:
            return [
                m
                for m in mail_inbox.messages
                if "oncall@example.com" in str(m["To"]) and str(m["Subject"]) != CONFIRM_SUBJECT
            ]

        async def mailed() -> list[Any] | None:
            return invalid_mail() or None

        (message,) = await wait_for(mailed, seconds=30, what="the key.invalid email")
        assert "agent" in str(message["Subject"])
        await watcher.sync(key_id, status="invalid")
        await asyncio.sleep(3)
        assert len(invalid_mail()) == 1
        body = message.as_string()
        assert key["key"] not in body
        assert secret not in body

        r = await client.get("/api/v1/alerts", headers=watcher.headers)
        assert r.status_code == 200, r.text
        types = [event["type"] for event in r.json()["items"]]
        assert types.count("budget.threshold_crossed") == 3
        assert types.count("key.invalid") == 1

    logs = system.logs()
    assert secret not in logs
    assert key["key"] not in logs
