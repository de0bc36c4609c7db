"""A workspace's figures as Prometheus text: bounded by its keys and accounts, nothing of another workspace."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession

from owr_usage.reconciliation import service as reconciliation
from owr_usage.workspace_metrics.repository import Balance, KeyFigures, WindowSpend, WorkspaceMetricsRepository

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BURN_DAYS = 7
STATUSES = ("active", "disabled", "expired", "limit_reached")
_ZERO = WindowSpend(Decimal(0), Decimal(0), Decimal(0))


def key_status(key: KeyFigures, now: datetime) -> str:
    """The key's state from its latest figures: disabled at OpenRouter, expired, out of limit, or active."""
    if key.disabled:
        return "disabled"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    if key.limit is not None and key.limit_remaining is not None and key.limit_remaining <= 0:
        return "limit_reached"
    return "active"


def next_reset(limit_reset: str | None, now: datetime) -> datetime | None:
    """When a `daily`/`weekly`/`monthly` limit next resets (UTC midnight, Monday, the 1st); None otherwise."""
    midnight = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), tzinfo=UTC)
    if limit_reset == "daily":
        return midnight + timedelta(days=1)
    if limit_reset == "weekly":
        return midnight + timedelta(days=7 - midnight.weekday())
    if limit_reset == "monthly":
        first = midnight.replace(day=1)
        return (
            first.replace(year=first.year + 1, month=1) if first.month == 12 else first.replace(month=first.month + 1)
        )
    return None


def runway_days(latest: Balance, base: Balance) -> float | None:
    """Balance ÷ the daily burn between the base balance and the latest; None without a positive burn."""
    elapsed = (latest.observed_at - base.observed_at).total_seconds() / 86400
    burned = latest.total_usage - base.total_usage
    if elapsed <= 0 or burned <= 0:
        return None
    return float((latest.total_credits - latest.total_usage) / (burned / Decimal(repr(elapsed))))


class _Snapshot(Collector):
    """A one-off collector of families computed already (the registry serialises and escapes them)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _families(
    keys: list[KeyFigures],
    spend: dict[uuid.UUID, WindowSpend],
    balances: dict[uuid.UUID, tuple[Balance, Balance]],
    differences: dict[uuid.UUID, Decimal],
    now: datetime,
) -> list[Metric]:
    labels = ["key_id", "key_name"]
    spent = GaugeMetricFamily(
        "owr_key_spend_usd", "Spend of the key in the current UTC day, week and month", labels=[*labels, "window"]
    )
    limit = GaugeMetricFamily("owr_key_limit_usd", "The key's credit limit at OpenRouter", labels=labels)
    remaining = GaugeMetricFamily("owr_key_limit_remaining_usd", "What remains of the key's limit", labels=labels)
    reset = GaugeMetricFamily("owr_key_limit_reset_seconds", "Seconds until the key's limit resets", labels=labels)
    status = GaugeMetricFamily("owr_key_status", "1 for the key's current status", labels=[*labels, "status"])
    age = GaugeMetricFamily("owr_key_last_sync_age_seconds", "Seconds since the key's latest snapshot", labels=labels)
    gap = GaugeMetricFamily(
        "owr_key_reconciliation_gap_usd",
        "Yesterday's (UTC) spend from the key's /key snapshots minus activity's sum; only keys both figures exist for",
        labels=labels,
    )
    for key in keys:
        values = [str(key.key_id), key.name or key.label or ""]
        windows = spend.get(key.key_id, _ZERO)
        for window, amount in (("day", windows.day), ("week", windows.week), ("month", windows.month)):
            spent.add_metric([*values, window], float(amount))
        if key.limit is not None:
            limit.add_metric(values, float(key.limit))
            if key.limit_remaining is not None:
                remaining.add_metric(values, float(key.limit_remaining))
            resets = next_reset(key.limit_reset, now)
            if resets is not None:
                reset.add_metric(values, (resets - now).total_seconds())
        current = key_status(key, now)
        for name in STATUSES:
            status.add_metric([*values, name], 1.0 if name == current else 0.0)
        age.add_metric(values, max(0.0, (now - key.observed_at).total_seconds()))
        if key.key_id in differences:
            gap.add_metric(values, float(differences[key.key_id]))

    balance = GaugeMetricFamily("owr_account_balance_usd", "Credits left in the account", labels=["account"])
    runway = GaugeMetricFamily(
        "owr_account_runway_days", f"Balance / the account's daily burn over {BURN_DAYS} days", labels=["account"]
    )
    for account, (latest, base) in sorted(balances.items()):
        balance.add_metric([str(account)], float(latest.total_credits - latest.total_usage))
        days = runway_days(latest, base)
        if days is not None:
            runway.add_metric([str(account)], days)
    return [spent, limit, remaining, reset, status, age, gap, balance, runway]


async def exposition(session: AsyncSession, *, workspace_id: uuid.UUID, now: datetime) -> bytes:
    """The workspace's figures in Prometheus's text format (four reads)."""
    repository = WorkspaceMetricsRepository(session)
    today: date = now.astimezone(UTC).date()
    keys = await repository.keys(workspace_id)
    spend = await repository.spend(
        workspace_id, today=today, week_start=today - timedelta(days=today.weekday()), month_start=today.replace(day=1)
    )
    balances = await repository.balances(workspace_id, now - timedelta(days=BURN_DAYS))
    differences = await reconciliation.differences_on(session, workspace_id=workspace_id, day=today - timedelta(days=1))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(_families(keys, spend, balances, differences, now)))
    return generate_latest(registry)
