"""SQL for stored keys; callers own the transaction.

Every method a user's request reaches takes the workspace id and filters by it, so an id from
another workspace matches nothing. Only the internal API uses the unscoped lookups (`*_any`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from owr_keys.keys.models import OpenRouterKey


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

    async def get(
        self, workspace_id: uuid.UUID, key_id: uuid.UUID, *, for_update: bool = False
    ) -> OpenRouterKey | None:
        query = select(OpenRouterKey).where(OpenRouterKey.id == key_id, OpenRouterKey.workspace_id == workspace_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.scalars(query.execution_options(populate_existing=True))).one_or_none()

    async def page(self, workspace_id: uuid.UUID, *, offset: int, limit: int) -> tuple[Sequence[OpenRouterKey], int]:
        """Newest first."""
        where = OpenRouterKey.workspace_id == workspace_id
        total = await self.session.scalar(select(func.count()).select_from(OpenRouterKey).where(where))
        rows = await self.session.scalars(
            select(OpenRouterKey)
            .where(where)
            .order_by(OpenRouterKey.created_at.desc(), OpenRouterKey.id)
            .offset(offset)
            .limit(limit)
        )
        return rows.all(), int(total or 0)

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

    async def get_many_any(self, key_ids: Sequence[uuid.UUID], *, for_update: bool = False) -> Sequence[OpenRouterKey]:
        """The keys among `key_ids` that exist; locked in id order, so concurrent batches never deadlock."""
        query = select(OpenRouterKey).where(OpenRouterKey.id.in_(key_ids)).order_by(OpenRouterKey.id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.scalars(query.execution_options(populate_existing=True))).all()

    async def due(self, cutoff: datetime, *, limit: int) -> Sequence[OpenRouterKey]:
        """Active keys never synced or last synced before `cutoff`, oldest first."""
        rows = await self.session.scalars(
            select(OpenRouterKey)
            .where(
                OpenRouterKey.is_active.is_(True),
                (OpenRouterKey.last_synced_at.is_(None)) | (OpenRouterKey.last_synced_at < cutoff),
            )
            .order_by(OpenRouterKey.last_synced_at.asc().nulls_first(), OpenRouterKey.created_at, OpenRouterKey.id)
            .limit(limit)
        )
        return rows.all()

    async def delete_workspace(self, workspace_id: uuid.UUID) -> int:
        result = await self.session.execute(
            delete(OpenRouterKey).where(OpenRouterKey.workspace_id == workspace_id).returning(OpenRouterKey.id)
        )
        return len(result.all())
