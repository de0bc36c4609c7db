"""Workspaces: making, listing and renaming them, the caller's role in one; finishing deletions (erase in
every peer, then drop auth's rows) and the periodic sweep.

A deletion is marked first (`deleted_at`, committed with the revocation of the owner's sessions), so
nothing can use the workspace while the peers erase. When a peer is away the marks stay, and the sweep
(`POST /internal/workspaces/sweep`, the worker's cron) finishes the deletion later. The sweep also
erases orphans: workspaces a peer holds rows for that auth does not know at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from owr_auth.audit import service as audit
from owr_auth.audit.schemas import AuditAction
from owr_auth.settings import AuthSettings
from owr_auth.users.errors import AccountGone
from owr_auth.users.repository import UserRepository
from owr_auth.workspaces.cleanup import WorkspaceCleanup
from owr_auth.workspaces.errors import TooManyWorkspaces, WorkspaceCleanupUnavailable, WorkspaceNotFound
from owr_auth.workspaces.models import Membership, Workspace
from owr_auth.workspaces.repository import WorkspaceRepository
from owr_auth.workspaces.schemas import WorkspaceItem, WorkspaceView
from owr_shared.auth import Role, check_role, lower_role
from owr_shared.db import transaction
from owr_shared.logging import get_logger
from owr_shared.wire.workspaces import SweepResult

if TYPE_CHECKING:
    from owr_auth.users.service import UserInWorkspace

log = get_logger(__name__)

# A brake on the orphan pass: an auth pointed at the wrong (or an empty, restored) database would otherwise
# erase every tenant of every peer. Past this many unknown workspaces in one sweep, the rest wait.
MAX_ORPHANS_PER_SWEEP = 200

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True, slots=True)
class Access:
    """The caller's membership of a workspace and the role they act with there."""

    workspace: Workspace
    membership: Membership
    role: Role


async def access(session: AsyncSession, caller: UserInWorkspace, workspace_id: uuid.UUID, minimum: Role) -> Access:
    """The caller's access to a workspace: 404 when they are not a member (or it is being deleted), 403
    (`role-too-low`) when their role there is below `minimum`.

    Their role is the membership's; in the workspace their token acts in, the token's own role (never
    above the membership's, and lower until a raised role's next refresh), so a route answers there as the
    other services do from the same JWT.
    """
    found = await WorkspaceRepository(session).membership(caller.user.id, workspace_id)
    if found is None:
        raise WorkspaceNotFound()
    workspace, membership = found
    role = Role(membership.role)
    if workspace_id == caller.workspace.id:
        role = lower_role(role, caller.role)
    check_role(role, minimum)
    return Access(workspace, membership, role)


def item(workspace: Workspace, role: str) -> WorkspaceItem:
    return WorkspaceItem(
        id=workspace.id,
        name=workspace.name,
        role=Role(role),
        personal=workspace.personal,
        created_at=workspace.created_at,
    )


async def create(session: AsyncSession, settings: AuthSettings, caller: UserInWorkspace, *, name: str) -> WorkspaceItem:
    """A new workspace owned by the caller; at most `workspaces_per_user_max` owned at once (409)."""
    # The user's row lock serialises their creations, so the count cannot be raced past.
    if await UserRepository(session).lock(caller.user.id) is None:
        raise AccountGone()
    repo = WorkspaceRepository(session)
    if await repo.owned_count(caller.user.id) >= settings.workspaces_per_user_max:
        raise TooManyWorkspaces(settings.workspaces_per_user_max)
    workspace, membership = await repo.create_with_owner(caller.user.id, name)
    await audit.record(session, workspace.id, AuditAction.workspace_created, actor_id=caller.user.id, name=name)
    return item(workspace, membership.role)


async def page_mine(
    session: AsyncSession, caller: UserInWorkspace, *, offset: int, limit: int
) -> tuple[list[WorkspaceItem], int]:
    rows, total = await WorkspaceRepository(session).mine(caller.user.id, offset=offset, limit=limit)
    return [item(workspace, membership.role) for workspace, membership in rows], total


async def rename(
    session: AsyncSession, caller: UserInWorkspace, workspace_id: uuid.UUID, *, name: str
) -> WorkspaceView:
    """Rename a workspace (an admin's or the owner's)."""
    found = await access(session, caller, workspace_id, Role.admin)
    workspace = await WorkspaceRepository(session).lock(workspace_id)
    if workspace is None:
        raise WorkspaceNotFound()
    if workspace.name != name:
        await audit.record(
            session, workspace_id, AuditAction.workspace_renamed, actor_id=caller.user.id, old=workspace.name, new=name
        )
        workspace.name = name
        await session.flush()
    return WorkspaceView(id=workspace.id, name=workspace.name, role=found.role)


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
