"""The built-in rules: switches and parameters, each rule firing once per condition and recovering once."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.support.http import assert_problem
from tests.usage.alerting import Key, events, key_status, moment, monday, status_item
from tests.usage.conftest import Ingest


async def rules(client, tenant) -> dict[str, dict[str, Any]]:
    r = await client.get("/api/v1/alert-rules", headers=tenant.headers)
    assert r.status_code == 200, r.text
    return {item["rule"]: item for item in r.json()["items"]}


async def put_rules(client, tenant, *items: dict[str, Any], expect: int = 200) -> dict[str, Any]:
    r = await client.put("/api/v1/alert-rules", headers=tenant.headers, json={"items": list(items)})
    assert r.status_code == expect, r.text
    return dict(r.json())


async def test_every_rule_is_on_with_its_defaults_until_changed(client, alice, bob):
    assert {rule: (item["enabled"], item["params"]) for rule, item in (await rules(client, alice)).items()} == {
        "key.invalid": (True, {}),
        "key.expiring": (True, {"days": 7}),
        "key.limit_threshold_crossed": (True, {"percent": 10}),
        "account.balance_low": (True, {"amount_usd": 5}),
        "account.runway_low": (True, {"days": 7}),
        "sync.failing": (True, {"hours": 1}),
        "key.anomaly": (True, {"min_score": 0, "min_usd": 1}),
        "price.drift": (True, {"min_drift_pct": 10}),
    }
    answer = await put_rules(
        client,
        alice,
        {"rule": "key.expiring", "params": {"days": 3}},
        {"rule": "sync.failing", "enabled": False},
        {"rule": "account.balance_low", "params": {"amount_usd": "12.5"}},
    )
    changed = {item["rule"]: item for item in answer["items"]}
    assert changed["key.expiring"] == {"rule": "key.expiring", "enabled": True, "params": {"days": 3}}
    assert changed["sync.failing"] == {"rule": "sync.failing", "enabled": False, "params": {"hours": 1}}
    assert changed["account.balance_low"]["params"] == {"amount_usd": 12.5}
    assert changed["key.invalid"]["enabled"] is True
    # Another PUT changes only what it lists; another workspace keeps the defaults.
    await put_rules(client, alice, {"rule": "key.invalid", "enabled": False})
    again = await rules(client, alice)
    assert (again["key.invalid"]["enabled"], again["key.expiring"]["params"]) == (False, {"days": 3})
    assert (await rules(client, bob))["key.expiring"]["params"] == {"days": 7}


@pytest.mark.parametrize(
    "items",
    [
        [],
        [{"rule": "key.unknown"}],
        [{"rule": "key.expiring", "params": {"days": 0}}],
        [{"rule": "key.expiring", "params": {"days": 91}}],
        [{"rule": "key.expiring", "params": {"weeks": 1}}],
        [{"rule": "key.limit_threshold_crossed", "params": {"percent": 100}}],
        [{"rule": "account.balance_low", "params": {"amount_usd": 0}}],
        [{"rule": "account.runway_low", "params": {"days": "soon"}}],
        [{"rule": "sync.failing", "params": {"hours": 169}}],
        [{"rule": "key.invalid", "enabled": "no"}],
        [{"rule": "key.invalid", "params": {"x": 1}}],
        [{"rule": "key.invalid"}, {"rule": "key.invalid", "enabled": False}],
    ],
)
async def test_bad_settings_are_a_422(client, alice, items):
    assert_problem(await client.put("/api/v1/alert-rules", headers=alice.headers, json={"items": items}), 422)


async def test_an_invalid_key_fires_once_until_it_is_valid_again(ingest, alice, db_connection):
    key = Key(ingest, alice)
    day = monday()
    await key.sync(moment(day, 9), "1")
    assert await key_status(ingest, status_item(key, "valid", moment(day, 9))) == 0
    assert await key_status(ingest, status_item(key, "invalid", moment(day, 10))) == 1
    assert await key_status(ingest, status_item(key, "invalid", moment(day, 11))) == 0
    assert await key_status(ingest, status_item(key, "valid", moment(day, 12))) == 0
    assert await key_status(ingest, status_item(key, "invalid", moment(day, 13))) == 1
    raised = await events(db_connection, alice, "key.invalid")
    assert len(raised) == 2
    assert raised[0]["data"] == {
        "key_id": key.id,
        "key_name": "agent",
        "label": key.label,
        "since": moment(day, 10).isoformat(),
    }


async def test_text_postgresql_cannot_store_is_refused_or_cleaned_never_a_500(ingest, alice, db_connection):
    key = Key(ingest, alice)
    # A name is the keys service's: NUL in it is a bad report (422); an upstream error is kept, made storable.
    await key_status(ingest, status_item(key, "invalid", moment(monday(), 10), name="a\x00b"), expect=422)
    failing = {**status_item(key, "error", moment(monday(), 10)), "error": "upstream \x00 said no"}
    assert await key_status(ingest, failing) == 0


@pytest.mark.parametrize("observed_at", ["0001-01-01T00:00:00+01:00", "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z"])
async def test_a_time_outside_sane_years_is_a_bad_report_not_a_500(ingest, alice, observed_at):
    # The fuzz sent year 1 with a positive offset: it has no UTC form PostgreSQL can store.
    key = Key(ingest, alice)
    bad = {**status_item(key, "invalid", moment(monday(), 10)), "observed_at": observed_at}
    await key_status(ingest, bad, expect=422)


async def test_a_key_never_synced_can_be_invalid_too(ingest, alice, db_connection):
    key = Key(ingest, alice)
    assert await key_status(ingest, status_item(key, "invalid", moment(monday(), 10))) == 1
    (event,) = await events(db_connection, alice, "key.invalid")
    assert event["data"]["label"] is None


async def test_an_expiring_key_fires_once_per_expiry_date(ingest, alice, db_connection):
    day = monday()
    key = Key(ingest, alice, expires_at=moment(day + timedelta(days=10), 0))
    await key.sync(moment(day, 9), "1")
    assert await key_status(ingest, status_item(key, "valid", moment(day, 9))) == 0  # 10 days away
    await key.sync(moment(day + timedelta(days=4), 9), "1")
    for hour in (9, 10):
        await key_status(ingest, status_item(key, "valid", moment(day + timedelta(days=4), hour)))
    await key.sync(moment(day + timedelta(days=5), 9), "1", expires_at=moment(day + timedelta(days=9), 0))
    await key_status(ingest, status_item(key, "valid", moment(day + timedelta(days=5), 9)))
    raised = await events(db_connection, alice, "key.expiring")
    assert [e["data"]["expires_at"] for e in raised] == [
        moment(day + timedelta(days=10), 0).isoformat(),
        moment(day + timedelta(days=9), 0).isoformat(),
    ]
    assert raised[0]["data"]["days"] == 7


async def test_a_key_near_its_own_limit_fires_once_per_limit_window(ingest, alice, db_connection):
    day = monday()
    key = Key(ingest, alice, limit=Decimal(10), limit_reset="weekly")
    for when, remaining in ((moment(day, 9), "2"), (moment(day, 10), "0.9"), (moment(day, 11), "0.1")):
        await key.sync(when, "1", limit_remaining=Decimal(remaining))
        await key_status(ingest, status_item(key, "valid", when))
    next_week = day + timedelta(days=7)
    await key.sync(moment(next_week, 9), "1", limit_remaining=Decimal("0.5"))
    await key_status(ingest, status_item(key, "valid", moment(next_week, 9)))
    raised = await events(db_connection, alice, "key.limit_threshold_crossed")
    assert [(e["data"]["window_start"], e["data"]["limit_remaining_usd"]) for e in raised] == [
        (moment(day, 0).isoformat(), "0.9"),
        (moment(next_week, 0).isoformat(), "0.5"),
    ]
    assert raised[0]["data"] | {"window_start": None} == {
        "key_id": key.id,
        "key_name": "agent",
        "label": key.label,
        "limit_usd": "10",
        "limit_remaining_usd": "0.9",
        "limit_reset": "weekly",
        "window_start": None,
        "percent_used": "91.00",
        "threshold": 10,
    }


async def test_failing_syncs_fire_after_an_hour_and_recover_once(ingest, alice, db_connection):
    key = Key(ingest, alice)
    day = monday()
    # Failing for half an hour, then fine: nothing at all.
    await key_status(ingest, status_item(key, "error", moment(day, 8)), status_item(key, "error", moment(day, 8, 30)))
    await key_status(ingest, status_item(key, "valid", moment(day, 8, 45)))
    assert await events(db_connection, alice) == []
    # Failing for more than an hour: one event; more failures, nothing more; back: one recovery.
    for minute in (0, 30, 59):
        assert await key_status(ingest, status_item(key, "error", moment(day, 9, minute))) == 0
    assert await key_status(ingest, status_item(key, "error", moment(day, 10, 1))) == 1
    assert await key_status(ingest, status_item(key, "error", moment(day, 11))) == 0
    assert await key_status(ingest, status_item(key, "valid", moment(day, 12))) == 1
    assert await key_status(ingest, status_item(key, "valid", moment(day, 13))) == 0
    raised = await events(db_connection, alice)
    assert [(e["type"], e["data"]["since"]) for e in raised] == [
        ("sync.failing", moment(day, 9).isoformat()),
        ("sync.recovered", moment(day, 9).isoformat()),
    ]
    assert raised[1]["data"]["recovered_at"] == moment(day, 12).isoformat()


async def test_a_switched_off_rule_raises_nothing(client, ingest, alice, db_connection):
    key = Key(ingest, alice)
    day = monday()
    await put_rules(
        client, alice, {"rule": "key.invalid", "enabled": False}, {"rule": "sync.failing", "enabled": False}
    )
    await key_status(ingest, status_item(key, "error", moment(day, 8)), status_item(key, "error", moment(day, 10)))
    await key_status(ingest, status_item(key, "valid", moment(day, 11)))
    assert await key_status(ingest, status_item(key, "invalid", moment(day, 12))) == 0
    assert await events(db_connection, alice) == []
    # Switched on while the key is still invalid: the next report tells it, once.
    await put_rules(client, alice, {"rule": "key.invalid"})
    assert await key_status(ingest, status_item(key, "invalid", moment(day, 13))) == 1
    assert await key_status(ingest, status_item(key, "invalid", moment(day, 14))) == 0


async def test_key_status_for_an_erased_workspace_raises_nothing(ingest, alice, service_headers, client):
    key = Key(ingest, alice)
    r = await client.delete(f"/internal/workspaces/{alice.workspace_id}", headers=service_headers())
    assert r.status_code == 204
    assert await key_status(ingest, status_item(key, "invalid", moment(monday(), 10))) == 0


async def credits(ingest: Ingest, tenant, management_key: str, day_offset: float, credit: str, used: str) -> None:
    body = {
        "workspace_id": tenant.workspace_id,
        "observed_at": moment(monday(), 6) + timedelta(days=day_offset),
        "total_credits": Decimal(credit),
        "total_usage": Decimal(used),
    }
    r = await ingest.call("POST", f"/internal/accounts/{management_key}/credits", body)
    assert r.status_code == 204, r.text


async def test_a_low_balance_fires_once_per_dip(ingest, alice, db_connection):
    mgmt = str(uuid.uuid4())
    for offset, used in ((0, "90"), (0.1, "96"), (0.2, "97"), (0.3, "80"), (0.4, "99")):
        await credits(ingest, alice, mgmt, offset, "100", used)
    await credits(ingest, alice, mgmt, 0.5, "0", "0")  # unknown, not $0: nothing
    raised = await events(db_connection, alice, "account.balance_low")
    assert [(e["data"]["balance_usd"], e["data"]["threshold_usd"]) for e in raised] == [("4", "5"), ("1", "5")]
    assert raised[0]["data"]["management_key_id"] == mgmt


async def test_a_short_runway_fires_once_and_rearms_when_it_lengthens(ingest, alice, db_connection):
    mgmt = str(uuid.uuid4())
    await credits(ingest, alice, mgmt, 0, "1000", "0")
    await credits(ingest, alice, mgmt, 0.5, "1000", "10")  # less than a day of history: no runway yet
    await credits(ingest, alice, mgmt, 2, "1000", "600")  # 300 a day, 400 left: 1.33 days
    await credits(ingest, alice, mgmt, 2.5, "1000", "650")
    await credits(ingest, alice, mgmt, 3, "5000", "700")  # topped up: 4300 left, about 18 days
    raised = await events(db_connection, alice, "account.runway_low")
    assert len(raised) == 1
    assert raised[0]["data"] | {"management_key_id": None, "label": None} == {
        "management_key_id": None,
        "label": None,
        "balance_usd": "400",
        "burn_usd_per_day": "300.000000",
        "runway_days": "1.33",
        "days": 7,
        "since": (moment(monday(), 6) + timedelta(days=2)).isoformat(),
    }
    await credits(ingest, alice, mgmt, 6, "5000", "4900")  # 100 left
    assert len(await events(db_connection, alice, "account.runway_low")) == 2
