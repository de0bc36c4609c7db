"""Finishing workspace deletions: erase in every peer, then drop auth's rows; and the periodic sweep.

A deletion is marked first (`deleted_at`, committed with the revocation of the owner's sessions), so
nothing can use the workspace while the peers erase. When a peer is away the marks stay, and the sweep
(`POST /internal/workspaces/sweep`, the worker's cron) finishes the deletion later. The sweep also
erases orphans: workspaces a peer holds rows for that auth does not know at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from owr_auth.users.repository import UserRepository
from owr_auth.workspaces.cleanup import WorkspaceCleanup
from owr_auth.workspaces.errors import WorkspaceCleanupUnavailable
from owr_auth.workspaces.repository import WorkspaceRepository
from owr_shared.db import transaction
from owr_shared.logging import get_logger
from owr_shared.wire.workspaces import SweepResult

log = get_logger(__name__)

# A brake on the orphan pass: an auth pointed at the wrong (or an empty, restored) database would otherwise
# erase every tenant of every peer. Past this many unknown workspaces in one sweep, the rest wait.
MAX_ORPHANS_PER_SWEEP = 200

Sessions = async_sessionmaker[AsyncSession]


async def finish_deletions(sessions: Sessions, cleanup: WorkspaceCleanup, workspace_ids: Sequence[uuid.UUID]) -> bool:
    """Erase the marked workspaces in every peer, then delete them, and every account marked deleted that
    has nothing left being erased. False when a peer is away: the marks stay for the sweep."""
    try:
        await cleanup.erase(workspace_ids)
    except WorkspaceCleanupUnavailable:
        return False
    async with transaction(sessions) as session:
        await WorkspaceRepository(session).delete_marked(list(workspace_ids))
        users = await UserRepository(session).delete_marked()
    log.info("workspace_deletions_finished", workspaces=len(workspace_ids), users=users)
    return True


async def sweep(sessions: Sessions, cleanup: WorkspaceCleanup, *, batch: int) -> SweepResult:
    """Finish up to `batch` interrupted deletions, then erase every peer's orphans (idempotent). Raises
    `WorkspaceCleanupUnavailable` while a peer is away: the next sweep goes on from there."""
    async with transaction(sessions) as session:
        pending = await WorkspaceRepository(session).marked_deleted(limit=batch)
    if not await finish_deletions(sessions, cleanup, pending):
        raise WorkspaceCleanupUnavailable()
    orphans = 0
    async with transaction(sessions) as session:
        # No workspace at all here is a misconfiguration far more likely than a service with no tenant left.
        known_any = await WorkspaceRepository(session).any_exist()
    if not known_any:
        log.error("workspace_sweep_refused", reason="auth knows no workspace; orphans are left alone")
    for peer in cleanup.peers if known_any else ():
        async for page in cleanup.stored_workspaces(peer):
            async with transaction(sessions) as session:
                known = await WorkspaceRepository(session).known_ids(page)
            unknown = [workspace_id for workspace_id in page if workspace_id not in known]
            unknown = unknown[: max(0, MAX_ORPHANS_PER_SWEEP - orphans)]
            await cleanup.erase_at(peer, unknown)
            orphans += len(unknown)
            if orphans >= MAX_ORPHANS_PER_SWEEP:
                log.warning("workspace_sweep_capped", orphans_erased=orphans)
                break
    async with transaction(sessions) as session:
        left = len(await WorkspaceRepository(session).marked_deleted(limit=batch))
    log.info("workspace_sweep", pending_finished=len(pending), pending_left=left, orphans_erased=orphans)
    return SweepResult(pending_finished=len(pending), pending_left=left, orphans_erased=orphans)
