"""The reconciliation report, and counting the gaps ingestion brings to light (the operator metric).

Only completed UTC days are compared: today is provisional in the snapshots and never in activity. A day
before the key's first snapshot (or after a gap in its snapshots) has no final snapshot figure, and a day
of an unlinked key or outside activity's window has no activity figure: neither is compared.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.dependencies import Pagination
from owr_usage.key_usage import service as key_usage
from owr_usage.key_usage.errors import InvalidRange
from owr_usage.metrics import RECONCILIATION_GAPS
from owr_usage.reconciliation.repository import Gap, ReconciliationRepository
from owr_usage.reconciliation.schemas import ReconciliationGap, ReconciliationPage
from owr_usage.reports.service import check_key

MAX_DAYS = 366
"""The widest `from`..`to` a request may ask for (inclusive)."""


def resolve_range(
    first: dt.date | None, last: dt.date | None, *, today: dt.date, retention_days: int
) -> tuple[dt.date, dt.date]:
    """`to` defaults to yesterday (the last completed day), `from` to 29 days before `to`; bounded by retention
    (as every usage read is) and by `MAX_DAYS`."""
    last = last or today - timedelta(days=1)
    if last > today:
        raise InvalidRange("`to` is after today; only completed days are reconciled.", field="to")
    first, last = key_usage.resolve_range(first, last, today=today, retention_days=retention_days)
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidRange(f"The range spans more than {MAX_DAYS} days.", field="from")
    return first, last


async def report(
    session: AsyncSession,
    *,
    workspace_id: uuid.UUID,
    first: dt.date,
    last: dt.date,
    today: dt.date,
    key_id: uuid.UUID | None,
    paging: Pagination,
) -> ReconciliationPage:
    """The workspace's gaps in [first, last] (completed days only), newest first; an unknown key is a 404."""
    await check_key(session, workspace_id, key_id)
    repo = ReconciliationRepository(session)
    query = partial(repo.report, workspace_id, first=first, last=last, today=today, key_id=key_id)
    rows = await query(limit=paging.per_page, offset=paging.offset)
    if rows:
        total = int(rows[0]["total"])
    elif paging.offset:
        # A page past the end: the count comes from the first row.
        head = await query(limit=1, offset=0)
        total = int(head[0]["total"]) if head else 0
    else:
        total = 0
    return ReconciliationPage(
        items=[ReconciliationGap.model_validate(row) for row in rows],
        total=total,
        page=paging.page,
        per_page=paging.per_page,
        first_day=first,
        last_day=last,
    )


async def differences_on(session: AsyncSession, *, workspace_id: uuid.UUID, day: dt.date) -> dict[uuid.UUID, Decimal]:
    """Every key compared on `day` (a completed day) and its `snapshot - activity` difference, gap or not."""
    rows = await ReconciliationRepository(session).report(
        workspace_id,
        first=day,
        last=day,
        today=day + timedelta(days=1),
        key_id=None,
        limit=None,
        offset=0,
        tolerance=Decimal(-1),
    )
    return {row["key_id"]: row["gap_usd"] for row in rows}


# --- detection at ingestion (the metric) --------------------------------------------------------------------


def count_new(before: set[Gap], after: set[Gap]) -> int:
    """Count the (key, day)s that are gaps now and were not before the write; returns how many."""
    new = len(after - before)
    if new:
        RECONCILIATION_GAPS.inc(new)
    return new


async def gaps_among(session: AsyncSession, pairs: Iterable[Gap]) -> set[Gap]:
    return await ReconciliationRepository(session).gaps_among(sorted(set(pairs)))


async def gaps_of_hash(
    session: AsyncSession, management_key_id: uuid.UUID, api_key_hash: str, dates: Iterable[dt.date]
) -> set[Gap]:
    return await ReconciliationRepository(session).gaps_of_hash(management_key_id, api_key_hash, sorted(set(dates)))


async def count_relinked(
    session: AsyncSession, key_ids: Iterable[uuid.UUID], *, counted_elsewhere: Iterable[Gap] = ()
) -> int:
    """Keys whose link changed are compared anew (against another account row's activity, or for the first
    time): every gap they have now counts as detected, but for the pairs the caller counts itself."""
    keys = sorted(set(key_ids))
    if not keys:
        return 0
    return count_new(set(counted_elsewhere), await ReconciliationRepository(session).gaps_of_keys(keys))
