"""Audit views."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel


class AuditEventView(BaseModel):
    """One thing that happened to a key."""

    id: int
    key_id: uuid.UUID
    action: Literal[
        "created",
        "renamed",
        "activated",
        "deactivated",
        "deleted",
        "sync_requested",
        "revealed",
        "status_reported",
        "upstream_disabled",
        "upstream_enabled",
        "upstream_limit_set",
    ]
    actor_type: Literal["user", "service"]
    actor_id: str
    request_id: str | None
    details: dict[str, Any]
    created_at: datetime
