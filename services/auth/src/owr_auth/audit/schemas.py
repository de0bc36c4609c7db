"""The audit's view."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel


class AuditAction(StrEnum):
    workspace_created = "workspace.created"
    workspace_renamed = "workspace.renamed"
    member_invited = "member.invited"
    invitation_revoked = "invitation.revoked"
    member_joined = "member.joined"
    member_role_changed = "member.role_changed"
    member_removed = "member.removed"
    member_left = "member.left"
    ownership_transferred = "ownership.transferred"


class AuditEventView(BaseModel):
    """Who did what to whom, and when; an actor or subject whose account is gone shows null."""

    id: uuid.UUID
    at: datetime
    action: AuditAction
    actor_id: uuid.UUID | None
    actor_email: str | None
    subject_user_id: uuid.UUID | None
    subject_email: str | None
    details: dict[str, Any]
