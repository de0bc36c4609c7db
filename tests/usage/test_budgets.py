"""Budgets: the API, their figures from the exact daily rows, and each event once per period."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.usage.alerting import Key, create_budget, events, moment, monday, read_budget


async def test_each_threshold_is_crossed_exactly_once_across_many_syncs(client, ingest, alice, db_connection):
    key = Key(ingest, alice)
    budget = await create_budget(client, alice, scope={"type": "key", "id": key.id})
    tuesday = monday() + timedelta(days=1)
    for hour, daily in ((9, "4"), (10, "4"), (11, "8.5"), (12, "8.5"), (13, "12"), (14, "12"), (15, "12.5")):
        await key.sync(moment(tuesday, hour), daily)
    raised = await events(db_connection, alice, "budget.threshold_crossed", "budget.exceeded")
    assert [(e["type"], e["data"]["threshold"]) for e in raised] == [
        ("budget.threshold_crossed", 50),
        ("budget.threshold_crossed", 80),
        ("budget.exceeded", 100),
    ]
    over = raised[-1]["data"]
    assert over["budget_id"] == budget["id"]
    assert Decimal(over["spend_usd"]) == Decimal(12)
    assert over["period"]["kind"] == "weekly"
    view = await read_budget(client, alice, budget["id"])
    assert view["state"] == "exceeded"
    assert Decimal(str(view["spend_usd"])) == Decimal("12.5")
