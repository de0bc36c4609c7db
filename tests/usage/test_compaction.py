"""Snapshot compaction: past the full window each key-day keeps its first and last snapshot, and every
figure stays exact, before and after late snapshots (a property against a naive reference)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests.support.db import savepoint
from tests.support.http import assert_problem
from tests.usage.conftest import at, days_ago, item, snapshot

LOOKBACK = 12  # days the tests' compaction looks back (their snapshots are at most 9 days old)

amounts = st.one_of(
    st.sampled_from([Decimal(0), Decimal(1)]),
    st.decimals(min_value=0, max_value=50, places=6, allow_nan=False, allow_infinity=False),
)
# (key, age in days, hour, usage, usage_daily): ages 0-1 are inside the 48 h window, 3-9 past it.
snapshot_op = st.tuples(st.integers(0, 1), st.sampled_from([0, 1, 3, 4, 4, 5, 9]), st.integers(0, 23), amounts, amounts)


def delivery(keys: list[str], workspace_id: str, ops: list[Any], offset: int) -> list[dict[str, Any]]:
    """Each op a distinct instant (its index in the minutes and seconds), so none is a redelivery."""
    out = []
    for n, (k, age, hour, usage, daily) in enumerate(ops, start=offset):
        body = snapshot(usage, daily, byok_usage=usage / 2, byok_usage_daily=daily / 2)
        out.append(item(keys[k], workspace_id, at(days_ago(age), hour, n % 60, n // 60), body))
    return out


def naive_days(items: list[dict[str, Any]]) -> dict[tuple[str, date], tuple[Decimal, Decimal, bool]]:
    """key_days from every snapshot ever delivered: start(D) = usage - usage_daily of D's first snapshot;
    final spend(D) = start(D+1) - start(D) when D+1 has one, else usage_daily of D's last (BYOK alike)."""
    by_day: dict[tuple[str, date], list[tuple[datetime, dict[str, Any]]]] = defaultdict(list)
    for i in items:
        by_day[(i["key_id"], i["observed_at"].date())].append((i["observed_at"], i["snapshot"]))
    out = {}
    for (key, day), seen in by_day.items():
        first, last = min(seen, key=lambda s: s[0])[1], max(seen, key=lambda s: s[0])[1]
        following = by_day.get((key, day + timedelta(days=1)))
        if following:
            nxt = min(following, key=lambda s: s[0])[1]
            spend = (nxt["usage"] - nxt["usage_daily"]) - (first["usage"] - first["usage_daily"])
            byok = (nxt["byok_usage"] - nxt["byok_usage_daily"]) - (first["byok_usage"] - first["byok_usage_daily"])
            out[(key, day)] = (spend, byok, True)
        else:
            out[(key, day)] = (last["usage_daily"], last["byok_usage_daily"], False)
    return out


async def stored_days(db_connection, keys: list[str]) -> dict[tuple[str, date], tuple[Decimal, Decimal, bool]]:
    async with savepoint(db_connection) as conn:
        rows = await conn.execute(
            text("SELECT key_id, day, spend, byok_spend, final FROM usage.key_days WHERE key_id = ANY(:k)"),
            {"k": [uuid.UUID(k) for k in keys]},
        )
        return {(str(r.key_id), r.day): (r.spend, r.byok_spend, r.final) for r in rows}


async def rows_per_day(db_connection, keys: list[str]) -> dict[tuple[str, date], int]:
    async with savepoint(db_connection) as conn:
        rows = await conn.execute(
            text(
                "SELECT key_id, (observed_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM usage.snapshots "
                "WHERE key_id = ANY(:k) GROUP BY 1, 2"
            ),
            {"k": [uuid.UUID(k) for k in keys]},
        )
        return {(str(r.key_id), r.day): int(r.n) for r in rows}


async def compact(ingest, cleanup_headers: dict[str, str], **body: Any) -> dict[str, Any]:
    """Every batch, as the worker's cron runs them: {deleted, keys, calls, before}."""
    body = {"since": days_ago(LOOKBACK).isoformat(), **body}
    deleted = keys = calls = 0
    while True:
        r = await ingest.client.post("/internal/snapshots/compaction", headers=cleanup_headers, json=body)
        assert r.status_code == 200, r.text
        answer = r.json()
        deleted, keys, calls = deleted + answer["deleted"], keys + answer["keys"], calls + 1
        if answer["next_after"] is None:
            return {"deleted": deleted, "keys": keys, "calls": calls, "before": answer["before"]}
        body["after"] = answer["next_after"]


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=st.lists(snapshot_op, min_size=1, max_size=24),
    late=st.lists(snapshot_op, max_size=6),
)
async def test_compaction_keeps_every_figure_exact(ingest, db_connection, service_headers, tenant_factory, ops, late):
    tenant = tenant_factory()
    keys = [str(uuid.uuid4()) for _ in range(2)]
    cleanup = service_headers("usage:cleanup")
    first = delivery(keys, tenant.workspace_id, ops, 0)
    for one in first:
        await ingest.snapshots(one)
    before = await rows_per_day(db_connection, keys)

    event("compacted" if (await compact(ingest, cleanup))["deleted"] else "nothing to compact")
    assert await stored_days(db_connection, keys) == naive_days(first)
    after = await rows_per_day(db_connection, keys)
    cutoff = days_ago(2)  # the UTC days past 48 h, whatever the hour now
    for (key, day), n in after.items():
        assert n <= 2 if day < cutoff else n == before[(key, day)]
    assert set(after) == set(before)  # no day lost its snapshots
    assert (await compact(ingest, cleanup))["deleted"] == 0  # idempotent

    # Late snapshots (any day) re-derive their days from what compaction left: still the naive figure.
    more = delivery(keys, tenant.workspace_id, late, len(ops))
    for one in more:
        await ingest.snapshots(one)
    await compact(ingest, cleanup)
    assert await stored_days(db_connection, keys) == naive_days(first + more)


async def test_compaction_thins_old_days_to_first_and_last_and_spares_the_window(
    ingest, client, db_connection, service_headers, tenant_factory
):
    tenant = tenant_factory()
    key = str(uuid.uuid4())
    cleanup = service_headers("usage:cleanup")
    for age in (5, 1):  # a sync every 10 minutes, as the worker does by default
        for n in range(144):
            usage = Decimal(age * 1000 + n)
            when = at(days_ago(age), n // 6, (n % 6) * 10)
            await ingest.snapshots(item(key, tenant.workspace_id, when, snapshot(usage, Decimal(n))))
    assert await rows_per_day(db_connection, [key]) == {(key, days_ago(5)): 144, (key, days_ago(1)): 144}

    # Asking for more than the window allows is clamped: the last 48 h keep every snapshot.
    result = await compact(ingest, cleanup, before=days_ago(-1).isoformat())
    assert result["before"] == days_ago(2).isoformat() or result["before"] == days_ago(1).isoformat()
    # Compaction is global: other suites' committed snapshots in the window may be thinned by the same run (a full
    # CI run once counted 143). This key's 142 are counted exactly by its rows just below.
    assert result["deleted"] >= 142
    assert await rows_per_day(db_connection, [key]) == {(key, days_ago(5)): 2, (key, days_ago(1)): 144}
    async with savepoint(db_connection) as conn:
        kept = await conn.execute(
            text("SELECT observed_at FROM usage.snapshots WHERE key_id = :k AND observed_at < :t ORDER BY 1"),
            {"k": uuid.UUID(key), "t": at(days_ago(4), 0)},
        )
        assert [r.observed_at for r in kept] == [at(days_ago(5), 0, 0), at(days_ago(5), 23, 50)]
    # The key's figure of that day rests on a snapshot that is still there (the audit of a figure).
    r = await client.get(f"/api/v1/usage/keys/{key}", headers=tenant.headers, params={"from": days_ago(6).isoformat()})
    assert r.status_code == 200, r.text
    assert {d["date"]: d["spend"] for d in r.json()["daily"]}[days_ago(5).isoformat()] in (143, "143")


async def test_compaction_goes_batch_by_batch(ingest, service_headers, tenant_factory):
    tenant = tenant_factory()
    for _ in range(3):
        key = str(uuid.uuid4())
        for hour in (1, 2, 3):
            await ingest.snapshots(item(key, tenant.workspace_id, at(days_ago(4), hour), snapshot("1", "1")))
    result = await compact(ingest, service_headers("usage:cleanup"), keys=1)
    assert result["calls"] == result["keys"] + 1  # one key a call, then an empty batch ends it
    assert result["deleted"] >= 3


async def test_compaction_needs_the_cleanup_scope_and_a_valid_body(client, service_headers, alice):
    url = "/internal/snapshots/compaction"
    assert_problem(await client.post(url, headers=service_headers("usage:ingest"), json={}), 403)
    assert_problem(await client.post(url, headers=alice.headers, json={}), 401)
    for body in ({"keys": 0}, {"keys": 10_001}, {"after": "x"}, {"before": "2026-13-01"}):
        assert_problem(await client.post(url, headers=service_headers("usage:cleanup"), json=body), 422)
