"""The usage declarative base (schema `usage`), `utcnow` and the column groups several usage tables share.

It imports no domain: `owr_usage.tables` registers the tables.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, Integer, Numeric
from sqlalchemy.orm import Mapped, mapped_column

from owr_shared.db import Base, schema_metadata, utcnow

__all__ = ["SCHEMA", "LifetimeUsage", "RollupFigures", "TokenCounts", "UsageBase", "utcnow"]

SCHEMA = "usage"


class UsageBase(Base):
    """Base of the usage service's models: schema `usage`, its own metadata."""

    __abstract__ = True
    metadata = schema_metadata(SCHEMA)


class TokenCounts:
    """Requests and tokens, summed where the table is a sum (never NULL: no rows count 0)."""

    requests: Mapped[int] = mapped_column(BigInteger, nullable=False)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)


class RollupFigures(TokenCounts):
    """What every rollup of daily rows sums: cost, BYOK cost, counts, and how many daily rows it holds."""

    cost: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    byok_cost: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    rows: Mapped[int] = mapped_column(Integer, nullable=False)


class LifetimeUsage:
    """A key's spend as OpenRouter reports it (`GET /key`, `GET /keys`): lifetime, today, this week and
    this month, and the BYOK part of each. Exact NUMERIC."""

    usage: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    usage_daily: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    usage_weekly: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    usage_monthly: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    byok_usage: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    byok_usage_daily: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    byok_usage_weekly: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
    byok_usage_monthly: Mapped[Decimal] = mapped_column(Numeric(), nullable=False)
