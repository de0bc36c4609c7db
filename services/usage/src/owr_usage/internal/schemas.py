"""Internal bodies and answers that belong to no single domain: retention."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict


class RetentionRequest(BaseModel):
    """Remove history dated before `before` (default: the start of the retention window)."""

    model_config = ConfigDict(extra="ignore")

    before: dt.date | None = None


class RetentionDeleted(BaseModel):
    snapshots: int
    key_days: int
    activity: int
    activity_days: int
    account_balances: int
    daily_usage: int
    daily_key_totals: int
    daily_model_totals: int
    monthly_key_totals: int


class RetentionResult(BaseModel):
    """`before` is the cutoff applied: never inside the retention window, whatever was asked."""

    before: dt.date
    deleted: RetentionDeleted
