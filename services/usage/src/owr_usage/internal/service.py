"""Retention and snapshot compaction: removals across every usage table."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.logging import get_logger
from owr_shared.wire.usage import CompactionRequest, CompactionResult, RetentionDeleted, RetentionResult
from owr_usage.accounts.repository import AccountRepository
from owr_usage.anomalies.repository import AnomalyRepository
from owr_usage.metrics import RETENTION_DELETED, SNAPSHOTS_COMPACTED
from owr_usage.rollups.repository import RollupRepository
from owr_usage.snapshots.repository import SnapshotRepository

log = get_logger(__name__)


def retention_start(today: dt.date, retention_days: int) -> dt.date:
    """The first day kept and served."""
    return today - dt.timedelta(days=retention_days)


async def apply_retention(
    session: AsyncSession, *, before: dt.date | None, today: dt.date, retention_days: int
) -> RetentionResult:
    """Delete history dated before `before`, clamped so nothing inside the retention window goes.

    Each key's latest snapshot and each account's latest balance stay whatever their age: they are the
    key's current state, not history.
    """
    floor = retention_start(today, retention_days)
    cutoff_day = floor if before is None else min(before, floor)
    cutoff = dt.datetime.combine(cutoff_day, dt.time(), tzinfo=dt.UTC)
    counts = await SnapshotRepository(session).delete_before(cutoff, cutoff_day)
    counts |= await AccountRepository(session).delete_before(cutoff, cutoff_day)
    counts |= await RollupRepository(session).delete_before(cutoff_day)
    counts |= await AnomalyRepository(session).delete_before(cutoff_day)
    for table, count in counts.items():
        RETENTION_DELETED.labels(table).inc(count)
    log.info("retention_applied", before=cutoff_day.isoformat(), **counts)
    return RetentionResult(before=cutoff_day, deleted=RetentionDeleted(**counts))


async def compact_snapshots(
    session: AsyncSession, request: CompactionRequest, *, now: dt.datetime, full_hours: int
) -> CompactionResult:
    """One batch of compaction: idempotent (a compacted day has nothing more to lose), so a batch that
    fails or runs twice is simply run again. Days inside the full window are never touched."""
    floor = (now - dt.timedelta(hours=full_hours)).astimezone(dt.UTC).date()
    before = floor if request.before is None else min(request.before, floor)
    since = dt.datetime.min.replace(tzinfo=dt.UTC) if request.since is None else _day_start(request.since)
    deleted, keys, last_key = await SnapshotRepository(session).compact(
        since, _day_start(before), after=request.after, keys=request.keys
    )
    SNAPSHOTS_COMPACTED.inc(deleted)
    log.info("snapshots_compacted", before=before.isoformat(), deleted=deleted, keys=keys)
    return CompactionResult(
        before=before, deleted=deleted, keys=keys, next_after=last_key if keys == request.keys else None
    )


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
