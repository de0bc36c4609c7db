"""SQL for stored keys; callers own the transaction.

Every method a user's request reaches takes the workspace id and filters by it, so an id from
another workspace matches nothing. Only the internal API uses the unscoped lookups (`*_any`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from owr_keys.keys.models import OpenRouterKey
from owr_shared.wire.keys import InvalidFilter

# id, workspace_id, ciphertext, nonce, wrapped_dek, dek_nonce, kek_version: what a re-wrap reads.
SealedRow = Row[uuid.UUID, uuid.UUID, bytes, bytes, bytes, bytes, str]
# id, workspace_id, kind, status, last_synced_at: a due key as the worker is told of it; then its rank among
# its workspace's due keys (1 = the workspace's most overdue).
DueRow = Row[uuid.UUID, uuid.UUID, str | None, str, datetime | None, int]

# The internal batch routes take up to 500 ids: `= ANY(array)` and unnest() keep one statement for every
# batch size, so SQLAlchemy's compiled cache and PostgreSQL's prepared statements are reused.
_REVEAL_ROWS = text(
    """
SELECT id, workspace_id, name, is_active, ciphertext, nonce, wrapped_dek, dek_nonce, kek_version
FROM keys.openrouter_keys WHERE id = ANY(CAST(:ids AS uuid[]))
"""
)
_SYNC_STATES_FOR_UPDATE = text(
    """
SELECT id, workspace_id, last_synced_at
FROM keys.openrouter_keys WHERE id = ANY(CAST(:ids AS uuid[]))
ORDER BY id FOR UPDATE
"""
)
# A reported field left out keeps its value: each optional field comes with a "given" flag.
_APPLY_REPORTS = text(
    """
UPDATE keys.openrouter_keys AS k SET
    kind = CASE WHEN r.kind_given THEN r.kind ELSE k.kind END,
    "limit" = CASE WHEN r.limit_given THEN r."limit" ELSE k."limit" END,
    limit_reset = CASE WHEN r.limit_reset_given THEN r.limit_reset ELSE k.limit_reset END,
    limit_remaining = CASE WHEN r.limit_remaining_given THEN r.limit_remaining ELSE k.limit_remaining END,
    expires_at = CASE WHEN r.expires_at_given THEN r.expires_at ELSE k.expires_at END,
    status = r.status,
    last_synced_at = r.last_synced_at,
    last_error = r.last_error,
    updated_at = :now
FROM unnest(
    CAST(:ids AS uuid[]),
    CAST(:kind_given AS boolean[]), CAST(:kind AS text[]),
    CAST(:limit_given AS boolean[]), CAST(:limit AS numeric[]),
    CAST(:limit_reset_given AS boolean[]), CAST(:limit_reset AS text[]),
    CAST(:limit_remaining_given AS boolean[]), CAST(:limit_remaining AS numeric[]),
    CAST(:expires_at_given AS boolean[]), CAST(:expires_at AS timestamptz[]),
    CAST(:status AS text[]), CAST(:last_synced_at AS timestamptz[]), CAST(:last_error AS text[])
) AS r(
    id, kind_given, kind, limit_given, "limit", limit_reset_given, limit_reset, limit_remaining_given,
    limit_remaining, expires_at_given, expires_at, status, last_synced_at, last_error
)
WHERE k.id = r.id
"""
)
# Serialises the key additions of one workspace (its count, then its insert) until the transaction ends.
_LOCK_WORKSPACE_KEYS = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('owr_keys.keys:' || CAST(CAST(:ws AS uuid) AS text), 0))"
)
REPORTED_FIELDS = ("kind", "limit", "limit_reset", "limit_remaining", "expires_at")


def _due(cutoff: datetime, invalid: InvalidFilter) -> list[ColumnElement[bool]]:
    """Active keys never synced or last synced before `cutoff`, with the keys OpenRouter rejected left out,
    the only ones, or included."""
    where: list[ColumnElement[bool]] = [
        OpenRouterKey.is_active.is_(True),
        (OpenRouterKey.last_synced_at.is_(None)) | (OpenRouterKey.last_synced_at < cutoff),
    ]
    if invalid == "exclude":
        where.append(OpenRouterKey.status != "invalid")
    elif invalid == "only":
        where.append(OpenRouterKey.status == "invalid")
    return where


class KeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, values: dict[str, Any]) -> OpenRouterKey | None:
        """Insert a key; None when the workspace already holds one with the same fingerprint."""
        result = await self.session.execute(
            insert(OpenRouterKey)
            .values(**values)
            .on_conflict_do_nothing(constraint="uq_openrouter_keys_workspace_fingerprint")
            .returning(OpenRouterKey)
        )
        return result.scalar_one_or_none()

    async def count_locked(self, workspace_id: uuid.UUID) -> int:
        """The workspace's stored keys, counted under its advisory lock: no other addition to the workspace
        counts or inserts before this transaction ends.

        Two statements: under READ COMMITTED a statement's snapshot is taken when it starts, so a count in
        the statement that waits for the lock would miss the rows the holder committed meanwhile.
        """
        await self.session.execute(_LOCK_WORKSPACE_KEYS, {"ws": workspace_id})
        count = await self.session.scalar(
            select(func.count()).select_from(OpenRouterKey).where(OpenRouterKey.workspace_id == workspace_id)
        )
        return int(count or 0)

    async def get(
        self, workspace_id: uuid.UUID, key_id: uuid.UUID, *, for_update: bool = False
    ) -> OpenRouterKey | None:
        query = select(OpenRouterKey).where(OpenRouterKey.id == key_id, OpenRouterKey.workspace_id == workspace_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.scalars(query.execution_options(populate_existing=True))).one_or_none()

    async def page(self, workspace_id: uuid.UUID, *, offset: int, limit: int) -> tuple[Sequence[OpenRouterKey], int]:
        """Newest first, with the workspace's count: one round trip, unless the page is past the end."""
        where = OpenRouterKey.workspace_id == workspace_id
        result = await self.session.execute(
            select(OpenRouterKey, func.count().over().label("total"))
            .where(where)
            .order_by(OpenRouterKey.created_at.desc(), OpenRouterKey.id)
            .offset(offset)
            .limit(limit)
        )
        rows = result.all()
        if rows:
            return [row[0] for row in rows], int(rows[0].total)
        if offset == 0:
            return [], 0
        total = await self.session.scalar(select(func.count()).select_from(OpenRouterKey).where(where))
        return [], int(total or 0)

    async def delete(self, workspace_id: uuid.UUID, key_id: uuid.UUID) -> OpenRouterKey | None:
        """Delete and return the key (its pre-delete state), or None when there is no such key here."""
        result = await self.session.execute(
            delete(OpenRouterKey)
            .where(OpenRouterKey.id == key_id, OpenRouterKey.workspace_id == workspace_id)
            .returning(OpenRouterKey)
        )
        return result.scalar_one_or_none()

    # --- internal API: no workspace scope, service tokens only ---------------------------------

    async def get_any(self, key_id: uuid.UUID, *, for_update: bool = False) -> OpenRouterKey | None:
        query = select(OpenRouterKey).where(OpenRouterKey.id == key_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.scalars(query.execution_options(populate_existing=True))).one_or_none()

    async def workspaces_of(self, key_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """The workspaces the existing keys among `key_ids` belong to (no row lock)."""
        result = await self.session.execute(
            select(OpenRouterKey.workspace_id).where(OpenRouterKey.id.in_(list(key_ids))).distinct()
        )
        return set(result.scalars().all())

    async def reveal_rows(self, key_ids: Sequence[uuid.UUID]) -> Sequence[Row[Any]]:
        """What a reveal needs of each existing key: id, workspace_id, name, is_active and the sealed columns."""
        return (await self.session.execute(_REVEAL_ROWS, {"ids": list(key_ids)})).all()

    async def sync_states_for_update(self, key_ids: Sequence[uuid.UUID]) -> Sequence[Row[Any]]:
        """(id, workspace_id, last_synced_at) of the existing keys, locked in id order (no deadlock between
        concurrent batches)."""
        return (await self.session.execute(_SYNC_STATES_FOR_UPDATE, {"ids": list(key_ids)})).all()

    async def apply_reports(self, reports: Sequence[dict[str, Any]], *, now: datetime) -> None:
        """One UPDATE for many reports: `id`, `status`, `last_synced_at`, `last_error`, and of the
        `REPORTED_FIELDS` only those present in a report's dict (the others keep their value)."""
        if not reports:
            return
        params: dict[str, Any] = {
            "now": now,
            "ids": [r["id"] for r in reports],
            "status": [r["status"] for r in reports],
            "last_synced_at": [r["last_synced_at"] for r in reports],
            "last_error": [r["last_error"] for r in reports],
        }
        for name in REPORTED_FIELDS:
            params[f"{name}_given"] = [name in r for r in reports]
            params[name] = [r.get(name) for r in reports]
        await self.session.execute(_APPLY_REPORTS, params)

    async def due(self, cutoff: datetime, *, limit: int, invalid: InvalidFilter = "exclude") -> Sequence[OpenRouterKey]:
        """Active keys never synced or last synced before `cutoff`, oldest first; `invalid` says whether keys
        OpenRouter rejected are left out, the only ones, or included."""
        rows = await self.session.scalars(
            select(OpenRouterKey)
            .where(*_due(cutoff, invalid))
            .order_by(OpenRouterKey.last_synced_at.asc().nulls_first(), OpenRouterKey.created_at, OpenRouterKey.id)
            .limit(limit)
        )
        return rows.all()

    async def claim_due(
        self,
        cutoff: datetime,
        *,
        now: datetime,
        until: datetime,
        limit: int,
        invalid: InvalidFilter = "exclude",
    ) -> list[DueRow]:
        """Lease up to `limit` due keys until `until`, in fair order: (id, workspace_id, kind, status,
        last_synced_at, rank).

        Each workspace's due keys are ranked (never synced first, then the oldest sync), and the claim takes
        every workspace's first key before anyone's second: a workspace with thousands of due keys cannot
        push another's few out of the first page. A key another scan leased (lease not yet over) or holds
        locked is skipped, so concurrent scans take disjoint keys and a scan's next claim is its next page;
        the claim leaves `updated_at` alone.
        """
        key = OpenRouterKey
        unleased = or_(key.sync_claimed_until.is_(None), key.sync_claimed_until <= now)
        staleness = (key.last_synced_at.asc().nulls_first(), key.id)
        rank = func.row_number().over(partition_by=key.workspace_id, order_by=staleness).label("rank")
        ranked_all = select(key.id, key.last_synced_at, rank).where(*_due(cutoff, invalid), unleased).subquery()
        # The page's candidates: a bounded sort (top-N) rather than a sort of every due key under the lock.
        # Three pages' worth, so that a claim running beside two others still fills its page.
        ranked = (
            select(ranked_all.c.id, ranked_all.c.rank)
            .order_by(ranked_all.c.rank, ranked_all.c.last_synced_at.asc().nulls_first(), ranked_all.c.id)
            .limit(3 * limit)
            .subquery("ranked")
        )
        # FOR UPDATE cannot sit beside a window function: the ranking is a subquery, and the conditions are
        # repeated here so that a row another scan leased meanwhile is re-checked on its new version.
        chosen = (
            select(key.id, ranked.c.rank)
            .join(ranked, ranked.c.id == key.id)
            .where(*_due(cutoff, invalid), unleased)
            .order_by(ranked.c.rank, *staleness)
            .limit(limit)
            .with_for_update(of=key, skip_locked=True)
            .cte("chosen")
        )
        claimed = (
            update(key)
            .where(key.id == chosen.c.id)
            .values(sync_claimed_until=until, updated_at=key.updated_at)
            .returning(key.id, key.workspace_id, key.kind, key.status, key.last_synced_at, chosen.c.rank)
            .execution_options(synchronize_session=False)
        )
        rows = (await self.session.execute(claimed)).all()
        return sorted(rows, key=lambda r: (r.rank, r.last_synced_at is not None, r.last_synced_at or now, r.id))

    async def delete_workspace(self, workspace_id: uuid.UUID) -> int:
        result = await self.session.execute(
            delete(OpenRouterKey).where(OpenRouterKey.workspace_id == workspace_id).returning(OpenRouterKey.id)
        )
        return len(result.all())

    # --- KEK rotation (`python -m owr_keys.rotate_kek`) -----------------------------------------

    async def sealed_under_other_kek(
        self, active_version: str, *, after: uuid.UUID | None, limit: int
    ) -> Sequence[SealedRow]:
        """The next rows (by id, after `after`) not wrapped under `active_version`, locked; rows another
        transaction holds are skipped, not waited for."""
        key = OpenRouterKey
        query = (
            select(key.id, key.workspace_id, key.ciphertext, key.nonce, key.wrapped_dek, key.dek_nonce, key.kek_version)
            .where(key.kek_version != active_version)
            .order_by(key.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if after is not None:
            query = query.where(key.id > after)
        return (await self.session.execute(query)).all()

    async def rewrap(
        self, key_id: uuid.UUID, *, old_version: str, wrapped_dek: bytes, dek_nonce: bytes, kek_version: str
    ) -> None:
        """Store a row's DEK wrapped anew, unless the row has left `old_version` meanwhile."""
        key = OpenRouterKey
        await self.session.execute(
            update(key)
            .where(key.id == key_id, key.kek_version == old_version)
            .values(wrapped_dek=wrapped_dek, dek_nonce=dek_nonce, kek_version=kek_version)
        )

    async def count_under_other_kek(self, active_version: str) -> int:
        count = await self.session.scalar(
            select(func.count()).select_from(OpenRouterKey).where(OpenRouterKey.kek_version != active_version)
        )
        return int(count or 0)
