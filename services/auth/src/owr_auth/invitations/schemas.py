"""Invitation bodies and views. The token appears in no response: only in the email."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from owr_auth.members.schemas import AssignableRole
from owr_shared.auth import Role
from owr_shared.schemas import RequestSchema, StorableText


class CreateInvitationRequest(RequestSchema):
    email: StorableText = Field(max_length=254)
    role: AssignableRole = Field(default="member", description="admin, member or viewer (default: member)")


class InvitationView(BaseModel):
    """An open invitation: pending until accepted or revoked, or expired."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    email: str
    role: Role
    invited_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime
    status: Literal["pending", "expired"]


class AcceptInvitationRequest(RequestSchema):
    token: StorableText = Field(max_length=256, repr=False)
