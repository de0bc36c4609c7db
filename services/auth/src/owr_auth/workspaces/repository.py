"""SQL for workspaces and memberships."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from owr_auth.workspaces.models import Membership, Role, Workspace

PERSONAL_WORKSPACE_NAME = "Personal"


class WorkspaceRepository:
    """Workspaces and memberships; callers own the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create_with_owner(
        self, user_id: uuid.UUID, name: str, *, personal: bool = False
    ) -> tuple[Workspace, Membership]:
        workspace = Workspace(id=uuid.uuid4(), name=name, personal=personal)
        self.session.add(workspace)
        await self.session.flush()
        membership = Membership(user_id=user_id, workspace_id=workspace.id, role=Role.owner.value)
        self.session.add(membership)
        await self.session.flush()
        return workspace, membership

    async def get(self, workspace_id: uuid.UUID) -> Workspace | None:
        return await self.session.get(Workspace, workspace_id, populate_existing=True)

    async def membership(
        self, user_id: uuid.UUID, workspace_id: uuid.UUID, *, for_share: bool = False
    ) -> tuple[Workspace, Membership] | None:
        """The user's membership of a workspace that is not being deleted.

        `for_share` locks the membership row until the transaction ends: whatever mints a token from the
        role read here (a refresh, a switch, an introspection) then waits for a change of that role to
        commit, so its token is either minted before the change's cut-off or carries the new role.
        """
        statement = (
            select(Workspace, Membership)
            .join(Membership, Membership.workspace_id == Workspace.id)
            .where(
                Membership.user_id == user_id,
                Membership.workspace_id == workspace_id,
                Workspace.deleted_at.is_(None),
            )
        )
        if for_share:
            statement = statement.with_for_update(read=True, of=Membership).execution_options(populate_existing=True)
        row = (await self.session.execute(statement)).first()
        return (row[0], row[1]) if row else None

    async def acting_membership(
        self, user_id: uuid.UUID, preferred: uuid.UUID | None
    ) -> tuple[Workspace, Membership] | None:
        """The membership a session's new token acts in: the preferred workspace while the user is still a
        member of it, else their first (personal) one; its row is locked `FOR SHARE`, as in `membership`."""
        if preferred is not None:
            found = await self.membership(user_id, preferred, for_share=True)
            if found is not None:
                return found
        first = await self.default_membership(user_id)
        return None if first is None else await self.membership(user_id, first[0].id, for_share=True)

    async def mine(
        self, user_id: uuid.UUID, *, offset: int, limit: int
    ) -> tuple[list[tuple[Workspace, Membership]], int]:
        """The user's workspaces (not being deleted) with their membership, personal first, then by name."""
        where = (Membership.user_id == user_id, Workspace.deleted_at.is_(None))
        total = await self.session.scalar(
            select(func.count())
            .select_from(Membership)
            .join(Workspace, Workspace.id == Membership.workspace_id)
            .where(*where)
        )
        result = await self.session.execute(
            select(Workspace, Membership)
            .join(Membership, Membership.workspace_id == Workspace.id)
            .where(*where)
            .order_by(Workspace.personal.desc(), Workspace.name, Workspace.id)
            .offset(offset)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in result.all()], int(total or 0)

    async def owned_count(self, user_id: uuid.UUID) -> int:
        """How many workspaces (not being deleted) the user owns."""
        total = await self.session.scalar(
            select(func.count())
            .select_from(Membership)
            .join(Workspace, Workspace.id == Membership.workspace_id)
            .where(Membership.user_id == user_id, Membership.role == Role.owner.value, Workspace.deleted_at.is_(None))
        )
        return int(total or 0)

    async def lock(self, workspace_id: uuid.UUID) -> Workspace | None:
        """The workspace's row (not being deleted), locked until the transaction ends: ownership transfers,
        deletions and new members of one workspace go one at a time."""
        result = await self.session.execute(
            select(Workspace)
            .where(Workspace.id == workspace_id, Workspace.deleted_at.is_(None))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

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
