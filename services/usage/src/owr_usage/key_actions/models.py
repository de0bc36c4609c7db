"""Tables `usage.key_actions` (one write to OpenRouter and its outcome) and `usage.key_kill_switches`."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from owr_usage.base import UsageBase, utcnow

KINDS = ("disable", "enable", "set_limit")
STATUSES = ("pending", "running", "done", "failed", "skipped")
# Never claimed again. `skipped`: a rule's disable recorded (never sent) while the key was disabled or being
# disabled, so that its cause (`dedup_key`) never fires again; or a user's enable still pending when a user asked
# to disable the key (superseded).
FINISHED = ("done", "failed", "skipped")
SOURCES = ("user", "budget", "anomaly")
ERROR_MAX = 500
REASON_MAX = 300


class KeyAction(UsageBase):
    """A `PATCH /keys/{hash}` to make at OpenRouter: who asked and why (the audit trail), and how it went.

    `dedup_key` makes an automatic action once per cause (`budget:{id}:{period_start}`), sent or `skipped`; users'
    have none.
    """

    __tablename__ = "key_actions"
    __table_args__ = (
        CheckConstraint(f"kind IN {KINDS!r}", name="kind"),
        CheckConstraint(f"status IN {STATUSES!r}", name="status"),
        UniqueConstraint("workspace_id", "dedup_key", name="uq_key_actions_workspace_dedup"),
        Index("ix_key_actions_workspace_key", "workspace_id", "key_id", "created_at"),
        Index("ix_key_actions_open", "created_at", postgresql_where=text("status IN ('pending', 'running')")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    limit_usd: Mapped[Decimal | None] = mapped_column(Numeric(), nullable=True)
    limit_reset: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # A set_limit's `include_byok_in_limit`; None: not sent (OpenRouter keeps what it has).
    include_byok_in_limit: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    requested_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    reason: Mapped[str] = mapped_column(String(REASON_MAX), nullable=False)
    budget_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
    dedup_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending", server_default="pending")
    error: Mapped[str | None] = mapped_column(String(ERROR_MAX), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # A worker's claim: no other claim takes the action before this time (a worker that died frees it then).
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class KeyKillSwitch(UsageBase):
    """A key's anomaly threshold: an anomaly of this score or more disables the key at OpenRouter. No row: off."""

    __tablename__ = "key_kill_switches"
    __table_args__ = (Index("ix_key_kill_switches_workspace", "workspace_id"),)

    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    anomaly_score: Mapped[Decimal | None] = mapped_column(Numeric(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
