"""Table `usage.budgets`: an amount of USD per UTC period for a workspace, one key or one account."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, DateTime, Index, Integer, Numeric, String, Uuid, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from owr_usage.base import UsageBase, utcnow

SCOPE_TYPES = ("workspace", "key", "account")
PERIODS = ("daily", "weekly", "monthly")


class Budget(UsageBase):
    """`scope_id` is a key id for `key`, the management key's id for `account`, and the workspace's own id for
    `workspace` (so one index finds every budget a key's figures may move)."""

    __tablename__ = "budgets"
    __table_args__ = (
        Index("ix_budgets_workspace_created", "workspace_id", "created_at", "id"),
        Index("ix_budgets_scope", "scope_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    scope_type: Mapped[str] = mapped_column(String(16), nullable=False)
    scope_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    amount_usd: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    period: Mapped[str] = mapped_column(String(8), nullable=False)
    thresholds: Mapped[list[int]] = mapped_column(ARRAY(Integer), nullable=False)
    include_byok: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")
    channel_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), nullable=False, server_default="{}")
    # The kill switch (key budgets only): exceeding the budget disables the key at OpenRouter.
    disable_key_on_exceed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow, server_default=func.now()
    )
