"""The worker -> usage internal bodies: snapshots, an account's credits, key list and activity, retention.

The worker builds them from OpenRouter's parsed answers; usage parses the same models, and may make
them stricter by subclassing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from owr_shared.wire.fields import ActivityDate, KeyHash, ObservedAt, WireMoney
from owr_shared.wire.openrouter import AccountKey, ActivityRow, KeyInfo, Tolerant

MAX_SNAPSHOT_BATCH = 500
MAX_ACCOUNT_KEYS = 20_000
MAX_ACTIVITY_DATES = 400
MAX_ACTIVITY_ROWS = 50_000


class SnapshotItem(Tolerant):
    """One `GET /key` answer of one key, as the worker saw it."""

    key_id: uuid.UUID
    workspace_id: uuid.UUID
    observed_at: ObservedAt = Field(description="when OpenRouter answered (its Date header)")
    snapshot: KeyInfo


class SnapshotBatch(Tolerant):
    # A Sequence, so usage's subclass may narrow the items to its stricter `SnapshotItem`.
    items: Sequence[SnapshotItem] = Field(min_length=1, max_length=MAX_SNAPSHOT_BATCH)


class SnapshotsStored(BaseModel):
    """How many snapshots were new, how many were already stored (a redelivery is a no-op), and how many
    were dropped because their workspace has been erased (a sync that outlived an account's deletion)."""

    stored: int
    duplicates: int
    erased: int = 0


class CreditsReport(Tolerant):
    """`GET /credits` of the account, when it was observed."""

    workspace_id: uuid.UUID
    observed_at: ObservedAt
    total_credits: WireMoney
    total_usage: WireMoney


class AccountKeysReport(Tolerant):
    """The complete `GET /keys` list (every page), replacing the previous one."""

    workspace_id: uuid.UUID
    observed_at: ObservedAt
    keys: list[AccountKey] = Field(max_length=MAX_ACCOUNT_KEYS)


class ActivityReport(Tolerant):
    """One key hash's activity for `dates` (plus any date a row carries), replacing what was stored."""

    workspace_id: uuid.UUID
    observed_at: ObservedAt
    api_key_hash: KeyHash
    dates: list[ActivityDate] = Field(default_factory=list, max_length=MAX_ACTIVITY_DATES)
    rows: list[ActivityRow] = Field(default_factory=list, max_length=MAX_ACTIVITY_ROWS)


class RetentionRequest(BaseModel):
    """Remove history dated before `before` (default: the start of the retention window)."""

    model_config = ConfigDict(extra="ignore")

    before: dt.date | None = None


class CompactionRequest(BaseModel):
    """Thin out the snapshots of the UTC days in [`since`, `before`) to each key-day's first and last, for
    at most `keys` keys with an id after `after` (one batch). `before` is clamped to keep the full window."""

    model_config = ConfigDict(extra="ignore")

    before: dt.date | None = None
    since: dt.date | None = None
    after: uuid.UUID | None = None
    keys: int = Field(default=1000, ge=1, le=10_000)


class CompactionResult(BaseModel):
    """`before` as applied; `next_after` is the cursor of the next batch, None after the last."""

    before: dt.date
    deleted: int
    keys: int
    next_after: uuid.UUID | None


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
    key_anomalies: int = 0


class RetentionResult(BaseModel):
    """`before` is the cutoff applied: never inside the retention window, whatever was asked."""

    before: dt.date
    deleted: RetentionDeleted
