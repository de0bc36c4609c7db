"""The key hygiene report (`GET /api/v1/insights/hygiene`, issue 17): each finding on generated rows, a clean key
not listed, other workspaces never shown, suggested limits against an independent p95, API-token scopes."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.support.db import savepoint
from tests.support.http import assert_problem, bearer
from tests.support.tenants import Tenant

PATH = "/api/v1/insights/hygiene"


async def add_key(
    conn: AsyncConnection,
    tenant: Tenant,
    label: str,
    *,
    limit: Decimal | None = Decimal(10),
    limit_reset: str | None = None,
    expires_at: datetime | None = None,
    synced_ago: timedelta = timedelta(hours=1),
    account: uuid.UUID | None = None,
    listed: bool = True,
    spend: dict[date, Decimal] | None = None,
) -> uuid.UUID:
    """A stored key as ingestion leaves it: its latest snapshot and state, its link (when `account` lists it) and
    its daily totals."""
    key_id, workspace, observed = uuid.uuid4(), tenant.workspace_id, datetime.now(UTC) - synced_ago
    await conn.execute(
        text(
            'INSERT INTO usage.snapshots (key_id, observed_at, workspace_id, label, is_management_key, "limit", '
            "limit_reset, limit_remaining, include_byok_in_limit, is_free_tier, expires_at, usage, usage_daily, "
            "usage_weekly, usage_monthly, byok_usage, byok_usage_daily, byok_usage_weekly, byok_usage_monthly) "
            "VALUES (:k, :o, :w, :label, false, :limit, :reset, :limit, false, false, :expires, 0, 0, 0, 0, 0, 0, 0, 0)"
        ),
        {"k": key_id, "o": observed, "w": workspace, "label": label, "limit": limit, "reset": limit_reset}
        | {"expires": expires_at},
    )
    await conn.execute(
        text("INSERT INTO usage.key_states (key_id, workspace_id, latest_observed_at) VALUES (:k, :w, :o)"),
        {"k": key_id, "w": workspace, "o": observed},
    )
    hash_ = f"hash-{key_id}" if account and listed else None
    await conn.execute(
        text(
            "INSERT INTO usage.key_links (key_id, workspace_id, label, is_management_key, management_key_id, "
            "api_key_hash) VALUES (:k, :w, :label, false, :m, :h)"
        ),
        {"k": key_id, "w": workspace, "label": label, "m": account if hash_ else None, "h": hash_},
    )
    if hash_:
        await add_account_row(conn, tenant, account, hash_, label=label, name=None)  # type: ignore[arg-type]
    for day, cost in (spend or {}).items():
        await conn.execute(
            text(
                "INSERT INTO usage.daily_key_totals (workspace_id, day, key_id, provisional, breakdown, cost, "
                "byok_cost, rows, requests, prompt_tokens, completion_tokens, reasoning_tokens) "
                "VALUES (:w, :d, :k, false, false, :c, 0, 1, 0, 0, 0, 0)"
            ),
            {"w": workspace, "d": day, "k": key_id, "c": cost},
        )
    return key_id


async def add_account(conn: AsyncConnection, tenant: Tenant) -> uuid.UUID:
    account = uuid.uuid4()
    await conn.execute(
        text("INSERT INTO usage.accounts (management_key_id, workspace_id, keys_observed_at) VALUES (:m, :w, now())"),
        {"m": account, "w": tenant.workspace_id},
    )
    return account


async def add_account_row(
    conn: AsyncConnection, tenant: Tenant, account: uuid.UUID, hash_: str, *, label: str, name: str | None
) -> None:
    await conn.execute(
        text(
            "INSERT INTO usage.account_keys (management_key_id, hash, workspace_id, name, label, disabled, "
            '"limit", include_byok_in_limit, observed_at, usage, usage_daily, usage_weekly, usage_monthly, '
            "byok_usage, byok_usage_daily, byok_usage_weekly, byok_usage_monthly) "
            "VALUES (:m, :h, :w, :n, :label, false, NULL, false, now(), 0, 0, 0, 0, 0, 0, 0, 0)"
        ),
        {"m": account, "h": hash_, "w": tenant.workspace_id, "n": name, "label": label},
    )


async def mark_invalid(conn: AsyncConnection, tenant: Tenant, key_id: uuid.UUID, name: str) -> None:
    await conn.execute(
        text(
            "INSERT INTO usage.alert_conditions (workspace_id, rule, subject, since, data) "
            "VALUES (:w, 'key.invalid', :s, now(), CAST(:d AS jsonb))"
        ),
        {"w": tenant.workspace_id, "s": str(key_id), "d": json.dumps({"key_id": str(key_id), "key_name": name})},
    )


def p95(values: list[Decimal]) -> float:
    """PostgreSQL's percentile_cont(0.95): linear interpolation between the closest ranks."""
    ordered = sorted(float(v) for v in values)
    position = 0.95 * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def suggestion(values: list[Decimal]) -> Decimal:
    return (Decimal(repr(p95(values))) * Decimal("1.5")).quantize(Decimal("0.01"), ROUND_HALF_EVEN)


def findings(body: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for item in body["items"]:
        found[item["finding"]].add(item["key_id"] or item["hash"])
        assert item["reason"]
        assert item["action"]
        assert item["name"]
    return found


async def test_each_finding_is_listed_and_a_clean_key_is_not(client, db_connection, alice, bob):
    today = datetime.now(UTC).date()
    recent = {today - timedelta(days=n): Decimal("0.5") for n in range(3)}
    async with savepoint(db_connection) as conn:
        account = await add_account(conn, alice)
        clean = await add_key(conn, alice, "sk-or-v1-cle...001", account=account, spend=recent)
        no_limit = await add_key(conn, alice, "sk-or-v1-nol...002", limit=None, account=account)
        dormant = await add_key(
            conn, alice, "sk-or-v1-dor...003", account=account, spend={today - timedelta(days=20): Decimal(3)}
        )
        soon = datetime.now(UTC) + timedelta(days=3)
        expiring = await add_key(conn, alice, "sk-or-v1-exp...004", account=account, expires_at=soon)
        expired = await add_key(conn, alice, "sk-or-v1-exp...005", account=account, expires_at=soon - timedelta(9))
        invalid = await add_key(conn, alice, "sk-or-v1-inv...006", account=account)
        await mark_invalid(conn, alice, invalid, "the revoked one")
        gone = await add_key(conn, alice, "sk-or-v1-gon...007", account=account, listed=False)
        stale = await add_key(conn, alice, "sk-or-v1-sta...008", account=account, synced_ago=timedelta(hours=25))
        await add_account_row(conn, alice, account, "untracked-hash", label="sk-or-v1-unt...009", name="ci bot")
        # Bob's keys: every finding, never in Alice's report.
        theirs = await add_key(conn, bob, "sk-or-v1-bob...010", limit=None, synced_ago=timedelta(days=3))
        await mark_invalid(conn, bob, theirs, "bob's")
        await add_account_row(conn, bob, await add_account(conn, bob), "bobs-hash", label="x", name=None)

    r = await client.get(PATH, headers=alice.headers)
    assert r.status_code == 200, r.text
    found = findings(r.json())
    assert found == {
        "no_limit": {str(no_limit)},
        "dormant": {str(dormant)},
        "expiring": {str(expiring), str(expired)},
        "invalid_stored": {str(invalid)},
        "missing_upstream": {str(gone)},
        "stale_sync": {str(stale)},
        "untracked_in_account": {"untracked-hash"},
    }
    everything = {k for keys in found.values() for k in keys}
    assert str(clean) not in everything
    assert str(theirs) not in everything
    assert "bobs-hash" not in everything
    by_finding = {i["finding"]: i for i in r.json()["items"]}
    assert by_finding["invalid_stored"]["name"] == "the revoked one"
    assert by_finding["untracked_in_account"]["name"] == "ci bot"
    assert by_finding["untracked_in_account"]["key_id"] is None
    assert by_finding["no_limit"]["suggested_limit"] is None  # no spend history
    assert {i["finding"] for i in r.json()["items"] if i["key_id"] == str(expired)} == {"expiring"}


async def test_an_empty_workspace_has_an_empty_report(client, alice):
    r = await client.get(PATH, headers=alice.headers)
    assert (r.status_code, r.json()) == (200, {"items": []})


async def test_suggested_limits_are_the_p95_of_spend_per_window_times_the_margin(client, db_connection, alice):
    rng = random.Random(17)
    today = datetime.now(UTC).date()
    spend = {
        today - timedelta(days=n): Decimal(rng.randint(0, 500_000)) / Decimal(100_000)
        for n in range(120)
        if rng.random() < 0.9
    }
    async with savepoint(db_connection) as conn:
        key_id = await add_key(conn, alice, "sk-or-v1-his...011", limit=None, limit_reset="weekly", spend=spend)

    r = await client.get(PATH, headers=alice.headers)
    (item,) = [i for i in r.json()["items"] if i["finding"] == "no_limit"]
    assert item["key_id"] == str(key_id)
    since = today - timedelta(days=89)
    kept = {d: c for d, c in spend.items() if d >= since}
    weeks: dict[date, Decimal] = defaultdict(Decimal)
    months: dict[date, Decimal] = defaultdict(Decimal)
    for d, c in kept.items():
        weeks[d - timedelta(days=d.weekday())] += c
        months[d.replace(day=1)] += c
    expected = {
        "daily": suggestion(list(kept.values())),
        "weekly": suggestion(list(weeks.values())),
        "monthly": suggestion(list(months.values())),
    }
    got = {s["reset"]: Decimal(str(s["amount_usd"])) for s in item["suggested_limits"]}
    assert got.keys() == expected.keys()
    for reset, amount in expected.items():
        assert abs(got[reset] - amount) <= Decimal("0.01"), (reset, got[reset], amount)
    assert item["suggested_limit"]["reset"] == "weekly"  # the key's own reset window


@pytest.mark.parametrize("path", [PATH, "/api/v1/insights/anomalies"])
async def test_api_tokens_need_usage_read(client, alice, keyring, path):
    def token(*scopes: str) -> dict[str, str]:
        claims = {"tid": str(uuid.uuid4()), "scope": " ".join(scopes)}
        return bearer(keyring.access_token(alice.user_id, alice.workspace_id, **claims))

    problem = assert_problem(await client.get(path, headers=token("alerts:read", "keys:read")), 403)
    assert "usage:read" in problem["detail"]
    assert (await client.get(path, headers=token("usage:read"))).status_code == 200
    assert_problem(await client.get(path), 401)
