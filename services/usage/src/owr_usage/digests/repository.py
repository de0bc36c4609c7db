"""SQL of the digests: which workspaces take one, and each part of it for a chunk of workspaces at once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

# Workspaces with an enabled channel that takes the report (its `events` NULL or naming it) and no such report
# for this period yet.
_RECIPIENTS = text(
    """
SELECT DISTINCT c.workspace_id FROM usage.alert_channels c
WHERE c.disabled_at IS NULL AND (c.events IS NULL OR CAST(:type AS text) = ANY(c.events))
  AND NOT EXISTS (
      SELECT 1 FROM usage.alert_events e WHERE e.workspace_id = c.workspace_id AND e.dedup_key = :dedup_key)
ORDER BY c.workspace_id
"""
)

# Spend of the period and of the one before, per workspace.
_TOTALS = text(
    """
SELECT workspace_id,
       COALESCE(sum(cost) FILTER (WHERE day >= :start), 0) AS spend,
       COALESCE(sum(byok_cost) FILTER (WHERE day >= :start), 0) AS byok_spend,
       COALESCE(bool_or(provisional) FILTER (WHERE day >= :start), false) AS provisional,
       COALESCE(sum(cost) FILTER (WHERE day < :start), 0) AS previous_spend
FROM usage.daily_key_totals
WHERE workspace_id = ANY(CAST(:workspace_ids AS uuid[])) AND day >= :previous_start AND day < :end
GROUP BY workspace_id
"""
)

_TOP_KEYS = text(
    """
SELECT t.workspace_id, t.key_id, t.spend, kl.label FROM (
    SELECT workspace_id, key_id, sum(cost) AS spend,
           row_number() OVER (PARTITION BY workspace_id ORDER BY sum(cost) DESC, key_id) AS rank
    FROM usage.daily_key_totals
    WHERE workspace_id = ANY(CAST(:workspace_ids AS uuid[])) AND day >= :start AND day < :end
    GROUP BY workspace_id, key_id
    HAVING sum(cost) > 0
) t
LEFT JOIN usage.key_links kl ON kl.key_id = t.key_id
WHERE t.rank <= :top
ORDER BY t.workspace_id, t.rank
"""
)

# Spend without a per-model breakdown sits under model '' and is left out: it names no model.
_TOP_MODELS = text(
    """
SELECT workspace_id, model, spend FROM (
    SELECT workspace_id, model, sum(cost) AS spend,
           row_number() OVER (PARTITION BY workspace_id ORDER BY sum(cost) DESC, model) AS rank
    FROM usage.daily_model_totals
    WHERE workspace_id = ANY(CAST(:workspace_ids AS uuid[])) AND day >= :start AND day < :end AND model <> ''
    GROUP BY workspace_id, model
    HAVING sum(cost) > 0
) t
WHERE rank <= :top
ORDER BY workspace_id, rank
"""
)

# Each inference key's latest state, and whether it spent anything in the dormancy window.
_KEYS = text(
    """
WITH active AS (
    SELECT DISTINCT workspace_id, key_id FROM usage.daily_key_totals
    WHERE workspace_id = ANY(CAST(:workspace_ids AS uuid[])) AND day >= :dormant_from AND day < :end AND cost > 0
)
SELECT ks.workspace_id, ks.key_id, s.label, s."limit" IS NULL AS unlimited, s.expires_at,
       a.key_id IS NULL AS dormant
FROM usage.key_states ks
JOIN usage.snapshots s ON s.key_id = ks.key_id AND s.observed_at = ks.latest_observed_at
LEFT JOIN active a ON a.workspace_id = ks.workspace_id AND a.key_id = ks.key_id
WHERE ks.workspace_id = ANY(CAST(:workspace_ids AS uuid[])) AND NOT s.is_management_key
ORDER BY ks.workspace_id, s.label, ks.key_id
"""
)


class DigestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def recipients(self, event_type: str, dedup_key: str) -> list[uuid.UUID]:
        rows = await self.session.execute(_RECIPIENTS, {"type": event_type, "dedup_key": dedup_key})
        return [workspace_id for (workspace_id,) in rows.all()]

    async def totals(
        self, workspace_ids: Sequence[uuid.UUID], previous_start: date, start: date, end: date
    ) -> Sequence[Row[Any]]:
        params = {"workspace_ids": list(workspace_ids), "previous_start": previous_start, "start": start, "end": end}
        return (await self.session.execute(_TOTALS, params)).all()

    async def top_keys(
        self, workspace_ids: Sequence[uuid.UUID], start: date, end: date, top: int
    ) -> Sequence[Row[Any]]:
        params = {"workspace_ids": list(workspace_ids), "start": start, "end": end, "top": top}
        return (await self.session.execute(_TOP_KEYS, params)).all()

    async def top_models(
        self, workspace_ids: Sequence[uuid.UUID], start: date, end: date, top: int
    ) -> Sequence[Row[Any]]:
        params = {"workspace_ids": list(workspace_ids), "start": start, "end": end, "top": top}
        return (await self.session.execute(_TOP_MODELS, params)).all()

    async def keys(self, workspace_ids: Sequence[uuid.UUID], dormant_from: date, end: date) -> Sequence[Row[Any]]:
        params = {"workspace_ids": list(workspace_ids), "dormant_from": dormant_from, "end": end}
        return (await self.session.execute(_KEYS, params)).all()
