"""Generated daily histories of keys (issue 17's anomaly tests): a seeded generator of realistic per-model series
(a weekly rhythm, noise, growth), anomalies planted into them, and their ingestion as the worker reports them."""

from __future__ import annotations

import math
import random
import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from tests.support.openrouter import key_list_row
from tests.support.tenants import Tenant
from tests.usage.conftest import Ingest, at, item, snapshot, today

CENT = Decimal("0.0000000001")


@dataclass
class ModelDay:
    cost: Decimal
    requests: int


@dataclass
class History:
    """One key's generated days (per model), and the anomalies planted in them: {(day, kind)}."""

    key_id: str
    label: str
    hash: str
    days: dict[date, dict[str, ModelDay]]
    planted: set[tuple[date, str]] = field(default_factory=set)

    def cost(self, day: date) -> Decimal:
        return sum((m.cost for m in self.days.get(day, {}).values()), Decimal(0))


MODELS = ("openai/gpt-4.1", "anthropic/claude-sonnet-4", "google/gemini-2.5-pro", "meta/llama-4")


def generate(rng: random.Random, first: date, last: date) -> History:
    """A key used every day from `first` to `last`: a base spend ($0.5-$40 a day), a weekend dip, a weekly growth
    of -1 % to +3 %, lognormal noise (sigma 0.1-0.3), 1-3 models with fixed shares, and a price per request of its
    own (so requests follow spend, with noise of their own)."""
    n = uuid.uuid4().hex
    base = math.exp(rng.uniform(math.log(0.5), math.log(40)))
    weekend = rng.uniform(0.3, 1.0)
    growth = rng.uniform(-0.01, 0.03)
    noise = rng.uniform(0.1, 0.3)
    per_request = rng.uniform(0.002, 0.05)
    models = rng.sample(MODELS, rng.randint(1, 3))
    shares = [rng.uniform(0.2, 1.0) for _ in models]
    total = sum(shares)
    days: dict[date, dict[str, ModelDay]] = {}
    day = first
    while day <= last:
        weeks = (day - first).days / 7
        level = base * (1 + growth) ** weeks * (weekend if day.weekday() >= 5 else 1.0) * rng.lognormvariate(0, noise)
        days[day] = {}
        for model, share in zip(models, shares, strict=True):
            cost = level * share / total
            requests = max(1, round(cost / per_request * rng.lognormvariate(0, 0.1)))
            days[day][model] = ModelDay(Decimal(repr(cost)).quantize(CENT), requests)
        day += timedelta(days=1)
    return History(str(uuid.uuid4()), f"sk-or-v1-{n[:3]}...{n[3:6]}", n * 2, days)


def generate_occasional(rng: random.Random, first: date, last: date) -> History:
    """A key used on 20-50 % of its days, at random (`generate`'s figures on those days, nothing on the others), but
    never idle 10 days running: idle for `DORMANT_DAYS` is a dormant key, another anomaly."""
    history = generate(rng, first, last)
    share = rng.uniform(0.2, 0.5)
    idle = 0
    for day in sorted(history.days):
        if idle < 9 and rng.random() >= share:
            history.days[day] = {}
            idle += 1
        else:
            idle = 0
    return history


def generate_weekday_only(rng: random.Random, first: date, last: date) -> History:
    """A key used Monday to Friday only (`generate`'s figures, nothing at weekends)."""
    history = generate(rng, first, last)
    for day in history.days:
        if day.weekday() >= 5:
            history.days[day] = {}
    return history


def active_days(history: History, since: date) -> int:
    """The days from `since` on with spend (the days a spike could be judged on)."""
    return sum(1 for day in history.days if day >= since and history.cost(day) > 0)


def scale(history: History, day: date, *, cost: float = 1.0, requests: float = 1.0) -> None:
    """Multiply a day's spend and request counts (every model's)."""
    for figures in history.days[day].values():
        figures.cost = (figures.cost * Decimal(repr(cost))).quantize(CENT)
        figures.requests = max(1, round(figures.requests * requests))


def plant_spike(history: History, day: date, factor: float = 10) -> None:
    scale(history, day, cost=factor, requests=factor)
    history.planted.add((day, "spend_spike"))


def _usual(history: History, day: date, figure: Callable[[date], float]) -> float:
    """The median of `figure` over the 8 same weekdays before `day` (what the baseline sees)."""
    return statistics.median(figure(day - timedelta(days=7 * n)) for n in range(1, 9))


def _requests(history: History, day: date) -> float:
    return float(sum(m.requests for m in history.days[day].values()))


def plant_requests_without_spend(history: History, day: date, factor: float = 12) -> None:
    """Spend exactly as usual for the weekday, requests `factor` times the usual."""
    scale(history, day, cost=_usual(history, day, lambda d: float(history.cost(d))) / float(history.cost(day)))
    scale(
        history, day, requests=factor * _usual(history, day, lambda d: _requests(history, d)) / _requests(history, day)
    )
    history.planted.add((day, "requests_spend_divergence"))


def plant_spend_without_requests(history: History, day: date, factor: float = 12) -> None:
    """Requests exactly as usual for the weekday, spend `factor` times the usual: a spend spike (the divergence is
    the same incident, not a second anomaly)."""
    scale(history, day, cost=factor * _usual(history, day, lambda d: float(history.cost(d))) / float(history.cost(day)))
    scale(history, day, requests=_usual(history, day, lambda d: _requests(history, d)) / _requests(history, day))
    history.planted.add((day, "spend_spike"))


def plant_new_model(history: History, day: date, model: str = "x-ai/grok-leak") -> None:
    history.days[day][model] = ModelDay(Decimal("0.75"), 30)
    history.planted.add((day, "new_model"))


def plant_dormancy(history: History, first: date, wake: date) -> None:
    """No spend from `first` until `wake`, then an ordinary day (at least $2)."""
    day = first
    while day < wake:
        history.days[day] = {}
        day += timedelta(days=1)
    for figures in history.days[wake].values():
        figures.cost = max(figures.cost, Decimal(2))
    history.planted.add((wake, "dormant_wakeup"))


def activity_rows(history: History) -> list[dict[str, Any]]:
    return [
        {
            "date": day.isoformat(),
            "model": model,
            "model_permaslug": model + "-2025",
            "endpoint_id": "550e8400-e29b-41d4-a716-446655440000",
            "provider_name": "Provider",
            "usage": figures.cost,
            "byok_usage_inference": Decimal(0),
            "requests": figures.requests,
            "prompt_tokens": figures.requests * 800,
            "completion_tokens": figures.requests * 200,
            "reasoning_tokens": 0,
        }
        for day, models in sorted(history.days.items())
        for model, figures in models.items()
    ]


async def ingest_histories(ingest: Ingest, tenant: Tenant, histories: list[History], *, observed_hour: int = 6) -> str:
    """As the worker reports them: each key's snapshot, the account's key list linking them, then each hash's
    activity over all its days (one report per key). Returns the account's management key id."""
    observed = at(today(), observed_hour)
    for history in histories:
        await ingest.snapshots(
            item(history.key_id, tenant.workspace_id, observed, snapshot("0", "0", label=history.label))
        )
    account = str(uuid.uuid4())
    listing = {
        "workspace_id": tenant.workspace_id,
        "observed_at": observed,
        "keys": [key_list_row(hash=h.hash, name=f"key {n}", label=h.label) for n, h in enumerate(histories)],
    }
    assert (await ingest.call("PUT", f"/internal/accounts/{account}/keys", listing)).status_code == 204
    for history in histories:
        await report_activity(ingest, tenant, account, history, observed_hour=observed_hour)
    return account


async def report_activity(
    ingest: Ingest, tenant: Tenant, account: str, history: History, *, observed_hour: int = 6
) -> None:
    body = {
        "workspace_id": tenant.workspace_id,
        "observed_at": at(today(), observed_hour),
        "api_key_hash": history.hash,
        "dates": [day.isoformat() for day in sorted(history.days)],
        "rows": activity_rows(history),
    }
    r = await ingest.call("PUT", f"/internal/accounts/{account}/activity", body)
    assert r.status_code == 204, r.text
