"""`/insights/hygiene`: the report's findings grouped by kind, suggested limits shown, the empty state, the
reconciliation status line; `/insights/reconciliation`: the gaps with every digit, pages, the empty state."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.web.conftest import Browser, text

KEY = "0d3c4a6e-1111-4c1e-9d51-3f7b2c1a0001"
RECONCILIATION = "/api/v1/insights/reconciliation"


def reconciliation(items: list[dict[str, Any]], total: int | None = None, page: int = 1) -> dict[str, Any]:
    return {
        "items": items,
        "total": len(items) if total is None else total,
        "page": page,
        "per_page": 50,
        "first_day": "2026-11-05",
        "last_day": "2026-12-04",
    }


def gap(day: str, snapshot: str, activity: str, byok_gap: str = "0") -> dict[str, Any]:
    return {
        "key_id": KEY,
        "label": "sk-or-v1-0e6...c96",
        "day": day,
        "snapshot_usd": Decimal(snapshot),
        "activity_usd": Decimal(activity),
        "gap_usd": Decimal(snapshot) - Decimal(activity),
        "snapshot_byok_usd": Decimal(0),
        "activity_byok_usd": Decimal(0),
        "byok_gap_usd": Decimal(byok_gap),
    }


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
    web.gateway.answer("GET", RECONCILIATION, reconciliation([gap("2026-12-01", "1", "0.9")], total=3))
    r = await web.get("/insights/hygiene")
    assert r.status_code == 200
    said = text(r.text)
    assert "Expiring or expired (1)" in said
    assert "No spending limit (1)" in said
    assert "$1.50 daily, $7.25 weekly, $30.00 monthly" in said
    assert "Listed by an account, not stored here (1)" in said
    assert said.index("Expiring") < said.index("No spending limit") < said.index("Listed by an account")
    assert f'href="/keys/{KEY}"' in r.text
    assert "Figures reconciled: 3 gaps in the last 30 days." in said
    assert 'href="/insights/reconciliation"' in r.text


async def test_a_clean_workspace_says_so(web: Browser) -> None:
    web.gateway.answer("GET", "/api/v1/insights/hygiene", {"items": []})
    web.gateway.answer("GET", RECONCILIATION, reconciliation([]))
    said = text((await web.get("/insights/hygiene")).text)
    assert "Nothing to report" in said
    assert "Figures reconciled: no gaps in the last 30 days." in said


async def test_the_reconciliation_page_lists_gaps_with_every_digit(web: Browser) -> None:
    items = [gap("2026-12-03", "3.0000000001", "5.5000000001"), gap("2026-11-28", "1.2345678901", "1.2345667901", "0")]
    web.gateway.answer("GET", RECONCILIATION, reconciliation(items, total=51))
    r = await web.get("/insights/reconciliation", page=1)
    assert r.status_code == 200
    said = text(r.text)
    assert "Figures reconciled: 51 gaps in the last 30 days." in said
    assert "Days that do not add up (51)" in said
    assert "$1.2345678901 $1.2345667901 $0.0000011" in said
    assert said.index("2026-12-03") < said.index("2026-11-28")
    assert f'href="/keys/{KEY}"' in r.text
    assert 'href="/insights/reconciliation?page=2"' in r.text  # 51 gaps: two pages
    [call] = [c for c in web.gateway.calls if c.path == RECONCILIATION]
    assert (call.params["page"], call.params["per_page"]) == ("1", "50")


async def test_a_reconciled_workspace_says_every_day_adds_up(web: Browser) -> None:
    web.gateway.answer("GET", RECONCILIATION, reconciliation([]))
    said = text((await web.get("/insights/reconciliation")).text)
    assert "Figures reconciled: no gaps in the last 30 days." in said
    assert "Every compared day adds up." in said


async def test_a_page_past_the_last_gap_points_back_to_the_first(web: Browser) -> None:
    web.gateway.answer("GET", RECONCILIATION, reconciliation([], total=3, page=9))
    said = text((await web.get("/insights/reconciliation", page=9)).text)
    assert "No gaps on this page." in said
    assert "Every compared day adds up" not in said
