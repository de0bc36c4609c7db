"""SQL for snapshots, key states and key days; callers own the transaction.

Reads a user's request reaches take the workspace id and filter by it, so a key id from another
workspace matches nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, String, TextClause, delete, exists, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.repository import deleted_rows
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


# Batches arrive in every size from 1 to 500: a multi-row VALUES would be a new statement (compiled by
# SQLAlchemy, prepared by PostgreSQL) for each size. One array per column through unnest() keeps one
# statement for all sizes, so both caches hit and the per-row cost is only encoding the values.
_UPSERT_STATES = text(
    """
INSERT INTO usage.key_states AS ks (key_id, workspace_id, latest_observed_at, updated_at)
SELECT t.key_id, t.workspace_id, t.latest_observed_at, now()
FROM unnest(CAST(:key_ids AS uuid[]), CAST(:workspace_ids AS uuid[]), CAST(:latest AS timestamptz[]))
    AS t(key_id, workspace_id, latest_observed_at)
ORDER BY t.key_id
ON CONFLICT (key_id) DO UPDATE SET
    latest_observed_at = greatest(ks.latest_observed_at, EXCLUDED.latest_observed_at),
    updated_at = now()
RETURNING ks.key_id, ks.workspace_id
"""
)


def _insert_snapshots_sql() -> tuple[list[str], TextClause]:
    """Every column of `usage.snapshots` but `received_at` (the database's now()), as unnest() arrays."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    quote = dialect.identifier_preparer.quote
    columns = [c for c in Snapshot.__table__.columns if c.name != "received_at"]
    names = ", ".join(quote(c.name) for c in columns)

    def array(column: ColumnElement[Any]) -> str:
        # Strings as text: a cast to varchar(n) would cut a long value, the column refuses it instead.
        kind = "text" if isinstance(column.type, String) else column.type.compile(dialect=dialect)
        return f"CAST(:{column.name} AS {kind}[])"

    arrays = ", ".join(array(c) for c in columns)
    sql = f"""
INSERT INTO usage.snapshots ({names}, received_at)
SELECT *, now() FROM unnest({arrays})
ON CONFLICT (key_id, observed_at) DO NOTHING
RETURNING key_id, observed_at
"""  # noqa: S608 - names and types come from the model, values are bound
    return [c.name for c in columns], text(sql)


_SNAPSHOT_COLUMNS, _INSERT_SNAPSHOTS = _insert_snapshots_sql()


# Compaction: of each (key, UTC day) in [since, before), every snapshot but the first and the last goes.
# The derivation reads only those two of a day (and the next day's first); a figure's `observed_at` is one
# of them; each key's latest snapshot is the last of its day. So every figure, and any re-derivation after
# a late snapshot, is what it was.
_COMPACT = text(
    """
WITH batch AS (
    SELECT key_id FROM usage.key_states
    WHERE key_id > :after ORDER BY key_id LIMIT :keys
),
ranked AS (
    SELECT s.key_id, s.observed_at,
           min(s.observed_at) OVER w AS first_at, max(s.observed_at) OVER w AS last_at
    FROM usage.snapshots s JOIN batch b ON b.key_id = s.key_id
    WHERE s.observed_at >= :since AND s.observed_at < :before
    WINDOW w AS (PARTITION BY s.key_id, (s.observed_at AT TIME ZONE 'UTC')::date)
),
gone AS (
    DELETE FROM usage.snapshots s USING ranked r
    WHERE s.key_id = r.key_id AND s.observed_at = r.observed_at
      AND r.observed_at <> r.first_at AND r.observed_at <> r.last_at
    RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS deleted,
       (SELECT count(*) FROM batch) AS keys,
       (SELECT key_id FROM batch ORDER BY key_id DESC LIMIT 1) AS last_key
"""
)
_NO_KEY = uuid.UUID(int=0)


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
        rows = await self.session.execute(
            _UPSERT_STATES,
            {
                "key_ids": [s["key_id"] for s in ordered],
                "workspace_ids": [s["workspace_id"] for s in ordered],
                "latest": [s["latest_observed_at"] for s in ordered],
            },
        )
        return {key_id: workspace_id for key_id, workspace_id in rows.all()}  # noqa: C416 (typed rows)

    async def insert_snapshots(self, rows: Sequence[dict[str, Any]]) -> list[tuple[uuid.UUID, datetime]]:
        """Insert the new ones; a (key_id, observed_at) already stored is left alone. Returns those inserted."""
        result = await self.session.execute(
            _INSERT_SNAPSHOTS, {name: [row[name] for row in rows] for name in _SNAPSHOT_COLUMNS}
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
        snapshots = await deleted_rows(self.session, delete(Snapshot).where(Snapshot.observed_at < cutoff, ~latest))
        days = await deleted_rows(self.session, delete(KeyDay).where(KeyDay.day < cutoff_day))
        return {"snapshots": snapshots, "key_days": days}

    async def compact(
        self, since: datetime, before: datetime, *, after: uuid.UUID | None, keys: int
    ) -> tuple[int, int, uuid.UUID | None]:
        """Compact the snapshots in [since, before) of the next `keys` keys by id after `after`:
        (snapshots deleted, keys looked at, the last key id of the batch)."""
        row = (
            await self.session.execute(
                _COMPACT, {"since": since, "before": before, "after": after or _NO_KEY, "keys": keys}
            )
        ).one()
        return int(row.deleted), int(row.keys), row.last_key

    async def delete_workspace(self, workspace_id: uuid.UUID) -> dict[str, int]:
        """Every row of the workspace's keys, found through their states (ingestion keeps a key's rows
        in its state's workspace); the states go last."""
        keys = select(KeyState.key_id).where(KeyState.workspace_id == workspace_id).scalar_subquery()
        snapshots = await deleted_rows(self.session, delete(Snapshot).where(Snapshot.key_id.in_(keys)))
        days = await deleted_rows(self.session, delete(KeyDay).where(KeyDay.key_id.in_(keys)))
        states = await deleted_rows(self.session, delete(KeyState).where(KeyState.workspace_id == workspace_id))
        return {"snapshots": snapshots, "key_days": days, "key_states": states}
