"""SQL for workspaces and memberships."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from owr_auth.workspaces.models import Membership, Role, Workspace

PERSONAL_WORKSPACE_NAME = "Personal"


class WorkspaceRepository:
    """Workspaces and memberships; callers own the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create_with_owner(self, user_id: uuid.UUID, name: str) -> tuple[Workspace, Membership]:
        workspace = Workspace(id=uuid.uuid4(), name=name)
        self.session.add(workspace)
        await self.session.flush()
        membership = Membership(user_id=user_id, workspace_id=workspace.id, role=Role.owner.value)
        self.session.add(membership)
        await self.session.flush()
        return workspace, membership

    async def membership(self, user_id: uuid.UUID, workspace_id: uuid.UUID) -> tuple[Workspace, Membership] | None:
        result = await self.session.execute(
            select(Workspace, Membership)
            .join(Membership, Membership.workspace_id == Workspace.id)
            .where(Membership.user_id == user_id, Membership.workspace_id == workspace_id)
        )
        row = result.first()
        return (row[0], row[1]) if row else None

    async def default_membership(self, user_id: uuid.UUID) -> tuple[Workspace, Membership] | None:
        """The workspace a fresh token acts in: the user's earliest membership, i.e. the personal one."""
        result = await self.session.execute(
            select(Workspace, Membership)
            .join(Membership, Membership.workspace_id == Workspace.id)
            .where(Membership.user_id == user_id, Workspace.deleted_at.is_(None))
            .order_by(Membership.created_at, Membership.workspace_id)
            .limit(1)
        )
        row = result.first()
        return (row[0], row[1]) if row else None

    async def solely_owned_ids(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """Workspaces where the user is an owner and nobody else is."""
        other_owner = aliased(Membership)
        has_other_owner = (
            select(other_owner.user_id)
            .where(
                other_owner.workspace_id == Membership.workspace_id,
                other_owner.role == Role.owner.value,
                other_owner.user_id != user_id,
            )
            .exists()
        )
        result = await self.session.execute(
            select(Membership.workspace_id)
            .where(Membership.user_id == user_id, Membership.role == Role.owner.value, ~has_other_owner)
            .order_by(Membership.workspace_id)
        )
        return list(result.scalars().all())

    async def mark_deleted(self, workspace_ids: list[uuid.UUID], at: datetime) -> None:
        if workspace_ids:
            await self.session.execute(update(Workspace).where(Workspace.id.in_(workspace_ids)).values(deleted_at=at))

    async def marked_deleted(self, *, limit: int) -> list[uuid.UUID]:
        """Workspaces whose deletion began and has not finished, oldest first."""
        result = await self.session.execute(
            select(Workspace.id).where(Workspace.deleted_at.is_not(None)).order_by(Workspace.deleted_at).limit(limit)
        )
        return list(result.scalars().all())

    async def any_exist(self) -> bool:
        result = await self.session.execute(select(Workspace.id).limit(1))
        return result.first() is not None

    async def known_ids(self, workspace_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these workspaces exist here (being deleted or not)."""
        if not workspace_ids:
            return set()
        result = await self.session.execute(select(Workspace.id).where(Workspace.id.in_(workspace_ids)))
        return set(result.scalars().all())

    async def delete_marked(self, workspace_ids: list[uuid.UUID]) -> None:
        """Delete workspaces whose deletion began; their memberships go with them (ON DELETE CASCADE)."""
        if workspace_ids:
            await self.session.execute(
                delete(Workspace).where(Workspace.id.in_(workspace_ids), Workspace.deleted_at.is_not(None))
            )
