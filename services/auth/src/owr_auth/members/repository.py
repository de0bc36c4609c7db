"""SQL for a workspace's memberships as its members see and change them; callers own the transaction."""

from __future__ import annotations

import uuid

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.users.models import User
from owr_auth.workspaces.models import Membership, Role

# Owner first, viewers last: how member lists are ordered.
_RANK = case({Role.owner.value: 0, Role.admin.value: 1, Role.member.value: 2}, value=Membership.role, else_=3)


class MemberRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self, workspace_id: uuid.UUID, *, offset: int, limit: int
    ) -> tuple[list[tuple[Membership, User]], int]:
        """The workspace's members with their accounts (not those being deleted), highest role first."""
        where = (Membership.workspace_id == workspace_id, User.deleted_at.is_(None))
        total = await self.session.scalar(
            select(func.count()).select_from(Membership).join(User, User.id == Membership.user_id).where(*where)
        )
        result = await self.session.execute(
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(*where)
            .order_by(_RANK, User.email)
            .offset(offset)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in result.all()], int(total or 0)

    async def lock(self, workspace_id: uuid.UUID, user_id: uuid.UUID) -> tuple[Membership, User] | None:
        """A member's row with their account, locked (`FOR UPDATE`) for the change the caller makes: every
        token minted from this role waits for that change to commit (`WorkspaceRepository.membership`)."""
        result = await self.session.execute(
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.workspace_id == workspace_id, Membership.user_id == user_id, User.deleted_at.is_(None))
            .with_for_update(of=Membership)
            .execution_options(populate_existing=True)
        )
        row = result.first()
        return (row[0], row[1]) if row else None

    async def set_role(self, workspace_id: uuid.UUID, user_id: uuid.UUID, role: Role) -> None:
        await self.session.execute(
            update(Membership)
            .where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
            .values(role=role.value)
        )

    async def remove(self, workspace_id: uuid.UUID, user_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(Membership).where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
        )

    async def add(self, workspace_id: uuid.UUID, user_id: uuid.UUID, role: Role) -> Membership | None:
        """Make the user a member; None when they already are one."""
        result = await self.session.execute(
            insert(Membership)
            .values(workspace_id=workspace_id, user_id=user_id, role=role.value)
            .on_conflict_do_nothing(index_elements=[Membership.user_id, Membership.workspace_id])
            .returning(Membership)
        )
        return result.scalar_one_or_none()

    async def remove_all(self, workspace_id: uuid.UUID, *, keep: uuid.UUID | None = None) -> list[uuid.UUID]:
        """Remove every member (but `keep`) of a workspace being deleted; returns who they were.

        Deleting the rows, not merely locking them, is what stops a concurrent refresh: its `FOR SHARE`
        read waits for this transaction and then finds the row gone, so it moves the session elsewhere.
        """
        statement = delete(Membership).where(Membership.workspace_id == workspace_id)
        if keep is not None:
            statement = statement.where(Membership.user_id != keep)
        result = await self.session.execute(statement.returning(Membership.user_id))
        return list(result.scalars().all())
