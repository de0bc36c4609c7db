"""SQL for the membership audit; callers own the transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from owr_auth.audit.models import AuditEvent
from owr_auth.users.models import User


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, event: AuditEvent) -> None:
        self.session.add(event)
        await self.session.flush()

    async def page(
        self, workspace_id: uuid.UUID, *, offset: int, limit: int
    ) -> tuple[list[tuple[AuditEvent, str | None, str | None]], int]:
        """The workspace's events, newest first, with the actor's and the subject's current email."""
        actor, subject = aliased(User), aliased(User)
        total = await self.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.workspace_id == workspace_id)
        )
        result = await self.session.execute(
            select(AuditEvent, actor.email, subject.email)
            .outerjoin(actor, actor.id == AuditEvent.actor_id)
            .outerjoin(subject, subject.id == AuditEvent.subject_user_id)
            .where(AuditEvent.workspace_id == workspace_id)
            .order_by(AuditEvent.at.desc(), AuditEvent.id)
            .offset(offset)
            .limit(limit)
        )
        rows: list[Any] = list(result.all())
        return [(row[0], row[1], row[2]) for row in rows], int(total or 0)
