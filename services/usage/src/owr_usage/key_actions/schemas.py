"""Bodies of the key action routes and the key's upstream view."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, WithJsonSchema

from owr_shared.schemas import Money, RequestSchema, StorableText
from owr_shared.wire.key_actions import KeyActionKind, KeyActionStatus, LimitReset
from owr_usage.budgets.schemas import AMOUNT_MAX

# A limit OpenRouter will hold: positive USD, at most a billion, at most 10 decimal places.
LimitAmount = Annotated[
    Decimal,
    Field(gt=0, le=AMOUNT_MAX, allow_inf_nan=False, decimal_places=10),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": 1e9}),
]
Score = Annotated[
    Decimal,
    Field(gt=0, le=Decimal(1000), allow_inf_nan=False, decimal_places=4),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": 1000}),
]
ACTIONS_SHOWN = 10
# A user's words on a disable: one short line (it goes into the key's trail and the `key.disabled` alert).
DISABLE_REASON_MAX = 200


def _one_line(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValueError("must not contain control characters or line breaks")
    return value


DisableReason = Annotated[
    StorableText, StringConstraints(strip_whitespace=True, max_length=DISABLE_REASON_MAX), AfterValidator(_one_line)
]


class ApplyLimitRequest(RequestSchema):
    amount_usd: LimitAmount
    reset: LimitReset | None = Field(description="OpenRouter's `limit_reset`; null: the limit never resets")
    include_byok_in_limit: bool | None = Field(
        default=None,
        description="OpenRouter's `include_byok_in_limit`: whether BYOK spend counts toward the limit; "
        "null or absent: left as OpenRouter has it",
    )


class DisableUpstreamRequest(RequestSchema):
    reason: DisableReason | None = Field(
        default=None,
        description="why, in a few words (the key's trail and the `key.disabled` alert say it); "
        'blank or absent: "disabled at OpenRouter by a user"',
    )


class KillSwitchRequest(RequestSchema):
    anomaly_score: Score | None = Field(
        description="an anomaly of this score or more disables the key at OpenRouter; null: never (the default)"
    )


class KeyActionView(BaseModel):
    """One write to OpenRouter: what, why, who asked, and how it went (`error` when it failed, or why it was
    `skipped`: a rule's disable while the key was disabled or being disabled already, or a user's enable still
    pending when a user asked to disable the key; a skipped action is not sent again)."""

    id: uuid.UUID
    key_id: uuid.UUID
    kind: KeyActionKind
    status: KeyActionStatus
    source: str = Field(description="user, budget or anomaly")
    reason: str
    requested_by: str | None
    budget_id: uuid.UUID | None
    limit_usd: Money | None
    limit_reset: LimitReset | None
    include_byok_in_limit: bool | None = Field(description="a set_limit's BYOK setting sent; null: not sent")
    evidence: dict[str, Any]
    error: str | None
    attempts: int
    created_at: datetime
    completed_at: datetime | None


class UpstreamView(BaseModel):
    """The key at OpenRouter, as the account's last key list (or this service's last action) left it."""

    key_id: uuid.UUID
    linked: bool = Field(description="whether the key is linked to a row of an account's key list")
    management_key_id: uuid.UUID | None = Field(description="the account's management key (its id here)")
    disabled: bool | None = Field(description="whether OpenRouter has the key disabled; null: not linked")
    limit_usd: Money | None
    limit_reset: str | None
    observed_at: datetime | None
    anomaly_score: Money | None = Field(description="the kill switch's anomaly threshold; null: off")
    actions: list[KeyActionView] = Field(description=f"the last {ACTIONS_SHOWN} actions, newest first")
