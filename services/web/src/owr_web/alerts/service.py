"""The alert history in words: each event type's name, a one-line summary of its `data`, its deliveries by
channel; and the built-in rules' switches read from and written back to the form."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from owr_web.api.client import Api
from owr_web.insights.service import ANOMALY_KINDS, anomaly_line
from owr_web.views.format import as_decimal, points, usd, utc
from owr_web.views.forms import parse_number

PER_PAGE = 50
CHANNELS_PER_PAGE = 250

# Every event type (owr_shared.wire.alerts.EVENT_TYPES), as a channel's event picker and the history name them (the API's names, DESIGN §11).
EVENTS: dict[str, str] = {
    "budget.threshold_crossed": "Budget threshold crossed",
    "budget.exceeded": "Budget exceeded",
    "budget.forecast_exceeded": "Budget forecast over its amount",
    "budget.recovered": "Budget back under its amount",
    "key.invalid": "Key refused by OpenRouter",
    "key.expiring": "Key expiring soon",
    "key.limit_threshold_crossed": "Key near its OpenRouter limit",
    "key.anomaly": "Unusual key spend",
    "key.disabled": "Key disabled at OpenRouter",
    "account.balance_low": "Account balance low",
    "account.runway_low": "Account runway short",
    "sync.failing": "Sync failing",
    "sync.recovered": "Sync recovered",
    "report.weekly": "Weekly report",
    "report.monthly": "Monthly report",
    "channel.disabled": "Channel disabled",
    "channel.confirmation": "Address confirmation",
    "test": "Test event",
    "price.drift": "Price per token up",
}
EVENT_GROUPS = {
    "Budgets": [e for e in EVENTS if e.startswith("budget.")],
    "Keys": [e for e in EVENTS if e.startswith("key.")],
    "Accounts and syncs": [e for e in EVENTS if e.startswith(("account.", "sync."))],
    # Not `channel.confirmation`: it goes to one unconfirmed email channel, never by choice.
    "Reports and channels": [e for e in EVENTS if e.startswith(("report.", "channel.disabled"))],
    "Prices": [e for e in EVENTS if e.startswith("price.")],
}
PERIOD_NOUNS = {"daily": "day", "weekly": "week", "monthly": "month"}


def event_label(event_type: str) -> str:
    return EVENTS.get(event_type, event_type)


def _named(what: str, name: Any) -> str:
    return f"{what} \u201c{name}\u201d" if name else f"A{'n' if what[0] in 'AEIOU' else ''} {what.lower()}"


def _key(data: dict[str, Any]) -> str:
    said = _named("Key", data.get("key_name"))
    return f"{said} ({data['label']})" if data.get("label") else said


def _budget(event_type: str, data: dict[str, Any]) -> str:
    name = _named("Budget", data.get("name"))
    spent = f"{usd(data.get('spend_usd'))} of {usd(data.get('amount_usd'))}"
    period = data.get("period")
    kind = period.get("kind") if isinstance(period, dict) else None
    spent += f" this {PERIOD_NOUNS[kind]}" if kind in PERIOD_NOUNS else ""
    if event_type == "budget.threshold_crossed":
        return f"{name} passed {points(data.get('threshold'))} of its amount: {spent}"
    if event_type == "budget.exceeded":
        return f"{name} is over its amount: {spent}"
    if event_type == "budget.forecast_exceeded":
        return f"{name} is heading over its amount: forecast {usd(data.get('forecast_usd'))}, {spent}"
    return f"{name} is back under its amount: {spent}"


def _key_event(kind: str, data: dict[str, Any]) -> str:
    key = _key(data)
    if kind == "key.invalid":
        return f"{key} was refused by OpenRouter: replace it or delete it"
    if kind == "key.expiring":
        return f"{key} expires {utc(data['expires_at'])}" if data.get("expires_at") else f"{key} expires soon"
    if kind == "key.limit_threshold_crossed":
        used = points(data["percent_used"]) if data.get("percent_used") is not None else "most"
        limit = f" {usd(data['limit_usd'])}" if data.get("limit_usd") is not None else ""
        return f"{key} has used {used} of its{limit} OpenRouter limit"
    if kind == "key.anomaly":
        evidence = data.get("evidence") if isinstance(data.get("evidence"), dict) else None
        if evidence is not None and data.get("kind") in ANOMALY_KINDS:
            return f"{key}: {ANOMALY_KINDS[data['kind']].lower()} on {data.get('day') or '?'}. " + anomaly_line(
                data["kind"], evidence
            )
        return f"{key} spent unusually"
    if kind == "key.disabled":
        return f"{key} was disabled at OpenRouter" + (" by a user" if data.get("source") == "user" else "")
    if kind == "sync.failing":
        return f"Syncing {key} fails" + (f" since {utc(data['since'])}" if data.get("since") else "")
    return f"Syncing {key} works again"


def _account_event(kind: str, data: dict[str, Any]) -> str:
    account = _named("Account", data.get("label"))
    if kind == "account.balance_low":
        balance, floor = data.get("balance_usd"), data.get("threshold_usd")
        said = f"{account} is low on credit" + (f": {usd(balance)} left" if balance is not None else "")
        return said + (f", under {usd(floor)}" if floor is not None else "")
    days = as_decimal(data.get("runway_days"))
    return f"{account} runs out of credit" + (f" in about {days:.1f} days" if days is not None else " soon")


def _price_drift(data: dict[str, Any]) -> str:
    model = str(data.get("model") or "A model") + (f" on {data['provider']}" if data.get("provider") else "")
    pct = as_decimal(data.get("drift_pct"))
    rise = f" {pct:f}%" if pct is not None else ""
    week = data.get("week")
    start = week.get("start") if isinstance(week, dict) else None
    return f"{model} cost{rise} more per token" + (f" in the week of {start}" if start else " than the week before")


def summary(event: dict[str, Any]) -> str:
    """One line a person understands, from the event's type and `data`: what is missing is left unsaid,
    never guessed."""
    kind = str(event.get("type") or "")
    raw = event.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if kind.startswith("budget."):
        return _budget(kind, data)
    if kind.startswith(("key.", "sync.")):
        return _key_event(kind, data)
    if kind.startswith("account."):
        return _account_event(kind, data)
    if kind.startswith("report."):
        spend, before = data.get("spend_usd"), data.get("previous_spend_usd")
        said = event_label(kind) + (f": {usd(spend)} spent" if spend is not None else "")
        return said + (f", against {usd(before)} the period before" if spend is not None and before is not None else "")
    if kind == "channel.disabled":
        reason = f": {data['reason']}" if data.get("reason") else ""
        return f"{_named('Channel', data.get('name'))} was disabled{reason}"
    if kind == "channel.confirmation":
        name = data.get("name")
        return f"The confirmation email of the channel \u201c{name}\u201d" if name else "A confirmation email"
    if kind == "price.drift":
        return _price_drift(data)
    if kind == "test":
        return f"A test event for the channel \u201c{data['name']}\u201d" if data.get("name") else "A test event"
    return event_label(kind)


def deliveries(event: dict[str, Any], channel_names: dict[str, str]) -> list[dict[str, Any]]:
    """Each delivery of an event by channel name (a deleted channel is said so), with its state."""
    shown = []
    for delivery in event.get("deliveries") or []:
        channel_id = str(delivery.get("channel_id") or "")
        name = delivery.get("channel_name") or channel_names.get(channel_id) or "a deleted channel"
        state = str(delivery.get("status") or "pending")
        shown.append({**delivery, "channel_name": name, "state": state})
    return shown


async def history(api: Api, page: int = 1) -> dict[str, Any]:
    """A page of events with their summaries and deliveries (two calls at once)."""
    events, channels = await asyncio.gather(
        api.alerts(page=page, per_page=PER_PAGE), api.channels(per_page=CHANNELS_PER_PAGE)
    )
    names = {str(c["id"]): str(c["name"]) for c in channels["items"]}
    rows = [
        {**e, "label": event_label(str(e.get("type"))), "summary": summary(e), "sent": deliveries(e, names)}
        for e in events["items"]
    ]
    return {
        "rows": rows,
        "total": int(events["total"]),
        "page": page,
        "pages": max(1, -(-int(events["total"]) // PER_PAGE)),
        "channels": len(names),
    }


# The built-in rules (`GET|PUT /api/v1/alert-rules`): named after the event each raises where one does.
RULES = {
    "key.invalid": "Tell me when OpenRouter refuses a key (401)",
    "key.expiring": "Tell me before a key expires",
    "key.limit_threshold_crossed": "Tell me when a key has little of its own OpenRouter limit left",
    "account.balance_low": "Tell me when an account's balance runs low",
    "account.runway_low": "Tell me when an account's credit will soon run out at its current burn",
    "sync.failing": "Tell me when a key's sync keeps failing, and when it recovers",
    "key.anomaly": "Tell me when a key departs from its usual days (spike, wake-up, new model)",
    "price.drift": "Tell me when a model on a provider costs more per token than the week before",
}
# Each rule's parameters (the API fills in their defaults), by rule then name; an unknown one is named as the API names it.
PARAMS = {
    ("key.expiring", "days"): "Expiring within (days)",
    ("key.limit_threshold_crossed", "percent"): "When at most this much of the limit is left (%)",
    ("account.balance_low", "amount_usd"): "Balance under (USD)",
    ("account.runway_low", "days"): "Runway under (days)",
    ("sync.failing", "hours"): "Failing for more than (hours)",
    ("key.anomaly", "min_score"): "Only anomalies scoring at least",
    ("key.anomaly", "min_usd"): "Ignore departures under (USD)",
    ("price.drift", "min_drift_pct"): "When it costs at least this much more (%)",
}


def rule_items(answer: Any) -> list[dict[str, Any]]:
    """The rules of `GET /api/v1/alert-rules`: a list, or a page's `items`."""
    items = answer.get("items") if isinstance(answer, dict) else answer
    return [r for r in items or [] if isinstance(r, dict) and r.get("rule")]


def _kind(value: Any, param: str) -> str:
    if isinstance(value, bool):
        return "bool"
    if param.endswith(("_usd", "_score")):  # money, scores: what the API wrote as `10` may still take decimals
        return "number"
    if isinstance(value, int):
        return "int"
    if isinstance(value, (Decimal, float)):
        return "number"
    return "text"


def rule_fields(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each rule as the form shows it: its switch, and one input per parameter typed by its current value."""
    shown = []
    for index, rule in enumerate(rules):
        name = str(rule["rule"])
        params = rule.get("params") if isinstance(rule.get("params"), dict) else {}
        assert isinstance(params, dict)
        inputs = [
            {
                "name": param,
                "label": PARAMS.get((name, param), param.replace("_", " ").capitalize()),
                "kind": _kind(value, param),
                "value": "" if value is None else format(value, "f") if isinstance(value, Decimal) else value,
                "field": f"param.{name}.{param}",
                "id": f"rule-{index}-{param}",
            }
            for param, value in params.items()
        ]
        shown.append(
            {
                "rule": name,
                "label": RULES.get(name) or event_label(name),
                "enabled": bool(rule.get("enabled")),
                "id": f"rule-{index}",
                "params": inputs,
            }
        )
    return shown


def read_rules(rules: list[dict[str, Any]], form: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The rules as the form changed them (each parameter read as the type it had), and what could not be
    read, by form field. An unticked switch sends nothing: that rule is off."""
    changed, errors = [], {}
    for rule in rules:
        name = str(rule["rule"])
        params = dict(rule.get("params") or {})
        for param, value in list(params.items()):
            field_name = f"param.{name}.{param}"
            text = str(form.get(field_name) or "").strip()
            kind = _kind(value, param)
            if kind == "bool":
                params[param] = form.get(field_name) == "true"
            elif kind == "text":
                params[param] = text
            elif kind == "int":
                if text.isdigit():
                    params[param] = int(text)
                else:
                    errors[field_name] = "Give a whole number."
            else:
                number = parse_number(text)
                if number is not None:
                    params[param] = number
                else:
                    errors[field_name] = "Give a number, such as 5 or 12.50."
        changed.append({"rule": name, "enabled": form.get(f"enabled.{name}") == "true", "params": params})
    return changed, errors


def rule_api_fields(rules: list[dict[str, Any]]) -> dict[str, str]:
    """The API's body paths of a rules `PUT` → the form's fields (`items.2.params.days` → `param.x.days`)."""
    fields = {}
    for index, rule in enumerate(rules):
        name = str(rule["rule"])
        # A rule's item is a tagged union at the API: its errors name the rule too (`items.1.key.expiring.params.days`).
        for prefix in (f"items.{index}", f"items.{index}.{name}"):
            fields[f"{prefix}.enabled"] = f"enabled.{name}"
            for param in rule.get("params") or {}:
                fields[f"{prefix}.params.{param}"] = f"param.{name}.{param}"
    return fields
