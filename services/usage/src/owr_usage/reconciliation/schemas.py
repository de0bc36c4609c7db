"""The reconciliation report (DESIGN §13). Money is exact (a JSON number with every digit stored)."""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, Field

from owr_shared.schemas import Page
from owr_usage.reports.schemas import Amount


class ReconciliationGap(BaseModel):
    """One linked key's completed UTC day whose two figures differ by more than 1e-6 USD.

    `gap_usd = snapshot_usd - activity_usd` (positive: the `/key` counters moved more than activity shows).
    The BYOK figures are compared the same way (`/key`'s `byok_usage` against activity's
    `byok_usage_inference`); a day is listed when either gap exceeds 1e-6.
    """

    key_id: uuid.UUID
    label: str | None = Field(description="the key's masked label, as its latest snapshot gave it")
    day: date
    snapshot_usd: Amount = Field(description="the day's final spend from the key's `/key` snapshots")
    activity_usd: Amount = Field(description="the sum of activity's `usage` for the key's hash that day (0: no rows)")
    gap_usd: Amount = Field(description="snapshot_usd - activity_usd")
    snapshot_byok_usd: Amount
    activity_byok_usd: Amount
    byok_gap_usd: Amount = Field(description="snapshot_byok_usd - activity_byok_usd")


class ReconciliationPage(Page[ReconciliationGap]):
    """Gaps, newest day first (then by key id); completed days only, never today."""

    first_day: date = Field(description="`from`, as applied")
    last_day: date = Field(description="`to`, as applied")
