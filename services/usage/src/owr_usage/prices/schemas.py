"""Effective prices (DESIGN §13): what activity's own figures say a million tokens cost, and its drift.

Activity gives one cost per row for prompt and completion tokens together, so the blended price is always
known, and the split into a prompt and a completion price only when the rows determine it (see the fields).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from owr_usage.reports.schemas import Amount, Ratio

GroupBy = Literal["model", "key"]
DriftBasis = Literal["split", "blended"]
# A price per million tokens, computed exactly and rounded half-even to 9 decimal places at the end; a change in
# percent, rounded half-even to 2 decimal places. Both are JSON numbers.
PerMtok = Ratio
Percent = Ratio


class PriceRow(BaseModel):
    """One model on one provider (and one key, when asked per key) over the period."""

    model: str
    provider: str | None = Field(description="null when activity named no provider")
    key_id: uuid.UUID | None = Field(description="the key, when `key_id` or `group_by=key` was asked; else null")
    requests: int
    prompt_tokens: int
    completion_tokens: int = Field(description="reasoning tokens included, as OpenRouter bills them")
    cost_usd: Amount = Field(description="activity's cost of these rows, BYOK inference cost included")
    usd_per_mtok: PerMtok | None = Field(
        description="blended: `cost_usd` per million prompt + completion tokens; null without tokens"
    )
    usd_per_mtok_prompt: PerMtok | None = Field(
        description="USD per million prompt tokens, solved from the period's daily rows by least squares; null "
        "unless the rows determine it: at least two daily rows with different prompt/completion mixes, one "
        "price pair that fits the rows' costs to 1 part in a million (root mean square), and no negative price"
    )
    usd_per_mtok_completion: PerMtok | None = Field(
        description="USD per million completion tokens; null like the prompt's"
    )
    previous_usd_per_mtok: PerMtok | None = Field(
        description="the blended price of the previous period; null without one"
    )
    drift_pct: Percent | None = Field(
        description="how much more (negative: less) this period's tokens cost than the previous period's prices "
        "say, in %; null when the previous period has no tokens for this row"
    )
    drift_basis: DriftBasis | None = Field(
        description="`split`: this period's prompt and completion tokens priced at the previous period's split "
        "(a change of mix is no drift); `blended`: the blended prices compared (the previous split unknown)"
    )


class PricesReport(BaseModel):
    first_day: date = Field(description="`from`, as applied")
    last_day: date = Field(description="`to`, as applied")
    previous_first_day: date = Field(description="the previous period: as many days, ending the day before `from`")
    previous_last_day: date
    items: list[PriceRow] = Field(description="by `cost_usd`, highest first")
    total: int
    page: int
    per_page: int
