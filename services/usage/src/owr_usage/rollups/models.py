"""Tables `usage.key_links`, `usage.daily_usage`, `usage.daily_key_totals` and `usage.daily_model_totals`.

`daily_usage` is the table that grows (about ten million rows): one row per (workspace, day, key, model,
provider). A linked key's fetched day has activity's rows summed per model and provider; any other day of
a key has one row without a breakdown (model and provider `''`, counts NULL) from `key_days`. The two
rollups are kept exact by every write that replaces a (key, day)'s rows, never recomputed wholesale.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Index, Integer, Numeric, String, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from owr_usage.base import RollupFigures, UsageBase, utcnow

NO_BREAKDOWN = ""
"""`model` and `provider` of a row without a per-model breakdown (the API shows them as null)."""


class KeyLink(UsageBase):
    """Per key with a snapshot: its latest label, and the account row (management key, hash) it is linked to.

    The link follows the label rule (exactly one hash behind the label in the workspace's key lists, read
    through the freshest list); management keys are never linked. Rewritten only when an input changes.
    """

    __tablename__ = "key_links"
    __table_args__ = (
        Index("ix_key_links_workspace_label", "workspace_id", "label"),
        Index("ix_key_links_account_hash", "management_key_id", "api_key_hash"),
    )

    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    label: Mapped[str | None] = mapped_column(String(128), nullable=True)
    is_management_key: Mapped[bool] = mapped_column(Boolean, nullable=False)
    management_key_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    api_key_hash: Mapped[str | None] = mapped_column(String(256), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow, server_default=func.now()
    )


class DailyUsage(UsageBase):
    """One daily row. The primary key is the workspace's date-ordered access path (pages, export, a
    (key, day)'s replacement); (key_id, day) serves one key's rows."""

    __tablename__ = "daily_usage"
    __table_args__ = (Index("ix_daily_usage_key_day", "key_id", "day"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    model: Mapped[str] = mapped_column(String(300), primary_key=True)
    provider: Mapped[str] = mapped_column(String(300), primary_key=True)
    cost: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    byok_cost: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    requests: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    prompt_tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reasoning_tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    provisional: Mapped[bool] = mapped_column(Boolean, nullable=False)


class DailyKeyTotal(RollupFigures, UsageBase):
    """A key's day: the sum of its daily rows (rewritten from them whenever they are replaced)."""

    __tablename__ = "daily_key_totals"

    # (workspace, day, key): the summary reads days at the ends of a range for every key at once.
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    provisional: Mapped[bool] = mapped_column(Boolean, nullable=False)
    breakdown: Mapped[bool] = mapped_column(Boolean, nullable=False)


class DailyModelTotal(RollupFigures, UsageBase):
    """A workspace's day for one (model, provider): moved by the difference of old and new rows."""

    __tablename__ = "daily_model_totals"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    model: Mapped[str] = mapped_column(String(300), primary_key=True)
    provider: Mapped[str] = mapped_column(String(300), primary_key=True)
    provisional_rows: Mapped[int] = mapped_column(Integer, nullable=False)


class MonthlyKeyTotal(RollupFigures, UsageBase):
    """A key's calendar month (`month` is its first day): the sums of its daily rows, moved by differences
    like the model rollup. A year's summary reads 12 of these per key instead of 365 key days (the partial
    months at the range's ends come from `daily_key_totals`)."""

    __tablename__ = "monthly_key_totals"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    cost_without_breakdown: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    breakdown_rows: Mapped[int] = mapped_column(Integer, nullable=False)
    provisional_rows: Mapped[int] = mapped_column(Integer, nullable=False)
