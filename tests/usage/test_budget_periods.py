"""Budget periods on OpenRouter's UTC windows, and the forecast from the period's burn rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from owr_usage.budgets.periods import Period, outlook, window

D = Decimal


def test_windows_start_at_midnight_monday_and_the_first_utc() -> None:
    thursday = datetime(2026, 12, 3, 14, 30, tzinfo=UTC)
    assert window("daily", thursday) == (datetime(2026, 12, 3, tzinfo=UTC), datetime(2026, 12, 4, tzinfo=UTC))
    assert window("weekly", thursday) == (datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC))
    assert window("monthly", thursday) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    # Another timezone's evening is already the next UTC day (and, on a Sunday, the next UTC week).
    sunday_night_in_new_york = datetime(2026, 12, 6, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert window("weekly", sunday_night_in_new_york)[0] == datetime(2026, 12, 7, tzinfo=UTC)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_every_moment_lies_in_its_window(at: datetime) -> None:
    periods: tuple[Period, ...] = ("daily", "weekly", "monthly")
    for period in periods:
        start, reset = window(period, at)
        assert start <= at < reset
        assert window(period, reset)[0] == reset  # the next window starts where this one ends


def test_the_forecast_and_the_crossing_follow_the_burn_rate() -> None:
    # $20 of a $50 weekly budget by Wednesday 00:00 (2 days in): $10 a day, $70 by the week's end.
    at = datetime(2026, 12, 2, tzinfo=UTC)
    seen = outlook(D("20"), D("50"), [50, 80, 100], "weekly", at)
    assert seen.percent_used == D("40.00")
    assert seen.forecast_usd == D("70.000000")
    assert seen.projected_cross_at == datetime(2026, 12, 5, tzinfo=UTC)  # $30 more at $10/day: Saturday
    assert seen.state == "ok"
    assert outlook(D("41"), D("50"), [80], "weekly", at).state == "warning"
    assert outlook(D("50"), D("50"), [80], "weekly", at).state == "exceeded"
    # Slow enough never to cross within the week; too early in the period for any forecast.
    assert outlook(D("1"), D("50"), [80], "weekly", at).projected_cross_at is None
    early = outlook(D("5"), D("50"), [80], "daily", datetime(2026, 12, 2, 0, 30, tzinfo=UTC))
    assert (early.forecast_usd, early.projected_cross_at) == (None, None)


def test_a_crossing_centuries_away_is_no_crossing_not_an_overflow() -> None:
    # A tiny spend against a huge amount: the rate crosses it long after year 9999.
    seen = outlook(D("0.000001"), D("125000000"), [50], "monthly", datetime(2099, 12, 31, 23, tzinfo=UTC))
    assert seen.projected_cross_at is None
    assert seen.state == "ok"
