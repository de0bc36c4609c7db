"""Recording and reading the membership audit. Every membership change records its event in the same
transaction as the change, so the audit never tells of a change that did not happen, or misses one."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.audit.models import AuditEvent
from owr_auth.audit.repository import AuditRepository
from owr_auth.audit.schemas import AuditAction, AuditEventView
from owr_auth.base import utcnow
from owr_shared.logging import get_logger

log = get_logger(__name__)


async def record(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    action: AuditAction,
    *,
    actor_id: uuid.UUID | None,
    subject_user_id: uuid.UUID | None = None,
    subject_email: str | None = None,
    **details: Any,
) -> None:
    await AuditRepository(session).add(
        AuditEvent(
            id=uuid.uuid4(),
            workspace_id=workspace_id,
            at=utcnow(),
            action=action.value,
            actor_id=actor_id,
            subject_user_id=subject_user_id,
            subject_email=subject_email,
            details=details,
        )
    )
    log.info(
        "membership_audited",
        action=action.value,
        workspace_id=str(workspace_id),
        actor_id=str(actor_id) if actor_id else None,
        subject_user_id=str(subject_user_id) if subject_user_id else None,
    )


async def page(
    session: AsyncSession, workspace_id: uuid.UUID, *, offset: int, limit: int
) -> tuple[list[AuditEventView], int]:
    rows, total = await AuditRepository(session).page(workspace_id, offset=offset, limit=limit)
    items = [
        AuditEventView(
            id=event.id,
            at=event.at,
            action=AuditAction(event.action),
            actor_id=event.actor_id,
            actor_email=actor_email,
            subject_user_id=event.subject_user_id,
            subject_email=event.subject_email or subject_email,
            details=event.details,
        )
        for event, actor_email, subject_email in rows
    ]
    return items, total
