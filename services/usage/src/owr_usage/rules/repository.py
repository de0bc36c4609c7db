"""SQL of the built-in rules: switches, tracked conditions, and what the rules read of keys and accounts."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from owr_usage.alerts.models import AlertCondition, AlertRule
from owr_usage.snapshots.models import KeyState, Snapshot

_DELETE_CONDITIONS = text(
    """
DELETE FROM usage.alert_conditions c
USING unnest(CAST(:workspace_ids AS uuid[]), CAST(:rules AS text[]), CAST(:subjects AS text[])) AS g(w, r, s)
WHERE c.workspace_id = g.w AND c.rule = g.r AND c.subject = g.s
"""
)

# The balance a trailing burn is measured from: the oldest known one in [now - 7 days, now - 1 day].
_BURN_REFERENCE = text(
    """
SELECT observed_at, total_usage FROM usage.account_balances
WHERE management_key_id = :management_key_id AND workspace_id = :workspace_id AND known
  AND observed_at >= CAST(:now AS timestamptz) - interval '7 days'
  AND observed_at <= CAST(:now AS timestamptz) - interval '1 day'
ORDER BY observed_at LIMIT 1
"""
)

ConditionKey = tuple[uuid.UUID, str, str]


class RuleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- switches ----------------------------------------------------------------------------------

    async def settings(self, workspace_ids: Iterable[uuid.UUID]) -> Sequence[AlertRule]:
        ids = sorted(set(workspace_ids))
        if not ids:
            return []
        return (await self.session.scalars(select(AlertRule).where(AlertRule.workspace_id.in_(ids)))).all()

    async def put_settings(self, workspace_id: uuid.UUID, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert (rule, enabled, params) rows of the workspace."""
        statement = insert(AlertRule).values(
            [{**row, "workspace_id": workspace_id, "updated_at": func.now()} for row in rows]
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[AlertRule.workspace_id, AlertRule.rule],
                set_={
                    "enabled": statement.excluded.enabled,
                    "params": statement.excluded.params,
                    "updated_at": statement.excluded.updated_at,
                },
            )
        )

    # --- conditions --------------------------------------------------------------------------------

    async def conditions(self, keys: Iterable[ConditionKey]) -> dict[ConditionKey, AlertCondition]:
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        rows = await self.session.scalars(
            select(AlertCondition).where(
                AlertCondition.workspace_id.in_({w for w, _, _ in wanted}),
                AlertCondition.rule.in_({r for _, r, _ in wanted}),
                AlertCondition.subject.in_({s for _, _, s in wanted}),
            )
        )
        found = {(c.workspace_id, c.rule, c.subject): c for c in rows}
        return {key: found[key] for key in wanted if key in found}

    async def save_conditions(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write each condition's whole state (workspace_id, rule, subject, since, fired_at, data)."""
        if not rows:
            return
        statement = insert(AlertCondition).values(
            sorted(rows, key=lambda r: (r["workspace_id"], r["rule"], r["subject"]))
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[AlertCondition.workspace_id, AlertCondition.rule, AlertCondition.subject],
                set_={
                    "since": statement.excluded.since,
                    "fired_at": statement.excluded.fired_at,
                    "data": statement.excluded.data,
                },
            )
        )

    async def clear_conditions(self, keys: Iterable[ConditionKey]) -> None:
        gone = sorted(set(keys))
        if not gone:
            return
        await self.session.execute(
            _DELETE_CONDITIONS,
            {
                "workspace_ids": [w for w, _, _ in gone],
                "rules": [r for _, r, _ in gone],
                "subjects": [s for _, _, s in gone],
            },
        )

    # --- what the rules read -----------------------------------------------------------------------

    async def latest_snapshots(self, key_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Snapshot]:
        """Each key's latest snapshot (its workspace is the key's recorded one)."""
        ids = sorted(set(key_ids))
        if not ids:
            return {}
        rows = await self.session.scalars(
            select(Snapshot)
            .join(
                KeyState,
                (KeyState.key_id == Snapshot.key_id) & (KeyState.latest_observed_at == Snapshot.observed_at),
            )
            .where(KeyState.key_id.in_(ids))
        )
        return {row.key_id: row for row in rows}

    async def burn_reference(
        self, workspace_id: uuid.UUID, management_key_id: uuid.UUID, now: datetime
    ) -> Row[Any] | None:
        """(observed_at, total_usage) of the balance the trailing burn is measured from, if any."""
        params = {"workspace_id": workspace_id, "management_key_id": management_key_id, "now": now}
        return (await self.session.execute(_BURN_REFERENCE, params)).first()
