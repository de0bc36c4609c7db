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


class ModelSpend(BaseModel):
    """One model's figures on one day, from OpenRouter's activity (every provider and endpoint summed)."""

    model: str
    cost: Money
    byok_cost: Money
    requests: int
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int


class DailySpend(BaseModel):
    """A UTC day's spend: final once the next day's first snapshot is known, else provisional (a lower bound).

    For a linked key, a completed day without a final snapshot figure takes OpenRouter's activity total
    (exact, final; `source: activity`), and `models` breaks the day down by model.
    """

    date: date
    spend: Money
    byok_spend: Money
    provisional: bool
    source: Literal["snapshots", "activity"]
    models: list[ModelSpend] | None = Field(
        description="per-model figures from activity; null when the key is not linked or the day not fetched"
    )


class AccountView(BaseModel):
    """A management key's account balance (`total_credits - total_usage`) as of its last `/credits` answer."""

    total_credits: Money | None
    total_usage: Money | None
    balance: Money | None = Field(description="null when OpenRouter answered all zeros (unknown, not $0)")
    as_of: datetime


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
    account: AccountView | None = Field(description="for a management key: its account's balance")
