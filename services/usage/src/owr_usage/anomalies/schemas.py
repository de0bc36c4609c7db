"""The anomalies list (DESIGN §13): `{items: [{key_id, day, kind, score, evidence}]}`, paged (`total`, `page`,
`per_page`)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field

from owr_shared.schemas import Page

AnomalyKind = Literal["spend_spike", "dormant_wakeup", "new_model", "requests_spend_divergence"]


class AnomalyItem(BaseModel):
    key_id: uuid.UUID
    day: date = Field(description="the key's UTC day that departs from its history")
    kind: AnomalyKind
    score: float = Field(
        description="severity: the money (or requests) at stake in units of the key's usual spread (robust sigma)"
    )
    evidence: dict[str, Any] = Field(description="the figures it was judged on (money as exact decimal strings)")


class AnomalyPage(Page[AnomalyItem]):
    """Newest day first, then the highest score."""
