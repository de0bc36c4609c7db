"""The budget form as typed: kept as text, so a refused form comes back exactly as the person left it."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Id = Annotated[str, Field(max_length=64)]


class BudgetForm(BaseModel):
    """`/budgets` and `/budgets/{id}/edit`. Bounds only keep input small: the API judges the values (its 422s are
    shown next to these fields)."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(default="", max_length=200)
    scope_type: str = Field(default="workspace", max_length=20)
    key_id: Id = ""
    account_id: Id = ""
    amount_usd: str = Field(default="", max_length=40)
    period: str = Field(default="monthly", max_length=20)
    thresholds: str = Field(default="50, 80, 100", max_length=200)
    include_byok: bool = False
    disable_key_on_exceed: bool = False
    channel_ids: list[Id] = Field(default_factory=list, max_length=100)
