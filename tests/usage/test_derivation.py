"""Exact daily spend from snapshots: finalisation across midnight, out-of-order and repeated deliveries,
gaps, windows. Every figure is compared as an exact Decimal."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta
from decimal import Decimal

from owr_shared.db import create_sessionmaker
from owr_usage.snapshots.schemas import SnapshotItem
from owr_usage.snapshots.service import ingest as ingest_items
from tests.usage.conftest import at, daily, days_ago, item, read_key, snapshot, today, window

D = Decimal


async def test_a_day_becomes_final_and_exact_once_the_next_day_is_seen(ingest, client, alice):
    key = str(uuid.uuid4())
    d0, d1 = days_ago(5), days_ago(4)
    # Lifetime 10 at d0's start; 0.1015644762 by 23:50, 0.0000000007 more before midnight.
    late = item(
        key,
        alice.workspace_id,
        at(d0, 23, 50),
        snapshot("10.1015644762", "0.1015644762", byok_usage="2.5", byok_usage_daily="0.5"),
    )
    assert await ingest.snapshots(late) == {"stored": 1, "duplicates": 0, "erased": 0}
    body = await read_key(client, alice, key, **window(d0, d1))
    assert daily(body) == {d0.isoformat(): (D("0.1015644762"), D("0.5"), True)}

    nxt = item(
        key,
        alice.workspace_id,
        at(d1, 0, 10),
        snapshot("10.1315644770", "0.0300000001", byok_usage="2.75", byok_usage_daily="0.125"),
    )
    assert await ingest.snapshots(nxt) == {"stored": 1, "duplicates": 0, "erased": 0}
    body = await read_key(client, alice, key, **window(d0, d1))
    assert daily(body) == {
        d0.isoformat(): (D("0.1015644769"), D("0.625"), False),
        d1.isoformat(): (D("0.0300000001"), D("0.125"), True),
    }
    # The JSON number carries exactly the digits, no float round trip.
    r = await client.get(f"/api/v1/usage/keys/{key}", headers=alice.headers, params=window(d0, d1))
    assert b'"spend":0.1015644769' in r.content


async def test_order_of_delivery_does_not_matter(ingest, client, alice, bob):
    """The same snapshots delivered in two different orders (and in one batch vs many) give the same days."""
    key_a, key_b = str(uuid.uuid4()), str(uuid.uuid4())
    d0 = days_ago(10)
    # usage accumulates; each snapshot is (time, usage, usage_daily)
    timeline = [
        (at(d0, 1), "5.0000000001", "0.0000000001"),
        (at(d0, 13), "5.25", "0.25"),
        (at(d0, 23, 59, 59), "5.5", "0.5"),
        (at(d0 + timedelta(days=1), 0, 0, 1), "5.6", "0.1"),
        (at(d0 + timedelta(days=1), 18), "6.1015644762", "0.6015644762"),
        (at(d0 + timedelta(days=2), 9), "7", "0.8984355238"),
    ]
    items_a = [item(key_a, alice.workspace_id, t, snapshot(u, ud)) for t, u, ud in timeline]
    items_b = [item(key_b, bob.workspace_id, t, snapshot(u, ud)) for t, u, ud in timeline]
    for it in items_a:
        await ingest.snapshots(it)
    shuffled = items_b[:]
    random.Random(7).shuffle(shuffled)
    for it in reversed(shuffled):
        await ingest.snapshots(it)
    params = window(d0, d0 + timedelta(days=2))
    a = daily(await read_key(client, alice, key_a, **params))
    b = daily(await read_key(client, bob, key_b, **params))
    assert (
        a
        == b
        == {
            d0.isoformat(): (D("0.5"), D(0), False),
            (d0 + timedelta(days=1)).isoformat(): (D("0.6015644762"), D(0), False),
            (d0 + timedelta(days=2)).isoformat(): (D("0.8984355238"), D(0), True),
        }
    )


async def test_an_older_snapshot_arriving_late_does_not_replace_a_newer_provisional_figure(ingest, client, alice):
    key = str(uuid.uuid4())
    d = days_ago(2)
    await ingest.snapshots(item(key, alice.workspace_id, at(d, 20), snapshot("3", "2")))
    await ingest.snapshots(item(key, alice.workspace_id, at(d, 8), snapshot("1.5", "0.5")))
    body = await read_key(client, alice, key, **window(d, d))
    assert daily(body) == {d.isoformat(): (D("2"), D(0), True)}
    # The latest snapshot still drives the key's state.
    assert body["as_of"].startswith(f"{d.isoformat()}T20:00:00")
    assert D(body["usage"]) == D("3")


async def test_repeats_are_no_ops_and_counted_as_duplicates(ingest, client, alice):
    key = str(uuid.uuid4())
    d0, d1 = days_ago(3), days_ago(2)
    batch = [
        item(key, alice.workspace_id, at(d0, 10), snapshot("1.1", "0.1")),
        item(key, alice.workspace_id, at(d1, 10), snapshot("1.4", "0.2")),
    ]
    assert await ingest.snapshots(*batch) == {"stored": 2, "duplicates": 0, "erased": 0}
    first = await read_key(client, alice, key, **window(d0, d1))
    assert await ingest.snapshots(*batch) == {"stored": 0, "duplicates": 2, "erased": 0}
    # A redelivery with different figures for the same instant changes nothing either.
    changed = item(key, alice.workspace_id, at(d1, 10), snapshot("99", "98"))
    assert await ingest.snapshots(changed, changed) == {"stored": 0, "duplicates": 2, "erased": 0}
    assert await read_key(client, alice, key, **window(d0, d1)) == first
    assert daily(first) == {d0.isoformat(): (D("0.2"), D(0), False), d1.isoformat(): (D("0.2"), D(0), True)}


async def test_a_duplicate_inside_one_batch_is_stored_once(ingest, alice):
    key = str(uuid.uuid4())
    one = item(key, alice.workspace_id, at(days_ago(1), 10), snapshot("1", "1"))
    assert await ingest.snapshots(one, one, one) == {"stored": 1, "duplicates": 2, "erased": 0}


async def test_a_final_day_never_goes_back_to_provisional(ingest, client, alice):
    key = str(uuid.uuid4())
    d0, d1 = days_ago(6), days_ago(5)
    await ingest.snapshots(item(key, alice.workspace_id, at(d0, 12), snapshot("10.5", "0.5")))
    await ingest.snapshots(item(key, alice.workspace_id, at(d1, 12), snapshot("11.25", "0.25")))
    # Late deliveries of d0 (earlier and later in the day) keep it final with the same exact value.
    await ingest.snapshots(item(key, alice.workspace_id, at(d0, 6), snapshot("10.1", "0.1")))
    await ingest.snapshots(item(key, alice.workspace_id, at(d0, 23), snapshot("10.9", "0.9")))
    assert daily(await read_key(client, alice, key, **window(d0, d1))) == {
        d0.isoformat(): (D("1"), D(0), False),
        d1.isoformat(): (D("0.25"), D(0), True),
    }


async def test_a_gap_leaves_the_day_before_it_provisional_until_the_gap_is_filled(ingest, client, alice):
    key = str(uuid.uuid4())
    d0, d1, d2 = days_ago(9), days_ago(8), days_ago(7)
    await ingest.snapshots(item(key, alice.workspace_id, at(d0, 12), snapshot("1.5", "0.5")))
    await ingest.snapshots(item(key, alice.workspace_id, at(d2, 12), snapshot("4", "1")))
    body = await read_key(client, alice, key, **window(d0, d2))
    # d0 is a lower bound (spend after noon unknown), d1 unknown: not in the series.
    assert daily(body) == {d0.isoformat(): (D("0.5"), D(0), True), d2.isoformat(): (D("1"), D(0), True)}
    # The missing day arrives late: it finalises the day before it, and is itself final (d2 is known).
    await ingest.snapshots(item(key, alice.workspace_id, at(d1, 3), snapshot("2.25", "0.25")))
    body = await read_key(client, alice, key, **window(d0, d2))
    assert daily(body) == {
        d0.isoformat(): (D("1.0"), D(0), False),
        d1.isoformat(): (D("1"), D(0), False),
        d2.isoformat(): (D("1"), D(0), True),
    }


async def test_concurrent_deliveries_for_one_key_serialise(committed_ingest, committed_client, alice):
    """Many snapshots of one key, each in its own request, all at once: the result is the sequential one."""
    key = str(uuid.uuid4())
    d0 = days_ago(12)
    items = []
    total = D("0")
    for day in range(4):
        start = total
        for hour in (1, 7, 13, 19):
            total += D("0.0123456789")
            items.append(
                item(
                    key,
                    alice.workspace_id,
                    at(d0 + timedelta(days=day), hour),
                    snapshot(str(total), str(total - start)),
                )
            )
    random.Random(3).shuffle(items)
    results = await asyncio.gather(*(committed_ingest.snapshots(it) for it in items))
    assert sum(r["stored"] for r in results) == len(items)
    got = daily(await read_key(committed_client, alice, key, **window(d0, d0 + timedelta(days=3))))
    per_day = D("0.0123456789") * 4
    assert got == {(d0 + timedelta(days=i)).isoformat(): (per_day, D(0), i == 3) for i in range(4)}


async def test_a_delivery_waits_for_another_one_of_the_same_key(db_engine, committed_client, alice):
    """The interleaving that would lose the newer figure without the key lock: A stores the later snapshot
    and holds its transaction open; B stores an earlier one of the same day. B must wait for A, then
    derive from both, so the day keeps the later figure."""
    key, d = uuid.uuid4(), days_ago(3)
    later = SnapshotItem.model_validate(item(key, alice.workspace_id, at(d, 20), snapshot("3", "2")))
    earlier = SnapshotItem.model_validate(item(key, alice.workspace_id, at(d, 8), snapshot("1.5", "0.5")))
    maker = create_sessionmaker(db_engine)
    # The key's state exists already, as it does for every key after its first snapshot.
    async with maker() as setup, setup.begin():
        await ingest_items(
            setup,
            [
                SnapshotItem.model_validate(
                    item(key, alice.workspace_id, at(d - timedelta(days=40)), snapshot("0", "0"))
                )
            ],
        )
    async with maker() as a:
        await ingest_items(a, [later])

        async def deliver_b() -> None:
            async with maker() as b, b.begin():
                await ingest_items(b, [earlier])

        b_task = asyncio.create_task(deliver_b())
        await asyncio.sleep(0.3)
        assert not b_task.done(), "B must wait for A's transaction"
        await a.commit()
    await asyncio.wait_for(b_task, 5)
    assert daily(await read_key(committed_client, alice, str(key), **window(d, d))) == {
        d.isoformat(): (D("2"), D(0), True)
    }


async def test_windows_of_a_snapshot_from_a_past_week(ingest, client, alice):
    key = str(uuid.uuid4())
    # The Sunday of last week: its week (Monday..Sunday) and day are over; its month may not be.
    sunday = today() - timedelta(days=today().weekday() + 1)
    body_in = snapshot("50", "1.5", usage_weekly="7.25", usage_monthly="20.125", byok_usage_weekly="0.75")
    await ingest.snapshots(item(key, alice.workspace_id, at(sunday, 23, 59, 59), body_in))
    body = await read_key(client, alice, key)
    windows = body["windows"]
    assert windows["day"] == {"start": sunday.isoformat(), "usage": D("1.5"), "byok_usage": 0, "current": False}
    assert windows["week"]["start"] == (sunday - timedelta(days=6)).isoformat()
    assert (D(windows["week"]["usage"]), D(windows["week"]["byok_usage"]), windows["week"]["current"]) == (
        D("7.25"),
        D("0.75"),
        False,
    )
    assert windows["month"]["start"] == sunday.replace(day=1).isoformat()
    assert windows["month"]["current"] == (sunday.month == today().month)
    assert D(windows["month"]["usage"]) == D("20.125")


async def test_windows_of_todays_snapshot_are_current_and_monday_starts_the_week(ingest, client, alice):
    key = str(uuid.uuid4())
    monday = today() - timedelta(days=today().weekday())
    await ingest.snapshots(item(key, alice.workspace_id, at(today(), 0, 0, 0), snapshot("1", "0")))
    windows = (await read_key(client, alice, key))["windows"]
    assert windows["day"]["start"] == today().isoformat()
    assert windows["week"]["start"] == monday.isoformat()
    assert all(w["current"] for w in windows.values())


async def test_a_snapshot_at_midnight_belongs_to_the_new_day(ingest, client, alice):
    key = str(uuid.uuid4())
    d0, d1 = days_ago(15), days_ago(14)
    await ingest.snapshots(item(key, alice.workspace_id, at(d0, 23, 59, 59, 999999), snapshot("2", "1")))
    await ingest.snapshots(item(key, alice.workspace_id, at(d1, 0, 0, 0), snapshot("2.5", "0.5")))
    # 00:00:00 of d1 already reports d1's window (0.5 spent in its first instant, say): start(d1) = 2.
    assert daily(await read_key(client, alice, key, **window(d0, d1))) == {
        d0.isoformat(): (D("1"), D(0), False),
        d1.isoformat(): (D("0.5"), D(0), True),
    }


async def test_offsets_are_read_as_utc(ingest, client, alice):
    key = str(uuid.uuid4())
    d0, d1 = days_ago(20), days_ago(19)
    # 01:30+02:00 on d1 is 23:30 UTC on d0.
    await ingest.call(
        "POST",
        "/internal/snapshots",
        {"items": [item(key, alice.workspace_id, f"{d1.isoformat()}T01:30:00+02:00", snapshot("3", "1"))]},
    )
    body = await read_key(client, alice, key, **window(d0, d1))
    assert list(daily(body)) == [d0.isoformat()]
