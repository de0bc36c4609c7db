"""Issue 17's anomaly journey on the real processes and the emulator: four weeks of ordinary spend and one day of
twenty times as much, a sync, and one signed `key.anomaly` webhook with the evidence; the insights API lists it,
and syncing again announces nothing more.

The emulator's `/activity` covers the last 30 completed days, which holds four earlier same-weekday days for the
spike's day: above the baseline's minimum of three, so no setting is shortened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import System
from tests.e2e.emulator_admin import EmulatorAdmin
from tests.e2e.test_account_email_journey import verified_sign_up
from tests.e2e.test_alerts_journey import Receiver, served
from tests.e2e.test_sync_journey import Watcher, at, spend, wait_for
from tests.support.mail import Inbox

pytestmark = pytest.mark.e2e


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    """A webhook receiver on loopback that accepts every event at once."""
    async with served(Receiver(failures=0)) as receiver:
        yield receiver


def anomalies(receiver: Receiver, secret: str) -> list[tuple[str, dict[str, Any]]]:
    return [(webhook_id, body) for webhook_id, body in receiver.accepted(secret) if body["type"] == "key.anomaly"]


async def test_a_spending_spike_arrives_as_one_signed_key_anomaly_with_its_evidence(
    system: System, emulator: EmulatorAdmin, hook: Receiver, mail_inbox: Inbox
) -> None:
    today = datetime.now(UTC).date() - timedelta(days=1)
    spike_day = today - timedelta(days=1)
    await emulator.set_clock(at(today, 6))
    account = await emulator.account("500")
    management = await emulator.key(account, "management", name="ops")
    leaky = await emulator.key(account, "inference", name="leaky")
    # Four weeks of about a dollar a day, then twenty times as much in ten calls.
    history = [
        spend(leaky["hash"], at(today - timedelta(days=n), 10), str(Decimal("1.00") + Decimal(n % 3) / 10))
        for n in range(2, 30)
    ]
    spike = [spend(leaky["hash"], at(spike_day, 8 + n), "2.25") for n in range(10)]
    await emulator.events(history + spike)

    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        watcher = Watcher(client, await verified_sign_up(client, mail_inbox, "anomaly"))  # channels need it
        r = await client.post(
            "/api/v1/channels",
            headers=watcher.headers,
            json={"type": "webhook", "name": "leaks", "url": hook.url, "events": ["key.anomaly"]},
        )
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        ids = await watcher.add_account(management, leaky)
        await watcher.sync(*ids.values())

        async def announced() -> list[tuple[str, dict[str, Any]]] | None:
            return anomalies(hook, secret) or None

        ((webhook_id, event),) = await wait_for(announced, seconds=30, what="the key.anomaly webhook")
        data = event["data"]
        assert (data["key_id"], data["day"], data["kind"]) == (ids["leaky"], str(spike_day), "spend_spike")
        assert data["key_name"] == "leaky"
        assert data["label"] == leaky["label"]
        assert data["score"] > 6
        evidence = data["evidence"]
        assert Decimal(evidence["spend_usd"]) == Decimal("22.5")
        assert Decimal("1") <= Decimal(evidence["baseline_usd"]) <= Decimal("1.2")
        assert evidence["baseline_days"] == 4

        r = await client.get(
            "/api/v1/insights/anomalies",
            headers=watcher.headers,
            params={"from": str(today - timedelta(days=29)), "to": str(today), "key_id": ids["leaky"]},
        )
        assert r.status_code == 200, r.text
        assert [(i["day"], i["kind"]) for i in r.json()["items"]] == [(str(spike_day), "spend_spike")]

        # Another sync (the same figures again): nothing more is announced.
        await emulator.set_clock(at(today, 7))
        await watcher.sync(*ids.values())
        await asyncio.sleep(2)
        assert [webhook_id for webhook_id, _ in anomalies(hook, secret)] == [webhook_id]

    logs = system.logs()
    assert leaky["key"] not in logs
    assert secret not in logs
