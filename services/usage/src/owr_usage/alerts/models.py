"""Tables `usage.alert_events` (the outbox and the history), `usage.alert_deliveries`, `usage.alert_delivery_attempts`,
`usage.alert_rules` and `usage.alert_conditions`.

An event is written in the transaction of the state change that raised it, with one delivery row per channel
that takes it; the worker claims due deliveries (`lease_until`), sends them, and reports each attempt.
`dedup_key` makes "one event per (rule, scope, period, threshold)" a unique constraint, not a hope.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from owr_usage.base import UsageBase, utcnow


class AlertEvent(UsageBase):
    """One event: its id is the webhook's `webhook-id`, the same on every attempt and every channel."""

    __tablename__ = "alert_events"
    __table_args__ = (
        UniqueConstraint("workspace_id", "dedup_key"),
        Index("ix_alert_events_workspace_at", "workspace_id", "occurred_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    type: Mapped[str] = mapped_column(String(40), nullable=False)
    # None for events that may repeat (`test`, a manual redelivery's source); else the rule's identity.
    dedup_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )


class AlertDelivery(UsageBase):
    """One event to one channel: `pending` (due at `next_attempt_at`), `delivered`, `failed` (retries spent or the
    channel disabled) or `cancelled` (its channel was deleted before it went)."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "channel_id"),
        Index(
            "ix_alert_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_alert_deliveries_channel", "channel_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alert_events.id", ondelete="CASCADE"), nullable=False)
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alert_channels.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # A claim holds the delivery until then; a worker killed mid-send leaves it to be claimed again.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )


class AlertDeliveryAttempt(UsageBase):
    """One attempt of a delivery, as the delivery log shows it."""

    __tablename__ = "alert_delivery_attempts"
    __table_args__ = (Index("ix_alert_delivery_attempts_channel_at", "channel_id", "at", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("alert_deliveries.id", ondelete="CASCADE"), nullable=False, index=True
    )
    channel_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AlertRule(UsageBase):
    """A workspace's switch and parameters for one built-in rule; no row means the rule's defaults."""

    __tablename__ = "alert_rules"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    rule: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )


class AlertCondition(UsageBase):
    """A condition that holds now for one subject (a key failing to sync, a budget exceeded): the row exists while
    it holds. `fired_at` says its event went out, so its recovery is reported once, and only after an event."""

    __tablename__ = "alert_conditions"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    rule: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject: Mapped[str] = mapped_column(String(120), primary_key=True)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
