"""The weekly and monthly digests: who gets one, what it says, and once per period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.usage.alerting import Key, add_channel, deliveries, events, moment, monday
from tests.usage.conftest import Ingest


async def digests(ingest: Ingest, service_headers, kind: str, at: Any) -> int:
    r = await ingest.client.post(
        "/internal/digests", headers=service_headers("alerts:deliver"), json={"kind": kind, "at": at.isoformat()}
    )
    assert r.status_code == 200, r.text
    return int(r.json()["raised"])


async def test_a_weekly_digest_compares_weeks_and_names_keys_to_look_at(
    client, ingest, alice, bob, service_headers, db_connection
):
    week = monday()
    previous = week - timedelta(days=7)
    channel = await add_channel(client, alice, events=["report.weekly"])
    await add_channel(client, alice, events=["key.invalid"])
    big = Key(ingest, alice, label="sk-or-v1-big...001", limit=None)
    small = Key(ingest, alice, label="sk-or-v1-sml...002", expires_at=moment(week + timedelta(days=9), 0))
    idle = Key(ingest, alice, label="sk-or-v1-idl...003")
    await big.sync(moment(previous, 10), "4")
    await idle.sync(moment(previous - timedelta(days=10), 10), "1")
    await big.sync(moment(week, 10), "5")
    await big.sync(moment(week + timedelta(days=2), 10), "1")
    await small.sync(moment(week + timedelta(days=3), 10), "2")
    mgmt = Key(ingest, alice, label="sk-or-v1-mgm...004", is_management_key=True, limit=None)
    await mgmt.sync(moment(week, 9), "0")
    after = moment(week + timedelta(days=7), 6)  # Monday 06:00: last week is complete

    # Every workspace taking reports gets one (other tests' committed channels too): alice's is one of them.
    assert await digests(ingest, service_headers, "weekly", after) >= 1
    assert await digests(ingest, service_headers, "weekly", after + timedelta(days=1)) == 0  # same week: once
    (event,) = await events(db_connection, alice, "report.weekly")
    assert event["dedup_key"] == f"report.weekly:{week.isoformat()}"
    assert {str(c) for c in await deliveries(db_connection, event["id"])} == {channel}
    data = event["data"]
    assert data["period"] == {"start": week.isoformat(), "end": (week + timedelta(days=7)).isoformat()}
    assert data["previous_period"] == {"start": previous.isoformat(), "end": week.isoformat()}
    assert (data["spend_usd"], data["previous_spend_usd"], data["change_percent"]) == ("8", "4", "100.00")
    assert [(k["label"], k["spend_usd"]) for k in data["top_keys"]] == [
        ("sk-or-v1-big...001", "6"),
        ("sk-or-v1-sml...002", "2"),
    ]
    assert data["top_models"] == []  # no activity: spend without a per-model breakdown names no model
    assert [k["label"] for k in data["keys_without_limit"]["keys"]] == ["sk-or-v1-big...001"]
    assert data["dormant_keys"]["days"] == 14
    assert [k["label"] for k in data["dormant_keys"]["keys"]] == ["sk-or-v1-idl...003"]
    assert [(k["label"], k["expires_at"]) for k in data["expiring_keys"]["keys"]] == [
        ("sk-or-v1-sml...002", moment(week + timedelta(days=9), 0).isoformat())
    ]
    # Bob has no channel taking reports: no digest for him.
    assert await events(db_connection, bob) == []


async def test_a_monthly_digest_goes_to_channels_taking_every_event_and_once_per_month(
    client, ingest, alice, service_headers, db_connection
):
    await add_channel(client, alice)  # events NULL: every type, reports included
    key = Key(ingest, alice)
    first = (monday(6).replace(day=1) + timedelta(days=31)).replace(day=1)
    last_month = (first - timedelta(days=1)).replace(day=1)
    await key.sync(moment(last_month + timedelta(days=3), 10), "3")
    await key.sync(moment(first + timedelta(days=2), 10), "1")
    assert await digests(ingest, service_headers, "monthly", moment(first + timedelta(days=5), 0)) >= 1
    assert await digests(ingest, service_headers, "weekly", moment(first + timedelta(days=5), 0)) >= 1
    assert await digests(ingest, service_headers, "monthly", moment(first + timedelta(days=9), 0)) == 0
    assert len(await events(db_connection, alice, "report.weekly")) == 1
    (monthly,) = await events(db_connection, alice, "report.monthly")
    assert monthly["data"]["period"]["start"] == last_month.isoformat()
    assert (monthly["data"]["spend_usd"], monthly["data"]["change_percent"]) == ("3", None)
