"""Member bodies and views."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from owr_shared.auth import Role
from owr_shared.schemas import RequestSchema

# A role a member can be given; `owner` only by a transfer.
AssignableRole = Literal["admin", "member", "viewer"]


class MemberView(BaseModel):
    user_id: uuid.UUID
    email: str
    role: Role
    joined_at: datetime


class ChangeRoleRequest(RequestSchema):
    role: AssignableRole
