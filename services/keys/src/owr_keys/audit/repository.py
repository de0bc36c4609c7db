"""SQL for audit events; callers own the transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from owr_keys.audit.models import AuditEvent

# One statement for any number of events (arrays through unnest): the internal batch routes record up to
# 500 at once, and neither SQLAlchemy nor PostgreSQL has to prepare a new statement per batch size.
_INSERT_EVENTS = text(
    """
INSERT INTO keys.audit_events (key_id, workspace_id, actor_type, actor_id, action, request_id, details, created_at)
SELECT key_id, workspace_id, actor_type, actor_id, action, request_id, CAST(details AS jsonb), now()
FROM unnest(
    CAST(:key_ids AS uuid[]), CAST(:workspace_ids AS uuid[]), CAST(:actor_types AS text[]),
    CAST(:actor_ids AS text[]), CAST(:actions AS text[]), CAST(:request_ids AS text[]), CAST(:details AS text[])
) AS e(key_id, workspace_id, actor_type, actor_id, action, request_id, details)
"""
)


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, event: AuditEvent) -> None:
        self.session.add(event)
        await self.session.flush()

    async def insert_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert events given as plain rows (`details` already JSON text), without ORM objects."""
        await self.session.execute(
            _INSERT_EVENTS,
            {
                "key_ids": [r["key_id"] for r in rows],
                "workspace_ids": [r["workspace_id"] for r in rows],
                "actor_types": [r["actor_type"] for r in rows],
                "actor_ids": [r["actor_id"] for r in rows],
                "actions": [r["action"] for r in rows],
                "request_ids": [r["request_id"] for r in rows],
                "details": [r["details"] for r in rows],
            },
        )

    async def has_action(self, key_id: uuid.UUID, action: str, action_id: str) -> bool:
        """Whether the key's audit holds `action` for the upstream action `action_id` (a repeated report)."""
        statement = select(AuditEvent.id).where(
            AuditEvent.key_id == key_id,
            AuditEvent.action == action,
            AuditEvent.details["action_id"].astext == action_id,
        )
        return (await self.session.scalars(statement.limit(1))).first() is not None

    async def list_for_key(
        self, workspace_id: uuid.UUID, key_id: uuid.UUID, *, offset: int, limit: int
    ) -> tuple[Sequence[AuditEvent], int]:
        """Newest first; filtered by workspace as well as key, so no id ever crosses workspaces."""
        where = (AuditEvent.workspace_id == workspace_id, AuditEvent.key_id == key_id)
        total = await self.session.scalar(select(func.count()).select_from(AuditEvent).where(*where))
        rows = await self.session.scalars(
            select(AuditEvent).where(*where).order_by(AuditEvent.id.desc()).offset(offset).limit(limit)
        )
        return rows.all(), int(total or 0)

    async def delete_workspace(self, workspace_id: uuid.UUID) -> int:
        result = await self.session.execute(
            delete(AuditEvent).where(AuditEvent.workspace_id == workspace_id).returning(AuditEvent.id)
        )
        return len(result.all())
