"""SQL for erased workspaces: tombstones, the shared erasure lock, and the workspaces holding rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from owr_keys.audit.models import AuditEvent
from owr_keys.erasure.models import ErasedWorkspace
from owr_keys.keys.models import OpenRouterKey
from owr_shared.repository import erased_among, stored_workspace_ids, tombstone_workspace


class ErasureRepository:
    """Tombstones and erasure locks; callers own the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def erased_among(self, workspace_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        return await erased_among(self.session, ErasedWorkspace, workspace_ids)

    async def tombstone(self, workspace_id: uuid.UUID) -> None:
        await tombstone_workspace(self.session, ErasedWorkspace, workspace_id)

    async def stored_workspaces(self, *, after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
        columns = (OpenRouterKey.__table__.c.workspace_id, AuditEvent.__table__.c.workspace_id)
        return await stored_workspace_ids(self.session, columns, after=after, limit=limit)
