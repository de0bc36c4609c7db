"""`/insights/hygiene`: the report's findings grouped by kind, suggested limits shown, the empty state, the
reconciliation status line; `/insights/prices`: prices per million tokens and their drift in words;
`/insights/reconciliation`: the gaps with every digit, pages, the empty state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

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


# --- /insights/prices ---------------------------------------------------------------------------------------


def price_row(model: str, provider: str | None, **fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "model": model,
        "provider": provider,
        "key_id": None,
        "requests": 120,
        "prompt_tokens": 1_000_000,
        "completion_tokens": 200_000,
        "cost_usd": Decimal("6.75"),
        "usd_per_mtok": Decimal("5.625"),
        "usd_per_mtok_prompt": Decimal("3.75"),
        "usd_per_mtok_completion": Decimal("15"),
        "previous_usd_per_mtok": Decimal("4.5"),
        "drift_pct": Decimal("25.00"),
        "drift_basis": "split",
    }
    return {**row, **fields}


def prices_report(items: list[dict[str, object]]) -> dict[str, object]:
    return {
        "first_day": "2026-11-21",
        "last_day": "2026-12-04",
        "previous_first_day": "2026-11-07",
        "previous_last_day": "2026-11-20",
        "items": items,
        "total": len(items),
        "page": 1,
        "per_page": 50,
    }


async def test_the_prices_page_shows_per_mtok_figures_and_drift_in_words(web: Browser) -> None:
    items = [
        price_row("anthropic/claude-sonnet-4", "Anthropic"),
        price_row(
            "perplexity/sonar",
            "Perplexity",
            usd_per_mtok=Decimal("0.075"),
            usd_per_mtok_prompt=None,
            usd_per_mtok_completion=None,
            drift_pct=Decimal("-3.10"),
            drift_basis="blended",
        ),
        price_row("openai/gpt-4.1", None, drift_pct=Decimal("0.00")),
        price_row("google/gemini-2.5-flash", "Google", drift_pct=None, drift_basis=None, previous_usd_per_mtok=None),
    ]
    web.gateway.answer("GET", "/api/v1/insights/prices", prices_report(items))
    web.gateway.page("/api/v1/keys", [])
    r = await web.get("/insights/prices", **{"from": "2026-11-21", "to": "2026-12-04"})
    assert r.status_code == 200, r.text
    said = text(r.text)
    assert "2026-11-21 to 2026-12-04, compared with 2026-11-07 to 2026-11-20" in said
    assert (
        "anthropic/claude-sonnet-4 Anthropic 120 1,000,000 / 200,000 $6.75 $5.62 $3.75 $15.00 ▲ up 25.00 %" in said
    )  # half-even
    assert "perplexity/sonar Perplexity 120 1,000,000 / 200,000 $6.75 $0.075 — — ▼ down 3.10 %" in said
    assert "openai/gpt-4.1 — 120" in said
    assert "= unchanged" in said
    assert "no earlier figures" in said
    assert 'value="2026-11-21"' in r.text  # the period as applied fills the form
    assert 'title="Compared at the previous period' in r.text
    assert 'title="Compared by the average price per token' in r.text
    (sent,) = web.gateway.sent("GET", "/api/v1/insights/prices")
    assert sent.params == {"from": "2026-11-21", "to": "2026-12-04", "group_by": "model", "page": "1", "per_page": "50"}


async def test_prices_per_key_name_the_keys_and_an_empty_period_says_what_to_do(web: Browser) -> None:
    key = {"id": KEY, "name": "prod"}
    web.gateway.answer("GET", "/api/v1/insights/prices", prices_report([price_row("m/x", "P", key_id=KEY)]))
    web.gateway.page("/api/v1/keys", [key])
    r = await web.get("/insights/prices", group_by="key")
    assert f'<a href="/keys/{KEY}">prod</a>' in r.text
    assert web.gateway.sent("GET", "/api/v1/insights/prices")[0].params["group_by"] == "key"
    web.gateway.answer("GET", "/api/v1/insights/prices", prices_report([]))
    assert "No per-model activity in this period" in text((await web.get("/insights/prices")).text)


@pytest.mark.parametrize(
    ("page", "api"), [("/insights/prices", "/api/v1/insights/prices"), ("/stats", "/api/v1/usage/daily")]
)
async def test_a_bad_date_is_a_clear_error(web: Browser, page: str, api: str) -> None:
    r = await web.get(page, **{"from": "tomorrow"})
    assert r.status_code == 422
    assert "must be written YYYY-MM-DD" in text(r.text)
    assert not web.gateway.sent("GET", api)


async def test_the_dashboards_models_show_their_price_and_a_rise_in_words(web: Browser) -> None:
    by_model = [
        {"model": "anthropic/claude-sonnet-4", "cost": Decimal("9"), "requests": 10},
        {"model": "openai/gpt-4.1", "cost": Decimal("4"), "requests": 5},
        {"model": None, "cost": Decimal("1"), "requests": None},
    ]
    summary = {"totals": {}, "by_day": [], "by_model": by_model, "by_day_model": [], "by_key": []}
    web.gateway.answer("GET", "/api/v1/usage/summary", summary)
    web.gateway.page("/api/v1/usage/accounts", [])
    web.gateway.page("/api/v1/keys", [])
    rows = [
        # 2,000,000 tokens for $9 over two providers: $4.50 per million; the rise is Anthropic's.
        price_row("anthropic/claude-sonnet-4", "Anthropic", prompt_tokens=900_000, completion_tokens=100_000),
        price_row(
            "anthropic/claude-sonnet-4",
            "Bedrock",
            cost_usd=Decimal("2.25"),
            prompt_tokens=900_000,
            completion_tokens=100_000,
            drift_pct=Decimal("-2.00"),
        ),
        price_row("openai/gpt-4.1", "OpenAI", drift_pct=Decimal("0.00"), cost_usd=Decimal("0.6")),
    ]
    web.gateway.answer("GET", "/api/v1/insights/prices", prices_report(rows))
    said = text((await web.get("/")).text)
    assert "anthropic/claude-sonnet-4 $9.00 10 $4.50 ▲ up 25.00 % on Anthropic" in said
    assert "openai/gpt-4.1 $4.00 5 $0.50 no rise" in said
    assert "no per-model breakdown $1.00 — — —" in said
    # A cheap read: the last 7 complete days (against the 7 before), one page for the tile's models.
    (sent,) = web.gateway.sent("GET", "/api/v1/insights/prices")
    today = datetime.now(UTC).date()
    assert sent.params["from"] == (today - timedelta(days=7)).isoformat()
    assert sent.params["to"] == (today - timedelta(days=1)).isoformat()
    assert sent.params["per_page"] == "100"
    assert f"the last 7 complete days ({sent.params['from']} to {sent.params['to']})" in said


@pytest.mark.parametrize("status", [429, 503])
async def test_the_dashboard_shows_its_models_without_prices_when_they_cannot_be_read(
    web: Browser, status: int
) -> None:
    by_model = [{"model": "openai/gpt-4.1", "cost": Decimal("4"), "requests": 5}]
    summary = {"totals": {}, "by_day": [], "by_model": by_model, "by_day_model": [], "by_key": []}
    web.gateway.answer("GET", "/api/v1/usage/summary", summary)
    web.gateway.page("/api/v1/usage/accounts", [])
    web.gateway.page("/api/v1/keys", [])
    problem = {"title": "Too Many Concurrent Requests", "status": status}
    web.gateway.answer("GET", "/api/v1/insights/prices", problem, status=status, **{"Retry-After": "1"})
    r = await web.get("/")
    assert r.status_code == 200
    said = text(r.text)
    assert "openai/gpt-4.1 $4.00 5 — —" in said
    assert "Prices could not be loaded just now" in said


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
