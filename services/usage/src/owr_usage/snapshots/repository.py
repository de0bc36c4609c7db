"""SQL for snapshots, key states and key days; callers own the transaction.

Reads a user's request reaches take the workspace id and filter by it, so a key id from another
workspace matches nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Delete, delete, exists, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from owr_usage.snapshots.models import KeyDay, KeyState, Snapshot

# Re-derives key_days for (key, day) targets from the snapshots alone, so the result is the same
# whatever order the snapshots came in:
#   start(D)       = usage - usage_daily of D's first snapshot (same for BYOK)
#   final spend(D) = start(D+1) - start(D), when D+1 has a snapshot
#   provisional    = usage_daily of D's last snapshot, otherwise
# A final row never goes back to provisional (the WHERE of the upsert).
_DERIVE_DAYS = text(
    """
WITH targets AS (
    SELECT DISTINCT t.key_id, t.day
    FROM unnest(CAST(:key_ids AS uuid[]), CAST(:days AS date[])) AS t(key_id, day)
),
bounds AS (
    SELECT key_id, day,
           day::timestamp AT TIME ZONE 'UTC' AS day_start,
           (day + 1)::timestamp AT TIME ZONE 'UTC' AS next_start,
           (day + 2)::timestamp AT TIME ZONE 'UTC' AS next_end
    FROM targets
),
derived AS (
    SELECT b.key_id, b.day, l.workspace_id,
           f.usage - f.usage_daily AS start_usage,
           f.byok_usage - f.byok_usage_daily AS start_byok_usage,
           l.usage_daily, l.byok_usage_daily, l.observed_at AS last_observed_at,
           n.usage - n.usage_daily AS next_start_usage,
           n.byok_usage - n.byok_usage_daily AS next_start_byok_usage,
           n.observed_at AS next_observed_at
    FROM bounds b
    CROSS JOIN LATERAL (
        SELECT s.usage, s.usage_daily, s.byok_usage, s.byok_usage_daily
        FROM usage.snapshots s
        WHERE s.key_id = b.key_id AND s.observed_at >= b.day_start AND s.observed_at < b.next_start
        ORDER BY s.observed_at ASC LIMIT 1
    ) f
    CROSS JOIN LATERAL (
        SELECT s.workspace_id, s.usage_daily, s.byok_usage_daily, s.observed_at
        FROM usage.snapshots s
        WHERE s.key_id = b.key_id AND s.observed_at >= b.day_start AND s.observed_at < b.next_start
        ORDER BY s.observed_at DESC LIMIT 1
    ) l
    LEFT JOIN LATERAL (
        SELECT s.usage, s.usage_daily, s.byok_usage, s.byok_usage_daily, s.observed_at
        FROM usage.snapshots s
        WHERE s.key_id = b.key_id AND s.observed_at >= b.next_start AND s.observed_at < b.next_end
        ORDER BY s.observed_at ASC LIMIT 1
    ) n ON true
)
INSERT INTO usage.key_days AS kd
    (key_id, day, workspace_id, start_usage, start_byok_usage, spend, byok_spend, final, observed_at, updated_at)
SELECT key_id, day, workspace_id, start_usage, start_byok_usage,
       CASE WHEN next_observed_at IS NULL THEN usage_daily ELSE next_start_usage - start_usage END,
       CASE WHEN next_observed_at IS NULL THEN byok_usage_daily ELSE next_start_byok_usage - start_byok_usage END,
       next_observed_at IS NOT NULL,
       COALESCE(next_observed_at, last_observed_at),
       now()
FROM derived
ORDER BY key_id, day
ON CONFLICT (key_id, day) DO UPDATE SET
    workspace_id = EXCLUDED.workspace_id,
    start_usage = EXCLUDED.start_usage,
    start_byok_usage = EXCLUDED.start_byok_usage,
    spend = EXCLUDED.spend,
    byok_spend = EXCLUDED.byok_spend,
    final = EXCLUDED.final,
    observed_at = EXCLUDED.observed_at,
    updated_at = EXCLUDED.updated_at
WHERE NOT kd.final OR EXCLUDED.final
"""
)


class SnapshotRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- ingestion (internal API) --------------------------------------------------------------

    async def lock_keys(self, states: Sequence[dict[str, Any]]) -> dict[uuid.UUID, uuid.UUID]:
        """Upsert each key's state row, in key order, and return {key_id: its recorded workspace_id}.

        The upsert row-locks the state until the transaction ends, so two deliveries for one key run
        one after the other (and, in key order, two batches cannot deadlock). The latest pointer only
        moves forward; the workspace is the one the key was first seen in.
        """
        ordered = sorted(states, key=lambda s: s["key_id"])
        stmt = insert(KeyState).values(ordered)
        upsert = stmt.on_conflict_do_update(
            index_elements=[KeyState.key_id],
            set_={
                "latest_observed_at": func.greatest(KeyState.latest_observed_at, stmt.excluded.latest_observed_at),
                "updated_at": func.now(),
            },
        ).returning(KeyState.key_id, KeyState.workspace_id)
        rows = await self.session.execute(upsert)
        return {key_id: workspace_id for key_id, workspace_id in rows.all()}  # noqa: C416 (typed rows)

    async def insert_snapshots(self, rows: Sequence[dict[str, Any]]) -> list[tuple[uuid.UUID, datetime]]:
        """Insert the new ones; a (key_id, observed_at) already stored is left alone. Returns those inserted."""
        result = await self.session.execute(
            insert(Snapshot)
            .values(list(rows))
            .on_conflict_do_nothing(index_elements=[Snapshot.key_id, Snapshot.observed_at])
            .returning(Snapshot.key_id, Snapshot.observed_at)
        )
        return [(key_id, observed_at) for key_id, observed_at in result.all()]

    async def derive_days(self, targets: Sequence[tuple[uuid.UUID, date]]) -> None:
        """Re-derive the key_days rows of these (key, day) pairs from the stored snapshots."""
        if not targets:
            return
        await self.session.execute(
            _DERIVE_DAYS, {"key_ids": [key for key, _ in targets], "days": [day for _, day in targets]}
        )

    # --- reads (workspace-scoped) --------------------------------------------------------------

    async def state(self, workspace_id: uuid.UUID, key_id: uuid.UUID) -> KeyState | None:
        return (
            await self.session.scalars(
                select(KeyState).where(KeyState.key_id == key_id, KeyState.workspace_id == workspace_id)
            )
        ).one_or_none()

    async def snapshot(self, workspace_id: uuid.UUID, key_id: uuid.UUID, observed_at: datetime) -> Snapshot | None:
        return (
            await self.session.scalars(
                select(Snapshot).where(
                    Snapshot.key_id == key_id,
                    Snapshot.observed_at == observed_at,
                    Snapshot.workspace_id == workspace_id,
                )
            )
        ).one_or_none()

    async def days(self, workspace_id: uuid.UUID, key_id: uuid.UUID, first: date, last: date) -> Sequence[KeyDay]:
        """The key's derived days in [first, last], oldest first."""
        rows = await self.session.scalars(
            select(KeyDay)
            .where(
                KeyDay.key_id == key_id,
                KeyDay.workspace_id == workspace_id,
                KeyDay.day >= first,
                KeyDay.day <= last,
            )
            .order_by(KeyDay.day)
        )
        return rows.all()

    # --- retention and erasure (internal API) --------------------------------------------------

    async def delete_before(self, cutoff: datetime, cutoff_day: date) -> dict[str, int]:
        """Snapshots observed before `cutoff` (except each key's latest, its current state) and days before."""
        latest = exists().where(KeyState.key_id == Snapshot.key_id, KeyState.latest_observed_at == Snapshot.observed_at)
        snapshots = await self._delete(delete(Snapshot).where(Snapshot.observed_at < cutoff, ~latest))
        days = await self._delete(delete(KeyDay).where(KeyDay.day < cutoff_day))
        return {"snapshots": snapshots, "key_days": days}

    async def delete_workspace(self, workspace_id: uuid.UUID) -> dict[str, int]:
        """Every row of the workspace's keys, found through their states (ingestion keeps a key's rows
        in its state's workspace); the states go last."""
        keys = select(KeyState.key_id).where(KeyState.workspace_id == workspace_id).scalar_subquery()
        snapshots = await self._delete(delete(Snapshot).where(Snapshot.key_id.in_(keys)))
        days = await self._delete(delete(KeyDay).where(KeyDay.key_id.in_(keys)))
        states = await self._delete(delete(KeyState).where(KeyState.workspace_id == workspace_id))
        return {"snapshots": snapshots, "key_days": days, "key_states": states}

    async def _delete(self, statement: Delete) -> int:
        result = await self.session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)
