"""Balances, key lists and activity: stored exactly, idempotent, stale answers ignored, labels linked."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from tests.support.apps import admin_get
from tests.support.db import savepoint
from tests.support.openrouter import key_list_row
from tests.support.tenants import Tenant
from tests.usage.conftest import at, days_ago, item, money, read_key, snapshot, window

D = Decimal


async def fetch(db_connection, sql: str, **params):
    async with savepoint(db_connection) as conn:
        return (await conn.execute(text(sql), params)).mappings().all()


def key_row(hash_: str, label: str, **fields: Any) -> dict[str, Any]:
    """A key-list row as the worker forwards it: money as exact decimals, and a field usage does not know."""
    exact = {
        "limit": D("10"),
        "limit_remaining": D("9.8984355238"),
        "usage": D("0.1015644762"),
        "usage_daily": D("0"),
        "usage_weekly": D("0"),
        "usage_monthly": D("0"),
    }
    future = {"a_field_from_the_future": {"x": 1}}
    return key_list_row(**{"hash": hash_, "name": "Customer Key", "label": label, **exact, **future, **fields})


def activity_row(date: str, model: str, usage: str, **fields):
    row = {
        "date": date,
        "model": model,
        "model_permaslug": model + "-2025-04-14",
        "endpoint_id": "550e8400-e29b-41d4-a716-446655440000",
        "provider_name": "OpenAI",
        "usage": D(usage),
        "byok_usage_inference": D("0.012"),
        "requests": 5,
        "prompt_tokens": 50,
        "completion_tokens": 125,
        "reasoning_tokens": 25,
        "byok_requests": 0,
    }
    row.update(fields)
    return row


def activity_report(
    tenant: Tenant, hash_: str, *, observed_at: datetime, rows: list[Any], dates: list[str] | None = None
) -> dict[str, Any]:
    """A key hash's activity as the worker sends it (`dates` absent when None)."""
    body: dict[str, Any] = {"workspace_id": tenant.workspace_id, "observed_at": observed_at, "api_key_hash": hash_}
    if dates is not None:
        body["dates"] = dates
    return {**body, "rows": rows}


# --- credits ---------------------------------------------------------------------------------------


async def test_credits_are_stored_exactly_once_and_two_zeros_are_unknown(ingest, db_connection, alice):
    mgmt = str(uuid.uuid4())
    url = f"/internal/accounts/{mgmt}/credits"
    when = at(days_ago(1), 9)
    body = {
        "workspace_id": alice.workspace_id,
        "observed_at": when,
        "total_credits": D("100.5"),
        "total_usage": D("25.1015644762"),
    }
    for _ in range(2):
        r = await ingest.call("POST", url, body)
        assert r.status_code == 204, r.text
    zero = {**body, "observed_at": at(days_ago(1), 10), "total_credits": 0, "total_usage": D("0.0")}
    assert (await ingest.call("POST", url, zero)).status_code == 204
    rows = await fetch(
        db_connection,
        "SELECT total_credits, total_usage, known FROM usage.account_balances WHERE management_key_id = :k ORDER BY observed_at",
        k=uuid.UUID(mgmt),
    )
    assert [tuple(r.values()) for r in rows] == [(D("100.5"), D("25.1015644762"), True), (D(0), D("0.0"), False)]


# --- key lists -------------------------------------------------------------------------------------


async def test_a_key_list_replaces_the_previous_one_and_a_repeat_changes_nothing(ingest, db_connection, alice):
    mgmt = str(uuid.uuid4())
    url = f"/internal/accounts/{mgmt}/keys"
    t1, t2 = at(days_ago(1), 9), at(days_ago(1), 10)
    first = {
        "workspace_id": alice.workspace_id,
        "observed_at": t1,
        "keys": [key_row("a" * 64, "sk-or-v1-aaa...111"), key_row("b" * 64, "sk-or-v1-bbb...222")],
    }
    second = {
        "workspace_id": alice.workspace_id,
        "observed_at": t2,
        "keys": [key_row("b" * 64, "sk-or-v1-bbb...222", usage=D("5.5")), key_row("c" * 64, "sk-or-v1-ccc...333")],
    }
    assert (await ingest.call("PUT", url, first)).status_code == 204
    for _ in range(2):
        assert (await ingest.call("PUT", url, second)).status_code == 204
    sql = "SELECT hash, usage, observed_at FROM usage.account_keys WHERE management_key_id = :k ORDER BY hash"
    rows = await fetch(db_connection, sql, k=uuid.UUID(mgmt))
    assert [(r["hash"][0], r["usage"]) for r in rows] == [("b", D("5.5")), ("c", D("0.1015644762"))]
    assert {r["observed_at"] for r in rows} == {t2}
    # The first list arriving late (its job finished last) does not bring "a" back.
    assert (await ingest.call("PUT", url, first)).status_code == 204
    assert [(r["hash"][0], r["usage"]) for r in await fetch(db_connection, sql, k=uuid.UUID(mgmt))] == [
        ("b", D("5.5")),
        ("c", D("0.1015644762")),
    ]
    # An empty list is a complete list too: the account has no keys left.
    empty = {"workspace_id": alice.workspace_id, "observed_at": at(days_ago(1), 11), "keys": []}
    assert (await ingest.call("PUT", url, empty)).status_code == 204
    assert await fetch(db_connection, sql, k=uuid.UUID(mgmt)) == []


async def test_a_hash_listed_twice_keeps_its_last_row(ingest, db_connection, alice):
    mgmt = str(uuid.uuid4())
    body = {
        "workspace_id": alice.workspace_id,
        "observed_at": at(days_ago(1)),
        "keys": [
            key_row("d" * 64, "sk-or-v1-ddd...444", name="old"),
            key_row("d" * 64, "sk-or-v1-ddd...444", name="new"),
        ],
    }
    assert (await ingest.call("PUT", f"/internal/accounts/{mgmt}/keys", body)).status_code == 204
    rows = await fetch(
        db_connection, "SELECT name FROM usage.account_keys WHERE management_key_id = :k", k=uuid.UUID(mgmt)
    )
    assert [r["name"] for r in rows] == ["new"]


async def _inference_key(ingest, tenant, label: str) -> str:
    key = str(uuid.uuid4())
    await ingest.snapshots(item(key, tenant.workspace_id, at(days_ago(1)), snapshot("1", "0.5", label=label)))
    return key


async def test_an_inference_key_is_linked_to_the_one_account_row_with_its_label(ingest, client, alice, bob):
    label = f"sk-or-v1-{uuid.uuid4().hex[:3]}...{uuid.uuid4().hex[:3]}"
    key = await _inference_key(ingest, alice, label)
    body = await read_key(client, alice, key)
    assert (body["linked"], body["account_key_id"], body["kind"]) == (False, None, "inference")

    mgmt, other_mgmt = str(uuid.uuid4()), str(uuid.uuid4())
    listing = {"workspace_id": alice.workspace_id, "observed_at": at(days_ago(1)), "keys": [key_row("e" * 64, label)]}
    assert (await ingest.call("PUT", f"/internal/accounts/{mgmt}/keys", listing)).status_code == 204
    # A second management key of the same account lists the same key (same hash): still one key.
    assert (await ingest.call("PUT", f"/internal/accounts/{other_mgmt}/keys", listing)).status_code == 204
    body = await read_key(client, alice, key)
    assert (body["linked"], body["account_key_id"]) == (True, "e" * 64)

    # Another workspace's account with the same label changes nothing for alice.
    bobs = {"workspace_id": bob.workspace_id, "observed_at": at(days_ago(1)), "keys": [key_row("f" * 64, label)]}
    assert (await ingest.call("PUT", f"/internal/accounts/{uuid.uuid4()}/keys", bobs)).status_code == 204
    assert (await read_key(client, alice, key))["account_key_id"] == "e" * 64

    # Two different keys behind one masked label: ambiguous, so nothing is linked.
    listing["keys"].append(key_row("9" * 64, label))
    listing["observed_at"] = at(days_ago(1), 13)
    assert (await ingest.call("PUT", f"/internal/accounts/{mgmt}/keys", listing)).status_code == 204
    body = await read_key(client, alice, key)
    assert (body["linked"], body["account_key_id"]) == (False, None)


async def test_a_management_key_is_never_linked(ingest, client, alice):
    label = "sk-or-v1-mgm...000"
    key = str(uuid.uuid4())
    await ingest.snapshots(
        item(key, alice.workspace_id, at(days_ago(1)), snapshot("0", "0", label=label, is_management_key=True))
    )
    listing = {"workspace_id": alice.workspace_id, "observed_at": at(days_ago(1)), "keys": [key_row("1" * 64, label)]}
    assert (await ingest.call("PUT", f"/internal/accounts/{key}/keys", listing)).status_code == 204
    body = await read_key(client, alice, key)
    assert (body["kind"], body["linked"]) == ("management", False)


async def test_the_deprecated_provisioning_flag_still_names_a_management_key(ingest, client, alice):
    key = str(uuid.uuid4())
    body = snapshot("0", "0", is_provisioning_key=True)
    del body["is_management_key"]
    await ingest.snapshots(item(key, alice.workspace_id, at(days_ago(1)), body))
    assert (await read_key(client, alice, key))["kind"] == "management"


# --- activity --------------------------------------------------------------------------------------


ACTIVITY_SQL = """
SELECT date, model, usage, requests FROM usage.activity
WHERE management_key_id = :k AND api_key_hash = :h ORDER BY date, row_no
"""


async def test_activity_replaces_its_dates_and_never_doubles(ingest, db_connection, alice):
    mgmt, hash_ = str(uuid.uuid4()), "a1" * 32
    d1, d2, d3 = days_ago(3), days_ago(2), days_ago(1)
    url = f"/internal/accounts/{mgmt}/activity"
    body = activity_report(
        alice,
        hash_,
        observed_at=at(days_ago(0), 1),
        dates=[d1.isoformat(), d2.isoformat(), d3.isoformat()],
        rows=[
            activity_row(f"{d1} 00:00:00", "openai/gpt-4.1", "0.015"),
            # The same model twice on one day (two endpoints): both rows are kept.
            activity_row(
                f"{d1} 00:00:00", "openai/gpt-4.1", "0.1015644762", endpoint_id="other", provider_name="Azure"
            ),
            activity_row(d2.isoformat(), "anthropic/claude", "1.5"),
        ],
    )
    for _ in range(3):
        assert (await ingest.call("PUT", url, body)).status_code == 204
    rows = await fetch(db_connection, ACTIVITY_SQL, k=uuid.UUID(mgmt), h=hash_)
    assert [(r["date"], r["model"], r["usage"]) for r in rows] == [
        (d1, "openai/gpt-4.1", D("0.015")),
        (d1, "openai/gpt-4.1", D("0.1015644762")),
        (d2, "anthropic/claude", D("1.5")),
    ]
    days = await fetch(
        db_connection,
        "SELECT date, rows FROM usage.activity_days WHERE management_key_id = :k ORDER BY date",
        k=uuid.UUID(mgmt),
    )
    # d3 was fetched and had no activity: known to be zero, not unknown.
    assert [(r["date"], r["rows"]) for r in days] == [(d1, 2), (d2, 1), (d3, 0)]

    # A correction of d2 alone leaves d1 alone.
    fix = {
        **body,
        "observed_at": at(days_ago(0), 2),
        "dates": [d2.isoformat()],
        "rows": [activity_row(d2.isoformat(), "anthropic/claude", "1.25")],
    }
    assert (await ingest.call("PUT", url, fix)).status_code == 204
    rows = await fetch(db_connection, ACTIVITY_SQL, k=uuid.UUID(mgmt), h=hash_)
    assert [(r["date"], r["usage"]) for r in rows] == [(d1, D("0.015")), (d1, D("0.1015644762")), (d2, D("1.25"))]

    # The first answer arriving again later (a redelivered job): d2 keeps the newer figure.
    assert (await ingest.call("PUT", url, body)).status_code == 204
    rows = await fetch(db_connection, ACTIVITY_SQL, k=uuid.UUID(mgmt), h=hash_)
    assert [(r["date"], r["usage"]) for r in rows] == [(d1, D("0.015")), (d1, D("0.1015644762")), (d2, D("1.25"))]


async def test_a_row_outside_the_listed_dates_replaces_its_own_day(ingest, db_connection, alice):
    mgmt, hash_ = str(uuid.uuid4()), "b2" * 32
    d1, d2 = days_ago(2), days_ago(1)
    body = activity_report(
        alice,
        hash_,
        observed_at=at(days_ago(0), 1),
        dates=[d1.isoformat()],
        rows=[activity_row(d2.isoformat(), "m/x", "0.5")],
    )
    for _ in range(2):
        assert (await ingest.call("PUT", f"/internal/accounts/{mgmt}/activity", body)).status_code == 204
    rows = await fetch(db_connection, ACTIVITY_SQL, k=uuid.UUID(mgmt), h=hash_)
    assert [(r["date"], r["usage"]) for r in rows] == [(d2, D("0.5"))]


@pytest.mark.parametrize("form", ["{d}", "{d} 00:00:00", "{d}T00:00:00Z", "{d}T00:00:00+00:00"])
async def test_both_activity_date_forms_are_accepted(ingest, db_connection, alice, form):
    mgmt, hash_, d = str(uuid.uuid4()), "c3" * 32, days_ago(4)
    body = activity_report(
        alice,
        hash_,
        observed_at=at(days_ago(0)),
        dates=[form.format(d=d)],
        rows=[activity_row(form.format(d=d), "m/y", "0.25")],
    )
    assert (await ingest.call("PUT", f"/internal/accounts/{mgmt}/activity", body)).status_code == 204
    rows = await fetch(db_connection, ACTIVITY_SQL, k=uuid.UUID(mgmt), h=hash_)
    assert [r["date"] for r in rows] == [d]


async def test_a_date_with_a_time_of_day_is_refused(ingest, alice):
    d = days_ago(4)
    body = activity_report(
        alice, "d4" * 32, observed_at=at(days_ago(0)), rows=[activity_row(f"{d} 13:00:00", "m/z", "0.25")]
    )
    r = await ingest.call("PUT", f"/internal/accounts/{uuid.uuid4()}/activity", body)
    assert r.status_code == 422


async def test_many_activity_rows_are_stored_in_chunks(ingest, db_connection, alice):
    mgmt, hash_ = str(uuid.uuid4()), "e5" * 32
    dates = [days_ago(i) for i in range(1, 31)]
    rows = [activity_row(d.isoformat(), f"model/{m}", "0.0000000001") for d in dates for m in range(80)]
    body = activity_report(alice, hash_, observed_at=at(days_ago(0)), dates=[d.isoformat() for d in dates], rows=rows)
    assert (await ingest.call("PUT", f"/internal/accounts/{mgmt}/activity", body)).status_code == 204
    total = await fetch(
        db_connection,
        "SELECT count(*) AS n, sum(usage) AS s FROM usage.activity WHERE management_key_id = :k",
        k=uuid.UUID(mgmt),
    )
    assert (total[0]["n"], total[0]["s"]) == (2400, D("0.0000002400"))


async def test_a_snapshot_with_another_workspace_for_a_known_key_is_a_conflict(ingest, alice, bob):
    key = str(uuid.uuid4())
    await ingest.snapshots(item(key, alice.workspace_id, at(days_ago(1)), snapshot("1", "1")))
    r = await ingest.call(
        "POST", "/internal/snapshots", {"items": [item(key, bob.workspace_id, at(days_ago(1), 13), snapshot("1", "1"))]}
    )
    assert r.status_code == 409
    assert r.json()["type"].endswith("/workspace-mismatch")
    mixed = [
        item(key, alice.workspace_id, at(days_ago(1), 14), snapshot("1", "1")),
        item(key, bob.workspace_id, at(days_ago(1), 15), snapshot("1", "1")),
    ]
    assert (await ingest.call("POST", "/internal/snapshots", {"items": mixed})).status_code == 409


async def test_unknown_fields_are_ignored(ingest, client, alice):
    key = str(uuid.uuid4())
    body = snapshot(
        "1", "1", rate_limit={"requests": -1, "interval": "10s"}, creator_user_id="user_x", free_model_daily_requests=3
    )
    it = {**item(key, alice.workspace_id, at(days_ago(1)), body), "trace": "abc"}
    r = await ingest.call("POST", "/internal/snapshots", {"items": [it], "sent_by": "worker"})
    assert r.status_code == 200, r.text
    assert (await read_key(client, alice, key))["usage"] == 1


async def test_metrics_count_ingestion(ingest, client, alice, service_app):
    def counter(text_: str, name: str) -> float:
        for line in text_.splitlines():
            if line.startswith((name + " ", name + "{")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = (await admin_get(service_app, "/metrics")).text
    key = str(uuid.uuid4())
    one = item(key, alice.workspace_id, at(days_ago(1)), snapshot("1", "1"))
    await ingest.snapshots(one, one)
    after = (await admin_get(service_app, "/metrics")).text
    stored = 'owr_usage_snapshots_ingested_total{outcome="stored"}'
    dup = 'owr_usage_snapshots_ingested_total{outcome="duplicate"}'
    assert counter(after, stored) - counter(before, stored) == 1
    assert counter(after, dup) - counter(before, dup) == 1
    assert key not in after
    assert "owr_usage_activity_rows_ingested_total" in after


async def test_a_later_day_snapshot_range_query(ingest, client, alice):
    """`to` alone: the 30 days up to it."""
    key = str(uuid.uuid4())
    d = days_ago(40)
    for i in range(3):
        await ingest.snapshots(item(key, alice.workspace_id, at(d + timedelta(days=i)), snapshot(str(i + 1), "1")))
    body = await read_key(client, alice, key, to=(d + timedelta(days=1)).isoformat())
    assert [x["date"] for x in body["daily"]] == [d.isoformat(), (d + timedelta(days=1)).isoformat()]


# --- reading a linked key: per-model days, activity-filled days; a management key's balance ----------


async def test_a_linked_key_reads_per_model_days_and_completed_days_from_activity(ingest, client, alice):
    label, hash_, mgmt = "sk-or-v1-abc...123", "c3" * 32, str(uuid.uuid4())
    key = str(uuid.uuid4())
    d3, d2, d1 = days_ago(3), days_ago(2), days_ago(1)
    # Snapshots on d2 and today: d2 stays provisional (no d1 snapshot), d3 and d1 have none at all.
    await ingest.snapshots(
        item(key, alice.workspace_id, at(d2, 20), snapshot("5", "0.5", label=label)),
        item(key, alice.workspace_id, at(days_ago(0), 1), snapshot("7", "0.25", label=label)),
    )
    listing = {"workspace_id": alice.workspace_id, "observed_at": at(days_ago(0), 1), "keys": [key_row(hash_, label)]}
    assert (await ingest.call("PUT", f"/internal/accounts/{mgmt}/keys", listing)).status_code == 204
    activity = activity_report(
        alice,
        hash_,
        observed_at=at(days_ago(0), 1),
        dates=[d3.isoformat(), d2.isoformat(), d1.isoformat()],
        rows=[
            activity_row(d2.isoformat(), "openai/gpt-4.1", "0.4", byok_usage_inference=D("0.1")),
            activity_row(d2.isoformat(), "openai/gpt-4.1", "0.3", provider_name="Azure", endpoint_id="e2"),
            activity_row(d2.isoformat(), "anthropic/claude", "0.0000000001"),
            activity_row(d1.isoformat(), "anthropic/claude", "1.25"),
        ],
    )
    assert (await ingest.call("PUT", f"/internal/accounts/{mgmt}/activity", activity)).status_code == 204

    body = await read_key(client, alice, key, **window(d3, days_ago(0)))
    rows = {row["date"]: row for row in body["daily"]}
    assert list(rows) == [d3.isoformat(), d2.isoformat(), d1.isoformat(), days_ago(0).isoformat()]
    # d3: fetched, no activity: a known zero.
    assert (rows[d3.isoformat()]["spend"], rows[d3.isoformat()]["models"]) == (0, [])
    # d2: the provisional snapshot figure (0.5) gives way to activity's exact total for the completed day.
    assert (money(rows[d2.isoformat()]["spend"]), rows[d2.isoformat()]["provisional"]) == (D("0.7000000001"), False)
    assert rows[d2.isoformat()]["source"] == "activity"
    models = {m["model"]: m for m in rows[d2.isoformat()]["models"]}
    assert money(models["openai/gpt-4.1"]["cost"]) == D("0.7")  # two providers, one model
    assert money(models["openai/gpt-4.1"]["byok_cost"]) == D("0.112")
    assert models["openai/gpt-4.1"]["requests"] == 10
    assert money(models["anthropic/claude"]["cost"]) == D("0.0000000001")
    assert money(rows[d1.isoformat()]["spend"]) == D("1.25")
    # Today: activity never covers it; the snapshot's provisional figure, no breakdown yet.
    today_row = rows[days_ago(0).isoformat()]
    assert (money(today_row["spend"]), today_row["provisional"], today_row["models"]) == (D("0.25"), True, None)


async def test_an_unlinked_key_has_day_totals_only(ingest, client, alice):
    key = str(uuid.uuid4())
    await ingest.snapshots(
        item(key, alice.workspace_id, at(days_ago(0), 1), snapshot("1", "0.5", label="sk-or-v1-zzz...zzz"))
    )
    body = await read_key(client, alice, key)
    assert body["linked"] is False
    assert all(row["models"] is None and row["source"] == "snapshots" for row in body["daily"])


async def test_a_management_key_reads_its_account_balance(ingest, client, alice):
    key = str(uuid.uuid4())
    await ingest.snapshots(
        item(key, alice.workspace_id, at(days_ago(0), 1), snapshot("0", "0", is_management_key=True))
    )
    assert (await read_key(client, alice, key))["account"] is None
    url = f"/internal/accounts/{key}/credits"
    for hour, credits, used in ((1, "100.5", "25.75"), (2, "137.141032391", "0.1015644762")):
        body = {
            "workspace_id": alice.workspace_id,
            "observed_at": at(days_ago(0), hour),
            "total_credits": D(credits),
            "total_usage": D(used),
        }
        assert (await ingest.call("POST", url, body)).status_code == 204
    account = (await read_key(client, alice, key))["account"]
    assert money(account["balance"]) == D("137.141032391") - D("0.1015644762")
    body = {"workspace_id": alice.workspace_id, "observed_at": at(days_ago(0), 3), "total_credits": 0, "total_usage": 0}
    assert (await ingest.call("POST", url, body)).status_code == 204
    account = (await read_key(client, alice, key))["account"]
    assert account["balance"] is None  # all zeros: unknown, not $0


# --- an erased workspace ---------------------------------------------------------------------------


async def test_account_reports_for_an_erased_workspace_store_nothing(
    ingest, client, service_headers, db_connection, alice
):
    """A management key's sync that reports after its workspace's erasure re-creates no row (finding 17)."""
    mgmt = str(uuid.uuid4())
    erase = await client.delete(f"/internal/workspaces/{alice.workspace_id}", headers=service_headers())
    assert erase.status_code == 204
    observed = at(days_ago(1), 9)
    credits = {"workspace_id": alice.workspace_id, "observed_at": observed, "total_credits": 1, "total_usage": 0}
    keys = {"workspace_id": alice.workspace_id, "observed_at": observed, "keys": [key_row("h1", "sk-or-v1-0e6...c96")]}
    for method, what, body in (("POST", "credits", credits), ("PUT", "keys", keys)):
        r = await ingest.call(method, f"/internal/accounts/{mgmt}/{what}", body)
        assert r.status_code == 204, r.text
    for table in ("account_balances", "account_keys", "accounts"):
        sql = f"SELECT count(*) AS n FROM usage.{table} WHERE workspace_id = :w"  # noqa: S608 - fixed names
        assert (await fetch(db_connection, sql, w=uuid.UUID(alice.workspace_id)))[0]["n"] == 0


async def test_the_workspaces_holding_figures_are_listed(ingest, client, service_headers, tenant_factory):
    tenants = sorted((tenant_factory() for _ in range(2)), key=lambda t: t.workspace_id)
    for tenant in tenants:
        await ingest.snapshots(item(str(uuid.uuid4()), tenant.workspace_id, at(days_ago(1)), snapshot("1", "1")))
    headers = service_headers("workspaces:delete")
    listed: list[str] = []
    after = None
    while True:
        r = await client.get("/internal/workspaces", headers=headers, params={"after": after} if after else {})
        assert r.status_code == 200, r.text
        listed += r.json()["items"]
        if (after := r.json()["next_after"]) is None:
            break
    assert [w for w in listed if w in {t.workspace_id for t in tenants}] == [t.workspace_id for t in tenants]
    assert listed == sorted(listed)
