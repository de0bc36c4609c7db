"""Workspace bodies and views."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from owr_shared.auth import Role
from owr_shared.schemas import RequestSchema


def _printable(value: str) -> str:
    # Control characters (NUL among them) and lone surrogates cannot be stored or shown: a 422.
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValueError("must not contain control characters")
    return value


# Surrounding whitespace is dropped; what is left is 1-100 printable characters.
WorkspaceName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(_printable)
]


class WorkspaceView(BaseModel):
    """A workspace as seen by one of its members."""

    id: uuid.UUID
    name: str
    role: Role


class WorkspaceItem(WorkspaceView):
    """A workspace of the caller's list: with whether it is their personal one, and when it was made."""

    personal: bool
    created_at: datetime


class CreateWorkspaceRequest(RequestSchema):
    name: WorkspaceName


class RenameWorkspaceRequest(RequestSchema):
    name: WorkspaceName


class TransferRequest(RequestSchema):
    user_id: uuid.UUID = Field(description="the member who becomes the owner; the owner becomes an admin")


class SwitchRequest(RequestSchema):
    workspace_id: uuid.UUID
