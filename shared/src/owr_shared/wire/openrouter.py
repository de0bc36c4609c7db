"""OpenRouter's answers (`/key`, `/credits`, `/keys`, `/activity`, per CONTRACT.md), parsed once.

The worker parses them from OpenRouter and sends them on inside the `usage` bodies; usage parses the
same models. Each upstream quirk is handled here: unknown fields are ignored, a null where a default
exists means "not said", `is_provisioning_key` is the old name of `is_management_key`, and
`/activity`'s date may carry a midnight time (`fields.ActivityDate`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from owr_shared.wire.fields import (
    ActivityDate,
    Count,
    KeyHash,
    KeyName,
    Label,
    LimitReset,
    ModelName,
    ShortText,
    Timestamp,
    WireMoney,
)


class Tolerant(BaseModel):
    """OpenRouter adds fields over time, and the worker may send more than a service reads: ignore the rest."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        # A null where the field has a default means "not said" (OpenRouter's zeros and falses).
        if isinstance(data, dict):
            defaults = {name for name, f in cls.model_fields.items() if not f.is_required() and f.default is not None}
            data = {k: v for k, v in data.items() if not (v is None and k in defaults)}
        return data


class KeyFigures(Tolerant):
    """What `/key`'s answer and a `/keys` row share: the key's label, limit and spend windows."""

    label: Label | None = None
    limit: WireMoney | None = None
    limit_reset: LimitReset | None = None
    limit_remaining: WireMoney | None = None
    include_byok_in_limit: bool = False
    usage: WireMoney = Decimal(0)
    usage_daily: WireMoney = Decimal(0)
    usage_weekly: WireMoney = Decimal(0)
    usage_monthly: WireMoney = Decimal(0)
    # Older answers carry no BYOK figures: none is zero.
    byok_usage: WireMoney = Decimal(0)
    byok_usage_daily: WireMoney = Decimal(0)
    byok_usage_weekly: WireMoney = Decimal(0)
    byok_usage_monthly: WireMoney = Decimal(0)
    expires_at: Timestamp | None = None


class KeyInfo(KeyFigures):
    """`GET /key` → `data`: the key's figures and kind; what a snapshot keeps."""

    is_free_tier: bool = False
    is_management_key: bool = False

    @model_validator(mode="before")
    @classmethod
    def _provisioning_alias(cls, data: Any) -> Any:
        # `is_provisioning_key` is the deprecated name; older answers may carry only it.
        if isinstance(data, dict) and data.get("is_management_key") is None:
            provisioning = data.get("is_provisioning_key")
            if isinstance(provisioning, bool):
                data = {**data, "is_management_key": provisioning}
        return data


class Credits(Tolerant):
    """`GET /credits` → `data`: the account's credits and spend (all-zero means unknown, not $0)."""

    total_credits: WireMoney = Decimal(0)
    total_usage: WireMoney = Decimal(0)


class AccountKey(KeyFigures):
    """One row of `GET /keys`. Its `workspace_id` is OpenRouter's, not ours, and is not read."""

    hash: KeyHash
    name: KeyName | None = None
    disabled: bool = False
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class ActivityRow(Tolerant):
    """One row of `GET /activity`: one UTC day x model permaslug x endpoint."""

    date: ActivityDate
    model: ModelName
    model_permaslug: ShortText | None = None
    endpoint_id: ShortText | None = None
    provider_name: ShortText | None = None
    usage: WireMoney = Decimal(0)
    byok_usage_inference: WireMoney = Decimal(0)
    requests: Count = 0
    prompt_tokens: Count = 0
    completion_tokens: Count = 0
    reasoning_tokens: Count = 0
