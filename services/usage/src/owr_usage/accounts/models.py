"""Tables `usage.accounts`, `account_balances`, `account_keys`, `activity` and `activity_days`.

An account is named by the keys service's id of its management key (`management_key_id`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, DateTime, Index, Integer, Numeric, String, Text, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from owr_usage.base import LifetimeUsage, TokenCounts, UsageBase, utcnow


class Account(UsageBase):
    """Per management key: its workspace and when its key list was last replaced.

    Its row is the account's lock: a key-list replacement upserts it first, and an answer older than
    the one applied last is ignored (jobs finish out of order).
    """

    __tablename__ = "accounts"
    __table_args__ = (Index("ix_accounts_workspace_id", "workspace_id"),)

    management_key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    keys_observed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )


class AccountBalance(UsageBase):
    """One `GET /credits` answer; `known` is false for the all-zero answer some accounts get."""

    __tablename__ = "account_balances"
    __table_args__ = (Index("ix_account_balances_workspace_id", "workspace_id"),)

    management_key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    total_credits: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    total_usage: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    known: Mapped[bool] = mapped_column(Boolean, nullable=False)


class AccountKey(LifetimeUsage, UsageBase):
    """One row of the account's `GET /keys`, as of the last complete list."""

    __tablename__ = "account_keys"
    # Linking an inference key to its row goes by (workspace, masked label).
    __table_args__ = (Index("ix_account_keys_workspace_label", "workspace_id", "label"),)

    management_key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    hash: Mapped[str] = mapped_column(String(256), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    name: Mapped[str | None] = mapped_column(Text, nullable=True)
    label: Mapped[str | None] = mapped_column(String(128), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False)
    limit: Mapped[Decimal | None] = mapped_column("limit", Numeric(), nullable=True)
    limit_remaining: Mapped[Decimal | None] = mapped_column(Numeric(), nullable=True)
    limit_reset: Mapped[str | None] = mapped_column(String(64), nullable=True)
    include_byok_in_limit: Mapped[bool] = mapped_column(Boolean, nullable=False)
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ActivityRow(TokenCounts, UsageBase):
    """One `GET /activity` row: a key's spend on one UTC day for one model on one endpoint.

    The primary key (management key, key hash, date, row_no) is also the access path of a replacement
    and of a per-key date range; `row_no` numbers a day's rows, which need not be unique by model.
    The (workspace, date) index serves workspace-wide date ranges.
    """

    __tablename__ = "activity"
    __table_args__ = (Index("ix_activity_workspace_date", "workspace_id", "date"),)

    management_key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    api_key_hash: Mapped[str] = mapped_column(String(256), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    row_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    model: Mapped[str] = mapped_column(String(300), nullable=False)
    model_permaslug: Mapped[str | None] = mapped_column(String(300), nullable=True)
    endpoint_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    provider_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    usage: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    byok_usage_inference: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)


class ActivityDay(UsageBase):
    """A (key hash, date) whose activity was fetched: when, and how many rows it had.

    It tells a day with no spend (fetched, zero rows) from a day never fetched, and its row is the lock
    and the staleness guard of that day's replacement.
    """

    __tablename__ = "activity_days"
    __table_args__ = (Index("ix_activity_days_workspace_date", "workspace_id", "date"),)

    management_key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    api_key_hash: Mapped[str] = mapped_column(String(256), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    rows: Mapped[int] = mapped_column(Integer, nullable=False)
