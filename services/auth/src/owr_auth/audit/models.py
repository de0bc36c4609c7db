"""The `auth.audit_events` table: every membership change of a workspace."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String, Uuid, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from owr_auth.base import AuthBase, new_id, utcnow


class AuditEvent(AuthBase):
    """One change: who (`actor_id`) did `action` to whom (a user, or an invited address), and the roles.

    People are referred to by id (null once their account is gone); only an invitation keeps the
    address it was sent to, since the invitee may have no account.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_workspace_at", "workspace_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("auth.workspaces.id", ondelete="CASCADE"), nullable=False
    )
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("auth.users.id", ondelete="SET NULL"))
    subject_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("auth.users.id", ondelete="SET NULL"))
    subject_email: Mapped[str | None] = mapped_column(String(254))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default=text("'{}'"))
