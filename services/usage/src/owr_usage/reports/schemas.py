"""Report views. Money is exact: a JSON number with every digit stored, never rounded.

A figure without a per-model breakdown (a key not linked to an account, or a day whose activity was not
fetched) is reported as such: its model and provider are null, its request and token counts are null,
and every group says how much of its cost has no breakdown.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, WithJsonSchema

# Sums of money: exact, unbounded (a sum of bounded inputs may exceed any one input's bound).
Amount = Annotated[Decimal, Field(allow_inf_nan=False), WithJsonSchema({"type": "number"})]
Ratio = Annotated[Decimal, Field(allow_inf_nan=False), WithJsonSchema({"type": "number"})]
Count = Annotated[int | None, Field(description="null where no row of the group has a per-model breakdown")]


class Figures(BaseModel):
    cost: Amount
    byok_cost: Amount
    requests: Count
    prompt_tokens: Count
    completion_tokens: Count
    reasoning_tokens: Count
    provisional: bool = Field(description="whether any figure in the group is provisional (today, or not yet final)")


class SplitFigures(Figures):
    cost_without_breakdown: Amount = Field(description="the part of `cost` with no per-model breakdown")


class Totals(SplitFigures):
    rows: int = Field(description="daily rows behind these figures")


class KeyFigures(SplitFigures):
    key_id: uuid.UUID
    label: str | None
    linked: bool = Field(description="whether the key is linked to an account row (per-model figures exist)")


class ModelFigures(Figures):
    model: str | None = Field(description="null: cost with no per-model breakdown")


DaySource = Literal["activity", "snapshots", "mixed"]


class DayFigures(SplitFigures):
    date: date
    source: DaySource = Field(
        description="which figure the day's cost comes from: `activity` (every row from activity: linked keys, "
        "fetched day), `snapshots` (every row from the `/key` snapshots: today, unlinked keys, days not fetched), "
        "or `mixed` (some keys' rows from each)"
    )


class DayModelFigures(BaseModel):
    """One day's cost for one model, across the workspace's keys (what a stacked daily chart draws)."""

    date: date
    model: str | None = Field(description="null: cost with no per-model breakdown")
    cost: Amount
    byok_cost: Amount
    provisional: bool


class UsageSummary(BaseModel):
    first_day: date = Field(description="`from`, as applied")
    last_day: date = Field(description="`to`, as applied")
    totals: Totals
    by_key: list[KeyFigures] = Field(description="keys with figures in the range, by cost (highest first)")
    by_model: list[ModelFigures] = Field(description="models, by cost (highest first)")
    by_day: list[DayFigures] = Field(description="days with figures, oldest first")
    by_day_model: list[DayModelFigures] = Field(
        description="each day's cost per model, oldest day first and within a day by cost (highest first)"
    )


class DailyRow(BaseModel):
    """One key's figures for one UTC day, model and provider (activity), or for the day as a whole."""

    date: date
    key_id: uuid.UUID
    model: str | None = Field(description="null: the day's total without a per-model breakdown")
    provider: str | None
    cost: Amount
    byok_cost: Amount
    requests: int | None
    prompt_tokens: int | None
    completion_tokens: int | None
    reasoning_tokens: int | None
    provisional: bool
    source: Literal["activity", "snapshots"]


class DailyPage(BaseModel):
    items: list[DailyRow]
    total: int
    page: int
    per_page: int
    next_cursor: str | None = Field(
        description="opaque: pass it as `cursor`, with the same query, for the next page (null after the last); "
        "a cursor's page costs what the first page does, however deep"
    )


class BalanceView(BaseModel):
    total_credits: Amount | None
    total_usage: Amount | None
    balance: Amount | None = Field(description="`total_credits - total_usage`; null when not known")
    known: bool = Field(description="false when OpenRouter answered all zeros (unknown, not $0)")
    as_of: datetime


class AccountKeyView(BaseModel):
    """One key of the account's latest `/keys` list."""

    hash: str
    name: str | None
    label: str | None
    disabled: bool
    limit: Amount | None = Field(description="USD; null means unlimited")
    limit_remaining: Amount | None
    limit_reset: str | None
    expires_at: datetime | None
    usage: Amount = Field(description="lifetime spend")
    byok_usage: Amount
    share: Ratio | None = Field(description="this key's part of the listed keys' lifetime spend; null when it is 0")
    key_id: uuid.UUID | None = Field(description="the vault key linked to this row, if any")


class AccountSummary(BaseModel):
    management_key_id: uuid.UUID
    label: str | None
    balance: BalanceView | None
    keys_as_of: datetime | None = Field(description="when the key list was observed")
    keys: list[AccountKeyView]


class AccountPage(BaseModel):
    items: list[AccountSummary]
    total: int
    page: int
    per_page: int
