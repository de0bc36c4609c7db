"""Issue 17's pages: the key's state at OpenRouter with "Enable at OpenRouter" when the kill switch disabled it and
"Disable at OpenRouter" (the panic button, behind a confirmation) when it is enabled, the hygiene page's "Apply
suggested limit", and the budget form's kill switch (key budgets only)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from owr_web.views.forms import parse_number
from tests.web.conftest import Browser, text
from tests.web.test_budget_pages import KEY, lists
from tests.web.test_insight_pages import RECONCILIATION, reconciliation

ACCOUNT = "0d3c4a6e-1111-4c1e-9d51-3f7b2c1a0002"
KEY_VIEW = {
    **KEY,
    "is_active": True,
    "limit_reset": None,
    "expires_at": None,
    "last_synced_at": "2026-12-05T10:00:00Z",
    "last_error": None,
    "created_at": "2026-12-01T00:00:00Z",
}


def upstream(**changes: Any) -> dict[str, Any]:
    return {
        "key_id": KEY["id"],
        "linked": True,
        "management_key_id": ACCOUNT,
        "disabled": True,
        "limit_usd": None,
        "limit_reset": None,
        "observed_at": "2026-12-05T10:00:00Z",
        "anomaly_score": None,
        "actions": [
            {
                "id": "9f1e2d3c-4444-4b5a-8c7d-6e5f4a3b2c01",
                "key_id": KEY["id"],
                "kind": "disable",
                "status": "done",
                "source": "budget",
                "reason": "budget 'prod weekly' exceeded",
                "requested_by": None,
                "budget_id": None,
                "limit_usd": None,
                "limit_reset": None,
                "evidence": {},
                "error": None,
                "attempts": 1,
                "created_at": "2026-12-05T10:01:00Z",
                "completed_at": "2026-12-05T10:01:02Z",
            }
        ],
        **changes,
    }


def key_page(web: Browser, state: dict[str, Any] | None) -> None:
    key_id = KEY["id"]
    web.gateway.answer("GET", f"/api/v1/keys/{key_id}", KEY_VIEW)
    web.gateway.page(f"/api/v1/keys/{key_id}/audit", [])
    if state is not None:
        web.gateway.answer("GET", f"/api/v1/keys/{key_id}/upstream", state)


async def test_a_disabled_key_says_so_and_offers_to_enable_it(web: Browser) -> None:
    key_page(web, upstream())
    r = await web.get(f"/keys/{KEY['id']}")
    assert r.status_code == 200, r.text
    said = text(r.text)
    assert "disabled at OpenRouter" in said
    assert "budget 'prod weekly' exceeded" in said or "budget &#39;prod weekly&#39; exceeded" in r.text
    assert f'action="/keys/{KEY["id"]}/enable-upstream"' in r.text
    web.gateway.answer("POST", f"/api/v1/keys/{KEY['id']}/enable-upstream", {"id": "x", "kind": "enable"}, status=202)
    r = await web.post(f"/keys/{KEY['id']}/enable-upstream")
    assert (r.status_code, r.headers["location"]) == (303, f"/keys/{KEY['id']}?done=enabled")
    assert len(web.gateway.sent("POST", f"/api/v1/keys/{KEY['id']}/enable-upstream")) == 1
    assert "enabled at OpenRouter again" in text((await web.get(f"/keys/{KEY['id']}", done="enabled")).text)


async def test_an_enabled_or_unknown_key_offers_no_button(web: Browser) -> None:
    key_page(web, upstream(disabled=False, actions=[]))
    r = await web.get(f"/keys/{KEY['id']}")
    assert "enable-upstream" not in r.text
    assert "At OpenRouter" in text(r.text)
    key_page(web, None)  # never synced: usage has no state for it (404)
    web.gateway.answers.pop(("GET", f"/api/v1/keys/{KEY['id']}/upstream"), None)
    r = await web.get(f"/keys/{KEY['id']}")
    assert r.status_code == 200
    assert "At OpenRouter" not in text(r.text)


async def test_a_refused_enable_is_said_on_the_page(web: Browser) -> None:
    key_page(web, upstream())
    web.gateway.answer(
        "POST",
        f"/api/v1/keys/{KEY['id']}/enable-upstream",
        {"title": "Forbidden", "status": 403, "detail": "This needs the admin role."},
        status=403,
    )
    r = await web.post(f"/keys/{KEY['id']}/enable-upstream")
    assert r.status_code == 403
    assert "This needs the admin role." in text(r.text)


DISABLE = f"/api/v1/keys/{KEY['id']}/disable-upstream"
DISABLE_FORM = f'action="/keys/{KEY["id"]}/disable-upstream"'


async def test_an_enabled_key_can_be_disabled_at_openrouter_after_a_confirmation(web: Browser) -> None:
    key_page(web, upstream(disabled=False, actions=[]))
    r = await web.get(f"/keys/{KEY['id']}")
    assert DISABLE_FORM in r.text
    # The form sits inside a closed <details>: opening it is the first step, its button the confirmation.
    form = r.text[
        r.text.index('<details class="disable-upstream">') : r.text.index("</details>", r.text.index(DISABLE_FORM))
    ]
    assert DISABLE_FORM in form
    assert 'name="csrf_token"' in form
    assert "Yes, disable the key at OpenRouter now" in text(form)
    assert "enable-upstream" not in r.text
    web.gateway.answer("POST", DISABLE, {"id": "x", "kind": "disable"}, status=202)
    r = await web.post(f"/keys/{KEY['id']}/disable-upstream", {"reason": "  leaked in a public repo "})
    assert (r.status_code, r.headers["location"]) == (303, f"/keys/{KEY['id']}?done=disabled")
    r = await web.post(f"/keys/{KEY['id']}/disable-upstream", {"reason": "   "})
    assert r.status_code == 303
    assert [c.body for c in web.gateway.sent("POST", DISABLE)] == [{"reason": "leaked in a public repo"}, None]
    said = text((await web.get(f"/keys/{KEY['id']}", done="disabled")).text)
    assert "disabled at OpenRouter within moments" in said
    # Without the form's CSRF token nothing is sent.
    refused = await web.post(f"/keys/{KEY['id']}/disable-upstream", {"reason": "x"}, csrf=False)
    assert refused.status_code == 403
    assert len(web.gateway.sent("POST", DISABLE)) == 2


@pytest.mark.parametrize(
    "state",
    [
        upstream(),  # disabled already: the enable button instead
        upstream(linked=False, disabled=None, actions=[]),  # nothing here could send it
    ],
)
async def test_a_disabled_or_unlinked_key_offers_no_disable(web: Browser, state: dict[str, Any]) -> None:
    key_page(web, state)
    r = await web.get(f"/keys/{KEY['id']}")
    assert r.status_code == 200
    assert DISABLE_FORM not in r.text


async def test_a_disable_under_way_is_said_and_not_offered_again(web: Browser) -> None:
    [done] = upstream()["actions"]
    key_page(web, upstream(disabled=False, actions=[{**done, "status": "pending", "source": "user"}]))
    r = await web.get(f"/keys/{KEY['id']}")
    assert "A disable of this key at OpenRouter is under way." in text(r.text)
    assert DISABLE_FORM not in r.text


async def test_a_member_is_not_offered_the_disable(web: Browser) -> None:
    await web.sign_in("member")
    key_page(web, upstream(disabled=False, actions=[]))
    r = await web.get(f"/keys/{KEY['id']}")
    assert "At OpenRouter" in text(r.text)
    assert DISABLE_FORM not in r.text


async def test_a_refused_disable_is_said_on_the_page(web: Browser) -> None:
    key_page(web, upstream(disabled=False, actions=[]))
    detail = "OpenRouter has this key disabled already; POST /api/v1/keys/{id}/enable-upstream enables it again."
    web.gateway.answer("POST", DISABLE, {"title": "Key Already Disabled", "status": 409, "detail": detail}, status=409)
    r = await web.post(f"/keys/{KEY['id']}/disable-upstream")
    assert r.status_code == 409
    assert "OpenRouter has this key disabled already" in text(r.text)


async def test_the_hygiene_page_applies_a_suggested_limit_in_one_post(web: Browser) -> None:
    suggested = {"amount_usd": Decimal("30"), "reset": "monthly"}
    item = {
        "finding": "no_limit",
        "key_id": KEY["id"],
        "hash": None,
        "name": "sk-or-v1-0e6…c96",
        "reason": "The key has no spending limit.",
        "action": "Set a limit.",
        "suggested_limit": suggested,
        "suggested_limits": [suggested],
    }
    web.gateway.answer("GET", "/api/v1/insights/hygiene", {"items": [item]})
    web.gateway.answer("GET", RECONCILIATION, reconciliation([]))
    r = await web.get("/insights/hygiene")
    assert 'action="/insights/hygiene/apply-limit"' in r.text
    assert "Apply suggested limit ($30.00 monthly)" in text(r.text)
    path = f"/api/v1/keys/{KEY['id']}/apply-limit"
    web.gateway.answer("POST", path, {"id": "x", "kind": "set_limit"}, status=202)
    r = await web.post("/insights/hygiene/apply-limit", {"key_id": KEY["id"], "amount_usd": "30", "reset": "monthly"})
    assert (r.status_code, r.headers["location"]) == (303, "/insights/hygiene?done=limit")
    (call,) = web.gateway.sent("POST", path)
    assert call.body == {"amount_usd": Decimal("30"), "reset": "monthly"}
    assert "suggested limit is set at OpenRouter" in text((await web.get("/insights/hygiene", done="limit")).text)
    refused = await web.post("/insights/hygiene/apply-limit", {"key_id": KEY["id"], "amount_usd": "30"}, csrf=False)
    assert refused.status_code == 403
    assert len(web.gateway.sent("POST", path)) == 1


NOT_LINKED = {
    "type": "https://openrouter-watcher.dev/problems/key-not-linked",
    "title": "Key Not Linked",
    "status": 409,
    "detail": "The key is not linked to an OpenRouter account: store the account's management key here and let it "
    "sync, or change the key at openrouter.ai.",
}


async def test_an_unlinked_key_s_enable_is_refused_on_the_key_page(web: Browser) -> None:
    """enable-upstream's 409 `key-not-linked` (as disable-upstream's) is said on the key page, with its status."""
    key_page(web, upstream())
    web.gateway.answer("POST", f"/api/v1/keys/{KEY['id']}/enable-upstream", NOT_LINKED, status=409)
    r = await web.post(f"/keys/{KEY['id']}/enable-upstream")
    assert r.status_code == 409
    assert "The key is not linked to an OpenRouter account" in text(r.text)
    assert "At OpenRouter" in text(r.text)  # the key's page, not a bare error


async def test_an_unlinked_key_s_suggested_limit_is_refused_on_the_hygiene_page(web: Browser) -> None:
    web.gateway.answer("GET", "/api/v1/insights/hygiene", {"items": []})
    web.gateway.answer("GET", RECONCILIATION, reconciliation([]))
    web.gateway.answer("POST", f"/api/v1/keys/{KEY['id']}/apply-limit", NOT_LINKED, status=409)
    r = await web.post("/insights/hygiene/apply-limit", {"key_id": KEY["id"], "amount_usd": "30", "reset": "monthly"})
    assert r.status_code == 409
    assert "The key is not linked to an OpenRouter account" in text(r.text)
    assert "Key hygiene" in text(r.text)


async def test_the_budget_form_sends_the_kill_switch_for_key_budgets_only(web: Browser) -> None:
    lists(web, [])
    r = await web.get("/budgets")
    assert 'name="disable_key_on_exceed"' in r.text
    web.gateway.answer("POST", "/api/v1/budgets", {}, status=201)
    form = {"name": "all", "scope_type": "workspace", "amount_usd": "5", "period": "daily", "thresholds": "100"}
    await web.post("/budgets", {**form, "disable_key_on_exceed": "true"})
    (call,) = web.gateway.sent("POST", "/api/v1/budgets")
    assert "disable_key_on_exceed" not in call.body


async def test_a_member_sees_the_state_but_no_button(web: Browser) -> None:
    await web.sign_in("member")
    key_page(web, upstream())
    r = await web.get(f"/keys/{KEY['id']}")
    assert "disabled at OpenRouter" in text(r.text)
    assert "enable-upstream" not in r.text


async def test_the_anomaly_kill_switch_is_set_and_cleared_from_the_key_page(web: Browser) -> None:
    key_page(web, upstream(disabled=False, actions=[], anomaly_score=None))
    r = await web.get(f"/keys/{KEY['id']}")
    assert f'action="/keys/{KEY["id"]}/kill-switch"' in r.text
    path = f"/api/v1/keys/{KEY['id']}/kill-switch"
    web.gateway.answer("PUT", path, upstream(anomaly_score=Decimal(8)))
    r = await web.post(f"/keys/{KEY['id']}/kill-switch", {"anomaly_score": " 8 "})
    assert (r.status_code, r.headers["location"]) == (303, f"/keys/{KEY['id']}?done=switch")
    await web.post(f"/keys/{KEY['id']}/kill-switch", {"anomaly_score": ""})
    assert [c.body for c in web.gateway.sent("PUT", path)] == [{"anomaly_score": "8"}, {"anomaly_score": None}]
    web.gateway.answer(
        "PUT",
        path,
        {"title": "Validation Error", "status": 422, "detail": "anomaly_score: must be above 0"},
        status=422,
    )
    r = await web.post(f"/keys/{KEY['id']}/kill-switch", {"anomaly_score": "-1"})
    assert r.status_code == 422
    assert "must be above 0" in text(r.text)


async def test_a_management_key_has_no_upstream_section(web: Browser) -> None:
    key_page(web, upstream(linked=False, disabled=None, actions=[]))
    web.gateway.answer("GET", f"/api/v1/keys/{KEY['id']}", {**KEY_VIEW, "kind": "management"})
    r = await web.get(f"/keys/{KEY['id']}")
    assert "At OpenRouter" not in text(r.text)


# Numbers a form must refuse before `Decimal` builds them or the API's body carries them: a JSON encoder's
# TypeError (a huge exponent), a gigabyte of digits once formatted, NaN and infinities (not JSON), too long.
UNBOUNDED = ["1e99999999999999", "1e999999999", "1E-999999999", "NaN", "-sNaN", "Infinity", "-inf", "1" * 41]


@pytest.mark.parametrize("typed", ["12.50", " 30 ", "1e3", "0.0000000001", "-5"])
def test_a_bounded_number_parses_exactly(typed: str) -> None:
    assert parse_number(typed) == Decimal(typed.strip())


@pytest.mark.parametrize("typed", [*UNBOUNDED, "", "ten", "1,5"])
def test_an_unbounded_number_is_none(typed: str) -> None:
    assert parse_number(typed) is None


@pytest.mark.parametrize("typed", UNBOUNDED[:-1])
async def test_apply_limit_refuses_an_unbounded_amount_with_the_page_s_error(web: Browser, typed: str) -> None:
    web.gateway.answer("GET", "/api/v1/insights/hygiene", {"items": []})
    web.gateway.answer("GET", RECONCILIATION, reconciliation([]))
    r = await web.post("/insights/hygiene/apply-limit", {"key_id": KEY["id"], "amount_usd": typed})
    assert r.status_code == 422
    assert "The suggested limit is not an amount." in text(r.text)
    assert not web.gateway.sent("POST", f"/api/v1/keys/{KEY['id']}/apply-limit")
