"""`/budgets`: the bars, states and outlooks as rendered from the API's views; the form's body, and its refusals
shown next to the fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.web.conftest import Browser, text

KEY = {
    "id": "0d3c4a6e-1111-4c1e-9d51-3f7b2c1a0001",
    "name": "prod",
    "label": "sk-or-v1-0e6…c96",
    "kind": "inference",
    "status": "valid",
    "limit": None,
    "limit_remaining": None,
}
MGMT = {
    "id": "0d3c4a6e-1111-4c1e-9d51-3f7b2c1a0002",
    "name": "billing",
    "label": "sk-or-v1-abc…def",
    "kind": "management",
    "status": "valid",
    "limit": None,
    "limit_remaining": None,
}
HOOK = {
    "id": "7a1e2f3c-2222-4a8b-8c9d-1e2f3a4b5c01",
    "type": "webhook",
    "name": "ops hook",
    "target_hint": "https://hooks.example",
    "events": None,
    "enabled": True,
}
BUDGET_ID = "5b2d9c7e-3333-4f6a-9b8c-7d6e5f4a3b01"


def budget(**changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": BUDGET_ID,
        "name": "prod weekly",
        "scope": {"type": "key", "id": KEY["id"]},
        "amount_usd": Decimal("10"),
        "period": "weekly",
        "thresholds": [50, 80, 100],
        "include_byok": False,
        "channel_ids": [HOOK["id"]],
        "period_start": (now - timedelta(days=2)).isoformat(),
        "resets_at": (now + timedelta(days=5)).replace(hour=0, minute=0, second=0, microsecond=0).isoformat(),
        "spend_usd": Decimal("8.5"),
        "provisional": True,
        "percent_used": Decimal("85.00"),
        "forecast_usd": Decimal("21.25"),
        "projected_cross_at": (now + timedelta(hours=10)).replace(minute=0, second=0, microsecond=0).isoformat(),
        "state": "warning",
        **changes,
    }


def lists(web: Browser, budgets: list[dict[str, Any]]) -> None:
    web.gateway.page("/api/v1/budgets", budgets)
    web.gateway.page("/api/v1/keys", [KEY, MGMT])
    web.gateway.page("/api/v1/channels", [HOOK])


async def test_a_budget_shows_its_bar_state_reset_and_outlook(web: Browser) -> None:
    over = budget(
        id="5b2d9c7e-3333-4f6a-9b8c-7d6e5f4a3b02",
        name="team",
        scope={"type": "workspace"},
        spend_usd=Decimal("12"),
        percent_used=Decimal("120"),
        state="exceeded",
        provisional=False,
        projected_cross_at=None,
        channel_ids=["7a1e2f3c-2222-4a8b-8c9d-000000000000"],
    )
    lists(web, [budget(), over])
    r = await web.get("/budgets")
    assert r.status_code == 200
    said = text(r.text)
    assert 'value="85.00"' in r.text  # the bar
    assert "$8.50 of $10.00 (85%)" in said
    assert "Warning" in said
    assert "provisional" in said
    assert "Key “prod”; alerts to ops hook" in said
    assert "Whole workspace; alerts to a deleted channel" in said
    resets = datetime.fromisoformat(budget()["resets_at"])
    assert f"resets {resets:%a} 00:00 UTC" in said
    assert "Forecast $21.25 by the reset; hits $10.00" in said
    # Over its amount: the bar is full, the text says how far, the state is said in words.
    assert 'value="100"' in r.text
    assert "$12.00 of $10.00 (120%)" in said
    assert "Over budget" in said
    assert "Whole workspace" in said
    # The list, the keys (for names and the picker) and the channels: three calls, none per budget.
    assert sorted(c.path for c in web.gateway.calls) == ["/api/v1/budgets", "/api/v1/channels", "/api/v1/keys"]


async def test_no_budget_says_what_to_do(web: Browser) -> None:
    lists(web, [])
    r = await web.get("/budgets")
    assert "Create your first budget below" in text(r.text)
    assert "billing (sk-or-v1-abc…def)" in r.text  # the account picker offers the management key


async def test_creating_a_budget_sends_the_apis_body(web: Browser) -> None:
    lists(web, [])
    web.gateway.answer("POST", "/api/v1/budgets", budget(), status=201)
    form = {
        "name": " prod weekly ",
        "scope_type": "key",
        "key_id": KEY["id"],
        "account_id": "",
        "amount_usd": "10.005",
        "period": "weekly",
        "thresholds": "50, 80 ,100%",
        "include_byok": "true",
        "disable_key_on_exceed": "true",
        "channel_ids": HOOK["id"],
    }
    r = await web.post("/budgets", form)
    assert r.status_code == 303
    assert r.headers["location"] == "/budgets?done=created"
    (call,) = web.gateway.sent("POST", "/api/v1/budgets")
    assert call.body == {
        "name": "prod weekly",
        "period": "weekly",
        "include_byok": True,
        "amount_usd": Decimal("10.005"),  # exact, as typed
        "thresholds": [50, 80, 100],
        "channel_ids": [HOOK["id"]],
        "disable_key_on_exceed": True,  # the kill switch, a key budget's alone
        "scope": {"type": "key", "id": KEY["id"]},
    }
    r = await web.get("/budgets", done="created")
    assert "Budget created." in r.text


async def test_the_forms_own_refusals_never_reach_the_api(web: Browser) -> None:
    lists(web, [])
    r = await web.post("/budgets", {"name": "x", "scope_type": "key", "amount_usd": "ten", "thresholds": "half"})
    assert r.status_code == 422
    assert not web.gateway.sent("POST", "/api/v1/budgets")
    assert 'id="amount_usd-error"' in r.text
    assert 'aria-describedby="amount_usd-error"' in r.text
    assert "Choose the key this budget watches." in r.text
    assert "Give whole percentages" in r.text
    assert 'value="ten"' in r.text  # what was typed comes back


async def test_the_apis_field_errors_show_next_to_their_fields(web: Browser) -> None:
    lists(web, [])
    problem = {
        "title": "Validation Error",
        "status": 422,
        "detail": "The request is not valid.",
        "errors": [
            {"loc": ["body", "amount_usd"], "msg": "Input should be greater than 0", "type": "greater_than"},
            {
                "loc": ["body", "thresholds", 1],
                "msg": "Value error, thresholds run from 1 to 1000",
                "type": "value_error",
            },
        ],
    }
    web.gateway.answer("POST", "/api/v1/budgets", problem, status=422)
    r = await web.post(
        "/budgets", {"name": "team", "scope_type": "workspace", "amount_usd": "-1", "thresholds": "50, 0"}
    )
    assert r.status_code == 422
    assert '<p id="amount_usd-error" class="field-error">Input should be greater than 0</p>' in r.text
    assert '<p id="thresholds-error" class="field-error">thresholds run from 1 to 1000</p>' in r.text
    assert 'value="team"' in r.text


async def test_a_conflict_is_said_above_the_form(web: Browser) -> None:
    lists(web, [])
    web.gateway.answer(
        "POST",
        "/api/v1/budgets",
        {"title": "Conflict", "status": 409, "detail": "A budget with this name exists."},
        status=409,
    )
    r = await web.post("/budgets", {"name": "team", "amount_usd": "5"})
    assert r.status_code == 422
    assert '<p class="message error" role="alert">A budget with this name exists.</p>' in r.text


async def test_editing_patches_without_the_scope(web: Browser) -> None:
    lists(web, [])
    web.gateway.answer("GET", f"/api/v1/budgets/{BUDGET_ID}", budget())
    web.gateway.answer("PATCH", f"/api/v1/budgets/{BUDGET_ID}", budget(amount_usd=Decimal("20")))
    r = await web.get(f"/budgets/{BUDGET_ID}/edit")
    assert r.status_code == 200
    assert 'value="10"' in r.text
    assert "Key “prod”" in text(r.text)
    r = await web.post(
        f"/budgets/{BUDGET_ID}/edit",
        {"name": "prod weekly", "scope_type": "key", "amount_usd": "20", "period": "weekly", "thresholds": "80"},
    )
    assert r.status_code == 303
    (call,) = web.gateway.sent("PATCH", f"/api/v1/budgets/{BUDGET_ID}")
    assert "scope" not in call.body
    assert call.body["thresholds"] == [80]
    assert call.body["channel_ids"] == []


async def test_deleting_asks_first(web: Browser) -> None:
    web.gateway.answer("GET", f"/api/v1/budgets/{BUDGET_ID}", budget())
    web.gateway.answer("DELETE", f"/api/v1/budgets/{BUDGET_ID}", None, status=204)
    r = await web.get(f"/budgets/{BUDGET_ID}/delete")
    assert "Delete the budget “prod weekly”?" in r.text
    assert not web.gateway.sent("DELETE", f"/api/v1/budgets/{BUDGET_ID}")
    r = await web.post(f"/budgets/{BUDGET_ID}/delete")
    assert r.status_code == 303
    assert len(web.gateway.sent("DELETE", f"/api/v1/budgets/{BUDGET_ID}")) == 1


async def test_a_post_without_the_csrf_token_is_refused(web: Browser) -> None:
    r = await web.post("/budgets", {"name": "x", "amount_usd": "5"}, csrf=False)
    assert r.status_code == 403
    assert not web.gateway.calls


async def test_another_workspaces_budget_is_a_404_page(web: Browser) -> None:
    r = await web.get(f"/budgets/{BUDGET_ID}/edit")
    assert r.status_code == 404
    assert "belongs to another workspace" in r.text


async def test_a_busy_api_is_a_page_that_says_when_to_try_again(web: Browser) -> None:
    web.gateway.answer(
        "GET", "/api/v1/budgets", {"title": "Service Overloaded", "status": 503}, status=503, **{"Retry-After": "7"}
    )
    web.gateway.page("/api/v1/keys", [])
    web.gateway.page("/api/v1/channels", [])
    r = await web.get("/budgets")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "7"
    assert "Try again in 7 seconds." in r.text


async def test_a_member_sees_budgets_but_no_action(web: Browser) -> None:
    """Budgets are an admin's to change (the API refuses anyone else): the page offers a member nothing to post."""
    await web.sign_in("member")
    lists(web, [budget()])
    r = await web.get("/budgets")
    assert r.status_code == 200
    assert "$8.50 of $10.00" in text(r.text)
    assert 'action="/budgets"' not in r.text
    assert "/edit" not in r.text
    assert "/delete" not in r.text
    assert "changed by the workspace's admins" in r.text
