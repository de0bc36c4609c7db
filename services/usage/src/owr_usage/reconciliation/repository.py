"""SQL of the reconciliation: reads only, set-based, exact NUMERIC; callers own the transaction.

A (key, day) is compared when both figures exist: the key is linked to an account row (`key_links`), that row's
activity of the day was fetched (`activity_days`; a fetched day without rows is a known 0), and the key's
`key_days` row of the day is final (two day starts seen). Anything else has one figure only and is not compared.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

TOLERANCE = Decimal("0.000001")
"""A gap is listed when it exceeds this (1e-6 USD), in either figure (spend or BYOK spend)."""

# `candidates` (key_id, day, management_key_id, api_key_hash) -> each candidate's two figures and their gaps.
_COMPARED = """
compared AS (
    SELECT c.key_id, c.day, kd.spend AS snapshot_usd, COALESCE(sum(a.usage), 0) AS activity_usd,
           kd.byok_spend AS snapshot_byok_usd, COALESCE(sum(a.byok_usage_inference), 0) AS activity_byok_usd
    FROM candidates c
    JOIN usage.key_days kd ON kd.key_id = c.key_id AND kd.day = c.day AND kd.final
    LEFT JOIN usage.activity a
      ON a.management_key_id = c.management_key_id AND a.api_key_hash = c.api_key_hash AND a.date = c.day
    GROUP BY c.key_id, c.day, kd.spend, kd.byok_spend
),
gaps AS (
    SELECT key_id, day, snapshot_usd, activity_usd, snapshot_usd - activity_usd AS gap_usd,
           snapshot_byok_usd, activity_byok_usd, snapshot_byok_usd - activity_byok_usd AS byok_gap_usd
    FROM compared
    WHERE abs(snapshot_usd - activity_usd) > CAST(:tolerance AS numeric)
       OR abs(snapshot_byok_usd - activity_byok_usd) > CAST(:tolerance AS numeric)
)"""

_FETCHED = """
SELECT DISTINCT kl.key_id, ad.date AS day, ad.management_key_id, ad.api_key_hash
FROM usage.key_links kl
JOIN usage.activity_days ad ON ad.management_key_id = kl.management_key_id AND ad.api_key_hash = kl.api_key_hash"""

# The report: a workspace's completed days in [first, last], optionally one key; a page of gaps and their count.
_REPORT = text(
    f"""
WITH candidates AS (
    {_FETCHED}
    WHERE kl.workspace_id = :workspace_id AND ad.workspace_id = :workspace_id
      AND ad.date >= :first AND ad.date <= :last AND ad.date < :today
      AND (CAST(:key_id AS uuid) IS NULL OR kl.key_id = CAST(:key_id AS uuid))
),
{_COMPARED}
SELECT g.*, kl.label, count(*) OVER () AS total
FROM gaps g JOIN usage.key_links kl ON kl.key_id = g.key_id
ORDER BY g.day DESC, g.key_id
LIMIT :limit OFFSET :offset
"""  # noqa: S608 - fixed SQL fragments only
)

# Detection at ingestion: which of these (key, day) pairs are gaps now.
_AMONG_PAIRS = text(
    f"""
WITH pairs AS (
    SELECT DISTINCT t.key_id, t.day FROM unnest(CAST(:key_ids AS uuid[]), CAST(:days AS date[])) AS t(key_id, day)
),
candidates AS (
    {_FETCHED}
    JOIN pairs p ON p.key_id = kl.key_id AND p.day = ad.date
),
{_COMPARED}
SELECT key_id, day FROM gaps
"""  # noqa: S608 - fixed SQL fragments only
)

# ... of the keys linked to one account row, on these dates.
_AMONG_HASH_DATES = text(
    f"""
WITH candidates AS (
    {_FETCHED}
    WHERE kl.management_key_id = :management_key_id AND kl.api_key_hash = :api_key_hash
      AND ad.date = ANY(CAST(:dates AS date[]))
),
{_COMPARED}
SELECT key_id, day FROM gaps
"""  # noqa: S608 - fixed SQL fragments only
)

# ... of these keys, every fetched day.
_AMONG_KEYS = text(
    f"""
WITH candidates AS (
    {_FETCHED}
    WHERE kl.key_id = ANY(CAST(:key_ids AS uuid[]))
),
{_COMPARED}
SELECT key_id, day FROM gaps
"""  # noqa: S608 - fixed SQL fragments only
)

Gap = tuple[uuid.UUID, dt.date]


class ReconciliationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def report(
        self,
        workspace_id: uuid.UUID,
        *,
        first: dt.date,
        last: dt.date,
        today: dt.date,
        key_id: uuid.UUID | None,
        limit: int | None,
        offset: int,
        tolerance: Decimal = TOLERANCE,
    ) -> list[dict[str, Any]]:
        """A page of the gaps (each row carries `total`, the count of all of them); a negative `tolerance` lists
        every compared day, and a `limit` of None all of them."""
        params = {
            "workspace_id": workspace_id,
            "first": first,
            "last": last,
            "today": today,
            "key_id": key_id,
            "limit": limit,
            "offset": offset,
            "tolerance": tolerance,
        }
        return [dict(row._mapping) for row in await self.session.execute(_REPORT, params)]

    async def gaps_among(self, pairs: Sequence[Gap]) -> set[Gap]:
        if not pairs:
            return set()
        ordered = sorted(set(pairs))
        params = {"key_ids": [k for k, _ in ordered], "days": [d for _, d in ordered], "tolerance": TOLERANCE}
        return {(k, d) for k, d in (await self.session.execute(_AMONG_PAIRS, params)).all()}

    async def gaps_of_hash(self, management_key_id: uuid.UUID, api_key_hash: str, dates: Sequence[dt.date]) -> set[Gap]:
        if not dates:
            return set()
        params = {
            "management_key_id": management_key_id,
            "api_key_hash": api_key_hash,
            "dates": sorted(set(dates)),
            "tolerance": TOLERANCE,
        }
        return {(k, d) for k, d in (await self.session.execute(_AMONG_HASH_DATES, params)).all()}

    async def gaps_of_keys(self, key_ids: Sequence[uuid.UUID]) -> set[Gap]:
        if not key_ids:
            return set()
        params = {"key_ids": sorted(set(key_ids)), "tolerance": TOLERANCE}
        return {(k, d) for k, d in (await self.session.execute(_AMONG_KEYS, params)).all()}
