"""Audit views."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from owr_keys.audit.models import Action, ActorType


class AuditEventView(BaseModel):
    """One thing that happened to a key."""

    id: int
    key_id: uuid.UUID
    action: Action
    actor_type: ActorType
    actor_id: str
    request_id: str | None
    details: dict[str, Any]
    created_at: datetime
