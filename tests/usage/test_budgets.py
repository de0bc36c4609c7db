"""Budgets: their figures from the exact daily rows on OpenRouter's UTC windows, and each event once per
(budget, period, threshold), re-armed by the next period."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.usage.alerting import (
    Key,
    add_channel,
    create_budget,
    deliveries,
    events,
    moment,
    monday,
    read_budget,
)
from tests.usage.conftest import Ingest
from tests.usage.test_accounts import activity_row, key_row

BUDGET_EVENTS = ("budget.threshold_crossed", "budget.exceeded", "budget.recovered", "budget.forecast_exceeded")


def kinds(raised: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
    return [(e["type"], e["data"]["threshold"]) for e in raised]


async def test_each_threshold_is_crossed_exactly_once_across_many_syncs(client, ingest, alice, db_connection):
    """40 % -> 85 % -> 120 %, each level synced again and again: one 50, one 80, one exceeded."""
    key = Key(ingest, alice)
    budget = await create_budget(client, alice, scope={"type": "key", "id": key.id})
    tuesday = monday() + timedelta(days=1)
    for hour, daily in ((9, "4"), (10, "4"), (11, "8.5"), (12, "8.5"), (13, "12"), (14, "12"), (15, "12.5")):
        await key.sync(moment(tuesday, hour), daily)
    raised = await events(db_connection, alice, "budget.threshold_crossed", "budget.exceeded")
    assert kinds(raised) == [
        ("budget.threshold_crossed", 50),
        ("budget.threshold_crossed", 80),
        ("budget.exceeded", 100),
    ]
    crossed, over = raised[0], raised[-1]
    assert crossed["dedup_key"] == f"budget:{budget['id']}:{monday().isoformat()}:50"
    assert crossed["occurred_at"] == moment(tuesday, 11)  # OpenRouter's clock, not ours
    assert over["data"] == {
        "budget_id": budget["id"],
        "name": "budget",
        "scope": {"type": "key", "id": key.id},
        "period": {
            "kind": "weekly",
            "start": moment(monday(), 0).isoformat(),
            "resets_at": moment(monday() + timedelta(days=7), 0).isoformat(),
        },
        "spend_usd": "12",
        "amount_usd": "10",
        "percent_used": "120.00",
        "threshold": 100,
        "forecast_usd": over["data"]["forecast_usd"],
        "projected_cross_at": None,
        "provisional": True,
    }
    assert Decimal(over["data"]["forecast_usd"]) > 12
    view = await read_budget(client, alice, budget["id"])
    assert view["state"] == "exceeded"
    assert Decimal(str(view["spend_usd"])) == Decimal("12.5")
    # The forecast passed the amount at the first sync (4 in 33 h of a 168 h week), once.
    assert len(await events(db_connection, alice, "budget.forecast_exceeded")) == 1


async def test_the_next_period_re_arms_every_threshold(client, ingest, alice, db_connection):
    key = Key(ingest, alice)
    await create_budget(client, alice, scope={"type": "key", "id": key.id}, thresholds=[50])
    sunday = monday() + timedelta(days=6)
    await key.sync(moment(sunday, 22), "6")
    await key.sync(moment(sunday, 23), "11")
    # Monday 00:00 UTC: a new week, its spend so far is the new day's alone.
    next_monday = monday() + timedelta(days=7)
    await key.sync(moment(next_monday, 0, 30), "2")
    await key.sync(moment(next_monday, 8), "5.5")
    await key.sync(moment(next_monday, 9), "12")
    raised = await events(db_connection, alice, "budget.threshold_crossed", "budget.exceeded")
    assert [(e["data"]["period"]["start"][:10], e["type"], e["data"]["threshold"]) for e in raised] == [
        (monday().isoformat(), "budget.threshold_crossed", 50),
        (monday().isoformat(), "budget.exceeded", 100),
        (next_monday.isoformat(), "budget.threshold_crossed", 50),
        (next_monday.isoformat(), "budget.exceeded", 100),
    ]


async def test_daily_and_monthly_periods_follow_utc_days_and_months(client, ingest, alice, db_connection):
    key = Key(ingest, alice)
    daily = await create_budget(client, alice, scope={"type": "key", "id": key.id}, period="daily", amount_usd="1")
    monthly = await create_budget(client, alice, scope={"type": "key", "id": key.id}, period="monthly", amount_usd="5")
    first = monday(6).replace(day=1) + timedelta(days=31)
    first = first.replace(day=1)  # the 1st of a month, weeks back
    last_day = first - timedelta(days=1)
    await key.sync(moment(last_day, 20), "6")
    await key.sync(moment(first, 10), "1.5")
    view = await read_budget(client, alice, daily["id"])
    assert view["period_start"] == moment(first, 0).isoformat().replace("+00:00", "Z")
    assert Decimal(str(view["spend_usd"])) == Decimal("1.5")
    view = await read_budget(client, alice, monthly["id"])
    assert view["period_start"][:10] == first.isoformat()
    assert Decimal(str(view["spend_usd"])) == Decimal("1.5")  # the previous month's 6 is not this month's
    raised = await events(db_connection, alice, "budget.exceeded")
    assert sorted((e["data"]["period"]["start"][:10], e["data"]["budget_id"]) for e in raised) == sorted(
        [
            (last_day.isoformat(), daily["id"]),
            (last_day.replace(day=1).isoformat(), monthly["id"]),
            (first.isoformat(), daily["id"]),
        ]
    )


async def test_byok_spend_counts_only_when_asked(client, ingest, alice):
    key = Key(ingest, alice)
    without = await create_budget(client, alice, scope={"type": "key", "id": key.id})
    with_byok = await create_budget(client, alice, scope={"type": "key", "id": key.id}, include_byok=True)
    await key.sync(moment(monday(), 12), "2", byok_daily="3.25")
    assert Decimal(str((await read_budget(client, alice, without["id"]))["spend_usd"])) == Decimal(2)
    assert Decimal(str((await read_budget(client, alice, with_byok["id"]))["spend_usd"])) == Decimal("5.25")


async def test_a_workspace_budget_sums_every_key_of_the_workspace_only(client, ingest, alice, bob):
    keys = [Key(ingest, alice, label=f"sk-or-v1-ws{n}...001") for n in range(3)]
    budget = await create_budget(client, alice, scope={"type": "workspace"}, amount_usd="100")
    for n, key in enumerate(keys):
        await key.sync(moment(monday(), 10 + n), str(n + 1))
    await Key(ingest, bob).sync(moment(monday(), 11), "50")
    view = await read_budget(client, alice, budget["id"])
    assert Decimal(str(view["spend_usd"])) == Decimal(6)
    assert view["percent_used"] == 6
    assert view["state"] == "ok"


async def _link(ingest: Ingest, tenant, management_key: str, rows: list[tuple[str, str]], at: datetime) -> None:
    listing = {"workspace_id": tenant.workspace_id, "observed_at": at, "keys": [key_row(h, label) for h, label in rows]}
    assert (await ingest.call("PUT", f"/internal/accounts/{management_key}/keys", listing)).status_code == 204


async def test_an_account_budget_counts_the_keys_linked_to_it_with_final_activity(client, ingest, alice, db_connection):
    """Two keys linked to one account, a third elsewhere; activity makes a day final (not provisional)."""
    mgmt = Key(ingest, alice, label="sk-or-v1-mgm...001", is_management_key=True)
    mine = [Key(ingest, alice, label=f"sk-or-v1-acc...00{n}") for n in (1, 2)]
    other = Key(ingest, alice, label="sk-or-v1-oth...001")
    budget = await create_budget(client, alice, scope={"type": "account", "id": mgmt.id}, amount_usd="10")
    tuesday = monday() + timedelta(days=1)
    await mgmt.sync(moment(monday(), 8), "0")
    for key in (*mine, other):
        await key.sync(moment(monday(), 9), "1")
    await _link(ingest, alice, mgmt.id, [("aa" * 32, mine[0].label), ("bb" * 32, mine[1].label)], moment(monday(), 10))
    view = await read_budget(client, alice, budget["id"])
    assert Decimal(str(view["spend_usd"])) == Decimal(2)
    assert view["provisional"] is True
    # The account's activity for Monday replaces the snapshot figures with final, per-model ones: 3 + 4.
    for hash_, usage in (("aa" * 32, "3"), ("bb" * 32, "4")):
        report = {
            "workspace_id": alice.workspace_id,
            "observed_at": moment(tuesday, 1),
            "api_key_hash": hash_,
            "dates": [monday().isoformat()],
            "rows": [activity_row(monday().isoformat(), "openai/gpt-4.1", usage)],
        }
        assert (await ingest.call("PUT", f"/internal/accounts/{mgmt.id}/activity", report)).status_code == 204
    view = await read_budget(client, alice, budget["id"])
    assert Decimal(str(view["spend_usd"])) == Decimal(7)
    assert view["provisional"] is False
    # Activity raised the account budget's 50 % event.
    raised = await events(db_connection, alice, "budget.threshold_crossed")
    assert [(e["data"]["budget_id"], e["data"]["threshold"]) for e in raised] == [(budget["id"], 50)]
    # A key list without the first key unlinks it: the account's figure drops to 4.
    await _link(ingest, alice, mgmt.id, [("bb" * 32, mine[1].label)], moment(tuesday, 2))
    assert Decimal(str((await read_budget(client, alice, budget["id"]))["spend_usd"])) == Decimal(4)


async def test_the_view_forecasts_the_period_end_and_the_crossing(client, ingest, alice):
    key = Key(ingest, alice)
    budget = await create_budget(client, alice, scope={"type": "key", "id": key.id}, amount_usd="14")
    # 2 in the first 24 h of the week: 14 by its end, crossing 14 exactly at the reset.
    tuesday = monday() + timedelta(days=1)
    await key.sync(moment(monday(), 23, 59), "2")
    await key.sync(moment(tuesday, 0), "0")
    view = await read_budget(client, alice, budget["id"])
    assert Decimal(str(view["forecast_usd"])) == Decimal(14)
    assert view["projected_cross_at"] is None  # not before the reset
    # 6 by Tuesday 12:00 (36 h): 28 by the end, the amount crossed at 84 h, Thursday 12:00.
    await key.sync(moment(tuesday, 12), "4")
    view = await read_budget(client, alice, budget["id"])
    assert Decimal(str(view["forecast_usd"])) == Decimal(28)
    assert datetime.fromisoformat(view["projected_cross_at"]) == moment(monday(), 0) + timedelta(hours=84)
    assert Decimal(str(view["percent_used"])) == Decimal("42.86")
    assert view["state"] == "ok"
    assert view["resets_at"][:10] == (monday() + timedelta(days=7)).isoformat()


async def test_raising_the_amount_recovers_once_and_lowering_it_crosses(client, ingest, alice, db_connection):
    key = Key(ingest, alice)
    budget = await create_budget(client, alice, scope={"type": "key", "id": key.id}, thresholds=[80])
    await key.sync(moment(monday(), 10), "11")
    path = f"/api/v1/budgets/{budget['id']}"
    r = await client.patch(path, headers=alice.headers, json={"amount_usd": "20"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "ok"
    await client.patch(path, headers=alice.headers, json={"amount_usd": "30"})
    await key.sync(moment(monday(), 11), "11")
    raised = await events(db_connection, alice, *BUDGET_EVENTS)
    assert kinds([e for e in raised if e["type"] != "budget.forecast_exceeded"]) == [
        ("budget.threshold_crossed", 80),
        ("budget.exceeded", 100),
        ("budget.recovered", None),
    ]
    recovered = raised[-1]["data"]
    assert (recovered["amount_usd"], recovered["spend_usd"]) == ("20", "11")
    # Lowered again: exceeded already this week, so nothing new; a threshold added below the spend crosses.
    r = await client.patch(path, headers=alice.headers, json={"amount_usd": "10", "thresholds": [20, 80]})
    assert r.json()["state"] == "exceeded"
    raised = await events(db_connection, alice, "budget.threshold_crossed")
    assert [(e["data"]["threshold"], e["occurred_at"]) for e in raised] == [
        (80, moment(monday(), 10)),
        (20, moment(monday(), 11)),  # at OpenRouter's clock of the latest sync
    ]


async def test_creating_a_budget_already_past_a_threshold_raises_it_at_once(client, ingest, alice, db_connection):
    key = Key(ingest, alice)
    await key.sync(moment(monday(), 10), "6")
    budget = await create_budget(client, alice, scope={"type": "key", "id": key.id}, thresholds=[50, 80])
    assert budget["state"] == "warning"
    assert kinds(await events(db_connection, alice, "budget.threshold_crossed")) == [("budget.threshold_crossed", 50)]


async def test_events_go_to_the_budgets_channels_or_every_channel_taking_them(client, ingest, alice, db_connection):
    everything = await add_channel(client, alice)
    budgets_only = await add_channel(client, alice, events=["budget.exceeded"])
    await add_channel(client, alice, events=["key.invalid"])
    key = Key(ingest, alice)
    named = await create_budget(client, alice, scope={"type": "key", "id": key.id}, channel_ids=[budgets_only])
    await create_budget(client, alice, name="any", scope={"type": "key", "id": key.id}, thresholds=[50])
    await key.sync(moment(monday(), 10), "12")
    routed = {}
    for event in await events(db_connection, alice, "budget.threshold_crossed", "budget.exceeded"):
        routed[(event["data"]["name"], event["type"])] = {str(c) for c in await deliveries(db_connection, event["id"])}
    assert routed == {
        ("budget", "budget.threshold_crossed"): set(),  # its one channel does not take crossings
        ("budget", "budget.exceeded"): {budgets_only},
        ("any", "budget.threshold_crossed"): {everything},
        ("any", "budget.exceeded"): {everything, budgets_only},
    }
    assert named["channel_ids"] == [budgets_only]


async def test_a_scope_looked_past_still_speaks_when_any_budget_reaches_its_next_mark(
    client, ingest, alice, db_connection
):
    """Ingestion looks at a scope's budgets only once its figure passes the least of their next marks (or a
    forecast mark, moving with the clock); many budgets on one key, many small syncs: every mark still fires
    once, in the sync that reaches it."""
    key = Key(ingest, alice)
    amounts = ("4", "10", "25", "60")
    budgets = {
        a: (await create_budget(client, alice, name=a, scope={"type": "key", "id": key.id}, amount_usd=a))
        for a in amounts
    }
    tuesday = monday() + timedelta(days=1)
    spend = Decimal(0)
    for step in range(40):
        spend += Decimal("0.75")
        await key.sync(moment(tuesday, 0, 30) + timedelta(minutes=20 * step), str(spend))
    raised = await events(db_connection, alice, "budget.threshold_crossed", "budget.exceeded")
    by_budget: dict[str, list[tuple[int, str]]] = {a: [] for a in amounts}
    for event in raised:
        by_budget[event["data"]["name"]].append((event["data"]["threshold"], event["data"]["spend_usd"]))
    for amount in amounts:
        expected = []
        for mark in (50, 80, 100):
            needed = Decimal(amount) * mark / 100
            first = next((Decimal("0.75") * n for n in range(1, 41) if Decimal("0.75") * n >= needed), None)
            if first is not None:
                expected.append((mark, format(first, "f")))
        assert by_budget[amount] == expected, amount
    assert {b["id"] for b in budgets.values()} == {e["data"]["budget_id"] for e in raised}
    # The forecast of the 60 budget passed at some sync (30 by the end of Tuesday: 90 a week), once.
    forecasts = [e for e in await events(db_connection, alice, "budget.forecast_exceeded") if e["data"]["name"] == "60"]
    assert len(forecasts) == 1
