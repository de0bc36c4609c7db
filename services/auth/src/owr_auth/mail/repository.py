"""SQL for outbound mail."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.mail.models import PENDING, OutboundMail


class MailRepository:
    """Outbound mails; callers own the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self, *, kind: str, recipient: str, user_id: uuid.UUID | None, subject_id: uuid.UUID | None
    ) -> OutboundMail:
        mail = OutboundMail(id=uuid.uuid4(), kind=kind, recipient=recipient, user_id=user_id, subject_id=subject_id)
        self.session.add(mail)
        await self.session.flush()
        return mail

    async def count_since(self, *, user_id: uuid.UUID, kind: str, since: datetime) -> int:
        """How many mails of `kind` the account was sent or queued since `since` (whatever their outcome)."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(OutboundMail)
            .where(OutboundMail.user_id == user_id, OutboundMail.kind == kind, OutboundMail.created_at >= since)
        )
        return int(count or 0)

    async def lock(self, mail_id: uuid.UUID) -> OutboundMail | None:
        """The mail's row, locked until the transaction ends: one render or report of a mail at a time."""
        result = await self.session.execute(
            select(OutboundMail)
            .where(OutboundMail.id == mail_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def pending_ids(self, *, queued_before: datetime, queued_after: datetime, limit: int) -> list[uuid.UUID]:
        """Pending mails queued inside the window, oldest first."""
        result = await self.session.execute(
            select(OutboundMail.id)
            .where(
                OutboundMail.status == PENDING,
                OutboundMail.created_at < queued_before,
                OutboundMail.created_at > queued_after,
            )
            .order_by(OutboundMail.created_at)
            .limit(limit)
        )
        return list(result.scalars())
