"""`GET /api/v1/metrics` (issue 17): a workspace's own Prometheus text, checked against figures computed here."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.http import assert_problem, bearer
from tests.usage.conftest import at, days_ago, item, snapshot, today

URL = "/api/v1/metrics"


def parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """{family: [(labels, value)]} of an exposition (the parser raises on a malformed one)."""
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


def by_key(samples: list[tuple[dict[str, str], float]], key: str, **labels: str) -> float:
    (value,) = [v for lab, v in samples if lab["key_id"] == key and all(lab[k] == x for k, x in labels.items())]
    return value


def morning(day: date) -> datetime:
    """A time early on `day` that today has already reached: 00:30, or halfway through today so far when a run
    starts before 00:30 UTC (a snapshot from the future would have no age)."""
    so_far = datetime.now(UTC) - at(today(), 0, 0)
    return at(day, 0, 0) + min(timedelta(minutes=30), so_far / 2)


async def seed_history(ingest: Any, workspace_id: str, key: str, rng: random.Random, days: int = 40, **fields: Any):
    """One snapshot a day for `days` days up to today, each day's whole spend in its `usage_daily` (so every
    day's exact spend is that figure); returns {day: spend}."""
    spends: dict[Any, Decimal] = {}
    lifetime = Decimal(0)
    items = []
    for n in range(days - 1, -1, -1):
        spend = Decimal(rng.randint(0, 10**6)) / Decimal(10**5)
        lifetime += spend
        spends[days_ago(n)] = spend
        body = snapshot(lifetime, spend, **fields)
        body["usage_weekly"] = body["usage_monthly"] = lifetime  # not read by the exposition
        items.append(item(key, workspace_id, morning(days_ago(n)), body))
    await ingest.snapshots(*items)
    return spends


async def test_the_exposition_equals_figures_computed_independently(ingest, client, alice, bob):
    rng = random.Random(17)
    key, capped, mgmt = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    spends = await seed_history(
        ingest, alice.workspace_id, key, rng, limit=Decimal("100"), limit_remaining=Decimal("74.5")
    )
    capped_spends = await seed_history(
        ingest, alice.workspace_id, capped, rng, limit=Decimal(5), limit_remaining=Decimal(0), limit_reset="daily"
    )
    await ingest.snapshots(
        item(mgmt, alice.workspace_id, morning(days_ago(0)), snapshot("0", "0", is_management_key=True, limit=None))
    )
    now = datetime.now(UTC)
    balances = [
        (now - timedelta(days=10), Decimal("500"), Decimal("100")),
        (
            now - timedelta(days=7, hours=1),
            Decimal("500"),
            Decimal("130"),
        ),  # the base: the latest at or before now - 7 days
        (now - timedelta(days=3), Decimal("600"), Decimal("180")),
        (now - timedelta(minutes=5), Decimal("600"), Decimal("200")),
    ]
    for observed_at, credits, used in balances:
        body = {
            "workspace_id": alice.workspace_id,
            "observed_at": observed_at,
            "total_credits": credits,
            "total_usage": used,
        }
        assert (await ingest.call("POST", f"/internal/accounts/{mgmt}/credits", body)).status_code == 204

    r = await client.get(URL, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    metrics = parse(r.text)

    day = today()
    week_start, month_start = day - timedelta(days=day.weekday()), day.replace(day=1)
    for key_id, history in ((key, spends), (capped, capped_spends)):
        expected = {
            "day": history[day],
            "week": sum((v for d, v in history.items() if d >= week_start), Decimal(0)),
            "month": sum((v for d, v in history.items() if d >= month_start), Decimal(0)),
        }
        for window, amount in expected.items():
            assert by_key(metrics["owr_key_spend_usd"], key_id, window=window) == float(amount), window
        age = by_key(metrics["owr_key_last_sync_age_seconds"], key_id)
        assert abs(age - (now - morning(day)).total_seconds()) < 60
    assert by_key(metrics["owr_key_limit_usd"], key) == 100.0
    assert by_key(metrics["owr_key_limit_remaining_usd"], key) == 74.5
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    reset = (datetime.combine(next_month, datetime.min.time(), tzinfo=UTC) - now).total_seconds()
    assert abs(by_key(metrics["owr_key_limit_reset_seconds"], key) - reset) < 60
    midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    assert abs(by_key(metrics["owr_key_limit_reset_seconds"], capped) - (midnight - now).total_seconds()) < 60
    assert by_key(metrics["owr_key_status"], key, status="active") == 1.0
    assert by_key(metrics["owr_key_status"], key, status="limit_reached") == 0.0
    assert by_key(metrics["owr_key_status"], capped, status="limit_reached") == 1.0
    # The management key has no limit: spend and status only.
    assert {lab["key_id"] for lab, _ in metrics["owr_key_limit_usd"]} == {key, capped}
    assert {lab["key_id"] for lab, _ in metrics["owr_key_spend_usd"]} == {key, capped, mgmt}

    (account,) = metrics["owr_account_balance_usd"]
    assert account == ({"account": mgmt}, 400.0)
    (runway,) = metrics["owr_account_runway_days"]
    burn_per_day = (Decimal("200") - Decimal("130")) / Decimal(
        repr((timedelta(days=7, hours=1) - timedelta(minutes=5)).total_seconds() / 86400)
    )
    assert runway[0] == {"account": mgmt}
    assert abs(runway[1] - float(Decimal(400) / burn_per_day)) < 1e-3

    # Another workspace sees nothing of alice's: no sample at all (bob has no keys), only HELP/TYPE lines.
    other = await client.get(URL, headers=bob.headers)
    assert other.status_code == 200
    for key_id in (key, capped, mgmt):
        assert key_id not in other.text
    assert all(not samples for samples in parse(other.text).values())


async def test_odd_labels_are_escaped_and_round_trip(ingest, client, alice, bob):
    key = str(uuid.uuid4())
    odd = 'sk-or-v1-"q\\uo\'te"\nnl{x=1}'
    await ingest.snapshots(item(key, alice.workspace_id, morning(days_ago(0)), snapshot("1.5", "1.5", label=odd)))
    await ingest.snapshots(item(str(uuid.uuid4()), bob.workspace_id, morning(days_ago(0)), snapshot("9", "9")))
    r = await client.get(URL, headers=alice.headers)
    assert r.status_code == 200, r.text
    metrics = parse(r.text)
    assert {lab["key_name"] for lab, _ in metrics["owr_key_spend_usd"]} == {odd}
    assert by_key(metrics["owr_key_spend_usd"], key, window="day") == 1.5
    # One line per sample: the newline in the label was escaped.
    assert sum(line.startswith("owr_key_spend_usd{") for line in r.text.splitlines()) == 3


async def test_an_api_token_needs_usage_read(client, alice, keyring):
    def token_caller(*scopes: str) -> dict[str, str]:
        claims = {"tid": str(uuid.uuid4()), "scope": " ".join(scopes)}
        return bearer(keyring.access_token(alice.user_id, alice.workspace_id, **claims))

    problem = assert_problem(await client.get(URL, headers=token_caller("keys:read", "alerts:read")), 403)
    assert problem["type"].endswith("/insufficient-scope")
    assert (await client.get(URL, headers=token_caller("usage:read"))).status_code == 200
    assert_problem(await client.get(URL), 401)
