"""SQL of the key hygiene report: reads only, every query scoped by the workspace; callers own the transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Each stored key (one with a snapshot): its latest snapshot, its link, its last day with spend, and whether the
# workspace's key lists still carry it (by its label, or by the row it is linked to).
_STORED_KEYS = text(
    """
SELECT ks.key_id, s.label, s.is_management_key, s."limit" AS limit_usd, s.limit_reset, s.expires_at,
       ks.latest_observed_at,
       (SELECT max(d.day) FROM usage.daily_key_totals d
        WHERE d.workspace_id = ks.workspace_id AND d.key_id = ks.key_id AND d.cost > 0) AS last_spend_day,
       EXISTS (
           SELECT 1 FROM usage.account_keys ak
           WHERE ak.workspace_id = ks.workspace_id
             AND (ak.label = s.label OR (ak.management_key_id = kl.management_key_id AND ak.hash = kl.api_key_hash))
       ) AS listed
FROM usage.key_states ks
JOIN usage.snapshots s ON s.key_id = ks.key_id AND s.observed_at = ks.latest_observed_at
LEFT JOIN usage.key_links kl ON kl.key_id = ks.key_id AND kl.workspace_id = ks.workspace_id
WHERE ks.workspace_id = :workspace_id
ORDER BY s.label NULLS LAST, ks.key_id
"""
)

# Account rows (`GET /keys`) that no stored key is linked to or carries the label of.
_UNTRACKED = text(
    """
SELECT ak.management_key_id, ak.hash, ak.name, ak.label
FROM usage.account_keys ak
WHERE ak.workspace_id = :workspace_id AND NOT EXISTS (
    SELECT 1 FROM usage.key_links kl
    WHERE kl.workspace_id = ak.workspace_id
      AND (kl.label = ak.label OR (kl.management_key_id = ak.management_key_id AND kl.api_key_hash = ak.hash))
)
ORDER BY ak.name NULLS LAST, ak.hash
"""
)

_HAS_KEY_LISTS = text(
    "SELECT EXISTS (SELECT 1 FROM usage.accounts WHERE workspace_id = :workspace_id AND keys_observed_at IS NOT NULL)"
)

_INVALID = text(
    """
SELECT subject, data ->> 'key_name' AS key_name FROM usage.alert_conditions
WHERE workspace_id = :workspace_id AND rule = 'key.invalid'
"""
)

# Per key and reset window: the 95th percentile (continuous) of its spend per window since `since`, times the
# margin, rounded to cents. Days are daily_key_totals' rows; weeks start on Monday, as OpenRouter's do.
_SUGGESTED = text(
    """
WITH days AS (
    SELECT key_id, day, cost FROM usage.daily_key_totals
    WHERE workspace_id = :workspace_id AND key_id = ANY(CAST(:key_ids AS uuid[])) AND day >= :since
),
windows AS (
    SELECT key_id, 'daily' AS reset, cost FROM days
    UNION ALL
    SELECT key_id, 'weekly', sum(cost) FROM days GROUP BY key_id, date_trunc('week', day)
    UNION ALL
    SELECT key_id, 'monthly', sum(cost) FROM days GROUP BY key_id, date_trunc('month', day)
)
SELECT key_id, reset,
       round(CAST(percentile_cont(0.95) WITHIN GROUP (ORDER BY CAST(cost AS float8)) AS numeric) * :margin, 2)
           AS amount_usd
FROM windows
GROUP BY key_id, reset
"""
)


class InsightsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def stored_keys(self, workspace_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self.session.execute(_STORED_KEYS, {"workspace_id": workspace_id})
        return [dict(row._mapping) for row in rows]

    async def untracked_account_keys(self, workspace_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self.session.execute(_UNTRACKED, {"workspace_id": workspace_id})
        return [dict(row._mapping) for row in rows]

    async def has_key_lists(self, workspace_id: uuid.UUID) -> bool:
        return bool((await self.session.execute(_HAS_KEY_LISTS, {"workspace_id": workspace_id})).scalar_one())

    async def invalid_keys(self, workspace_id: uuid.UUID) -> dict[str, str | None]:
        """Keys whose `key.invalid` condition holds (subject: the key id as text) and the name the sync gave."""
        rows = await self.session.execute(_INVALID, {"workspace_id": workspace_id})
        return {row.subject: row.key_name for row in rows}

    async def suggested_limits(
        self, workspace_id: uuid.UUID, key_ids: Sequence[uuid.UUID], *, since: date, margin: Decimal
    ) -> dict[uuid.UUID, dict[str, Decimal]]:
        if not key_ids:
            return {}
        params = {"workspace_id": workspace_id, "key_ids": list(key_ids), "since": since, "margin": margin}
        found: dict[uuid.UUID, dict[str, Decimal]] = {}
        for row in await self.session.execute(_SUGGESTED, params):
            found.setdefault(row.key_id, {})[row.reset] = row.amount_usd
        return found
