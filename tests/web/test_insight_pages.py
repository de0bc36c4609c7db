"""`/insights/hygiene`: the report's findings grouped by kind, suggested limits shown, the empty state."""

from __future__ import annotations

from decimal import Decimal

from tests.web.conftest import Browser, text

KEY = "0d3c4a6e-1111-4c1e-9d51-3f7b2c1a0001"


async def test_the_hygiene_page_groups_findings_and_shows_suggested_limits(web: Browser) -> None:
    suggested = [
        {"amount_usd": Decimal("1.5"), "reset": "daily"},
        {"amount_usd": Decimal("7.25"), "reset": "weekly"},
        {"amount_usd": Decimal("30"), "reset": "monthly"},
    ]
    items = [
        {
            "finding": "expiring",
            "key_id": KEY,
            "hash": None,
            "name": "sk-or-v1-0e6…c96",
            "reason": "The key expires on 2026-12-08.",
            "action": "Rotate the key.",
            "suggested_limit": None,
            "suggested_limits": [],
        },
        {
            "finding": "no_limit",
            "key_id": KEY,
            "hash": None,
            "name": "sk-or-v1-0e6…c96",
            "reason": "The key has no spending limit.",
            "action": "Set a limit.",
            "suggested_limit": suggested[2],
            "suggested_limits": suggested,
        },
        {
            "finding": "untracked_in_account",
            "key_id": None,
            "hash": "abc",
            "name": "ci bot",
            "reason": "An account lists this key.",
            "action": "Store the key here.",
            "suggested_limit": None,
            "suggested_limits": [],
        },
    ]
    web.gateway.answer("GET", "/api/v1/insights/hygiene", {"items": items})
    r = await web.get("/insights/hygiene")
    assert r.status_code == 200
    said = text(r.text)
    assert "Expiring or expired (1)" in said
    assert "No spending limit (1)" in said
    assert "$1.50 daily, $7.25 weekly, $30.00 monthly" in said
    assert "Listed by an account, not stored here (1)" in said
    assert said.index("Expiring") < said.index("No spending limit") < said.index("Listed by an account")
    assert f'href="/keys/{KEY}"' in r.text


async def test_a_clean_workspace_says_so(web: Browser) -> None:
    web.gateway.answer("GET", "/api/v1/insights/hygiene", {"items": []})
    assert "Nothing to report" in text((await web.get("/insights/hygiene")).text)
