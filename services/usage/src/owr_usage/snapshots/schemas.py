"""Snapshot bodies: `GET /key` as the worker saw it, parsed tolerantly (unknown fields are ignored)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from owr_usage.schemas import Label, LimitReset, ObservedAt, Timestamp, UsageMoney

MAX_BATCH = 500


class Tolerant(BaseModel):
    """OpenRouter adds fields over time, and the worker may send more than usage reads: ignore the rest."""

    model_config = ConfigDict(extra="ignore")


_NULL_MEANS_DEFAULT = frozenset(
    {
        "is_management_key",
        "is_provisioning_key",
        "include_byok_in_limit",
        "is_free_tier",
        "usage_weekly",
        "usage_monthly",
        "byok_usage",
        "byok_usage_daily",
        "byok_usage_weekly",
        "byok_usage_monthly",
    }
)


class KeySnapshot(Tolerant):
    """The `data` of `GET /key`. `usage` and `usage_daily` are required: the daily spend rests on them."""

    label: Label | None = None
    is_management_key: bool = False
    limit: UsageMoney | None = None
    limit_reset: LimitReset | None = None
    limit_remaining: UsageMoney | None = None
    include_byok_in_limit: bool = False
    usage: UsageMoney
    usage_daily: UsageMoney
    usage_weekly: UsageMoney = Decimal(0)
    usage_monthly: UsageMoney = Decimal(0)
    # Older answers carry no BYOK figures: none is zero.
    byok_usage: UsageMoney = Decimal(0)
    byok_usage_daily: UsageMoney = Decimal(0)
    byok_usage_weekly: UsageMoney = Decimal(0)
    byok_usage_monthly: UsageMoney = Decimal(0)
    is_free_tier: bool = False
    expires_at: Timestamp | None = None

    @model_validator(mode="before")
    @classmethod
    def _provisioning_alias(cls, data: Any) -> Any:
        # `is_provisioning_key` is the deprecated name of `is_management_key`. A null where a default
        # exists means "not said", not an error.
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if not (v is None and k in _NULL_MEANS_DEFAULT)}
            if "is_management_key" not in data and isinstance(data.get("is_provisioning_key"), bool):
                data["is_management_key"] = data["is_provisioning_key"]
        return data


class SnapshotItem(Tolerant):
    key_id: uuid.UUID
    workspace_id: uuid.UUID
    observed_at: ObservedAt = Field(description="when OpenRouter answered (its Date header)")
    snapshot: KeySnapshot

    @property
    def day(self) -> date:
        """The UTC day the snapshot's windows belong to (`observed_at` is already UTC)."""
        return self.observed_at.date()


class SnapshotBatch(Tolerant):
    items: list[SnapshotItem] = Field(min_length=1, max_length=MAX_BATCH)


class SnapshotsStored(BaseModel):
    """How many snapshots were new, and how many were already stored (a redelivery is a no-op)."""

    stored: int
    duplicates: int
