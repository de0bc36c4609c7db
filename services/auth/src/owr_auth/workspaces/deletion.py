"""Deleting a workspace (its owner's act): the same two steps as an account deletion.

One committed transaction marks the workspace (`deleted_at`), removes its members, revokes every API
token acting in it and cuts every member's tokens for it off; then every peer erases its data and
auth's rows go (`service.finish_deletions`), or the sweep finishes that when a peer is away. A
personal workspace is not deleted this way: it goes with its person's account (409).
"""

from __future__ import annotations

import uuid

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from owr_auth.base import utcnow
from owr_auth.members import service as member_service
from owr_auth.settings import AuthSettings
from owr_auth.users.service import authenticated_user
from owr_auth.workspaces import service as workspace_service
from owr_auth.workspaces.cleanup import WorkspaceCleanup
from owr_auth.workspaces.errors import PersonalWorkspace, WorkspaceNotFound
from owr_auth.workspaces.repository import WorkspaceRepository
from owr_shared.auth import Role
from owr_shared.db import transaction
from owr_shared.jwt import Principal
from owr_shared.logging import get_logger

log = get_logger(__name__)


async def delete_workspace(
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: AuthSettings,
    cleanup: WorkspaceCleanup,
    *,
    principal: Principal,
    workspace_id: uuid.UUID,
) -> bool:
    """True when every peer erased its data; False when one was away (the sweep finishes it)."""
    async with transaction(sessions) as session:
        caller = await authenticated_user(session, principal)
        await workspace_service.access(session, caller, workspace_id, Role.owner)
        workspaces = WorkspaceRepository(session)
        workspace = await workspaces.lock(workspace_id)
        if workspace is None:
            raise WorkspaceNotFound()
        if workspace.personal:
            raise PersonalWorkspace()
        await workspaces.mark_deleted([workspace_id], utcnow())
        await member_service.close(session, redis, settings, [workspace_id])
    finished = await workspace_service.finish_deletions(sessions, cleanup, [workspace_id])
    log.info("workspace_deleted", workspace_id=str(workspace_id), user_id=principal.subject, finished=finished)
    return finished
