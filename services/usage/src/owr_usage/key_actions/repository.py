"""SQL of key actions and kill switches; callers own the transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from owr_usage.accounts.models import AccountKey
from owr_usage.key_actions.models import ERROR_MAX, KeyAction, KeyKillSwitch

# The key's link (its account row) and what the account's last key list said of it, with a name to show: the one
# the key rules last saw, else OpenRouter's.
_UPSTREAM = text(
    """
SELECT ks.key_id, kl.label, kl.management_key_id, kl.api_key_hash,
       ak.disabled, ak."limit" AS limit_usd, ak.limit_reset, ak.observed_at,
       coalesce(
           (SELECT c.data ->> 'key_name' FROM usage.alert_conditions c
            WHERE c.workspace_id = ks.workspace_id AND c.subject = CAST(ks.key_id AS text)
              AND c.data ->> 'key_name' IS NOT NULL
            ORDER BY c.since DESC LIMIT 1),
           ak.name
       ) AS key_name
FROM usage.key_states ks
LEFT JOIN usage.key_links kl ON kl.key_id = ks.key_id AND kl.workspace_id = ks.workspace_id
LEFT JOIN usage.account_keys ak ON ak.management_key_id = kl.management_key_id AND ak.hash = kl.api_key_hash
WHERE ks.workspace_id = :workspace_id AND ks.key_id = :key_id
"""
)


# Of these keys, those whose linked account row says OpenRouter has them disabled.
# Disabled at OpenRouter, as the account row says, or being disabled: a disable claimed at least once and not
# finished may have been sent already (a sync's 401 between the PATCH and the report is the kill switch's).
_DISABLED = text(
    """
SELECT kl.key_id FROM usage.key_links kl
JOIN usage.account_keys ak ON ak.management_key_id = kl.management_key_id AND ak.hash = kl.api_key_hash
WHERE kl.key_id = ANY(CAST(:key_ids AS uuid[])) AND ak.disabled
UNION
SELECT ka.key_id FROM usage.key_actions ka
WHERE ka.key_id = ANY(CAST(:key_ids AS uuid[])) AND ka.kind = 'disable' AND ka.status IN ('pending', 'running')
  AND ka.attempts > 0
"""
)

# A key's disables (a rule's or a user's), one transaction at a time (its own namespace among the advisory locks).
_LOCK_KEY = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('owr_usage.key_actions:' || CAST(CAST(:key_id AS uuid) AS text), 0))"
)


class KeyActionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_key(self, key_id: uuid.UUID) -> None:
        """Hold the key's disable lock until the transaction ends: a second rule's transaction waits here, and
        its next statements see what this one committed (read committed).

        Ordering: a transaction that takes several key locks (an ingestion's anomalies or budgets) holds its
        workspace's rollup lock first, which serialises them; one that holds no rollup lock takes one key lock
        at most, and never a rollup lock after it. Keep it so, or take the keys in sorted order."""
        await self.session.execute(_LOCK_KEY, {"key_id": key_id})

    async def upstream(self, workspace_id: uuid.UUID, key_id: uuid.UUID) -> dict[str, Any] | None:
        """The key's link and account row (None: usage never synced this key in the workspace)."""
        row = (await self.session.execute(_UPSTREAM, {"workspace_id": workspace_id, "key_id": key_id})).first()
        return None if row is None else dict(row._mapping)

    async def disabled_upstream(self, key_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        if not key_ids:
            return set()
        rows = await self.session.execute(_DISABLED, {"key_ids": list(key_ids)})
        return {key_id for (key_id,) in rows.all()}

    async def add(self, action: KeyAction) -> KeyAction:
        self.session.add(action)
        await self.session.flush()
        return action

    async def add_once(self, values: dict[str, Any]) -> uuid.UUID | None:
        """Insert unless the workspace has an action with this `dedup_key` (sent or skipped); the new id or None."""
        statement = (
            insert(KeyAction)
            .values(**values)
            .on_conflict_do_nothing(constraint="uq_key_actions_workspace_dedup")
            .returning(KeyAction.id)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def release_skipped(self, action: KeyAction, *, because: str, note: str) -> int:
        """Let the causes skipped (with error `because`) while `action`, a disable, was open fire again: their rows
        lose their `dedup_key` (kept for the trail, `note` added to their `error`). How many."""
        statement = (
            update(KeyAction)
            .where(
                KeyAction.workspace_id == action.workspace_id,
                KeyAction.key_id == action.key_id,
                KeyAction.status == "skipped",
                KeyAction.error == because,
                KeyAction.dedup_key.is_not(None),
                KeyAction.created_at >= action.created_at,
            )
            .values(dedup_key=None, error=func.left(KeyAction.error + note, ERROR_MAX))
        )
        result = await self.session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)

    async def of_key(self, workspace_id: uuid.UUID, key_id: uuid.UUID, *, limit: int) -> Sequence[KeyAction]:
        statement = (
            select(KeyAction)
            .where(KeyAction.workspace_id == workspace_id, KeyAction.key_id == key_id)
            .order_by(KeyAction.created_at.desc(), KeyAction.id)
            .limit(limit)
        )
        return (await self.session.scalars(statement)).all()

    async def locked(self, action_id: uuid.UUID) -> KeyAction | None:
        """The action, locked for this transaction (a claim and a report never interleave)."""
        statement = select(KeyAction).where(KeyAction.id == action_id).with_for_update()
        return (await self.session.scalars(statement)).one_or_none()

    async def earlier_open(self, action: KeyAction) -> bool:
        """Whether an action on the same key recorded before this one is still open (they apply in order)."""
        statement = select(KeyAction.id).where(
            KeyAction.workspace_id == action.workspace_id,
            KeyAction.key_id == action.key_id,
            KeyAction.status.in_(("pending", "running")),
            KeyAction.created_at < action.created_at,
            KeyAction.id != action.id,
        )
        return (await self.session.scalars(statement.limit(1))).first() is not None

    async def open_kinds(self, workspace_id: uuid.UUID, key_id: uuid.UUID) -> set[str]:
        """The kinds of the key's actions still pending or running."""
        statement = select(KeyAction.kind).where(
            KeyAction.workspace_id == workspace_id,
            KeyAction.key_id == key_id,
            KeyAction.status.in_(("pending", "running")),
        )
        return set((await self.session.scalars(statement.distinct())).all())

    async def skip_pending_enables(
        self, workspace_id: uuid.UUID, key_id: uuid.UUID, *, error: str, now: datetime
    ) -> list[uuid.UUID]:
        """Mark the key's pending enables `skipped` with `error`; their ids. A running one (claimed, perhaps sent) is
        left to finish: the row lock makes a claim and this update wait on each other, so none is caught half-way."""
        statement = (
            update(KeyAction)
            .where(
                KeyAction.workspace_id == workspace_id,
                KeyAction.key_id == key_id,
                KeyAction.kind == "enable",
                KeyAction.status == "pending",
            )
            .values(status="skipped", error=error, completed_at=now, updated_at=now, lease_until=None)
            .returning(KeyAction.id)
        )
        return list((await self.session.scalars(statement)).all())

    async def open_ids(self, *, created_before: datetime, now: datetime, limit: int) -> list[uuid.UUID]:
        """Pending actions older than `created_before`, and running ones whose lease ran out; oldest first."""
        statement = (
            select(KeyAction.id)
            .where(
                KeyAction.status.in_(("pending", "running")),
                KeyAction.created_at < created_before,
                func.coalesce(KeyAction.lease_until, KeyAction.created_at) < now,
            )
            .order_by(KeyAction.created_at)
            .limit(limit)
        )
        return list((await self.session.scalars(statement)).all())

    async def mark_account_row(
        self,
        management_key_id: uuid.UUID,
        api_key_hash: str,
        *,
        disabled: bool | None,
        limit_usd: Decimal | None,
        limit_reset: str | None,
        set_limit: bool,
        include_byok_in_limit: bool | None = None,
    ) -> None:
        """What OpenRouter answered, into the account's key row at once (the next key list confirms it)."""
        changes: dict[str, Any] = {}
        if disabled is not None:
            changes["disabled"] = disabled
        if set_limit:
            changes.update({"limit": limit_usd, "limit_reset": limit_reset})
            if include_byok_in_limit is not None:
                changes["include_byok_in_limit"] = include_byok_in_limit
        if changes:
            await self.session.execute(
                update(AccountKey)
                .where(AccountKey.management_key_id == management_key_id, AccountKey.hash == api_key_hash)
                .values(**changes)
            )

    async def kill_switch(self, workspace_id: uuid.UUID, key_id: uuid.UUID) -> KeyKillSwitch | None:
        statement = select(KeyKillSwitch).where(
            KeyKillSwitch.workspace_id == workspace_id, KeyKillSwitch.key_id == key_id
        )
        return (await self.session.scalars(statement)).one_or_none()

    async def set_kill_switch(self, workspace_id: uuid.UUID, key_id: uuid.UUID, score: Decimal | None) -> None:
        statement = insert(KeyKillSwitch).values(
            key_id=key_id, workspace_id=workspace_id, anomaly_score=score, updated_at=func.now()
        )
        statement = statement.on_conflict_do_update(
            index_elements=[KeyKillSwitch.key_id],
            set_={"anomaly_score": score, "updated_at": func.now()},
            where=KeyKillSwitch.workspace_id == workspace_id,
        )
        await self.session.execute(statement)
