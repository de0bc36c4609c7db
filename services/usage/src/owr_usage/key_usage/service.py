"""Reading one key's figures for its workspace."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from owr_usage.accounts.repository import AccountRepository
from owr_usage.key_usage.errors import InvalidRange, KeyUsageNotFound
from owr_usage.key_usage.schemas import DailySpend, KeyUsageView, Window, Windows
from owr_usage.snapshots.models import Snapshot
from owr_usage.snapshots.repository import SnapshotRepository

DEFAULT_DAYS = 30


def resolve_range(first: date | None, last: date | None, *, today: date, retention_days: int) -> tuple[date, date]:
    """`from`/`to` with their defaults (the last 30 days up to `to`), checked against retention."""
    oldest = today - timedelta(days=retention_days)
    last = last or today
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

    account_key_id: str | None = None
    if not latest.is_management_key and latest.label:
        # Two management keys of one account list the same key under one hash: that is still one key.
        hashes = {row.hash for row in await AccountRepository(session).keys_by_label(workspace_id, latest.label)}
        if len(hashes) == 1:
            account_key_id = hashes.pop()

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
        daily=[DailySpend(date=d.day, spend=d.spend, byok_spend=d.byok_spend, provisional=not d.final) for d in days],
        linked=account_key_id is not None,
        account_key_id=account_key_id,
    )
