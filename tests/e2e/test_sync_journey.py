"""From OpenRouter to numbers, for real: the emulator, the worker, keys and usage, driven through the gateway.

The emulator's clock is moved to days just behind the real one, so each step's "today" is a day of our
choosing; the worker dates every snapshot by OpenRouter's `Date` header, so usage follows the same clock.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.e2e.conftest import System
from tests.e2e.emulator_admin import EmulatorAdmin
from tests.e2e.test_keys_journey import signed_in

pytestmark = pytest.mark.e2e

EXACT = Decimal("1e-9")
MODELS = [
    ("openai/gpt-4.1", "openai/gpt-4.1-2025-04-14", "OpenAI"),
    ("openai/gpt-4.1", "openai/gpt-4.1-2025-04-14", "Azure"),
    ("anthropic/claude-sonnet-4", "anthropic/claude-4-sonnet-20250522", "Anthropic"),
]


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A UTC time on `day`."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def last_monday_before(day: date) -> date:
    return day - timedelta(days=day.weekday() or 7)


def spend(key_hash: str, at: datetime, cost: str, model: int = 0, byok: str = "0") -> dict[str, Any]:
    slug, permaslug, provider = MODELS[model]
    return {
        "key_hash": key_hash,
        "at": at.isoformat(),
        "model": slug,
        "model_permaslug": permaslug,
        "provider_name": provider,
        "requests": 2,
        "prompt_tokens": 1000,
        "completion_tokens": 250,
        "reasoning_tokens": 50,
        "cost": cost,
        "byok_cost": byok,
    }


async def wait_for(check: Callable[[], Awaitable[Any]], *, seconds: float = 45, what: str = "") -> Any:
    """Poll until `check` returns something truthy."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


class Watcher:
    """The user's side: the gateway, with one signed-in user."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    @classmethod
    async def signed_up(cls, client: httpx.AsyncClient) -> Watcher:
        """A new user, signed in through the gateway."""
        return cls(client, await signed_in(client))

    async def add(self, name: str, secret: str, *, request_id: str | None = None) -> str:
        """Add a key and wait for its first sync, which adding it queued (so a later press is a sync of its own)."""
        headers = {**self.headers, **({"x-request-id": request_id} if request_id else {})}
        r = await self.client.post("/api/v1/keys", headers=headers, json={"name": name, "key": secret})
        assert r.status_code == 201, r.text
        key_id = str(r.json()["id"])

        async def first_sync_done() -> bool:
            return bool((await self.keys())[key_id]["status"] != "pending")

        await wait_for(first_sync_done, what=f"the first sync of {name}")
        return key_id

    async def add_numbered(self, prefix: str, keys: list[dict[str, Any]]) -> list[str]:
        """Each of the emulator's `keys`, named `<prefix> <n>`; their ids in order."""
        return [await self.add(f"{prefix} {n}", key["key"]) for n, key in enumerate(keys)]

    async def add_account(self, management: dict[str, Any], *inference: dict[str, Any]) -> dict[str, str]:
        """An account's management key (named "ops") and inference keys (by their emulator names)."""
        ids = {"management": await self.add("ops", management["key"])}
        for key in inference:
            ids[key["name"]] = await self.add(key["name"], key["key"])
        return ids

    async def keys(self) -> dict[str, dict[str, Any]]:
        r = await self.client.get("/api/v1/keys", headers=self.headers, params={"per_page": 250})
        assert r.status_code == 200, r.text
        return {item["id"]: item for item in r.json()["items"]}

    async def sync(self, *key_ids: str, status: str = "valid") -> dict[str, Any]:
        """Ask for a sync of each key and wait until all have reported one with `status`."""
        # The vault stamps `last_synced_at` with the worker's clock (the real one), so it orders syncs.
        asked = datetime.now(UTC)
        for key_id in key_ids:
            r = await self.client.post(f"/api/v1/keys/{key_id}/sync", headers=self.headers)
            assert r.status_code == 202, r.text
        return await self.synced_since(asked, *key_ids, status=status)

    async def synced_since(self, moment: datetime, *key_ids: str, status: str = "valid") -> dict[str, Any]:
        """Wait until each key reports a sync at or after `moment` (real time) with `status`."""

        async def check() -> dict[str, Any] | None:
            keys = await self.keys()
            done = all(
                keys[k]["last_synced_at"] is not None
                and datetime.fromisoformat(keys[k]["last_synced_at"]) >= moment
                and keys[k]["status"] == status
                for k in key_ids
            )
            return keys if done else None

        return dict(await wait_for(check, what=f"keys synced since {moment} as {status}"))

    async def usage(self, key_id: str, **params: str) -> dict[str, Any]:
        r = await self.client.get(f"/api/v1/usage/keys/{key_id}", headers=self.headers, params=params)
        assert r.status_code == 200, r.text
        return dict(r.json())


def by_date(usage: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["date"]: row for row in usage["daily"]}


def assert_exact(actual: Any, expected: Any, what: str) -> None:
    assert abs(Decimal(str(actual)) - Decimal(str(expected))) <= EXACT, f"{what}: {actual} != {expected}"


async def test_exact_daily_spend_per_model_figures_and_balance_across_midnight_and_a_week(
    system: System, emulator: EmulatorAdmin
):
    # Saturday D0 -> Sunday D1 -> Monday D2: a midnight, then a week boundary, all in the past.
    monday = last_monday_before(datetime.now(UTC).date() - timedelta(days=1))
    d0, d1, d2 = monday - timedelta(days=2), monday - timedelta(days=1), monday

    await emulator.set_clock(at(d0, 18))
    account = await emulator.account("250.5")
    management = await emulator.key(account, "management", name="ops")
    alpha = await emulator.key(account, "inference", name="alpha", limit="5", limit_reset="daily")
    beta = await emulator.key(account, "inference", name="beta", limit="40", limit_reset="weekly")
    history = [spend(alpha["hash"], at(d0 - timedelta(days=n), 9), "0.1015644762", n % 3) for n in range(1, 6)]
    history += [spend(beta["hash"], at(d0 - timedelta(days=n), 11), "1.000000001", 2, byok="0.25") for n in (2, 4)]
    today = [
        spend(alpha["hash"], at(d0, 8), "0.0000000013", 0),
        spend(alpha["hash"], at(d0, 9), "0.33", 1),
        spend(beta["hash"], at(d0, 10), "2.718281828", 2, byok="0.5"),
    ]
    await emulator.events(history + today)

    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        watcher = await Watcher.signed_up(client)
        ids = await watcher.add_account(management, alpha, beta)
        keys = await watcher.sync(*ids.values())
        assert keys[ids["management"]]["kind"] == "management"
        assert keys[ids["alpha"]]["kind"] == "inference"
        assert keys[ids["alpha"]]["limit_reset"] == "daily"

        # The management key's account sync links alpha and beta and brings 30 days of per-model activity.
        truth = await emulator.truth(account)

        async def linked_with_models() -> dict[str, Any] | None:
            usage = await watcher.usage(ids["alpha"], **{"from": str(d0 - timedelta(days=6)), "to": str(d0)})
            day = by_date(usage).get(str(d0 - timedelta(days=1)))
            return usage if usage.get("linked") and day and day.get("models") else None

        usage = await wait_for(linked_with_models, what="alpha linked with per-model activity")
        completed = [day for day in truth["activity"][alpha["hash"]] if str(d0 - timedelta(days=6)) <= day < str(d0)]
        assert len(completed) == 5
        for day in completed:
            models = truth["activity"][alpha["hash"]][day]
            row = by_date(usage)[day]
            assert row["provisional"] is False
            assert_exact(row["spend"], truth["keys"][alpha["hash"]]["daily"][day]["cost"], f"{day} total")
            got = {m["model"]: m for m in row["models"]}
            assert set(got) == set(models), day
            for model, figures in models.items():
                for field in ("cost", "byok_cost", "requests", "prompt_tokens", "completion_tokens"):
                    assert_exact(got[model][field], figures[field], f"{day} {model} {field}")

        # Today is provisional and equals OpenRouter's own `usage_daily`; the limit follows the daily window.
        usage = await watcher.usage(ids["alpha"], **{"from": str(d0), "to": str(d0)})
        (row,) = usage["daily"]
        assert row["provisional"] is True
        assert_exact(row["spend"], truth["keys"][alpha["hash"]]["daily"][str(d0)]["cost"], "alpha d0 provisional")
        assert_exact(usage["limit_remaining"], Decimal(5) - Decimal("0.3300000013"), "alpha limit_remaining")
        management_usage = await watcher.usage(ids["management"])
        assert_exact(management_usage["account"]["balance"], truth["balance"], "balance")

        # Past midnight: D0 becomes final and exact; D1 starts provisional.
        await emulator.set_clock(at(d1, 0, 30))
        await emulator.events([spend(alpha["hash"], at(d1, 0, 10), "0.2", 0), spend(beta["hash"], at(d1, 0, 20), "1")])
        await watcher.sync(ids["alpha"], ids["beta"])
        truth = await emulator.truth(account)
        for name in ("alpha", "beta"):
            key_hash = {"alpha": alpha, "beta": beta}[name]["hash"]
            rows = by_date(await watcher.usage(ids[name], **{"from": str(d0), "to": str(d1)}))
            assert rows[str(d0)]["provisional"] is False, name
            assert_exact(rows[str(d0)]["spend"], truth["keys"][key_hash]["daily"][str(d0)]["cost"], f"{name} d0")
            assert_exact(rows[str(d0)]["byok_spend"], truth["keys"][key_hash]["daily"][str(d0)]["byok_cost"], name)
            assert rows[str(d1)]["provisional"] is True
            assert_exact(rows[str(d1)]["spend"], truth["keys"][key_hash]["daily"][str(d1)]["cost"], f"{name} d1")
        # alpha's daily limit reset at midnight, as OpenRouter's does.
        alpha_usage = await watcher.usage(ids["alpha"])
        assert_exact(alpha_usage["limit_remaining"], Decimal(5) - Decimal("0.2"), "alpha limit after midnight")

        # Past the week boundary (Monday): beta's weekly window and weekly limit start again.
        await emulator.set_clock(at(d2, 6))
        await emulator.events([spend(beta["hash"], at(d2, 5), "0.125", 1)])
        await watcher.sync(ids["beta"])
        truth = await emulator.truth(account)
        beta_usage = await watcher.usage(ids["beta"], **{"from": str(d0), "to": str(d2)})
        assert_exact(beta_usage["windows"]["week"]["usage"], "0.125", "beta week window")
        assert beta_usage["windows"]["week"]["start"] == str(d2)
        assert_exact(beta_usage["limit_remaining"], Decimal(40) - Decimal("0.125"), "beta weekly limit")
        rows = by_date(beta_usage)
        assert rows[str(d1)]["provisional"] is False
        assert_exact(rows[str(d1)]["spend"], truth["keys"][beta["hash"]]["daily"][str(d1)]["cost"], "beta d1")

    # The keys crossed auth, keys, usage, the worker and the emulator: none of them logged one.
    logs = system.logs()
    for secret in (management["key"], alpha["key"], beta["key"]):
        assert secret not in logs
        assert secret.removeprefix("sk-or-v1-") not in logs


async def funded_keys(emulator: EmulatorAdmin, count: int, cost: str = "0.0123456789") -> list[dict[str, Any]]:
    """An account with `count` inference keys, each with one spend an hour ago on the emulator's today."""
    now = await emulator.set_clock(datetime.now(UTC) - timedelta(days=1))
    account = await emulator.account("100")
    keys = [await emulator.key(account, "inference", name=f"k{n}") for n in range(count)]
    # Spent minutes before the clock, but on its day: a run just after 00:00 UTC put some spend on the day before.
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    await emulator.events(
        [spend(k["hash"], max(midnight, now - timedelta(minutes=n % 50 + 1)), cost, n % 3) for n, k in enumerate(keys)]
    )
    for key in keys:
        key["account"] = account
    return keys


async def today_spend(watcher: Watcher, key_id: str, day: date) -> Decimal:
    rows = by_date(await watcher.usage(key_id, **{"from": str(day), "to": str(day)}))
    return Decimal(str(rows[str(day)]["spend"]))


async def test_a_new_key_syncs_at_once_without_a_press_or_the_due_scan(system: System, emulator: EmulatorAdmin):
    (key,) = await funded_keys(emulator, 1)
    request_id = f"e2e-add-{secrets.token_hex(6)}"
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        watcher = await Watcher.signed_up(client)
        key_id = await watcher.add("at once", key["key"], request_id=request_id)
        view = (await watcher.keys())[key_id]
        assert (view["status"], view["kind"]) == ("valid", "inference")
        assert view["last_synced_at"] is not None
        r = await client.get(f"/api/v1/keys/{key_id}/audit", headers=watcher.headers, params={"per_page": 250})
        events = r.json()["items"]
        # No one pressed sync, and the sync's reveal carries the request id of the POST that added the key:
        # the job the POST queued did it, not the minute's due scan (whose jobs carry no request id).
        assert "sync_requested" not in [e["action"] for e in events]
        reveals = [e for e in events if e["action"] == "revealed"]
        assert [e["request_id"] for e in reveals] == [request_id]
        assert await watcher.usage(key_id)


async def test_a_revoked_key_turns_invalid_and_keeps_its_figures(system: System, emulator: EmulatorAdmin):
    (key,) = await funded_keys(emulator, 1)
    today = (datetime.now(UTC) - timedelta(days=1)).date()
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        watcher = await Watcher.signed_up(client)
        key_id = await watcher.add("soon revoked", key["key"])
        await watcher.sync(key_id)
        before = await watcher.usage(key_id)

        await emulator.revoke(key["hash"])
        keys = await watcher.sync(key_id, status="invalid")
        assert "401" in (keys[key_id]["last_error"] or "")
        after = await watcher.usage(key_id)
        assert after["daily"] == before["daily"]
        assert_exact(await today_spend(watcher, key_id, today), "0.0123456789", "kept figure")


async def test_a_429_storm_is_waited_out_with_nothing_lost_or_doubled(system: System, emulator: EmulatorAdmin):
    keys = await funded_keys(emulator, 6)
    today = (datetime.now(UTC) - timedelta(days=1)).date()
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        watcher = await Watcher.signed_up(client)
        ids = await watcher.add_numbered("storm", keys)
        before = (await emulator.stats())["by_status"].get("429", 0)
        await emulator.faults(status=429, count=20, retry_after=1, paths=["/key"])
        await watcher.sync(*ids)
        assert (await emulator.stats())["by_status"].get("429", 0) - before == 20  # the storm really happened
        for key_id in ids:
            assert_exact(await today_spend(watcher, key_id, today), "0.0123456789", "spend after the storm")


async def test_a_worker_killed_mid_sync_leaves_every_key_synced_once(system: System, emulator: EmulatorAdmin):
    keys = await funded_keys(emulator, 12)
    today = (datetime.now(UTC) - timedelta(days=1)).date()
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        watcher = await Watcher.signed_up(client)
        ids = await watcher.add_numbered("crash", keys)
        # Slow answers keep every job in flight when the worker dies.
        await emulator.faults(latency_ms=2000)
        asked = datetime.now(UTC)
        for key_id in ids:
            assert (await client.post(f"/api/v1/keys/{key_id}/sync", headers=watcher.headers)).status_code == 202
        redis = Redis.from_url(system.env["REDIS_URL"])
        try:

            async def all_in_progress() -> bool:
                marks = await redis.exists(*(f"arq:in-progress:sync_key:{key_id}" for key_id in ids))
                return bool(marks == len(ids))

            await wait_for(all_in_progress, seconds=20, what="every job running")
        finally:
            await redis.aclose()
        system.restart("worker")  # SIGKILL: no shutdown hook, locks and in-progress marks left behind
        await emulator.clear_faults()
        await watcher.synced_since(asked, *ids)
        for key_id in ids:
            usage = await watcher.usage(key_id, **{"from": str(today), "to": str(today)})
            assert len(usage["daily"]) == 1
            assert_exact(usage["daily"][0]["spend"], "0.0123456789", "spend after the crash")


async def _stat(emulator: EmulatorAdmin, route: str) -> int:
    return int((await emulator.stats())["requests"].get(route, 0))


async def worker_metric(system: System, name: str) -> float | None:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{system.ports.worker}/metrics")).text
    for line in text.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_openrouter_down_opens_the_circuit_shows_the_error_and_recovers(system: System, emulator: EmulatorAdmin):
    keys = await funded_keys(emulator, 2)
    async with httpx.AsyncClient(base_url=system.gateway, timeout=15) as client:
        watcher = await Watcher.signed_up(client)
        ids = await watcher.add_numbered("outage", keys)
        await watcher.sync(*ids)

        failed_before = (await emulator.stats())["by_status"].get("503", 0)
        await emulator.faults(status=503)
        keys_view = await watcher.sync(*ids, status="error")
        for key_id in ids:
            assert keys_view[key_id]["last_error"], "the key shows why its sync failed"
        assert await worker_metric(system, "owr_openrouter_circuit_open") == 1.0
        await asyncio.sleep(4)  # the jobs keep looking, but only a probe per open period reaches OpenRouter
        failed = (await emulator.stats())["by_status"].get("503", 0) - failed_before
        # Without the breaker: 2 keys x 5 job tries x 3 attempts = 30 calls by now.
        assert failed <= 8, f"{failed} calls to a down OpenRouter"

        await emulator.clear_faults()
        await asyncio.sleep(3.5)  # WORKER_CIRCUIT_OPEN_SECONDS: the next call is the probe
        keys_view = await watcher.sync(*ids)
        assert all(keys_view[key_id]["last_error"] is None for key_id in ids)
        assert await worker_metric(system, "owr_openrouter_circuit_open") == 0.0
