"""Erasing a workspace, and keeping it erased against writes that race the erasure."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from owr_keys.audit.repository import AuditRepository
from owr_keys.erasure.errors import WorkspaceErased
from owr_keys.erasure.repository import ErasureRepository
from owr_keys.keys.repository import KeyRepository
from owr_shared.logging import get_logger

log = get_logger(__name__)


async def erased_among(session: AsyncSession, workspace_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Hold off the workspaces' erasure until this transaction ends; those erased already.

    Call it before the first row lock of the transaction: the erasure takes its lock before it deletes.
    """
    return await ErasureRepository(session).erased_among(workspace_ids)


async def refuse_erased(session: AsyncSession, workspace_id: uuid.UUID) -> None:
    """Before storing anything for the workspace: 410 when it was erased."""
    if await erased_among(session, [workspace_id]):
        raise WorkspaceErased()


async def erase(session: AsyncSession, *, workspace_id: uuid.UUID) -> None:
    """Tombstone the workspace, then erase its keys and their audit history; idempotent."""
    await ErasureRepository(session).tombstone(workspace_id)
    keys = await KeyRepository(session).delete_workspace(workspace_id)
    events = await AuditRepository(session).delete_workspace(workspace_id)
    log.info("workspace_erased", workspace_id=str(workspace_id), keys=keys, audit_events=events)


async def stored_workspaces(session: AsyncSession, *, after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
    """A page of the workspaces that hold keys or audit events here, in id order."""
    return await ErasureRepository(session).stored_workspaces(after=after, limit=limit)
