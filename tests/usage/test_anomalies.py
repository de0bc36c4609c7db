"""Anomaly detection per key (issue 17) on generated histories ingested as the worker reports them: every planted
anomaly is found, clean synthetic series stay under a 1 % false-positive rate, the baseline is the median and MAD
of the same weekday over 8 weeks, and the events go through the outbox once."""

from __future__ import annotations

import random
import statistics
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from owr_usage.anomalies.service import evaluate, found_in
from tests.support.db import savepoint
from tests.usage.conftest import days_ago, today
from tests.usage.histories import (
    History,
    generate,
    ingest_histories,
    plant_dormancy,
    plant_new_model,
    plant_requests_without_spend,
    plant_spend_without_requests,
    plant_spike,
    report_activity,
    scale,
)

FIRST, LAST = days_ago(70), days_ago(1)
# Days with at least 3 earlier same-weekday points (the minimum the baseline needs) are judged for spikes.
JUDGED_FROM = FIRST + timedelta(days=21)
# The false-positive rate clean synthetic series must stay under (docs/decisions.md).
MAX_FALSE_POSITIVE_RATE = 0.01


def generate_where(rng: random.Random, keep: Callable[[History], bool]) -> History:
    """A generated history that `keep` accepts (a planted anomaly needs a day big enough to count)."""
    while True:
        history = generate(rng, FIRST, LAST)
        if keep(history):
            return history


def requests_on(history: History, day: date) -> int:
    return sum(m.requests for m in history.days[day].values())


async def rows_of(db_connection, sql: str, workspace_id: str) -> list[dict[str, Any]]:
    async with savepoint(db_connection) as conn:
        return [dict(row._mapping) for row in await conn.execute(text(sql), {"w": uuid.UUID(workspace_id)})]


async def anomalies(db_connection, workspace_id: str) -> list[dict[str, Any]]:
    sql = "SELECT key_id, day, kind, score, evidence FROM usage.key_anomalies WHERE workspace_id = :w"
    return await rows_of(db_connection, sql, workspace_id)


async def anomaly_events(db_connection, workspace_id: str) -> list[dict[str, Any]]:
    sql = "SELECT dedup_key, data FROM usage.alert_events WHERE workspace_id = :w AND type = 'key.anomaly'"
    return await rows_of(db_connection, sql, workspace_id)


def planted_histories(rng: random.Random) -> list[History]:
    spike = generate_where(rng, lambda h: h.cost(days_ago(1)) >= Decimal("0.5") and h.cost(days_ago(20)) >= 1)
    plant_spike(spike, days_ago(1))
    plant_spike(spike, days_ago(20), factor=8)
    quiet_spike = generate_where(rng, lambda h: requests_on(h, days_ago(2)) >= 20)
    plant_requests_without_spend(quiet_spike, days_ago(2))
    costly = generate_where(rng, lambda h: h.cost(days_ago(10)) >= 1 and requests_on(h, days_ago(10)) >= 5)
    plant_spend_without_requests(costly, days_ago(10))
    new_model = generate(rng, FIRST, LAST)
    plant_new_model(new_model, days_ago(5))
    dormant = generate_where(rng, lambda h: h.cost(days_ago(8)) >= 2)
    plant_dormancy(dormant, days_ago(30), days_ago(8))
    return [spike, quiet_spike, costly, new_model, dormant]


async def test_planted_anomalies_are_found_and_clean_series_stay_under_the_false_positive_rate(
    ingest, db_connection, alice
):
    rng = random.Random(17)
    planted = planted_histories(rng)
    clean = [generate(rng, FIRST, LAST) for _ in range(40)]
    await ingest_histories(ingest, alice, planted + clean)
    found = await anomalies(db_connection, alice.workspace_id)
    by_key: dict[str, set[tuple[date, str]]] = {}
    for row in found:
        by_key.setdefault(str(row["key_id"]), set()).add((row["day"], row["kind"]))

    for history in planted:
        assert history.planted <= by_key.get(history.key_id, set()), (history.planted, by_key.get(history.key_id))

    judged = sum(1 for h in clean for day in h.days if day >= JUDGED_FROM)
    false_positives = sum(len(by_key.get(h.key_id, set())) for h in clean)
    # Measured: 0 of 1,960 judged clean key-days with seed 17 (and 0 of 2,205 over seeds 1-3, below).
    assert false_positives / judged < MAX_FALSE_POSITIVE_RATE, (false_positives, judged)
    assert judged > 1500


async def test_the_false_positive_rate_holds_for_other_seeds(ingest, db_connection, alice):
    """The same bound over other seeds' clean series (noisier keys, different rhythms)."""
    false_positives = judged = 0
    for seed in (1, 2, 3):
        rng = random.Random(seed)
        clean = [generate(rng, FIRST, LAST) for _ in range(15)]
        await ingest_histories(ingest, alice, clean)
        judged += sum(1 for h in clean for day in h.days if day >= JUDGED_FROM)
        keys = {h.key_id for h in clean}
        false_positives += sum(
            1 for row in await anomalies(db_connection, alice.workspace_id) if str(row["key_id"]) in keys
        )
    assert false_positives / judged < MAX_FALSE_POSITIVE_RATE, (false_positives, judged)


async def test_a_spikes_evidence_is_the_median_and_mad_of_the_same_weekday_over_eight_weeks(
    ingest, db_connection, alice
):
    rng = random.Random(5)
    history = generate_where(rng, lambda h: h.cost(days_ago(1)) >= 1)
    plant_spike(history, days_ago(1), factor=12)
    await ingest_histories(ingest, alice, [history])
    found = await anomalies(db_connection, alice.workspace_id)
    (spike,) = [row for row in found if (row["day"], row["kind"]) == (days_ago(1), "spend_spike")]
    points = [float(history.cost(days_ago(1 + 7 * n))) for n in range(1, 9)]
    median = statistics.median(points)
    mad = statistics.median(abs(p - median) for p in points)
    evidence = spike["evidence"]
    assert Decimal(evidence["spend_usd"]) == history.cost(days_ago(1))
    assert abs(float(evidence["baseline_usd"]) - median) < 1e-5
    assert abs(float(evidence["mad_usd"]) - mad) < 1e-5
    assert evidence["baseline_days"] == 8
    sigma = max(1.4826 * mad, 0.25 * median, 0.1)
    assert abs(spike["score"] - (float(history.cost(days_ago(1))) - median) / sigma) < 0.01


async def test_a_new_key_is_not_judged_before_its_history_allows(ingest, db_connection, alice):
    """Two weeks of history: under 3 same-weekday points, so even a tenfold day is no spike; a model on day 3 is
    not new (the first week is the key's grace)."""
    rng = random.Random(9)
    history = generate(rng, days_ago(14), days_ago(1))
    plant_spike(history, days_ago(1))
    history.days[days_ago(12)]["x-ai/early"] = history.days[days_ago(12)].popitem()[1]
    await ingest_histories(ingest, alice, [history])
    assert await anomalies(db_connection, alice.workspace_id) == []


async def test_each_anomaly_is_one_event_through_the_outbox_and_re_ingestion_raises_none(ingest, db_connection, alice):
    rng = random.Random(23)
    history = generate_where(rng, lambda h: h.cost(days_ago(1)) >= 1 and h.cost(days_ago(20)) >= 1)
    plant_spike(history, days_ago(1))
    plant_spike(history, days_ago(20))
    account = await ingest_histories(ingest, alice, [history])
    events = await anomaly_events(db_connection, alice.workspace_id)
    # The backfill's old spike is stored and listed, but only the fresh one is news.
    assert [e["dedup_key"] for e in events] == [f"key.anomaly:{history.key_id}:{days_ago(1)}:spend_spike"]
    data = events[0]["data"]
    assert data["key_id"] == history.key_id
    assert data["label"] == history.label
    assert data["key_name"] == "key 0"
    assert (data["day"], data["kind"]) == (str(days_ago(1)), "spend_spike")
    assert data["score"] > 6
    assert Decimal(data["evidence"]["spend_usd"]) == history.cost(days_ago(1))
    stored = await anomalies(db_connection, alice.workspace_id)
    assert {(row["day"], row["kind"]) for row in stored} == {
        (days_ago(1), "spend_spike"),
        (days_ago(20), "spend_spike"),
    }

    # The same day reported again, later: nothing new, no second event.
    await report_activity(ingest, alice, account, history, observed_hour=9)
    assert len(await anomaly_events(db_connection, alice.workspace_id)) == 1
    assert len(await anomalies(db_connection, alice.workspace_id)) == 2


async def test_the_rule_switched_off_or_above_min_score_stores_but_raises_nothing(
    client, ingest, db_connection, alice, bob
):
    rng = random.Random(31)
    for tenant, setting in ((alice, {"enabled": False}), (bob, {"params": {"min_score": 100000}})):
        r = await client.put(
            "/api/v1/alert-rules", headers=tenant.headers, json={"items": [{"rule": "key.anomaly", **setting}]}
        )
        assert r.status_code == 200, r.text
        history = generate_where(rng, lambda h: h.cost(days_ago(1)) >= 1)
        plant_spike(history, days_ago(1))
        await ingest_histories(ingest, tenant, [history])
        assert [row["kind"] for row in await anomalies(db_connection, tenant.workspace_id)] == ["spend_spike"]
        assert await anomaly_events(db_connection, tenant.workspace_id) == []


def copied(history: History) -> History:
    """The same days under another key (a key belongs to one workspace)."""
    n = uuid.uuid4().hex
    return replace(history, key_id=str(uuid.uuid4()), label=f"sk-or-v1-{n[:3]}...{n[3:6]}", hash=n * 2, planted=set())


async def test_cents_never_alarm_and_min_usd_is_the_workspaces(client, ingest, db_connection, alice, bob):
    rng = random.Random(41)
    # A key of a cent and a half a day whose day is fifty times that: a z over 6 even against the 10-cent floor
    # of the spread, but under a dollar more than usual.
    cents = generate(rng, FIRST, LAST)
    shrink = 0.015 / float(cents.cost(days_ago(1)))
    for day in cents.days:
        scale(cents, day, cost=shrink)
    plant_spike(cents, days_ago(1), factor=50)
    # A dollar key four times its usual: about $3 more.
    dollars = generate_where(rng, lambda h: Decimal("0.9") <= h.cost(days_ago(1)) <= Decimal("1.2"))
    plant_spike(dollars, days_ago(1), factor=4)
    r = await client.put(
        "/api/v1/alert-rules",
        headers=alice.headers,
        json={"items": [{"rule": "key.anomaly", "params": {"min_usd": "5"}}]},
    )
    assert r.status_code == 200, r.text
    await ingest_histories(ingest, alice, [cents, dollars])
    await ingest_histories(ingest, bob, [copied(cents), bobs := copied(dollars)])
    assert await anomalies(db_connection, alice.workspace_id) == []
    found = await anomalies(db_connection, bob.workspace_id)
    assert [(str(r["key_id"]), r["day"], r["kind"]) for r in found] == [(bobs.key_id, days_ago(1), "spend_spike")]


async def test_a_transaction_answers_what_it_found_for_a_kill_switch(ingest, db_connection, alice):
    """`anomalies.service.evaluate` answers the anomalies a transaction found, and `found_in` gathers them for a
    later step of the same transaction; what was stored before is not found again."""
    rng = random.Random(47)
    history = generate_where(rng, lambda h: h.cost(days_ago(1)) >= 1)
    plant_spike(history, days_ago(1))
    await ingest_histories(ingest, alice, [history])
    workspace, key = uuid.UUID(alice.workspace_id), uuid.UUID(history.key_id)
    clock = {workspace: datetime.combine(today(), time(6), tzinfo=UTC)}
    async with savepoint(db_connection) as conn:
        await conn.execute(text("DELETE FROM usage.key_anomalies WHERE workspace_id = :w"), {"w": workspace})
        session = AsyncSession(bind=conn)
        assert found_in(session) == []
        first = await evaluate(session, clock, [(workspace, key, days_ago(1)), (workspace, key, days_ago(3))])
        assert [(a.key_id, a.day, a.kind, a.new) for a in first] == [(key, days_ago(1), "spend_spike", True)]
        assert first[0].score > 6
        assert await evaluate(session, clock, [(workspace, key, days_ago(1))]) == []
        assert found_in(session) == first
        await session.close()
