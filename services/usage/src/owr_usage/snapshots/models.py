"""Tables `usage.snapshots`, `usage.key_states` and `usage.key_days`.

Key ids are the keys service's ids; there is no foreign key (another service owns them), and every row
carries its `workspace_id` so reads and erasure never need another service.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, DateTime, Index, Numeric, String, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from owr_usage.base import LifetimeUsage, UsageBase, utcnow


class Snapshot(LifetimeUsage, UsageBase):
    """One `GET /key` answer, at the time OpenRouter gave it. Money is unconstrained NUMERIC (exact).

    The primary key (key_id, observed_at) makes a redelivered snapshot a no-op, and its index serves
    "latest of a key" and "first/last of a key's day" by range scans.
    """

    __tablename__ = "snapshots"

    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    label: Mapped[str | None] = mapped_column(String(128), nullable=True)
    is_management_key: Mapped[bool] = mapped_column(Boolean, nullable=False)
    limit: Mapped[Decimal | None] = mapped_column("limit", Numeric(), nullable=True)
    limit_reset: Mapped[str | None] = mapped_column(String(64), nullable=True)
    limit_remaining: Mapped[Decimal | None] = mapped_column(Numeric(), nullable=True)
    include_byok_in_limit: Mapped[bool] = mapped_column(Boolean, nullable=False)
    is_free_tier: Mapped[bool] = mapped_column(Boolean, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )


class KeyState(UsageBase):
    """Per key: its workspace (fixed at the first snapshot) and a pointer to its latest snapshot.

    Its row is also the key's lock: every ingest upserts it first, so deliveries for one key serialise.
    """

    __tablename__ = "key_states"
    __table_args__ = (Index("ix_key_states_workspace_id", "workspace_id"),)

    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    latest_observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )


class KeyDay(UsageBase):
    """A key's spend on one UTC day: final (from two day starts) or provisional (the day's `usage_daily`).

    `start_usage` / `start_byok_usage` are the lifetime figures at the day's start (`usage - usage_daily`
    of the day's first snapshot); `observed_at` is the last snapshot the figures rest on.
    """

    __tablename__ = "key_days"

    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    start_usage: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    start_byok_usage: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    spend: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    byok_spend: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    final: Mapped[bool] = mapped_column(Boolean, nullable=False)
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
