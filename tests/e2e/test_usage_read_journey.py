"""The read side for real: after a sync against the emulator, the summary, an export and the accounts view,
read through the gateway, equal the emulator's ground truth to the last digit."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import System
from tests.e2e.emulator_admin import EmulatorAdmin
from tests.e2e.test_sync_journey import MODELS, Watcher, at, spend, wait_for

pytestmark = pytest.mark.e2e

D = Decimal


def decimal_json(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return json.loads(response.content, parse_float=Decimal)


async def test_summary_export_and_accounts_equal_the_emulators_truth(system: System, emulator: EmulatorAdmin):
    d0 = datetime.now(UTC).date() - timedelta(days=3)
    days = [d0 - timedelta(days=n) for n in range(4, -1, -1)]  # d0-4 .. d0

    await emulator.set_clock(at(d0, 18))
    account = await emulator.account("500.25")
    management = await emulator.key(account, "management", name="ops")
    alpha = await emulator.key(account, "inference", name="alpha", limit="50", limit_reset="monthly")
    beta = await emulator.key(account, "inference", name="beta")
    events = [spend(alpha["hash"], at(day, 9), f"0.{n + 1}015644762", n % 3) for n, day in enumerate(days)]
    events += [spend(alpha["hash"], at(day, 10), "0.0000000007", 1) for day in days[:3]]
    events += [spend(beta["hash"], at(days[1], 11), "1.000000001", 2, byok="0.25")]
    events += [spend(beta["hash"], at(d0, 12), "2.718281828", 0)]
    await emulator.events(events)

    async with httpx.AsyncClient(base_url=system.gateway, timeout=30) as client:
        watcher = await Watcher.signed_up(client)
        ids = await watcher.add_account(management, alpha, beta)
        hashes = {ids["alpha"]: alpha["hash"], ids["beta"]: beta["hash"]}
        await watcher.sync(*ids.values())
        window = {"from": days[0].isoformat(), "to": d0.isoformat()}

        truth = await emulator.truth(account)
        # By model: completed days come from activity, summed over keys and providers; today has none yet.
        expected_models: dict[str | None, Decimal] = defaultdict(Decimal)
        for key_hash in hashes.values():
            for day, per_model in truth["activity"].get(key_hash, {}).items():
                if days[0].isoformat() <= day < d0.isoformat():
                    for model, figures in per_model.items():
                        expected_models[model] += D(figures["cost"])
            expected_models[None] += D(truth["keys"][key_hash]["daily"].get(d0.isoformat(), {"cost": "0"})["cost"])

        async def summary_with_every_model() -> dict[str, Any] | None:
            # The account sync (key list, then each key's activity) lands in its own time.
            body = decimal_json(await client.get("/api/v1/usage/summary", headers=watcher.headers, params=window))
            got = {m["model"]: m["cost"] for m in body["by_model"]}
            return body if got == dict(expected_models) else None

        summary = await wait_for(summary_with_every_model, what="per-model figures of both keys")

        # By key: every day's spend, exact; today's (d0) provisional and without a breakdown.
        for key_id, key_hash in hashes.items():
            (row,) = [k for k in summary["by_key"] if k["key_id"] == key_id]
            assert row["linked"] is True
            daily = truth["keys"][key_hash]["daily"]
            assert row["cost"] == sum(D(daily[d.isoformat()]["cost"]) for d in days if d.isoformat() in daily)
            assert row["provisional"] is True
            today_cost = D(daily.get(d0.isoformat(), {"cost": "0"})["cost"])
            assert row["cost_without_breakdown"] == today_cost
        # By day: the sum over keys; only d0 is provisional.
        for row in summary["by_day"]:
            want = sum(D(truth["keys"][h]["daily"].get(row["date"], {"cost": "0"})["cost"]) for h in hashes.values())
            assert row["cost"] == want, row["date"]
            assert row["provisional"] is (row["date"] == d0.isoformat())
        assert summary["totals"]["cost"] == sum(expected_models.values())

        # The CSV export: the same rows, per model and provider; money exact.
        r = await client.get("/api/v1/usage/export", headers=watcher.headers, params={**window, "format": "csv"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        per_day_model: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
        for row in rows:
            per_day_model[(row["key_id"], row["date"], row["model"])] += D(row["cost"])
        for key_id, key_hash in hashes.items():
            for day, per_model in truth["activity"].get(key_hash, {}).items():
                if days[0].isoformat() <= day < d0.isoformat():
                    for model, figures in per_model.items():
                        assert per_day_model[(key_id, day, model)] == D(figures["cost"]), (day, model)
        providers = {row["provider"] for row in rows if row["model"]}
        assert providers <= {provider for _, _, provider in MODELS}
        assert sum(D(row["cost"]) for row in rows) == summary["totals"]["cost"]
        # The JSON export is the same rows as the daily pages.
        exported = decimal_json(
            await client.get("/api/v1/usage/export", headers=watcher.headers, params={**window, "format": "json"})
        )
        page = decimal_json(
            await client.get("/api/v1/usage/daily", headers=watcher.headers, params={**window, "per_page": 250})
        )
        assert exported == page["items"]
        assert page["total"] == len(rows)

        # The accounts view: the balance, both keys with their vault ids and shares of the account's spend.
        accounts = decimal_json(await client.get("/api/v1/usage/accounts", headers=watcher.headers))
        (view,) = accounts["items"]
        assert view["management_key_id"] == ids["management"]
        assert view["balance"]["balance"] == D(truth["balance"])
        listed = {k["hash"]: k for k in view["keys"]}
        for key_id, key_hash in hashes.items():
            assert listed[key_hash]["key_id"] == key_id
            assert listed[key_hash]["usage"] == D(truth["keys"][key_hash]["usage"])
        assert listed[alpha["hash"]]["limit"] == D(50)
        assert abs(sum(k["share"] for k in view["keys"] if k["share"] is not None) - 1) < D("1e-15")


async def test_spend_billed_late_shows_as_a_pair_of_reconciliation_gaps(system: System, emulator: EmulatorAdmin):
    """OpenRouter bills 0.04 onto d0 after d1's first snapshot: the `/key` counters put it on d1 (the day the
    lifetime figure moved), activity on d0. Reconciliation lists both days, opposite and exact; before, nothing."""
    d0 = datetime.now(UTC).date() - timedelta(days=4)
    d1, d2 = d0 + timedelta(days=1), d0 + timedelta(days=2)
    await emulator.set_clock(at(d0, 6))
    account = await emulator.account("100")
    management = await emulator.key(account, "management", name="ops")
    alpha = await emulator.key(account, "inference", name="alpha")
    await emulator.events([spend(alpha["hash"], at(d0, 5), "0.3")])

    async with httpx.AsyncClient(base_url=system.gateway, timeout=30) as client:
        watcher = await Watcher.signed_up(client)
        ids = await watcher.add_account(management, alpha)

        async def gaps() -> list[dict[str, Any]]:
            params = {"from": d0.isoformat(), "to": d2.isoformat()}
            r = await client.get("/api/v1/insights/reconciliation", headers=watcher.headers, params=params)
            return list(decimal_json(r)["items"])

        await emulator.set_clock(at(d1, 6))
        await emulator.events([spend(alpha["hash"], at(d1, 5), "0.5", 1)])
        await watcher.sync(ids["alpha"], ids["management"])
        assert await gaps() == []

        await emulator.events([spend(alpha["hash"], at(d0, 12), "0.04", 2)])  # billed late, onto d0
        await emulator.set_clock(at(d2, 6))
        await watcher.sync(ids["alpha"], ids["management"])

        async def both() -> list[dict[str, Any]] | None:
            found = await gaps()
            return found if len(found) == 2 else None

        found = await wait_for(both, what="the two reconciliation gaps")
        assert [(g["day"], g["snapshot_usd"], g["activity_usd"], g["gap_usd"]) for g in found] == [
            (d1.isoformat(), D("0.54"), D("0.5"), D("0.04")),
            (d0.isoformat(), D("0.3"), D("0.34"), D("-0.04")),
        ]
        assert {g["key_id"] for g in found} == {ids["alpha"]}
