"""Account bodies: the shared wire contract (`owr_shared.wire.usage`), with usage's bound on replaced days."""

from __future__ import annotations

import datetime as dt
from typing import Self

from pydantic import model_validator

from owr_shared.wire import usage as wire
from owr_shared.wire.usage import MAX_ACTIVITY_DATES, AccountKeysReport, CreditsReport

__all__ = ["AccountKeysReport", "ActivityReport", "CreditsReport"]


class ActivityReport(wire.ActivityReport):
    @model_validator(mode="after")
    def _bounded_days(self) -> Self:
        if len(self.replaced_dates()) > MAX_ACTIVITY_DATES:
            raise ValueError(f"dates and rows together may name at most {MAX_ACTIVITY_DATES} days")
        return self

    def replaced_dates(self) -> list[dt.date]:
        """The listed dates and any date a row carries (the worker's clock and OpenRouter's may differ
        at midnight; a row must never land on a day that is not replaced, or a re-run would double it)."""
        return sorted(set(self.dates) | {row.date for row in self.rows})
