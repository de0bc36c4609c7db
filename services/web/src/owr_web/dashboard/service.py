"""The dashboard's figures, from five API calls made at once (one per widget source, never per key); the
models' prices are optional: without them the page still shows."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from owr_web.api.client import Api
from owr_web.api.errors import ApiProblem, ApiUnavailable, PageNotFound
from owr_web.budgets.service import attention
from owr_web.insights.service import model_prices
from owr_web.keys.service import limit_use

CHART_DAYS = 30
CHART_MODELS = 8
OTHER = "other"
NO_BREAKDOWN = "no breakdown"
NEAR_LIMIT = Decimal("0.8")
# The models' prices: the last 7 completed days against the 7 before (activity has no today), a cheap read
# (about a fifth of the chart's range twice over); the tile's top models fit in one page.
PRICE_DAYS = 7
PRICE_ROWS = 100


def today_utc() -> date:
    return datetime.now(UTC).date()


@dataclass(slots=True)
class Tile:
    label: str
    amount: Decimal | None
    provisional: bool = False
    note: str = ""


@dataclass(slots=True)
class Dashboard:
    tiles: list[Tile]
    chart: dict[str, Any]
    days: list[dict[str, Any]]
    top_models: list[dict[str, Any]]
    near_limit: list[dict[str, Any]]
    since: date
    keys_total: int
    pending: bool = False
    # Budgets at warning or over, and how many there are (None: the budgets could not be listed).
    budgets_attention: list[dict[str, Any]] | None = None
    budgets_total: int | None = None
    # The prices' days (None: they could not be read just now, and the models are shown without them).
    prices_from: date | None = None
    prices_to: date | None = None


def _sum(days: list[dict[str, Any]], since: date) -> tuple[Decimal, bool]:
    chosen = [d for d in days if date.fromisoformat(d["date"]) >= since]
    return sum((Decimal(d["cost"]) for d in chosen), Decimal(0)), any(d["provisional"] for d in chosen)


def chart_data(summary: dict[str, Any], today: date) -> dict[str, Any]:
    """Daily cost stacked by model over the last 30 days: the 8 costliest models, the rest as "other"."""
    first = today - timedelta(days=CHART_DAYS - 1)
    labels = [(first + timedelta(days=i)).isoformat() for i in range(CHART_DAYS)]
    per_model: dict[str, dict[str, Decimal]] = defaultdict(dict)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in summary["by_day_model"]:
        if row["date"] < labels[0]:
            continue
        model = row["model"] or NO_BREAKDOWN
        per_model[model][row["date"]] = per_model[model].get(row["date"], Decimal(0)) + Decimal(row["cost"])
        totals[model] += Decimal(row["cost"])
    ranked = sorted(totals, key=lambda m: (-totals[m], m))
    shown, rest = ranked[:CHART_MODELS], ranked[CHART_MODELS:]
    series = [{"label": model, "data": [str(per_model[model].get(d, 0)) for d in labels]} for model in shown]
    if rest:
        other = [sum((per_model[m].get(d, Decimal(0)) for m in rest), Decimal(0)) for d in labels]
        series.append({"label": OTHER, "data": [str(v) for v in other]})
    return {"labels": labels, "series": series}


async def _prices(api: Api, first: date, last: date) -> dict[str, Any] | None:
    """The prices of [first, last] against the days before, or None when the API cannot give them now (the
    workspace's share of expensive reads is taken, the service is away): the tile then goes without."""
    try:
        report: dict[str, Any] = await api.get(
            "/api/v1/insights/prices", **{"from": first.isoformat(), "to": last.isoformat()}, per_page=PRICE_ROWS
        )
    except (ApiProblem, ApiUnavailable, PageNotFound):
        return None
    return report


async def load(api: Api) -> Dashboard:
    today = today_utc()
    since = min(today - timedelta(days=CHART_DAYS - 1), today.replace(day=1))
    period = {"from": since.isoformat(), "to": today.isoformat()}
    summary, accounts, keys, budgets, prices = await asyncio.gather(
        api.get("/api/v1/usage/summary", **period),
        api.get("/api/v1/usage/accounts", per_page=250),
        api.get("/api/v1/keys", per_page=250),
        api.get_optional("/api/v1/budgets", per_page=250),
        _prices(api, today - timedelta(days=PRICE_DAYS), today - timedelta(days=1)),
    )
    days = summary["by_day"]
    today_cost, today_provisional = _sum(days, today)
    week_cost, week_provisional = _sum(days, today - timedelta(days=6))
    month_cost, month_provisional = _sum(days, today.replace(day=1))
    balances = [a["balance"]["balance"] for a in accounts["items"] if a["balance"] and a["balance"]["known"]]
    balance = sum((Decimal(b) for b in balances if b is not None), Decimal(0)) if balances else None
    near = []
    for key in keys["items"]:
        use = limit_use(key)
        if use is not None and use >= NEAR_LIMIT:
            near.append({**key, "use": use})
    near.sort(key=lambda k: -k["use"])
    tiles = [
        Tile("Today", today_cost, today_provisional),
        Tile("Last 7 days", week_cost, week_provisional),
        Tile("Month to date", month_cost, month_provisional),
        Tile(
            "Account balance",
            balance,
            note=f"{len(balances)} account{'s' if len(balances) != 1 else ''}" if balances else "no management key",
        ),
    ]
    return Dashboard(
        tiles=tiles,
        chart=chart_data(summary, today),
        days=list(reversed(days)),
        top_models=model_prices(summary["by_model"][:10], prices),
        near_limit=near,
        since=since,
        keys_total=int(keys["total"]),
        pending=any(k["status"] == "pending" for k in keys["items"]),
        budgets_attention=attention(budgets["items"]) if budgets else None,
        budgets_total=int(budgets["total"]) if budgets else None,
        prices_from=today - timedelta(days=PRICE_DAYS) if prices is not None else None,
        prices_to=today - timedelta(days=1) if prices is not None else None,
    )
