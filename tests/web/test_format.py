"""Money and time as the pages show them: USD with cents, every digit on hover, UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from owr_web.settings import WebSettings
from owr_web.views.format import ago, duration, moment, percent, points, usd, usd_exact


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1234.565"), "$1,234.56"),  # banker's rounding, as the API's exact figure is shown rounded
        (Decimal("0.004"), "<$0.01"),  # a spend is never shown as $0.00
        (Decimal("0"), "$0.00"),
        (Decimal("-2.5"), "-$2.50"),
        (None, "—"),
        ("7.1", "$7.10"),
    ],
)
def test_usd(value: object, shown: str) -> None:
    assert usd(value) == shown


def test_usd_exact_keeps_every_digit() -> None:
    assert usd_exact(Decimal("0.000123456789")) == "$0.000123456789"
    assert usd_exact(Decimal("5")) == "$5.00"
    assert usd_exact(None) == "unknown"


def test_times_and_shares() -> None:
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert ago("2026-12-05T11:57:00Z", now) == "3 min ago"
    assert ago("2026-12-03T12:00:00Z", now) == "2 d ago"
    assert ago(None, now) == "never"
    assert duration(3 * 3600 + 20 * 60) == "3 h 20 min"
    assert duration(2 * 86400 + 4 * 3600) == "2 d 4 h"
    assert percent(Decimal("0.834")) == "83%"


def test_the_demo_sign_in_is_refused_in_production() -> None:
    with pytest.raises(ValueError, match="never in production"):
        WebSettings.model_validate({"OWR_ENV": "production", "demo_email": "demo@example.com"})
    assert WebSettings.model_validate({"OWR_ENV": "development", "demo_email": "d@example.com"}).demo_email


def test_points_and_moments() -> None:
    assert points(Decimal("85.4")) == "85%"
    assert points(Decimal("120")) == "120%"
    assert points(Decimal("0.2")) == "<1%"  # never 0% for a budget that has spent
    assert points(0) == "0%"
    assert points(None) == "—"
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)  # a Thursday
    assert moment("2026-12-03T14:00:00Z", now) == "Thu 14:00 UTC"
    assert moment("2026-12-07T00:00:00Z", now) == "Mon 00:00 UTC"  # a weekly reset: the day names it
    assert moment("2027-01-01T00:00:00Z", now) == "Fri 1 Jan 00:00 UTC"  # a monthly one needs its date
    assert moment(None, now) == "—"
