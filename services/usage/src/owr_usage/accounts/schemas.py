"""Account bodies: `/credits`, `/keys` and `/activity` answers, parsed tolerantly."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from owr_usage.schemas import (
    ActivityDate,
    Count,
    KeyHash,
    KeyName,
    Label,
    LimitReset,
    ModelName,
    ObservedAt,
    ShortText,
    Timestamp,
    UsageMoney,
)

MAX_ACCOUNT_KEYS = 20_000
MAX_ACTIVITY_DATES = 400
MAX_ACTIVITY_ROWS = 50_000


class Tolerant(BaseModel):
    """OpenRouter adds fields over time: ignore the ones usage does not read."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        # A null where the field has a default means "not said" (OpenRouter's zeros and falses).
        if isinstance(data, dict):
            defaults = {name for name, f in cls.model_fields.items() if not f.is_required() and f.default is not None}
            data = {k: v for k, v in data.items() if not (v is None and k in defaults)}
        return data


class CreditsReport(Tolerant):
    """`GET /credits` of the account, when it was observed."""

    workspace_id: uuid.UUID
    observed_at: ObservedAt
    total_credits: UsageMoney
    total_usage: UsageMoney


class AccountKeyIn(Tolerant):
    """One row of `GET /keys`. Its `workspace_id` is OpenRouter's, not ours, and is ignored."""

    hash: KeyHash
    name: KeyName | None = None
    label: Label | None = None
    disabled: bool = False
    limit: UsageMoney | None = None
    limit_remaining: UsageMoney | None = None
    limit_reset: LimitReset | None = None
    include_byok_in_limit: bool = False
    usage: UsageMoney = Decimal(0)
    usage_daily: UsageMoney = Decimal(0)
    usage_weekly: UsageMoney = Decimal(0)
    usage_monthly: UsageMoney = Decimal(0)
    byok_usage: UsageMoney = Decimal(0)
    byok_usage_daily: UsageMoney = Decimal(0)
    byok_usage_weekly: UsageMoney = Decimal(0)
    byok_usage_monthly: UsageMoney = Decimal(0)
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    expires_at: Timestamp | None = None


class AccountKeysReport(Tolerant):
    """The complete `GET /keys` list (every page), replacing the previous one."""

    workspace_id: uuid.UUID
    observed_at: ObservedAt
    keys: list[AccountKeyIn] = Field(max_length=MAX_ACCOUNT_KEYS)


class ActivityIn(Tolerant):
    """One `GET /activity` row: one UTC day x model x endpoint."""

    date: ActivityDate
    model: ModelName
    model_permaslug: ShortText | None = None
    endpoint_id: ShortText | None = None
    provider_name: ShortText | None = None
    usage: UsageMoney = Decimal(0)
    byok_usage_inference: UsageMoney = Decimal(0)
    requests: Count = 0
    prompt_tokens: Count = 0
    completion_tokens: Count = 0
    reasoning_tokens: Count = 0


class ActivityReport(Tolerant):
    """One key hash's activity for `dates` (plus any date a row carries), replacing what was stored."""

    workspace_id: uuid.UUID
    observed_at: ObservedAt
    api_key_hash: KeyHash
    dates: list[ActivityDate] = Field(default_factory=list, max_length=MAX_ACTIVITY_DATES)
    rows: list[ActivityIn] = Field(default_factory=list, max_length=MAX_ACTIVITY_ROWS)

    @model_validator(mode="after")
    def _bounded_days(self) -> Self:
        if len(self.replaced_dates()) > MAX_ACTIVITY_DATES:
            raise ValueError(f"dates and rows together may name at most {MAX_ACTIVITY_DATES} days")
        return self

    def replaced_dates(self) -> list[dt.date]:
        """The listed dates and any date a row carries (the worker's clock and OpenRouter's may differ
        at midnight; a row must never land on a day that is not replaced, or a re-run would double it)."""
        return sorted(set(self.dates) | {row.date for row in self.rows})
