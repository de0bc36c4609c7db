"""A budget's outlook said in words, its bar, and the form read into the API's body."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from owr_web.budgets.schemas import BudgetForm
from owr_web.budgets.service import bar_value, body_of, form_of, outlook, parse_thresholds, scope_label

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def test_the_outlook_says_where_spend_is_heading() -> None:
    base = {"amount_usd": Decimal("10"), "state": "warning", "forecast_usd": Decimal("21.25")}
    assert outlook({**base, "projected_cross_at": "2026-12-03T14:00:00Z"}, NOW) == (
        "Forecast $21.25 by the reset; hits $10.00 Thu 14:00 UTC"
    )
    assert outlook({**base, "forecast_usd": Decimal("6.2"), "projected_cross_at": None}, NOW) == (
        "Forecast $6.20 by the reset; stays under $10.00 at this rate"
    )
    assert outlook({**base, "forecast_usd": None, "projected_cross_at": None}, NOW) == (
        "Too early in the period for a forecast"
    )
    assert outlook({**base, "state": "exceeded"}, NOW) == "Over $10.00 this period; forecast $21.25 by the reset"


def test_the_bar_fills_to_the_amount_and_no_further() -> None:
    assert bar_value({"percent_used": Decimal("85.5")}) == Decimal("85.5")
    assert bar_value({"percent_used": Decimal("140")}) == 100
    assert bar_value({"percent_used": None}) == 0


def test_a_scope_is_named_by_its_key() -> None:
    names = {"k1": "prod"}
    assert scope_label({"scope": {"type": "key", "id": "k1"}}, names) == "Key “prod”"
    assert scope_label({"scope": {"type": "account", "id": "k1"}}, names) == "Account of “prod”"
    assert scope_label({"scope": {"type": "key", "id": "gone"}}, names) == "A key no longer stored"
    assert scope_label({"scope": {"type": "workspace"}}, names) == "Whole workspace"


def test_thresholds_are_read_as_people_write_them() -> None:
    assert parse_thresholds("50, 80, 100") == [50, 80, 100]
    assert parse_thresholds("50% 80%") == [50, 80]
    assert parse_thresholds("") == []
    assert parse_thresholds("half") is None
    assert parse_thresholds("-5") is None


def test_the_form_round_trips_a_budget() -> None:
    budget = {
        "name": "team",
        "scope": {"type": "account", "id": "m1"},
        "amount_usd": Decimal("12.50"),
        "period": "daily",
        "thresholds": [80, 100],
        "include_byok": True,
        "channel_ids": ["c1"],
    }
    form = form_of(budget)
    assert form == BudgetForm(
        name="team",
        scope_type="account",
        account_id="m1",
        amount_usd="12.50",
        period="daily",
        thresholds="80, 100",
        include_byok=True,
        channel_ids=["c1"],
    )
    body, errors = body_of(form, creating=True)
    assert errors == {}
    assert body["scope"] == {"type": "account", "id": "m1"}
    assert body["amount_usd"] == Decimal("12.50")
    assert body_of(BudgetForm(amount_usd="$1,000"), creating=False)[0]["amount_usd"] == Decimal("1000")
    assert "amount_usd" in body_of(BudgetForm(amount_usd="NaN"), creating=False)[1]
