"""The key hygiene report (DESIGN §13). Money is exact (a JSON number)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

from owr_shared.schemas import Money

Finding = Literal[
    "no_limit", "dormant", "expiring", "invalid_stored", "untracked_in_account", "missing_upstream", "stale_sync"
]
Reset = Literal["daily", "weekly", "monthly"]


class SuggestedLimit(BaseModel):
    """A limit for one OpenRouter reset window: the p95 of the key's spend per window times the margin."""

    amount_usd: Money
    reset: Reset


class HygieneItem(BaseModel):
    """One finding about one key: a stored key (`key_id`) or an account's row (`hash`), or both."""

    finding: Finding
    key_id: uuid.UUID | None = Field(None, description="the stored key, when the vault has it")
    hash: str | None = Field(None, description="OpenRouter's hash of the key, when an account lists it")
    name: str = Field(description="the key's label (OpenRouter's masked key) or name; its id when it has neither")
    reason: str = Field(description="one line: why the key is listed")
    action: str = Field(description="what to do about it")
    suggested_limit: SuggestedLimit | None = Field(
        None, description="`no_limit` with spend history: the suggestion for the key's reset window (monthly if none)"
    )
    suggested_limits: list[SuggestedLimit] = Field(
        default_factory=list, description="`no_limit` with spend history: the suggestion for every window"
    )


class HygieneReport(BaseModel):
    items: list[HygieneItem]
