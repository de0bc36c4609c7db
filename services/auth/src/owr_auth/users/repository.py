"""SQL for users."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.users.models import User
from owr_auth.workspaces.models import Membership, Workspace
from owr_shared.repository import deleted_rows


class UserRepository:
    """Users; callers own the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id, populate_existing=True)

    async def in_workspace(
        self, user_id: uuid.UUID, workspace_id: uuid.UUID
    ) -> tuple[User, Workspace, Membership] | None:
        """The user with their membership of the workspace, in one round trip (every authenticated read's)."""
        result = await self.session.execute(
            select(User, Workspace, Membership)
            .join(Membership, Membership.user_id == User.id)
            .join(Workspace, Workspace.id == Membership.workspace_id)
            .where(User.id == user_id, Membership.workspace_id == workspace_id)
            .where(User.deleted_at.is_(None), Workspace.deleted_at.is_(None))
        )
        row = result.first()
        return (row[0], row[1], row[2]) if row else None

    async def lock(self, user_id: uuid.UUID) -> User | None:
        """The user's row, locked until the transaction ends, so password changes and logins serialise."""
        result = await self.session.execute(
            select(User)
            .where(User.id == user_id, User.deleted_at.is_(None))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def get_by_email(self, email: str) -> User | None:
        """Look a user up by normalised email (an account being deleted is not found)."""
        result = await self.session.execute(select(User).where(User.email == email, User.deleted_at.is_(None)))
        return result.scalar_one_or_none()

    async def create(self, *, email: str, password_hash: str) -> User | None:
        """Insert a user; None when the email is taken (also under a concurrent registration)."""
        result = await self.session.execute(
            insert(User)
            .values(id=uuid.uuid4(), email=email, password_hash=password_hash)
            .on_conflict_do_nothing(index_elements=[User.email])
            .returning(User)
        )
        return result.scalar_one_or_none()

    async def mark_deleted(self, user_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(update(User).where(User.id == user_id).values(deleted_at=at))

    async def delete_marked(self) -> int:
        """Delete the users marked deleted that have no workspace left being erased; memberships and refresh
        tokens go with them (ON DELETE CASCADE). How many."""
        pending = (
            select(Membership.user_id)
            .join(Workspace, Workspace.id == Membership.workspace_id)
            .where(Membership.user_id == User.id, Workspace.deleted_at.is_not(None))
            .exists()
        )
        return await deleted_rows(self.session, delete(User).where(User.deleted_at.is_not(None), ~pending))
