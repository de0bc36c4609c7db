"""The `keys.audit_events` table: one row per change or reveal of a key.

`key_id` has no foreign key on purpose: a deleted key's history stays until its workspace goes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Identity, Index, String, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from owr_keys.base import KeysBase, utcnow

# The one list of what can happen to a key (the table's CHECK, the service's argument, the API's view).
ActorType = Literal["user", "service"]
Action = Literal[
    "created",
    "renamed",
    "activated",
    "deactivated",
    "deleted",
    "sync_requested",
    "revealed",
    "status_reported",
    # Writes made at OpenRouter by the worker (issue 17), reported by it.
    "upstream_disabled",
    "upstream_enabled",
    "upstream_limit_set",
]
ACTOR_TYPES = get_args(ActorType)
ACTIONS = get_args(Action)


class AuditEvent(KeysBase):
    """Who (`actor_type`, `actor_id`) did what (`action`) to which key, when, under which request."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint(f"actor_type IN {ACTOR_TYPES!r}", name="actor_type"),
        CheckConstraint(f"action IN {ACTIONS!r}", name="action"),
        Index("ix_audit_events_key_id_id", "key_id", "id"),
        Index("ix_audit_events_workspace_id", "workspace_id"),
    )

    # A sequence, not a timestamp, orders events: several can share a transaction's instant.
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    actor_type: Mapped[str] = mapped_column(String(16), nullable=False)
    actor_id: Mapped[str] = mapped_column(String(128), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
