"""The budgets pages' figures and form: each budget's bar, state, reset and outlook said in words; the form read
into the API's body (DESIGN §11) and its refusals mapped back to the fields."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from owr_web.api.client import Api
from owr_web.budgets.schemas import BudgetForm
from owr_web.views.format import as_decimal, moment, usd

PER_PAGE = 50
CHOICES_PER_PAGE = 250
SCOPES = {"workspace": "The whole workspace", "key": "One key", "account": "One OpenRouter account"}
PERIODS = {
    "daily": "Daily, from 00:00 UTC",
    "weekly": "Weekly, from Monday 00:00 UTC",
    "monthly": "Monthly, from the 1st 00:00 UTC",
}
STATES = {"ok": "On track", "warning": "Warning", "exceeded": "Over budget"}
DEFAULT_THRESHOLDS = "50, 80, 100"


@dataclass(slots=True)
class Choices:
    """What the form offers: keys (any), accounts (management keys) and channels, with names by id."""

    keys: list[dict[str, Any]]
    accounts: list[dict[str, Any]]
    channels: list[dict[str, Any]]
    key_names: dict[str, str] = field(default_factory=dict)
    channel_names: dict[str, str] = field(default_factory=dict)


async def choices(api: Api) -> Choices:
    keys, channels = await asyncio.gather(
        api.get("/api/v1/keys", per_page=CHOICES_PER_PAGE), api.channels(per_page=CHOICES_PER_PAGE)
    )
    keys, channels = keys["items"], channels["items"]
    return Choices(
        keys=keys,
        accounts=[k for k in keys if k.get("kind") == "management"],
        channels=channels,
        key_names={str(k["id"]): str(k["name"]) for k in keys},
        channel_names={str(c["id"]): str(c["name"]) for c in channels},
    )


def scope_label(budget: dict[str, Any], key_names: dict[str, str]) -> str:
    scope = budget.get("scope") or {}
    kind, scope_id = scope.get("type"), str(scope.get("id") or "")
    if kind == "key":
        return f"Key \u201c{key_names[scope_id]}\u201d" if scope_id in key_names else "A key no longer stored"
    if kind == "account":
        return (
            f"Account of \u201c{key_names[scope_id]}\u201d" if scope_id in key_names else "An account no longer stored"
        )
    return "Whole workspace"


def outlook(budget: dict[str, Any], now: datetime | None = None) -> str:
    """The forecast in words: `Forecast $12.40 by the reset; hits $10.00 Thu 14:00 UTC`."""
    amount = usd(budget.get("amount_usd"))
    if budget.get("state") == "exceeded":
        said = f"Over {amount} this period"
        forecast = as_decimal(budget.get("forecast_usd"))
        return f"{said}; forecast {usd(forecast)} by the reset" if forecast is not None else said
    forecast = as_decimal(budget.get("forecast_usd"))
    if forecast is None:
        return "Too early in the period for a forecast"
    said = f"Forecast {usd(forecast)} by the reset"
    crossing = budget.get("projected_cross_at")
    if crossing:
        return f"{said}; hits {amount} {moment(crossing, now)}"
    return f"{said}; stays under {amount} at this rate"


def bar_value(budget: dict[str, Any]) -> Decimal:
    """The bar's fill, 0 to 100 (a budget at 140 % fills it; its text says 140 %)."""
    used = as_decimal(budget.get("percent_used")) or Decimal(0)
    return min(max(used, Decimal(0)), Decimal(100))


def channels_label(budget: dict[str, Any], channel_names: dict[str, str]) -> str:
    """Where its alerts go: the channels it names (a deleted one said so), or every channel taking budget events."""
    chosen = [str(c) for c in budget.get("channel_ids") or []]
    if not chosen:
        return "alerts to every channel taking budget events"
    return "alerts to " + ", ".join(channel_names.get(c, "a deleted channel") for c in chosen)


def row(budget: dict[str, Any], offered: Choices, now: datetime | None = None) -> dict[str, Any]:
    state = budget.get("state") or "ok"
    return {
        **budget,
        "spend_usd": budget.get("spend_usd"),
        "amount_usd": budget.get("amount_usd"),
        "percent_used": budget.get("percent_used"),
        "provisional": bool(budget.get("provisional")),
        "scope_label": scope_label(budget, offered.key_names),
        "channels_label": channels_label(budget, offered.channel_names),
        "state": state,
        "state_label": STATES.get(state, state),
        "bar": bar_value(budget),
        "period_label": str(budget.get("period") or ""),
        "resets": f"resets {moment(budget.get('resets_at'), now)}" if budget.get("resets_at") else "",
        "outlook": outlook(budget, now),
    }


async def listing(api: Api, page: int = 1) -> dict[str, Any]:
    """A page of budgets, with what the create form offers (three calls at once, never one per budget)."""
    budgets, offered = await asyncio.gather(api.budgets(page=page, per_page=PER_PAGE), choices(api))
    now = datetime.now(UTC)
    return {
        "rows": [row(b, offered, now) for b in budgets["items"]],
        "total": int(budgets["total"]),
        "page": page,
        "pages": max(1, -(-int(budgets["total"]) // PER_PAGE)),
        "choices": offered,
    }


def form_of(budget: dict[str, Any]) -> BudgetForm:
    """The edit form, filled with the budget as the API holds it."""
    scope = budget.get("scope") or {}
    kind = str(scope.get("type") or "workspace")
    scope_id = str(scope.get("id") or "")
    return BudgetForm(
        name=str(budget.get("name") or ""),
        scope_type=kind,
        key_id=scope_id if kind == "key" else "",
        account_id=scope_id if kind == "account" else "",
        amount_usd=format(as_decimal(budget.get("amount_usd")) or Decimal(0), "f"),
        period=str(budget.get("period") or "monthly"),
        thresholds=", ".join(str(t) for t in budget.get("thresholds") or []),
        include_byok=bool(budget.get("include_byok")),
        disable_key_on_exceed=bool(budget.get("disable_key_on_exceed")),
        channel_ids=[str(c) for c in budget.get("channel_ids") or []],
    )


def parse_thresholds(text: str) -> list[int] | None:
    """`50, 80, 100` (commas, spaces or `%` between) → `[50, 80, 100]`; None when a part is not a whole number."""
    parts = [p for p in text.replace("%", " ").replace(",", " ").split() if p]
    if not all(p.isdigit() and len(p) <= 4 for p in parts):
        return None
    return [int(p) for p in parts]


def body_of(form: BudgetForm, *, creating: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The API's body and the form's own refusals (what cannot even be sent: an amount that is not a number,
    a key scope without a key). The scope is set once, at creation."""
    errors: dict[str, str] = {}
    body: dict[str, Any] = {"name": form.name.strip(), "period": form.period, "include_byok": form.include_byok}
    try:
        amount = Decimal(form.amount_usd.strip().removeprefix("$").replace(",", ""))
        if not amount.is_finite():
            raise InvalidOperation
        body["amount_usd"] = amount
    except InvalidOperation:
        errors["amount_usd"] = "Give an amount in US dollars, such as 10 or 12.50."
    thresholds = parse_thresholds(form.thresholds)
    if thresholds is None:
        errors["thresholds"] = "Give whole percentages separated by commas, such as 50, 80, 100."
    else:
        body["thresholds"] = thresholds
    body["channel_ids"] = list(dict.fromkeys(form.channel_ids))
    if form.scope_type == "key":
        # The kill switch is a key budget's alone: other scopes never send it (the API refuses it there).
        body["disable_key_on_exceed"] = form.disable_key_on_exceed
    if creating:
        scope: dict[str, Any] = {"type": form.scope_type}
        if form.scope_type == "key":
            scope["id"] = form.key_id or None
            if not form.key_id:
                errors["key_id"] = "Choose the key this budget watches."
        elif form.scope_type == "account":
            scope["id"] = form.account_id or None
            if not form.account_id:
                errors["account_id"] = "Choose the account this budget watches."
        body["scope"] = scope
    return body, errors


def api_fields(form: BudgetForm) -> dict[str, str]:
    """The API's body paths → the form's fields, for `views.forms.blame`."""
    scope_field = {"key": "key_id", "account": "account_id"}.get(form.scope_type, "scope_type")
    return {
        "name": "name",
        "scope": "scope_type",
        "scope.type": "scope_type",
        "scope.id": scope_field,
        "amount_usd": "amount_usd",
        "period": "period",
        "thresholds": "thresholds",
        "include_byok": "include_byok",
        "disable_key_on_exceed": "disable_key_on_exceed",
        "channel_ids": "channel_ids",
    }


def attention(budgets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The dashboard's budgets at warning or over, the fullest first."""
    chosen = [b for b in budgets if b.get("state") in ("warning", "exceeded")]
    return sorted(chosen, key=lambda b: -(as_decimal(b.get("percent_used")) or Decimal(0)))
