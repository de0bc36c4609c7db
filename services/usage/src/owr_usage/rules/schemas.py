"""The built-in rules as the API shows and takes them: `{rule, enabled, params}`, each rule's params validated."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, Self, TypeVar, get_args

from pydantic import BaseModel, Field, StrictBool, WithJsonSchema, model_validator

from owr_shared.schemas import RequestSchema

RuleName = Literal[
    "key.invalid",
    "key.expiring",
    "key.limit_threshold_crossed",
    "account.balance_low",
    "account.runway_low",
    "sync.failing",
    "key.anomaly",
    "price.drift",
]
RULES: tuple[RuleName, ...] = get_args(RuleName)


class NoParams(RequestSchema):
    """`key.invalid`: a key OpenRouter answers 401 for (revoked, disabled, expired); once until it is valid again."""


class ExpiringParams(RequestSchema):
    """`key.expiring`: a key whose `expires_at` is within `days`; once per expiry date."""

    days: int = Field(default=7, ge=1, le=90)


class LimitParams(RequestSchema):
    """`key.limit_threshold_crossed`: a key within `percent` % of its own OpenRouter limit in its current limit
    window (its `limit_remaining` at or under `percent` % of `limit`); once per window."""

    percent: int = Field(default=10, ge=1, le=99)


class BalanceParams(RequestSchema):
    """`account.balance_low`: an account's balance (credits - usage) under `amount_usd`; once per dip."""

    amount_usd: Annotated[
        Decimal,
        Field(gt=0, le=Decimal("1e9"), allow_inf_nan=False, decimal_places=10),
        WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": 1e9}),
    ] = Decimal(5)


class RunwayParams(RequestSchema):
    """`account.runway_low`: balance ÷ the trailing 7 days' daily burn under `days`; once per dip."""

    days: int = Field(default=7, ge=1, le=365)


class FailingParams(RequestSchema):
    """`sync.failing`: a key's syncs failing for more than `hours`; its recovery (`sync.recovered`) is reported
    once, and only after a `sync.failing` event."""

    hours: int = Field(default=1, ge=1, le=168)


class AnomalyParams(RequestSchema):
    """`key.anomaly`: a key's day departing from its own history (`spend_spike`, `dormant_wakeup`, `new_model`,
    `requests_spend_divergence`); raised once per (key, day, kind) when its score is at least `min_score`.
    `min_usd` is the least excess over the usual day (or a dormant key's spend) that counts as an anomaly."""

    min_score: float = Field(default=0, ge=0, le=1_000_000, allow_inf_nan=False)
    min_usd: Annotated[
        Decimal,
        Field(gt=0, le=Decimal("1e6"), allow_inf_nan=False, decimal_places=10),
        WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": 1e6}),
    ] = Decimal(1)


class DriftParams(RequestSchema):
    """`price.drift`: a model on a provider whose completed UTC week cost at least `min_drift_pct` % more per token
    than the week before (the week's tokens priced at the previous week's prices); once per model, provider and
    week."""

    min_drift_pct: int = Field(default=10, ge=1, le=1000)


ParamsT = TypeVar("ParamsT", bound=RequestSchema)

PARAMS: dict[RuleName, type[RequestSchema]] = {
    "key.invalid": NoParams,
    "key.expiring": ExpiringParams,
    "key.limit_threshold_crossed": LimitParams,
    "account.balance_low": BalanceParams,
    "account.runway_low": RunwayParams,
    "sync.failing": FailingParams,
    "key.anomaly": AnomalyParams,
    "price.drift": DriftParams,
}


class RuleView(BaseModel):
    rule: RuleName
    enabled: bool
    params: dict[str, Any] = Field(description="the rule's parameters, its defaults filled in")


class RulesView(BaseModel):
    """Every built-in rule, in a fixed order; each is on by default."""

    items: list[RuleView]


class _Setting(RequestSchema, Generic[ParamsT]):
    enabled: StrictBool = True
    params: ParamsT | None = Field(default=None, description="the rule's parameters; left out: its defaults")


class InvalidSetting(_Setting[NoParams]):
    rule: Literal["key.invalid"]


class ExpiringSetting(_Setting[ExpiringParams]):
    rule: Literal["key.expiring"]


class LimitSetting(_Setting[LimitParams]):
    rule: Literal["key.limit_threshold_crossed"]


class BalanceSetting(_Setting[BalanceParams]):
    rule: Literal["account.balance_low"]


class RunwaySetting(_Setting[RunwayParams]):
    rule: Literal["account.runway_low"]


class FailingSetting(_Setting[FailingParams]):
    rule: Literal["sync.failing"]


class AnomalySetting(_Setting[AnomalyParams]):
    rule: Literal["key.anomaly"]


class DriftSetting(_Setting[DriftParams]):
    rule: Literal["price.drift"]


RuleSetting = Annotated[
    InvalidSetting
    | ExpiringSetting
    | LimitSetting
    | BalanceSetting
    | RunwaySetting
    | FailingSetting
    | AnomalySetting
    | DriftSetting,
    Field(discriminator="rule"),
]


class RulesUpdate(RequestSchema):
    """The rules listed are set as given (left-out params take their defaults); the others keep theirs."""

    items: Annotated[list[RuleSetting], Field(min_length=1, max_length=len(RULES))]

    @model_validator(mode="after")
    def _each_rule_once(self) -> Self:
        if len({item.rule for item in self.items}) != len(self.items):
            raise ValueError("each rule may be listed once")
        return self
