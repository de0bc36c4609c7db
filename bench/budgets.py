"""Budget evaluation's cost on syncing: 10,000 budgets evaluated with every sync batch, against the same batch for
keys that no budget watches, measured in one run and printed as ratios.

Two fleets of the same shape on a fresh migrated database: 20 workspaces of 10 inference keys each (one batch of
the worker's size, 200 snapshots), each workspace with a management key whose account lists its 10 keys, a
webhook channel, and 20 days of history. The "budgeted" fleet carries 10,000 budgets over those keys: 40 per key,
50 per workspace and 50 per account, of every period and random amounts (so thresholds are crossed, and events
and deliveries written, as the rounds go). Each round stores one batch per fleet through usage's real
`POST /internal/snapshots` (in-process, its lifespan included), every key's spend a little higher than before,
each fleet leading in turn (a sync every ten minutes, each adding what a key spending about $1 a day adds); the
reported figure is the median of each round's budgeted ÷ plain time, so drift in
the machine's load cancels out. Nothing is asserted: a ratio above the 1.2x target is said.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import statistics
import sys
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from fastapi import FastAPI

from bench.infra import bench_database
from owr_shared.logging import configure_logging
from owr_shared.wire import codec
from owr_usage.app import create_app
from owr_usage.settings import UsageSettings
from tests.support.openrouter import key_list_row
from tests.support.settings import service_settings
from tests.support.tokens import TestKeyring

WORKSPACES, KEYS = 20, 10
PER_KEY, PER_WORKSPACE, PER_ACCOUNT = 40, 50, 50
HISTORY_DAYS = 20
TARGET = 1.2


@dataclass
class Fleet:
    name: str
    workspaces: list[str] = field(default_factory=lambda: [str(uuid.uuid4()) for _ in range(WORKSPACES)])
    keys: dict[str, list[str]] = field(default_factory=dict)  # workspace -> its inference keys
    management: dict[str, str] = field(default_factory=dict)  # workspace -> its management key
    lifetime: dict[str, Decimal] = field(default_factory=dict)
    today: dict[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for workspace in self.workspaces:
            self.keys[workspace] = [str(uuid.uuid4()) for _ in range(KEYS)]
            self.management[workspace] = str(uuid.uuid4())

    def label(self, workspace: str, n: int) -> str:
        return f"sk-or-v1-{self.workspaces.index(workspace):03d}...{n:03d}"

    def snapshot(self, workspace: str, n: int, at: dt.datetime, added: Decimal) -> dict[str, Any]:
        key = self.keys[workspace][n]
        day_key = f"{key}:{at.date()}"
        self.lifetime[key] = self.lifetime.get(key, Decimal(0)) + added
        self.today[day_key] = self.today.get(day_key, Decimal(0)) + added
        daily = self.today[day_key]
        body = {
            "label": self.label(workspace, n),
            "is_management_key": False,
            "limit": None,
            "limit_reset": None,
            "limit_remaining": None,
            "include_byok_in_limit": False,
            "usage": self.lifetime[key],
            "usage_daily": daily,
            "usage_weekly": daily,
            "usage_monthly": daily,
            "byok_usage": 0,
            "byok_usage_daily": 0,
            "byok_usage_weekly": 0,
            "byok_usage_monthly": 0,
            "is_free_tier": False,
            "expires_at": None,
        }
        return {"key_id": key, "workspace_id": workspace, "observed_at": at, "snapshot": body}

    def batch(self, at: dt.datetime, rng: random.Random) -> list[dict[str, Any]]:
        """One snapshot per key, each with what ten minutes add to a key spending about $1 a day (the history's
        rate): up to $0.015."""
        return [
            self.snapshot(w, n, at + dt.timedelta(milliseconds=i), Decimal(rng.randrange(1, 1500)) / 100_000)
            for i, (w, n) in enumerate((w, n) for w in self.workspaces for n in range(KEYS))
        ]


class Usage:
    def __init__(self, client: httpx.AsyncClient, keyring: TestKeyring) -> None:
        self.client = client
        self.keyring = keyring

    async def call(self, method: str, url: str, body: Any, expect: int) -> Any:
        headers = {
            "authorization": f"Bearer {self.keyring.service_token(('usage:ingest',))}",
            "content-type": "application/json",
        }
        r = await self.client.request(method, url, headers=headers, content=codec.dumps(body))
        if r.status_code != expect:
            raise RuntimeError(f"{method} {url}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None


async def seed(usage: Usage, fleet: Fleet, now: dt.datetime, rng: random.Random) -> None:
    """History (a snapshot per key and day), each account's key list, and the management keys' snapshots."""
    for age in range(HISTORY_DAYS, 0, -1):
        day = (now - dt.timedelta(days=age)).replace(hour=12, minute=0, second=0, microsecond=0)
        items = []
        for w in fleet.workspaces:
            for n in range(KEYS):
                items.append(fleet.snapshot(w, n, day, Decimal(rng.randrange(200, 2000)) / 1000))
        await usage.call("POST", "/internal/snapshots", {"items": items}, 200)
    morning = now.replace(hour=0, minute=5, second=0, microsecond=0)
    managers = []
    for w in fleet.workspaces:
        body = fleet.snapshot(w, 0, morning, Decimal(0))["snapshot"] | {"is_management_key": True, "label": "m"}
        managers.append({"key_id": fleet.management[w], "workspace_id": w, "observed_at": morning, "snapshot": body})
        rows = [key_list_row(hash=f"{w[:8]}{n:056x}", name=str(n), label=fleet.label(w, n)) for n in range(KEYS)]
        listing = {"workspace_id": w, "observed_at": morning, "keys": rows}
        await usage.call("PUT", f"/internal/accounts/{fleet.management[w]}/keys", listing, 204)
    await usage.call("POST", "/internal/snapshots", {"items": managers}, 200)


async def add_budgets_and_channels(database_url: str, budgeted: Fleet, fleets: list[Fleet], rng: random.Random) -> int:
    """A webhook channel per workspace (both fleets), and the budgeted fleet's budgets, by COPY."""
    records = []
    periods = ("daily", "weekly", "monthly")
    typical = {"daily": 1.5, "weekly": 8.0, "monthly": 25.0}  # one key's spend so far, roughly

    def budget(workspace: str, scope: str, scope_id: str, keys: int) -> tuple[Any, ...]:
        period = rng.choice(periods)
        amount = Decimal(str(round(typical[period] * keys * rng.uniform(0.6, 3.0), 4)))
        return (
            uuid.uuid4(),
            uuid.UUID(workspace),
            f"{scope} budget",
            scope,
            uuid.UUID(scope_id),
            amount,
            period,
            [50, 80, 100],
            rng.random() < 0.3,
            [],
        )

    for w in budgeted.workspaces:
        for key in budgeted.keys[w]:
            records += [budget(w, "key", key, 1) for _ in range(PER_KEY)]
        records += [budget(w, "workspace", w, KEYS) for _ in range(PER_WORKSPACE)]
        records += [budget(w, "account", budgeted.management[w], KEYS) for _ in range(PER_ACCOUNT)]
    conn = await asyncpg.connect(database_url)
    try:
        await conn.copy_records_to_table(
            "budgets",
            schema_name="usage",
            records=records,
            columns=(
                "id",
                "workspace_id",
                "name",
                "scope_type",
                "scope_id",
                "amount_usd",
                "period",
                "thresholds",
                "include_byok",
                "channel_ids",
            ),
        )
        channels = [
            (uuid.uuid4(), uuid.UUID(w), "webhook", "hook", "https://example.com")
            for fleet in fleets
            for w in fleet.workspaces
        ]
        await conn.copy_records_to_table(
            "alert_channels",
            schema_name="usage",
            records=channels,
            columns=("id", "workspace_id", "type", "name", "target_hint"),
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return len(records)


async def events_written(database_url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        return (
            int(await conn.fetchval("SELECT count(*) FROM usage.alert_events")),
            int(await conn.fetchval("SELECT count(*) FROM usage.alert_deliveries")),
        )
    finally:
        await conn.close()


async def run(database_url: str, redis_url: str, rounds: int) -> dict[str, Any]:
    keyring = TestKeyring(service_audience="owr-usage", default_scopes=())
    settings = service_settings(UsageSettings, database_url, redis_url, {}, {})
    app: FastAPI = create_app(settings, jwks_fetcher=keyring.fetch)
    rng = random.Random(15)
    plain, budgeted = Fleet("plain"), Fleet("budgeted")
    # Early in OpenRouter's day, so every round's snapshots (ten minutes apart) stay on it.
    start = dt.datetime.now(dt.UTC).replace(hour=1, minute=0, second=0, microsecond=0)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=120) as client:
            usage = Usage(client, keyring)
            for fleet in (plain, budgeted):
                await seed(usage, fleet, start, rng)
            budgets = await add_budgets_and_channels(database_url, budgeted, [plain, budgeted], rng)
            seconds: dict[str, list[float]] = {"plain": [], "budgeted": []}
            fleets = [plain, budgeted]
            for n in range(rounds + 3):  # three rounds of warm-up
                at = start + dt.timedelta(minutes=10 * (n + 1))
                for fleet in fleets[n % 2 :] + fleets[: n % 2]:
                    body = {"items": fleet.batch(at, rng)}
                    began = time.perf_counter()
                    await usage.call("POST", "/internal/snapshots", body, 200)
                    if n >= 3:
                        seconds[fleet.name].append(time.perf_counter() - began)
    events, deliveries = await events_written(database_url)
    ratios = [b / p for b, p in zip(seconds["budgeted"], seconds["plain"], strict=True)]
    per_key = {name: statistics.median(values) * 1000 / (WORKSPACES * KEYS) for name, values in seconds.items()}
    return {
        "budgets": budgets,
        "batch_keys": WORKSPACES * KEYS,
        "rounds": rounds,
        "plain_ms_per_key": round(per_key["plain"], 3),
        "budgeted_ms_per_key": round(per_key["budgeted"], 3),
        "ratio": round(statistics.median(ratios), 3),
        "events": events,
        "deliveries": deliveries,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30, help="measured rounds per fleet (median reported)")
    args = parser.parse_args()
    configure_logging("bench", "WARNING")
    with ExitStack() as stack:
        database_url, redis_url = bench_database(stack)
        result = asyncio.run(run(database_url, redis_url, args.rounds))
    print(
        f"budgets: {result['budgets']:,} budgets evaluated with each sync batch of {result['batch_keys']} keys "
        f"(in-process usage, {result['rounds']} paired rounds):\n"
        f"  without budgets {result['plain_ms_per_key']:.3f} ms per synced key, with them "
        f"{result['budgeted_ms_per_key']:.3f} ms: {result['ratio']:.2f}x (target <= {TARGET}x)"
        f"; {result['events']:,} events and {result['deliveries']:,} deliveries written along the way"
        + (f"\n  ABOVE the {TARGET}x target" if result["ratio"] > TARGET else "")
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
