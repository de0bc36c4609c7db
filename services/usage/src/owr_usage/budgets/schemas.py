"""Budget bodies and the budget view. Money is exact (a JSON number with every digit kept)."""

from __future__ import annotations

import itertools
import unicodedata
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, Field, StrictBool, StringConstraints, WithJsonSchema, model_validator

from owr_shared.schemas import Money, RequestSchema, StorableText
from owr_usage.budgets.periods import Period, State

ScopeType = Literal["workspace", "key", "account"]
NAME_MAX = 100
THRESHOLDS_MAX = 10
CHANNELS_MAX = 20
AMOUNT_MAX = Decimal("1e9")
DEFAULT_THRESHOLDS = (50, 80, 100)


def _check_name(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise ValueError("must not contain control characters")
    return value


BudgetName = Annotated[
    StorableText,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX),
    AfterValidator(_check_name),
]
# Positive USD, at most a billion, at most 10 decimal places (OpenRouter's own precision).
Amount = Annotated[
    Decimal,
    Field(gt=0, le=AMOUNT_MAX, allow_inf_nan=False, decimal_places=10),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": 1e9}),
]
Threshold = Annotated[int, Field(ge=1, le=1000)]


def _ascending(value: list[int]) -> list[int]:
    if any(later <= earlier for earlier, later in itertools.pairwise(value)):
        raise ValueError("must be unique and in ascending order")
    return value


Thresholds = Annotated[
    list[Threshold],
    Field(min_length=1, max_length=THRESHOLDS_MAX, description="percentages of the amount, ascending, 1-1000"),
    AfterValidator(_ascending),
]


def _unique(value: list[uuid.UUID]) -> list[uuid.UUID]:
    if len(set(value)) != len(value):
        raise ValueError("must not repeat a channel")
    return value


ChannelIds = Annotated[list[uuid.UUID], Field(max_length=CHANNELS_MAX), AfterValidator(_unique)]


class BudgetScope(RequestSchema):
    """What the budget counts: the whole workspace, one key (its id in keys), or one OpenRouter account (the id
    of its management key): the keys linked to that account."""

    type: ScopeType
    id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _id_matches_type(self) -> Self:
        if self.type == "workspace" and self.id is not None:
            raise ValueError("a workspace scope takes no id")
        if self.type != "workspace" and self.id is None:
            raise ValueError(f"a {self.type} scope needs the id of its {self.type}")
        return self


class CreateBudgetRequest(RequestSchema):
    name: BudgetName
    scope: BudgetScope
    amount_usd: Amount
    period: Period
    thresholds: Thresholds = Field(default_factory=lambda: list(DEFAULT_THRESHOLDS))
    include_byok: StrictBool = False
    channel_ids: ChannelIds = Field(
        default_factory=list, description="the channels its events go to; empty: every channel taking them"
    )
    disable_key_on_exceed: StrictBool = Field(
        default=False, description="the kill switch (key budgets only): once exceeded, disable the key at OpenRouter"
    )

    @model_validator(mode="after")
    def _kill_switch_on_keys_only(self) -> Self:
        if self.disable_key_on_exceed and self.scope.type != "key":
            raise ValueError("disable_key_on_exceed is only for budgets whose scope is one key")
        return self


class UpdateBudgetRequest(RequestSchema):
    """Only the fields present (and not null) change; the scope is fixed at creation."""

    name: BudgetName | None = None
    amount_usd: Amount | None = None
    period: Period | None = None
    thresholds: Thresholds | None = None
    include_byok: StrictBool | None = None
    channel_ids: ChannelIds | None = None
    disable_key_on_exceed: StrictBool | None = None


class ScopeView(BaseModel):
    type: ScopeType
    id: uuid.UUID | None


class BudgetView(BaseModel):
    """A budget and where its current period stands (OpenRouter's UTC windows)."""

    id: uuid.UUID
    name: str
    scope: ScopeView
    amount_usd: Money
    period: Period
    thresholds: list[int]
    include_byok: bool
    channel_ids: list[uuid.UUID]
    disable_key_on_exceed: bool
    created_at: datetime
    updated_at: datetime
    period_start: datetime = Field(description="the current period's start (00:00 UTC)")
    resets_at: datetime = Field(description="the next period's start")
    spend_usd: Money = Field(description="the scope's spend in the current period (BYOK included when asked)")
    provisional: bool = Field(description="whether a day of the period is still provisional (a lower bound)")
    percent_used: Money
    forecast_usd: Money | None = Field(description="the period-end spend at its burn rate so far; null early on")
    projected_cross_at: datetime | None = Field(description="when that rate crosses the amount within the period")
    state: State


class BudgetPage(BaseModel):
    items: list[BudgetView]
    total: int
    page: int
    per_page: int
