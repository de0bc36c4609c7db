"""Workspace views."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from owr_auth.workspaces.models import Role


class WorkspaceView(BaseModel):
    """A workspace as seen by one of its members."""

    id: uuid.UUID
    name: str
    role: Role
