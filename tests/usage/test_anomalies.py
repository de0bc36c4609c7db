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
    ModelDay,
    active_days,
    generate,
    generate_occasional,
    generate_weekday_only,
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


def generate_where(
    rng: random.Random, keep: Callable[[History], bool], make: Callable[..., History] = generate
) -> History:
    """A generated history that `keep` accepts (a planted anomaly needs a day big enough to count)."""
    while True:
        history = make(rng, FIRST, LAST)
        if keep(history):
            return history


def clean_keys(rng: random.Random, regular: int, occasional: int, weekday_only: int) -> list[History]:
    """Keys used every day, on 20-50 % of days, and Monday to Friday only."""
    return (
        [generate(rng, FIRST, LAST) for _ in range(regular)]
        + [generate_occasional(rng, FIRST, LAST) for _ in range(occasional)]
        + [generate_weekday_only(rng, FIRST, LAST) for _ in range(weekday_only)]
    )


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
    # Ten times an occasional key's usual day with spend, and a weekday-only key's.
    occasional = generate_where(rng, lambda h: h.cost(days_ago(3)) >= Decimal("0.5"), generate_occasional)
    plant_spike(occasional, days_ago(3))
    weekdays = generate_where(rng, lambda h: h.cost(days_ago(4)) >= Decimal("0.5"), generate_weekday_only)
    plant_spike(weekdays, days_ago(4))
    return [spike, quiet_spike, costly, new_model, dormant, occasional, weekdays]


async def test_planted_anomalies_are_found_and_clean_series_stay_under_the_false_positive_rate(
    ingest, db_connection, alice
):
    rng = random.Random(17)
    planted = planted_histories(rng)
    clean = clean_keys(rng, regular=40, occasional=15, weekday_only=10)
    await ingest_histories(ingest, alice, planted + clean)
    found = await anomalies(db_connection, alice.workspace_id)
    by_key: dict[str, set[tuple[date, str]]] = {}
    for row in found:
        by_key.setdefault(str(row["key_id"]), set()).add((row["day"], row["kind"]))

    for history in planted:
        assert history.planted <= by_key.get(history.key_id, set()), (history.planted, by_key.get(history.key_id))

    judged = sum(active_days(h, JUDGED_FROM) for h in clean)
    false_positives = sum(len(by_key.get(h.key_id, set())) for h in clean)
    # Measured: 1 of 2,607 judged clean key-days with spend with seed 17 (and 0 of 2,056 over seeds 1-3, below).
    assert false_positives / judged < MAX_FALSE_POSITIVE_RATE, (false_positives, judged)
    assert judged > 1500


async def test_the_false_positive_rate_holds_for_other_seeds(ingest, db_connection, alice):
    """The same bound over other seeds' clean series (noisier keys, different rhythms)."""
    false_positives = judged = 0
    for seed in (1, 2, 3):
        rng = random.Random(seed)
        clean = clean_keys(rng, regular=10, occasional=5, weekday_only=3)
        await ingest_histories(ingest, alice, clean)
        judged += sum(active_days(h, JUDGED_FROM) for h in clean)
        keys = {h.key_id for h in clean}
        false_positives += sum(
            1 for row in await anomalies(db_connection, alice.workspace_id) if str(row["key_id"]) in keys
        )
    assert false_positives / judged < MAX_FALSE_POSITIVE_RATE, (false_positives, judged)


async def test_occasional_keys_are_judged_against_their_days_with_spend(ingest, db_connection, alice):
    """Keys spending $1.50-$4.50 on about 40 % of days: most of their last 8 same weekdays spent nothing, which
    must not make an ordinary day with spend a spike; ten times their usual day still is one."""
    rng = random.Random(61)
    keys = []
    for _ in range(10):
        history = generate_occasional(rng, FIRST, LAST)
        for day, models in history.days.items():
            history.days[day] = {"openai/gpt-4.1": ModelDay(Decimal(f"{rng.uniform(1.5, 4.5):.2f}"), 100)}
            if not models:
                history.days[day] = {}
        keys.append(history)
    spiky = keys[0]
    spiky.days[days_ago(2)] = {"openai/gpt-4.1": ModelDay(Decimal(30), 1000)}
    await ingest_histories(ingest, alice, keys)
    found = {(str(r["key_id"]), r["day"], r["kind"]): r for r in await anomalies(db_connection, alice.workspace_id)}
    spike = found.pop((spiky.key_id, days_ago(2), "spend_spike"))
    assert Decimal(spike["evidence"]["baseline_usd"]) <= Decimal("4.5")
    judged = sum(active_days(h, JUDGED_FROM) for h in keys)
    assert len(found) / judged < MAX_FALSE_POSITIVE_RATE, (sorted(found), judged)
    assert judged > 150


async def test_a_spikes_evidence_is_the_median_and_mad_of_the_same_weekday_over_eight_weeks(
    ingest, db_connection, alice
):
    rng = random.Random(5)
    history = generate_where(rng, lambda h: h.cost(days_ago(1)) >= 1)
    plant_spike(history, days_ago(1), factor=12)
    await ingest_histories(ingest, alice, [history])
    found = await anomalies(db_connection, alice.workspace_id)
    (spike,) = [row for row in found if (row["day"], row["kind"]) == (days_ago(1), "spend_spike")]
    points = [history.cost(days_ago(1 + 7 * n)) for n in range(1, 9)]
    median = statistics.median(points)
    mad = statistics.median(abs(p - median) for p in points)
    evidence = spike["evidence"]
    assert Decimal(evidence["spend_usd"]) == history.cost(days_ago(1))
    # Money is exact: the mean of the two middle days, to the last digit.
    assert Decimal(evidence["baseline_usd"]) == median
    assert Decimal(evidence["mad_usd"]) == mad
    assert (evidence["baseline_days"], evidence["baseline"]) == (8, "weekday")
    sigma = max(Decimal("1.4826") * mad, Decimal("0.25") * median, Decimal("0.1"))
    assert abs(spike["score"] - float((history.cost(days_ago(1)) - median) / sigma)) < 0.01


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


async def test_a_spike_growing_past_min_score_later_in_the_day_is_announced_once(client, ingest, db_connection, alice):
    """Today's provisional spend grows: scored under `min_score` at first (stored, not news), then past it."""
    r = await client.put(
        "/api/v1/alert-rules",
        headers=alice.headers,
        json={"items": [{"rule": "key.anomaly", "params": {"min_score": 30}}]},
    )
    assert r.status_code == 200, r.text
    rng = random.Random(67)
    history = generate_where(rng, lambda h: h.cost(days_ago(1)) >= 1)
    plant_spike(history, days_ago(1), factor=5)
    account = await ingest_histories(ingest, alice, [history])
    ((first,),) = [[r["score"] for r in await anomalies(db_connection, alice.workspace_id)]]
    assert 6 <= first < 30
    assert await anomaly_events(db_connection, alice.workspace_id) == []

    scale(history, days_ago(1), cost=10, requests=10)
    await report_activity(ingest, alice, account, history, observed_hour=9)
    ((later,),) = [[r["score"] for r in await anomalies(db_connection, alice.workspace_id)]]
    assert later >= 30
    events = await anomaly_events(db_connection, alice.workspace_id)
    assert [e["dedup_key"] for e in events] == [f"key.anomaly:{history.key_id}:{days_ago(1)}:spend_spike"]
    assert events[0]["data"]["score"] == later

    # Higher still: the same one event.
    scale(history, days_ago(1), cost=2, requests=2)
    await report_activity(ingest, alice, account, history, observed_hour=10)
    assert len(await anomaly_events(db_connection, alice.workspace_id)) == 1


async def test_spend_moving_without_requests_is_one_anomaly_and_one_event(ingest, db_connection, alice):
    rng = random.Random(71)
    history = generate_where(rng, lambda h: h.cost(days_ago(1)) >= 1 and requests_on(h, days_ago(1)) >= 5)
    plant_spend_without_requests(history, days_ago(1))
    await ingest_histories(ingest, alice, [history])
    assert [(r["day"], r["kind"]) for r in await anomalies(db_connection, alice.workspace_id)] == [
        (days_ago(1), "spend_spike")
    ]
    events = await anomaly_events(db_connection, alice.workspace_id)
    assert [e["data"]["kind"] for e in events] == ["spend_spike"]


def flat(spend: str, spike: str) -> History:
    """A key spending `spend` every day, and `spike` yesterday (requests following spend)."""
    days = {}
    for back in range(70, 0, -1):
        cost = Decimal(spike if back == 1 else spend)
        days[days_ago(back)] = {"openai/gpt-4.1": ModelDay(cost, int(cost * 10))}
    n = uuid.uuid4().hex
    return History(str(uuid.uuid4()), f"sk-or-v1-{n[:3]}...{n[3:6]}", n * 2, days)


async def test_min_usd_is_compared_exactly(client, ingest, db_connection, alice):
    """$3.30 against a usual $1.10 is exactly $2.20 more (in floats 3.3 - 1.1 is 2.1999999999999997)."""
    r = await client.put(
        "/api/v1/alert-rules",
        headers=alice.headers,
        json={"items": [{"rule": "key.anomaly", "params": {"min_usd": "2.2"}}]},
    )
    assert r.status_code == 200, r.text
    history = flat("1.1", "3.3")
    await ingest_histories(ingest, alice, [history])
    (spike,) = await anomalies(db_connection, alice.workspace_id)
    assert (spike["day"], spike["kind"]) == (days_ago(1), "spend_spike")
    assert spike["evidence"]["baseline_usd"] == "1.1"
    assert spike["evidence"]["mad_usd"] == "0"
