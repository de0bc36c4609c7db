"""Reading one key's figures for its workspace."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from owr_usage.accounts.repository import AccountRepository
from owr_usage.key_usage.errors import InvalidRange, KeyUsageNotFound
from owr_usage.key_usage.schemas import AccountView, DailySpend, KeyUsageView, ModelSpend, Window, Windows
from owr_usage.rollups.links_repository import KeyLinkRepository
from owr_usage.snapshots.models import Snapshot
from owr_usage.snapshots.repository import SnapshotRepository

DEFAULT_DAYS = 30
# How far past today `to` may reach: a range may end in the future, but not where date arithmetic overflows.
MAX_DAYS_AHEAD = 366


def resolve_range(first: date | None, last: date | None, *, today: date, retention_days: int) -> tuple[date, date]:
    """`from`/`to` with their defaults (the last 30 days up to `to`), checked against retention."""
    oldest = today - timedelta(days=retention_days)
    last = last or today
    if last > today + timedelta(days=MAX_DAYS_AHEAD):
        raise InvalidRange(f"`to` is more than {MAX_DAYS_AHEAD} days after today.", field="to")
    if first is None:
        # `to` may be any date; the default window is clamped rather than refused.
        first = max(oldest, last - timedelta(days=DEFAULT_DAYS - 1)) if last > oldest else last
    if first > last:
        raise InvalidRange("`from` is after `to`.", field="from")
    if first < oldest:
        raise InvalidRange(f"`from` is before the retention window ({retention_days} days).", field="from")
    return first, last


def _windows(snapshot: Snapshot, now: datetime) -> Windows:
    day = snapshot.observed_at.astimezone(UTC).date()
    today = now.astimezone(UTC).date()

    def week_start(d: date) -> date:
        return d - timedelta(days=d.weekday())

    return Windows(
        day=Window(start=day, usage=snapshot.usage_daily, byok_usage=snapshot.byok_usage_daily, current=day == today),
        week=Window(
            start=week_start(day),
            usage=snapshot.usage_weekly,
            byok_usage=snapshot.byok_usage_weekly,
            current=week_start(day) == week_start(today),
        ),
        month=Window(
            start=day.replace(day=1),
            usage=snapshot.usage_monthly,
            byok_usage=snapshot.byok_usage_monthly,
            current=day.replace(day=1) == today.replace(day=1),
        ),
    )


async def key_usage(
    session: AsyncSession, *, workspace_id: uuid.UUID, key_id: uuid.UUID, first: date, last: date, now: datetime
) -> KeyUsageView:
    """The key's latest state and its days in [first, last]; 404 when usage knows no such key here."""
    snapshots = SnapshotRepository(session)
    state = await snapshots.state(workspace_id, key_id)
    latest = await snapshots.snapshot(workspace_id, key_id, state.latest_observed_at) if state else None
    if latest is None:
        raise KeyUsageNotFound()
    days = await snapshots.days(workspace_id, key_id, first, last)

    accounts = AccountRepository(session)
    account_key_id: str | None = None
    daily = [
        DailySpend(
            date=d.day,
            spend=d.spend,
            byok_spend=d.byok_spend,
            provisional=not d.final,
            source="snapshots",
            models=None,
        )
        for d in days
    ]
    # The stored link (owr_usage.rollups keeps it by the label rule): its activity is read through one
    # management key only (the freshest list naming the hash), or it would count twice.
    link = await KeyLinkRepository(session).link(workspace_id, key_id)
    if link is not None:
        management_key_id, account_key_id = link
        daily = await _with_activity(accounts, workspace_id, management_key_id, account_key_id, daily, first, last)
    account = None
    if latest.is_management_key:
        balance = await accounts.latest_balance(workspace_id, key_id)
        if balance is not None:
            account = AccountView(
                total_credits=balance.total_credits if balance.known else None,
                total_usage=balance.total_usage if balance.known else None,
                balance=balance.total_credits - balance.total_usage if balance.known else None,
                as_of=balance.observed_at,
            )

    return KeyUsageView(
        key_id=key_id,
        label=latest.label,
        kind="management" if latest.is_management_key else "inference",
        as_of=latest.observed_at,
        limit=latest.limit,
        limit_reset=latest.limit_reset,
        limit_remaining=latest.limit_remaining,
        include_byok_in_limit=latest.include_byok_in_limit,
        expires_at=latest.expires_at,
        is_free_tier=latest.is_free_tier,
        usage=latest.usage,
        byok_usage=latest.byok_usage,
        windows=_windows(latest, now),
        daily=daily,
        linked=account_key_id is not None,
        account_key_id=account_key_id,
        account=account,
    )


async def _with_activity(
    accounts: AccountRepository,
    workspace_id: uuid.UUID,
    management_key_id: uuid.UUID,
    api_key_hash: str,
    daily: list[DailySpend],
    first: date,
    last: date,
) -> list[DailySpend]:
    """Attach per-model activity to each fetched day; a fetched day with no final snapshot figure takes
    activity's total, which is exact for a completed day (activity never covers today)."""
    fetched = await accounts.fetched_days(workspace_id, management_key_id, api_key_hash, first, last)
    models: dict[date, list[ModelSpend]] = {day: [] for day in fetched}
    for row in await accounts.activity_by_model(workspace_id, management_key_id, api_key_hash, first, last):
        models.setdefault(row.date, []).append(
            ModelSpend(
                model=row.model,
                cost=row.cost,
                byok_cost=row.byok_cost,
                requests=row.requests,
                prompt_tokens=row.prompt_tokens,
                completion_tokens=row.completion_tokens,
                reasoning_tokens=row.reasoning_tokens,
            )
        )
    by_day = {d.date: d for d in daily}
    for day, breakdown in models.items():
        known = by_day.get(day)
        if known is not None and not known.provisional:
            by_day[day] = known.model_copy(update={"models": breakdown})
            continue
        by_day[day] = DailySpend(
            date=day,
            spend=sum((m.cost for m in breakdown), Decimal(0)),
            byok_spend=sum((m.byok_cost for m in breakdown), Decimal(0)),
            provisional=False,
            source="activity",
            models=breakdown,
        )
    return [by_day[day] for day in sorted(by_day)]
