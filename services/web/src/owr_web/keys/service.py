"""The keys pages' figures: the key list joined with three summaries (today, 7 days, 30 days) in one go."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from owr_web.api.client import Api
from owr_web.insights.service import anomalies_in_words

PER_PAGE = 250
SPEND_WINDOWS = (("today", 0), ("week", 6), ("month", 29))


def limit_use(key: dict[str, Any]) -> Decimal | None:
    """The share of the key's OpenRouter limit spent in its current window (None without a limit)."""
    limit, remaining = key.get("limit"), key.get("limit_remaining")
    if limit is None or remaining is None or Decimal(limit) <= 0:
        return None
    return max(Decimal(0), (Decimal(limit) - Decimal(remaining)) / Decimal(limit))


def seconds_until_reset(limit_reset: str | None, now: datetime | None = None) -> float | None:
    """OpenRouter's windows are UTC: days from midnight, weeks from Monday, months from the 1st."""
    now = now or datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if limit_reset == "daily":
        nxt = midnight + timedelta(days=1)
    elif limit_reset == "weekly":
        nxt = midnight + timedelta(days=7 - now.weekday())
    elif limit_reset == "monthly":
        nxt = (midnight.replace(day=1) + timedelta(days=32)).replace(day=1)
    else:
        return None
    return (nxt - now).total_seconds()


async def _spend_by_key(api: Api, days_back: int, today: Any) -> dict[str, Decimal]:
    first = today - timedelta(days=days_back)
    summary = await api.get("/api/v1/usage/summary", **{"from": first.isoformat(), "to": today.isoformat()})
    return {k["key_id"]: Decimal(k["cost"]) for k in summary["by_key"]}


async def table(api: Api, page: int = 1) -> dict[str, Any]:
    """A page of keys, each with its limit use, time until reset and spend over three windows."""
    today = datetime.now(UTC).date()
    keys, *spends = await asyncio.gather(
        api.get("/api/v1/keys", page=page, per_page=PER_PAGE),
        *(_spend_by_key(api, back, today) for _, back in SPEND_WINDOWS),
    )
    rows = []
    for key in keys["items"]:
        spend = {name: spends[i].get(key["id"], Decimal(0)) for i, (name, _) in enumerate(SPEND_WINDOWS)}
        rows.append(
            {**key, "use": limit_use(key), "reset_in": seconds_until_reset(key.get("limit_reset")), "spend": spend}
        )
    return {
        "rows": rows,
        "total": keys["total"],
        "page": page,
        "pages": max(1, -(-int(keys["total"]) // PER_PAGE)),
        "pending": any(k["status"] == "pending" for k in keys["items"]),
    }


async def detail(api: Api, key_id: str) -> dict[str, Any]:
    """One key: its view, its usage (windows, daily series, models), spend by provider, its anomalies of the
    last 30 days, its audit trail."""
    today = datetime.now(UTC).date()
    first = today - timedelta(days=29)
    window = {"from": first.isoformat(), "to": today.isoformat()}
    key = await api.get(f"/api/v1/keys/{key_id}")  # first: a key of another workspace is a 404 page
    # A key never synced has no usage yet (404 there): the page says so rather than failing.
    usage, rows, audit, anomalies, upstream = await asyncio.gather(
        api.get_optional(f"/api/v1/usage/keys/{key_id}", **window),
        api.get_optional("/api/v1/usage/daily", key_id=key_id, per_page=250, **window),
        api.get(f"/api/v1/keys/{key_id}/audit", per_page=50),
        # 30 days of four kinds fit one page.
        api.get_optional("/api/v1/insights/anomalies", key_id=key_id, per_page=250, **window),
        # The key at OpenRouter and the writes made there (usage's; a 404 until the key's first sync).
        api.get_optional(f"/api/v1/keys/{key_id}/upstream"),
    )
    by_model: dict[str, Decimal] = defaultdict(Decimal)
    by_provider: dict[str, Decimal] = defaultdict(Decimal)
    for row in (rows or {"items": []})["items"]:
        by_model[row["model"] or "no breakdown"] += Decimal(row["cost"])
        by_provider[row["provider"] or "no breakdown"] += Decimal(row["cost"])
    return {
        "key": {**key, "use": limit_use(key), "reset_in": seconds_until_reset(key.get("limit_reset"))},
        "usage": usage,
        "by_model": sorted(by_model.items(), key=lambda kv: -kv[1]),
        "by_provider": sorted(by_provider.items(), key=lambda kv: -kv[1]),
        "audit": audit["items"],
        "upstream": upstream,
        "anomalies": anomalies_in_words((anomalies or {"items": []})["items"]),
        "since": first,
    }
