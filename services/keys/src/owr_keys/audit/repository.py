"""SQL for audit events; callers own the transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from owr_keys.audit.models import AuditEvent


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, event: AuditEvent) -> None:
        self.session.add(event)
        await self.session.flush()

    async def add_all(self, events: Sequence[AuditEvent]) -> None:
        self.session.add_all(events)
        await self.session.flush()

    async def list_for_key(
        self, workspace_id: uuid.UUID, key_id: uuid.UUID, *, offset: int, limit: int
    ) -> tuple[Sequence[AuditEvent], int]:
        """Newest first; filtered by workspace as well as key, so no id ever crosses workspaces."""
        where = (AuditEvent.workspace_id == workspace_id, AuditEvent.key_id == key_id)
        total = await self.session.scalar(select(func.count()).select_from(AuditEvent).where(*where))
        rows = await self.session.scalars(
            select(AuditEvent).where(*where).order_by(AuditEvent.id.desc()).offset(offset).limit(limit)
        )
        return rows.all(), int(total or 0)

    async def delete_workspace(self, workspace_id: uuid.UUID) -> int:
        result = await self.session.execute(
            delete(AuditEvent).where(AuditEvent.workspace_id == workspace_id).returning(AuditEvent.id)
        )
        return len(result.all())
