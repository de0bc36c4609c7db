"""Retention removes history past the window (never inside it); erasure removes a workspace's everything."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import text

from tests.support.db import savepoint
from tests.usage.conftest import at, days_ago, item, read_key, snapshot, window

TABLES = (
    "snapshots",
    "key_days",
    "key_states",
    "activity",
    "activity_days",
    "account_keys",
    "account_balances",
    "accounts",
    "key_links",
    "daily_usage",
    "daily_key_totals",
    "daily_model_totals",
    "monthly_key_totals",
)


async def count(db_connection, table: str, workspace_id: str) -> int:
    async with savepoint(db_connection) as conn:
        sql = text(f"SELECT count(*) FROM usage.{table} WHERE workspace_id = :w")  # noqa: S608 (fixed names)
        return int((await conn.execute(sql, {"w": uuid.UUID(workspace_id)})).scalar_one())


async def fill(ingest, tenant, *, oldest_days_ago: int) -> tuple[str, str]:
    """A key with a snapshot every 100 days back to `oldest_days_ago`, and an account with everything."""
    key, mgmt = str(uuid.uuid4()), str(uuid.uuid4())
    ages = sorted({oldest_days_ago, oldest_days_ago - 1, 300, 2, 1}, reverse=True)
    for n, age in enumerate(ages):
        await ingest.snapshots(item(key, tenant.workspace_id, at(days_ago(age)), snapshot(str(n + 1), "1")))
    ws = tenant.workspace_id
    for age in (oldest_days_ago, 1):
        credits = {"workspace_id": ws, "observed_at": at(days_ago(age)), "total_credits": 10, "total_usage": age}
        assert (await ingest.call("POST", f"/internal/accounts/{mgmt}/credits", credits)).status_code == 204
    keys = {
        "workspace_id": ws,
        "observed_at": at(days_ago(1)),
        "keys": [{"hash": "ab" * 32, "label": "sk-or-v1-abc...123"}],
    }
    assert (await ingest.call("PUT", f"/internal/accounts/{mgmt}/keys", keys)).status_code == 204
    old, recent = days_ago(oldest_days_ago), days_ago(1)
    activity = {
        "workspace_id": ws,
        "observed_at": at(days_ago(0)),
        "api_key_hash": "ab" * 32,
        "dates": [old.isoformat(), recent.isoformat()],
        "rows": [
            {"date": old.isoformat(), "model": "m", "usage": 1},
            {"date": recent.isoformat(), "model": "m", "usage": 2},
        ],
    }
    assert (await ingest.call("PUT", f"/internal/accounts/{mgmt}/activity", activity)).status_code == 204
    return key, mgmt


async def test_retention_deletes_before_the_cutoff_but_never_inside_the_window(
    ingest, client, service_headers, db_connection, alice
):
    key, _ = await fill(ingest, alice, oldest_days_ago=500)
    before = {t: await count(db_connection, t, alice.workspace_id) for t in TABLES}
    # Asking for "everything before tomorrow" is clamped to the retention window (400 days).
    r = await client.post(
        "/internal/retention", headers=service_headers("usage:cleanup"), json={"before": (days_ago(-1)).isoformat()}
    )
    assert r.status_code == 200, r.text
    assert r.json()["before"] == days_ago(400).isoformat()
    assert r.json()["deleted"]["snapshots"] >= 2
    after = {t: await count(db_connection, t, alice.workspace_id) for t in TABLES}
    assert after["snapshots"] == before["snapshots"] - 2  # the two older than 400 days
    assert after["key_days"] == before["key_days"] - 2
    assert after["activity"] == after["activity_days"] == 1
    assert after["account_balances"] == 1
    assert after["account_keys"] == before["account_keys"] == 1
    # The read side loses the same days, and its rollups stay exact.
    assert r.json()["deleted"]["daily_usage"] >= 2
    for table in ("daily_usage", "daily_key_totals", "daily_model_totals"):
        assert after[table] == before[table] - 2, table
    assert after["key_links"] == before["key_links"] == 1
    # The key still reads, with its recent days intact.
    body = await read_key(client, alice, key, **window(days_ago(5)))
    assert [d["date"] for d in body["daily"]] == [days_ago(2).isoformat(), days_ago(1).isoformat()]
    # A second run finds nothing more of alice's.
    r = await client.post("/internal/retention", headers=service_headers("usage:cleanup"), json={})
    assert r.status_code == 200
    assert {t: await count(db_connection, t, alice.workspace_id) for t in TABLES} == after


async def test_retention_keeps_a_keys_latest_snapshot_however_old(
    ingest, client, service_headers, db_connection, alice
):
    key = str(uuid.uuid4())
    await ingest.snapshots(item(key, alice.workspace_id, at(days_ago(450)), snapshot("1", "1")))
    await ingest.snapshots(item(key, alice.workspace_id, at(days_ago(420)), snapshot("2", "1")))
    r = await client.post(
        "/internal/retention", headers=service_headers("usage:cleanup"), json={"before": days_ago(410).isoformat()}
    )
    assert r.json()["before"] == days_ago(410).isoformat()
    assert await count(db_connection, "snapshots", alice.workspace_id) == 1
    body = await read_key(client, alice, key)
    assert Decimal(str(body["usage"])) == 2
    assert body["daily"] == []


async def test_erasing_a_workspace_removes_everything_and_is_idempotent(
    ingest, client, service_headers, db_connection, alice, bob
):
    alices_key, _ = await fill(ingest, alice, oldest_days_ago=30)
    bobs_key, _ = await fill(ingest, bob, oldest_days_ago=30)
    url = f"/internal/workspaces/{alice.workspace_id}"
    for _ in range(2):
        r = await client.delete(url, headers=service_headers("workspaces:delete"))
        assert r.status_code == 204, r.text
    assert {t: await count(db_connection, t, alice.workspace_id) for t in TABLES} == dict.fromkeys(TABLES, 0)
    assert (await client.get(f"/api/v1/usage/keys/{alices_key}", headers=alice.headers)).status_code == 404
    # Bob's figures are untouched.
    assert all([await count(db_connection, t, bob.workspace_id) for t in TABLES])
    assert (await read_key(client, bob, bobs_key))["daily"]
    r = await client.delete(f"/internal/workspaces/{uuid.uuid4()}", headers=service_headers("workspaces:delete"))
    assert r.status_code == 204
    assert (await client.delete("/internal/workspaces/nope", headers=service_headers())).status_code == 422


async def test_a_sync_reporting_after_the_erasure_stores_nothing(ingest, client, service_headers, alice, bob):
    """The erased workspace is tombstoned: a sync in flight during the account's deletion, reporting
    after it, re-creates nothing (finding 17); a batch mixing workspaces keeps the others' items."""
    key, other = str(uuid.uuid4()), str(uuid.uuid4())
    await ingest.snapshots(item(key, alice.workspace_id, at(days_ago(2)), snapshot("1", "1")))
    await client.delete(f"/internal/workspaces/{alice.workspace_id}", headers=service_headers())
    late = item(key, alice.workspace_id, at(days_ago(1)), snapshot("3", "1"))
    kept = item(other, bob.workspace_id, at(days_ago(1)), snapshot("2", "1"))
    assert await ingest.snapshots(late, kept) == {"stored": 1, "duplicates": 0, "erased": 1}
    await read_key(client, alice, key, expect=404, **window(days_ago(1) - timedelta(days=3)))
    body = await read_key(client, bob, other, **window(days_ago(1) - timedelta(days=3)))
    assert [d["date"] for d in body["daily"]] == [days_ago(1).isoformat()]


async def test_retention_keeps_the_monthly_rollup_exact_for_the_month_it_cuts(
    ingest, client, service_headers, db_connection, alice
):
    key = str(uuid.uuid4())
    lifetime = 0
    for age in (403, 402, 401, 400, 399, 398, 2):
        lifetime += age
        await ingest.snapshots(item(key, alice.workspace_id, at(days_ago(age)), snapshot(str(lifetime), "0")))
    r = await client.post("/internal/retention", headers=service_headers("usage:cleanup"), json={})
    assert r.json()["before"] == days_ago(400).isoformat()
    sql = text(
        """
        SELECT m.month, m.cost, m.rows, COALESCE(d.cost, 0), COALESCE(d.rows, 0)
        FROM usage.monthly_key_totals m
        LEFT JOIN (SELECT date_trunc('month', day)::date AS month, sum(cost) AS cost, sum(rows) AS rows
                   FROM usage.daily_key_totals WHERE workspace_id = :w GROUP BY 1) d ON d.month = m.month
        WHERE m.workspace_id = :w
        """
    )
    async with savepoint(db_connection) as conn:
        months = (await conn.execute(sql, {"w": uuid.UUID(alice.workspace_id)})).all()
    assert months
    for month, cost, rows, day_cost, day_rows in months:
        assert (cost, rows) == (day_cost, day_rows), month
        assert month >= days_ago(400).replace(day=1)
