"""Erasing a workspace's figures, and keeping it erased against syncs that report after it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from owr_shared.logging import get_logger
from owr_usage.accounts.repository import AccountRepository
from owr_usage.erasure.errors import WorkspaceErased
from owr_usage.erasure.repository import ErasureRepository
from owr_usage.rollups.repository import RollupRepository
from owr_usage.snapshots.repository import SnapshotRepository

log = get_logger(__name__)


async def erased_among(session: AsyncSession, workspace_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Hold off the workspaces' erasure until this transaction ends; those erased already.

    Ingestion calls it first, before any row lock: the erasure takes its lock before it deletes.
    """
    return await ErasureRepository(session).erased_among(workspace_ids)


async def refuse_erased(session: AsyncSession, workspace_id: uuid.UUID) -> None:
    """Before storing anything for the workspace at a user's request: 410 when it was erased."""
    if await erased_among(session, [workspace_id]):
        raise WorkspaceErased()


async def erase(session: AsyncSession, *, workspace_id: uuid.UUID) -> None:
    """Tombstone the workspace, then erase every figure of it; idempotent."""
    await ErasureRepository(session).tombstone(workspace_id)
    counts = await SnapshotRepository(session).delete_workspace(workspace_id)
    counts |= await AccountRepository(session).delete_workspace(workspace_id)
    counts |= await RollupRepository(session).delete_workspace(workspace_id)
    counts |= await ErasureRepository(session).delete_alerting(workspace_id)
    log.info("workspace_erased", workspace_id=str(workspace_id), **counts)


async def stored_workspaces(session: AsyncSession, *, after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
    """A page of the workspaces that hold figures here, in id order."""
    return await ErasureRepository(session).stored_workspaces(after=after, limit=limit)
