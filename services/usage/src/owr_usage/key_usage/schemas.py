"""The key usage view. Money is exact (a JSON number with every digit OpenRouter reported)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from owr_shared.schemas import Money


class Window(BaseModel):
    """One of OpenRouter's UTC windows as of the latest snapshot."""

    start: date = Field(description="first day of the window (weeks start on Monday)")
    usage: Money
    byok_usage: Money
    current: bool = Field(description="whether the window is still the current one at read time")


class Windows(BaseModel):
    day: Window
    week: Window
    month: Window


class DailySpend(BaseModel):
    """A UTC day's spend: final once the next day's first snapshot is known, else provisional (a lower bound)."""

    date: date
    spend: Money
    byok_spend: Money
    provisional: bool


class KeyUsageView(BaseModel):
    key_id: uuid.UUID
    label: str | None
    kind: Literal["inference", "management"]
    as_of: datetime = Field(description="when OpenRouter gave the latest snapshot")
    limit: Money | None = Field(description="USD; null means unlimited")
    limit_reset: str | None
    limit_remaining: Money | None
    include_byok_in_limit: bool
    expires_at: datetime | None
    is_free_tier: bool
    usage: Money = Field(description="lifetime spend")
    byok_usage: Money = Field(description="lifetime BYOK spend")
    windows: Windows
    daily: list[DailySpend] = Field(description="days with a known figure in [from, to], oldest first")
    linked: bool = Field(description="whether an account's key list holds exactly one key with this label")
    account_key_id: str | None = Field(description="the linked key's hash in its account's key list")
