"""SQL for erased workspaces: tombstones, the shared erasure lock, and the workspaces holding rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.repository import erased_among, stored_workspace_ids, tombstone_workspace
from owr_usage.accounts.models import Account, AccountBalance
from owr_usage.erasure.models import ErasedWorkspace
from owr_usage.rollups.models import DailyKeyTotal, KeyLink
from owr_usage.snapshots.models import KeyState


class ErasureRepository:
    """Tombstones and erasure locks; callers own the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def erased_among(self, workspace_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        return await erased_among(self.session, ErasedWorkspace, workspace_ids)

    async def tombstone(self, workspace_id: uuid.UUID) -> None:
        await tombstone_workspace(self.session, ErasedWorkspace, workspace_id)

    async def stored_workspaces(self, *, after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
        # Every other table's rows hang off one of these (a key's state, an account, a link, a rollup),
        # and each has an index led by workspace_id.
        models = (KeyState, Account, AccountBalance, KeyLink, DailyKeyTotal)
        columns = [model.__table__.c.workspace_id for model in models]
        return await stored_workspace_ids(self.session, columns, after=after, limit=limit)
