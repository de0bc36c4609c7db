"""OpenRouter's own UTC windows, and where a period's spend is heading.

Days start at 00:00 UTC, weeks on Monday 00:00 UTC, months on the 1st 00:00 UTC, exactly as OpenRouter resets
a key's `limit_reset` windows, so a budget and a key's limit never disagree about "this week". The forecast
extrapolates the period's burn rate so far (spend ÷ elapsed time) to its end; it answers "hits $50 Thu 14:00
UTC" with the moment that rate crosses the amount, or None when it does not within the period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

Period = Literal["daily", "weekly", "monthly"]
State = Literal["ok", "warning", "exceeded"]
# Too little of the period has passed for its rate to mean anything: no forecast before this.
MIN_ELAPSED = timedelta(hours=1)


def window(period: Period, at: datetime) -> tuple[datetime, datetime]:
    """The [start, reset) of the period containing `at` (any timezone; answered in UTC)."""
    now = at.astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return midnight, midnight + timedelta(days=1)
    if period == "weekly":
        start = midnight - timedelta(days=now.weekday())
        return start, start + timedelta(days=7)
    start = midnight.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


@dataclass(frozen=True, slots=True)
class Outlook:
    percent_used: Decimal
    forecast_usd: Decimal | None
    projected_cross_at: datetime | None
    state: State


def outlook(spend: Decimal, amount: Decimal, thresholds: list[int], period: Period, at: datetime) -> Outlook:
    """Percent used, the period-end forecast, when the amount is crossed at this rate, and the state:
    `exceeded` at 100 % or more, `warning` at or past the lowest threshold, else `ok`."""
    start, reset = window(period, at)
    percent = (spend / amount * 100).quantize(Decimal("0.01")) if amount > 0 else Decimal(0)
    elapsed = at.astimezone(UTC) - start
    forecast = cross = None
    if elapsed >= MIN_ELAPSED:
        rate = spend / Decimal(elapsed.total_seconds())  # USD per second
        forecast = (rate * Decimal((reset - start).total_seconds())).quantize(Decimal("0.000001"))
        if spend < amount and rate > 0:
            seconds = (amount - spend) / rate
            # Compared before any date arithmetic: a crossing centuries away would overflow a datetime.
            if seconds < Decimal((reset - at).total_seconds()):
                cross = at.astimezone(UTC) + timedelta(seconds=float(seconds))
    warning_at = min(thresholds) if thresholds else 100
    state: State = "exceeded" if percent >= 100 else "warning" if percent >= warning_at else "ok"
    return Outlook(percent, forecast, cross, state)
