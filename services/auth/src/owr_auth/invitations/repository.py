"""SQL for invitations; callers own the transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.invitations.models import Invitation
from owr_auth.users.models import User
from owr_auth.workspaces.models import Membership

_OPEN = (Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))


class InvitationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, invitation: Invitation) -> Invitation:
        self.session.add(invitation)
        await self.session.flush()
        return invitation

    async def page(self, workspace_id: uuid.UUID, *, offset: int, limit: int) -> tuple[list[Invitation], int]:
        """The workspace's open invitations (pending or expired), newest first."""
        where = (Invitation.workspace_id == workspace_id, *_OPEN)
        total = await self.session.scalar(select(func.count()).select_from(Invitation).where(*where))
        rows = await self.session.scalars(
            select(Invitation)
            .where(*where)
            .order_by(Invitation.created_at.desc(), Invitation.id)
            .offset(offset)
            .limit(limit)
        )
        return list(rows.all()), int(total or 0)

    async def count_pending(self, workspace_id: uuid.UUID, now: datetime) -> int:
        total = await self.session.scalar(
            select(func.count())
            .select_from(Invitation)
            .where(Invitation.workspace_id == workspace_id, *_OPEN, Invitation.expires_at > now)
        )
        return int(total or 0)

    async def revoke_open_for(self, workspace_id: uuid.UUID, email: str, at: datetime) -> None:
        """Revoke the address's open invitation to the workspace, if any (a new one replaces it)."""
        await self.session.execute(
            update(Invitation)
            .where(Invitation.workspace_id == workspace_id, Invitation.email == email, *_OPEN)
            .values(revoked_at=at)
        )

    async def lock_open(self, workspace_id: uuid.UUID, invitation_id: uuid.UUID) -> Invitation | None:
        result = await self.session.execute(
            select(Invitation)
            .where(Invitation.workspace_id == workspace_id, Invitation.id == invitation_id, *_OPEN)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def lock_by_hash(self, token_hash: bytes) -> Invitation | None:
        """The invitation whose current token this is, locked: one acceptance at a time."""
        result = await self.session.execute(
            select(Invitation)
            .where(Invitation.token_hash == token_hash)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def lock(self, invitation_id: uuid.UUID) -> Invitation | None:
        result = await self.session.execute(
            select(Invitation)
            .where(Invitation.id == invitation_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def member_with_email(self, workspace_id: uuid.UUID, email: str) -> bool:
        """Whether an account with this address is already a member of the workspace."""
        found = await self.session.scalar(
            select(Membership.user_id)
            .join(User, User.id == Membership.user_id)
            .where(Membership.workspace_id == workspace_id, User.email == email)
            .limit(1)
        )
        return found is not None
