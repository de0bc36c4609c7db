"""`/alerts`: the history in words with each delivery; `/alerts/rules`: the switches, read back as the types the API
gave; the dashboard's budgets tile."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from owr_shared.wire.alerts import EVENT_TYPES
from owr_web.alerts.service import EVENTS, summary
from tests.web.conftest import Browser, text
from tests.web.test_budget_pages import HOOK

BUDGET_DATA = {
    "budget_id": "5b2d9c7e-3333-4f6a-9b8c-7d6e5f4a3b01",
    "name": "prod weekly",
    "scope": {"type": "key", "id": "0d3c4a6e-1111-4c1e-9d51-3f7b2c1a0001"},
    "period": {"kind": "weekly", "start": "2026-11-30T00:00:00Z", "resets_at": "2026-12-07T00:00:00Z"},
    "spend_usd": Decimal("8.5"),
    "amount_usd": Decimal("10"),
    "percent_used": Decimal("85"),
    "threshold": 80,
    "forecast_usd": Decimal("21.25"),
}
KEY_DATA = {"key_id": "0d3c4a6e-1111-4c1e-9d51-3f7b2c1a0001", "key_name": "prod", "label": "sk-or-v1-0e6…c96"}


def event(kind: str, data: dict[str, Any], deliveries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": "e0c1d2e3-4444-4f5a-8b9c-0d1e2f3a4b01",
        "type": kind,
        "at": "2026-12-05T14:03:00Z",
        "data": data,
        "deliveries": deliveries or [],
    }


def test_every_event_type_has_a_name() -> None:
    assert set(EVENTS) == set(EVENT_TYPES)


def test_summaries_say_what_happened_in_one_line() -> None:
    assert summary(event("budget.threshold_crossed", BUDGET_DATA)) == (
        "Budget “prod weekly” passed 80% of its amount: $8.50 of $10.00 this week"
    )
    assert summary(event("budget.exceeded", {**BUDGET_DATA, "spend_usd": Decimal("12")})) == (
        "Budget “prod weekly” is over its amount: $12.00 of $10.00 this week"
    )
    assert summary(event("budget.forecast_exceeded", BUDGET_DATA)).startswith(
        "Budget “prod weekly” is heading over its amount: forecast $21.25"
    )
    assert summary(event("budget.recovered", BUDGET_DATA)).startswith("Budget “prod weekly” is back under")
    assert summary(event("key.invalid", KEY_DATA)) == (
        "Key “prod” (sk-or-v1-0e6…c96) was refused by OpenRouter: replace it or delete it"
    )
    assert summary(event("key.expiring", {**KEY_DATA, "expires_at": "2026-12-09T00:00:00Z"})).endswith(
        "expires 2026-12-09 00:00 UTC"
    )
    assert "has used 92% of its $10.00 OpenRouter limit" in summary(
        event("key.limit_threshold_crossed", {**KEY_DATA, "percent_used": "91.6", "limit_usd": "10", "threshold": 10})
    )
    spike = {**KEY_DATA, "kind": "spend_spike", "day": "2026-12-03", "score": 68.0}
    spike["evidence"] = {"spend_usd": "22.5", "baseline_usd": "1.1", "baseline_days": 4}
    assert summary(event("key.anomaly", spike)).endswith(
        ": spend spike on 2026-12-03. Spent $22.50 against a usual $1.10 on this weekday (median of 4 weeks)."
    )
    assert summary(event("key.disabled", {**KEY_DATA, "source": "budget"})).endswith("was disabled at OpenRouter")
    assert summary(event("key.disabled", {**KEY_DATA, "source": "user"})).endswith(
        "was disabled at OpenRouter by a user"
    )
    assert summary(event("sync.failing", {**KEY_DATA, "since": "2026-12-05T12:00:00Z"})).endswith(
        "fails since 2026-12-05 12:00 UTC"
    )
    assert summary(event("sync.recovered", KEY_DATA)) == "Syncing Key “prod” (sk-or-v1-0e6…c96) works again"
    balance = {"management_key_id": "m1", "label": "sk-or-v1-abc…def", "balance_usd": "3.2", "threshold_usd": "5"}
    assert summary(event("account.balance_low", balance)) == (
        "Account “sk-or-v1-abc…def” is low on credit: $3.20 left, under $5.00"
    )
    assert summary(event("account.runway_low", {"runway_days": Decimal("2.25")})) == (
        "An account runs out of credit in about 2.2 days"
    )
    assert summary(event("report.weekly", {"spend_usd": "40", "previous_spend_usd": "32.5"})) == (
        "Weekly report: $40.00 spent, against $32.50 the period before"
    )
    assert summary(event("channel.disabled", {"name": "old", "reason": "the receiver answered 410 Gone"})) == (
        "Channel “old” was disabled: the receiver answered 410 Gone"
    )
    assert summary(event("test", {"name": "Ops Hook"})) == "A test event for the channel “Ops Hook”"
    drift = {"model": "anthropic/claude-sonnet-4", "provider": "Anthropic", "drift_pct": "20.00"}
    assert summary(event("price.drift", {**drift, "week": {"start": "2026-11-23"}})) == (
        "anthropic/claude-sonnet-4 on Anthropic cost 20.00% more per token in the week of 2026-11-23"
    )
    # Missing data is left unsaid, never a crash; an unknown type is named as the API names it.
    for kind in EVENT_TYPES:
        assert summary(event(kind, {}))
    assert summary({"type": "some.future_event", "data": None}) == "some.future_event"


async def test_the_history_shows_each_event_and_its_deliveries(web: Browser) -> None:
    deliveries: list[dict[str, Any]] = [
        {"channel_id": HOOK["id"], "status": "delivered", "attempts": 1},
        {"channel_id": "7a1e2f3c-2222-4a8b-8c9d-000000000000", "status": "failed", "attempts": 8},
    ]
    web.gateway.page("/api/v1/alerts", [event("budget.threshold_crossed", BUDGET_DATA, deliveries)], total=120)
    web.gateway.page("/api/v1/channels", [HOOK])
    r = await web.get("/alerts")
    said = text(r.text)
    assert "2026-12-05 14:03 UTC Budget threshold crossed Budget “prod weekly” passed 80% of its amount" in said
    assert "ops hook: delivered" in said
    assert "a deleted channel: failed" in said
    assert "Page 1 of 3" in said
    assert web.gateway.sent("GET", "/api/v1/alerts")[0].params == {"page": "1", "per_page": "50"}


async def test_no_alert_says_what_comes_here(web: Browser) -> None:
    web.gateway.page("/api/v1/alerts", [])
    web.gateway.page("/api/v1/channels", [])
    said = text((await web.get("/alerts")).text)
    assert "No alert yet." in said
    assert "add a channel" in said


RULES = [
    {"rule": "key.invalid", "enabled": True, "params": {}},
    {"rule": "key.expiring", "enabled": True, "params": {"days": 7}},
    {"rule": "account.balance_low", "enabled": False, "params": {"amount_usd": 5}},
    {"rule": "future.rule", "enabled": True, "params": {"ratio": Decimal("0.5"), "note": "x", "loud": False}},
]


async def test_the_rules_switches_are_read_back_as_the_types_they_had(web: Browser) -> None:
    web.gateway.answer("GET", "/api/v1/alert-rules", {"items": RULES})
    web.gateway.answer("PUT", "/api/v1/alert-rules", {"items": RULES})
    r = await web.get("/alerts/rules")
    assert r.status_code == 200
    assert r.text.count('role="switch"') == 4
    assert 'name="param.key.expiring.days" value="7"' in r.text
    assert "Expiring within (days)" in r.text
    assert "Balance under (USD)" in r.text
    form = {
        "enabled.key.expiring": "true",
        "enabled.account.balance_low": "true",
        "param.key.expiring.days": "14",
        "param.account.balance_low.amount_usd": "12.50",  # money: cents allowed though the API wrote `5`
        "param.future.rule.ratio": "0.25",
        "param.future.rule.note": " y ",
        "param.future.rule.loud": "true",
    }
    r = await web.post("/alerts/rules", form)
    assert r.status_code == 303
    assert r.headers["location"] == "/alerts/rules?done=saved"
    (put,) = web.gateway.sent("PUT", "/api/v1/alert-rules")
    assert put.body == {
        "items": [
            {"rule": "key.invalid", "enabled": False, "params": {}},
            {"rule": "key.expiring", "enabled": True, "params": {"days": 14}},
            {"rule": "account.balance_low", "enabled": True, "params": {"amount_usd": Decimal("12.50")}},
            {"rule": "future.rule", "enabled": False, "params": {"ratio": Decimal("0.25"), "note": "y", "loud": True}},
        ]
    }
    r = await web.get("/alerts/rules", done="saved")
    assert "Alert rules saved." in r.text


async def test_the_anomaly_rule_takes_a_decimal_score(web: Browser) -> None:
    anomaly = {"rule": "key.anomaly", "enabled": True, "params": {"min_score": 0, "min_usd": 1}}
    web.gateway.answer("GET", "/api/v1/alert-rules", {"items": [anomaly]})
    web.gateway.answer("PUT", "/api/v1/alert-rules", {"items": [anomaly]})
    said = text((await web.get("/alerts/rules")).text)
    assert "Tell me when a key departs from its usual days" in said
    assert "Only anomalies scoring at least" in said
    form = {"enabled.key.anomaly": "true", "param.key.anomaly.min_score": "7.5", "param.key.anomaly.min_usd": "2"}
    assert (await web.post("/alerts/rules", form)).status_code == 303
    (put,) = web.gateway.sent("PUT", "/api/v1/alert-rules")
    assert put.body["items"][0]["params"] == {"min_score": Decimal("7.5"), "min_usd": Decimal("2")}


ALL_PARAMS = {
    "param.key.expiring.days": "7",
    "param.account.balance_low.amount_usd": "5",
    "param.future.rule.ratio": "1",
}


async def test_a_rule_parameter_that_is_not_a_number_is_refused_by_the_form(web: Browser) -> None:
    web.gateway.answer("GET", "/api/v1/alert-rules", {"items": RULES})
    r = await web.post("/alerts/rules", {**ALL_PARAMS, "param.key.expiring.days": "a week"})
    assert r.status_code == 422
    assert "Give a whole number." in r.text
    assert 'aria-describedby="rule-1-days-error"' in r.text
    assert not web.gateway.sent("PUT", "/api/v1/alert-rules")


async def test_the_apis_refusal_of_a_rule_is_shown_at_its_field(web: Browser) -> None:
    web.gateway.answer("GET", "/api/v1/alert-rules", {"items": RULES})
    # The API's items are a union tagged by `rule`: its errors name the rule in their location.
    loc = ["body", "items", 1, "key.expiring", "params", "days"]
    problem = {
        "title": "Validation Error",
        "status": 422,
        "detail": "The request is not valid.",
        "errors": [{"loc": loc, "msg": "Input should be less than or equal to 90", "type": "less_than_equal"}],
    }
    web.gateway.answer("PUT", "/api/v1/alert-rules", problem, status=422)
    r = await web.post("/alerts/rules", {**ALL_PARAMS, "param.key.expiring.days": "400"})
    assert r.status_code == 422
    assert '<p id="rule-1-days-error" class="field-error">Input should be less than or equal to 90</p>' in r.text


async def test_the_dashboard_counts_budgets_at_warning_or_over(web: Browser) -> None:
    web.gateway.answer(
        "GET", "/api/v1/usage/summary", {"totals": {}, "by_day": [], "by_model": [], "by_day_model": [], "by_key": []}
    )
    web.gateway.page("/api/v1/usage/accounts", [])
    web.gateway.page("/api/v1/keys", [])
    budgets = [
        {"id": "1", "name": "team", "state": "exceeded", "percent_used": Decimal("120")},
        {"id": "2", "name": "prod", "state": "warning", "percent_used": Decimal("85")},
        {"id": "3", "name": "batch", "state": "ok", "percent_used": Decimal("10")},
    ]
    web.gateway.page("/api/v1/budgets", budgets)
    said = text((await web.get("/")).text)
    assert "Budgets at warning or over 2 of 3 budgets ; team 120%, prod 85%" in said
    assert len(web.gateway.calls) == 5


async def test_a_member_sees_the_rules_but_cannot_save_them(web: Browser) -> None:
    await web.sign_in("member")
    web.gateway.answer("GET", "/api/v1/alert-rules", {"items": RULES})
    r = await web.get("/alerts/rules")
    assert r.status_code == 200
    assert "Save rules" not in r.text
    assert r.text.count(" disabled>") == 5  # the four switches and the one checkbox parameter
    assert 'name="param.key.expiring.days" value="7" maxlength="40" readonly' in r.text


@pytest.mark.parametrize("typed", ["1e99999999999999", "1e999999999", "NaN", "-Infinity", "1" * 41])
async def test_an_unbounded_rule_number_is_the_form_s_error(web: Browser, typed: str) -> None:
    web.gateway.answer("GET", "/api/v1/alert-rules", {"items": RULES})
    r = await web.post("/alerts/rules", {**ALL_PARAMS, "param.account.balance_low.amount_usd": typed})
    assert r.status_code == 422
    assert "Give a number, such as 5 or 12.50." in r.text
    assert not web.gateway.sent("PUT", "/api/v1/alert-rules")
