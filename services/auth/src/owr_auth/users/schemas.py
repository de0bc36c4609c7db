"""User bodies and views."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from owr_auth.workspaces.schemas import WorkspaceView
from owr_shared.schemas import RequestSchema, StorableText


class RegisterRequest(RequestSchema):
    email: StorableText = Field(max_length=254)
    # The policy allows 128 characters; longer values pass the schema so the 422 can say why.
    password: StorableText = Field(max_length=1024, repr=False)


class ChangePasswordRequest(RequestSchema):
    current_password: StorableText = Field(max_length=1024, repr=False)
    new_password: StorableText = Field(max_length=1024, repr=False)


class UserView(BaseModel):
    """The user with the workspace the token acts in and the user's role there."""

    id: uuid.UUID
    email: str
    # Whether the address was confirmed through an emailed link; unverified accounts cannot join a team.
    email_verified: bool
    created_at: datetime
    workspace: WorkspaceView
