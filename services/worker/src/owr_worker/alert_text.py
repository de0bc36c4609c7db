"""What an alert says to a person, per event type: a subject line and a few blocks, before any format.

The words come from the event's `data` only (never the channel's URL, address or secrets). `alert_formats.py`
renders them as plain text, HTML, Slack or Discord; the digests (`report.weekly`, `report.monthly`) are worded
in `digest_text.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from owr_worker.alert_values import (
    PERIOD_PHRASES,
    AlertText,
    clean,
    day,
    joined,
    mapping,
    money,
    number,
    percent,
    text,
    when,
)
from owr_worker.digest_text import describe_report

# A key action's reason as usage stores it at most (`key_actions.models.REASON_MAX`): a user's words are said whole.
REASON_MAX = 300

# --- events ---------------------------------------------------------------------------------------------------


def _budget(event_type: str, data: Mapping[str, Any]) -> AlertText:
    name = text(data, "name", "budget_name") or "unnamed"
    period = mapping(data.get("period"))
    kind = text(period, "kind") or text(data, "period_kind")
    phrase = PERIOD_PHRASES.get(kind or "", "this period")
    spend, amount = money(data.get("spend_usd")), money(data.get("amount_usd"))
    used = percent(data.get("percent_used"))
    threshold = percent(data.get("threshold"))
    subjects = {
        "budget.threshold_crossed": f"Budget '{name}' passed {threshold}"
        if threshold
        else f"Budget '{name}' passed a threshold",
        "budget.exceeded": f"Budget '{name}' exceeded",
        "budget.forecast_exceeded": f"Budget '{name}' is forecast to run over",
        "budget.recovered": f"Budget '{name}' is back within its amount",
    }
    standing = f"{spend} of {amount} {phrase}" if spend and amount else None
    if standing and used:
        standing += f" ({used})"
    forecast = money(data.get("forecast_usd"))
    crossing = when(data.get("projected_cross_at"))
    hits = f"hits {money(data.get('amount_usd'), compact=True)} {crossing}" if crossing and amount else None
    outlook = joined(f"forecast {forecast}" if forecast else None, hits, sep=", ")
    blocks = [joined(standing, outlook) or "No figures came with this event."]
    if data.get("provisional") is True:
        blocks.append("Today's spend is provisional until OpenRouter's day ends.")
    blocks.append(joined(_scope(data.get("scope")), _resets(period), sep=". ") + ".")
    return AlertText(subjects.get(event_type, f"Budget '{name}'"), tuple(blocks))


def _scope(value: Any) -> str:
    scope = mapping(value)
    kind = text(scope, "type")
    name = text(scope, "name", "key_name", "label")
    if kind == "key":
        return f"Scope: the key '{name}'" if name else "Scope: one key"
    if kind == "account":
        return f"Scope: the OpenRouter account of '{name}'" if name else "Scope: one OpenRouter account"
    return "Scope: the whole workspace"


def _resets(period: Mapping[str, Any]) -> str | None:
    resets = when(period.get("resets_at"), with_date=True)
    return f"The period resets {resets}" if resets else None


def _key_name(data: Mapping[str, Any]) -> str:
    return text(data, "key_name", "name") or "unnamed"


def _key_line(data: Mapping[str, Any]) -> str:
    label = text(data, "label")
    return f"Key: {_key_name(data)}" + (f" ({label})" if label else "") + "."


def _key(event_type: str, data: Mapping[str, Any]) -> AlertText:
    name = _key_name(data)
    if event_type == "key.invalid":
        return AlertText(
            f"Key '{name}' is invalid",
            (
                "OpenRouter rejected the key (401): it was revoked or disabled upstream. Its figures so far are kept,"
                " and it is checked again once a day.",
                _key_line(data),
            ),
        )
    if event_type == "key.expiring":
        expires = when(data.get("expires_at"), with_date=True)
        subject = f"Key '{name}' expires {expires}" if expires else f"Key '{name}' expires soon"
        return AlertText(subject, ("Replace it before it stops working.", _key_line(data)))
    if event_type == "key.limit_threshold_crossed":
        used = percent(data.get("percent_used")) or percent(data.get("threshold"))
        limit_amount, remaining = number(data.get("limit_usd")), number(data.get("limit_remaining_usd"))
        spent = data.get("usage_usd")
        if spent is None and limit_amount is not None and remaining is not None:
            spent = limit_amount - remaining
        usage, limit = money(spent), money(limit_amount)
        window = text(data, "limit_reset")
        standing = f"{usage} of its {limit} limit" if usage and limit else None
        if standing and window:
            standing += f" ({window} window)"
        subject = f"Key '{name}' used {used} of its OpenRouter limit" if used else f"Key '{name}' nears its limit"
        return AlertText(
            subject, (joined(standing, "OpenRouter stops the key at its limit.", sep=". "), _key_line(data))
        )
    if event_type == "key.anomaly":
        return _anomaly(name, data)
    if event_type == "key.disabled":
        why = _disabled_why(data)
        return AlertText(
            f"Key '{name}' is disabled on OpenRouter",
            (
                joined(why, "Requests with it fail until it is enabled again (its page, or enable-upstream).", sep=" "),
                _key_line(data),
            ),
        )
    return AlertText(f"Key '{name}'", (_key_line(data),))


def _disabled_why(data: Mapping[str, Any]) -> str | None:
    """The kill switch's reason (a budget exceeded, an anomaly's score), or a user's own words when a person
    disabled the key from here (`source: user`; usage's reason starts "disabled at OpenRouter by a user")."""
    reason = text(data, "reason", limit=REASON_MAX)
    if data.get("source") != "user":
        return f"The kill switch disabled it: {reason}." if reason else None
    if not reason:
        return "A user disabled it from OpenRouter Watcher."
    said = reason[:1].upper() + reason[1:]
    return said if said.endswith((".", "!", "?", "…")) else said + "."


# `key.anomaly`'s kinds (usage's `anomalies`): the subject after the key's name, and the detail's lead.
ANOMALY_WORDS = {
    "spend_spike": "spends far more than usual",
    "dormant_wakeup": "spends again after a dormant spell",
    "new_model": "uses a model it never used before",
    "requests_spend_divergence": "shows requests and spend moving apart",
}


def _anomaly(name: str, data: Mapping[str, Any]) -> AlertText:
    kind = text(data, "kind")
    spend, usual = money(data.get("spend_usd")), money(data.get("baseline_usd"))
    evidence = mapping(data.get("evidence"))
    figures = f"{spend} against a usual {usual}" if spend and usual else None
    if kind == "dormant_wakeup" and spend:
        figures = joined(
            f"{spend} spent",
            text(evidence, "last_spend_day") and f"last spend on {text(evidence, 'last_spend_day')}",
            sep=", ",
        )
    if kind == "new_model":
        models = evidence.get("models")
        named = ", ".join(str(m) for m in models) if isinstance(models, list) else None
        figures = joined(named and f"First use of {clean(named)}", spend and f"({spend})", sep=" ")
    day = text(data, "day")
    lead = joined(figures or "Its figures jumped", day and f"on {day}", sep=" ")
    verb = ANOMALY_WORDS.get(kind or "", "spends more than usual")
    return AlertText(f"Key '{name}' {verb}", (lead + ".", _key_line(data)))


def _account(event_type: str, data: Mapping[str, Any]) -> AlertText:
    name = text(data, "account_name", "key_name", "name", "label")
    of = f"Account '{name}'" if name else "Your OpenRouter account"
    balance = money(data.get("balance_usd"))
    if event_type == "account.balance_low":
        floor = money(data.get("threshold_usd"))
        subject = f"OpenRouter balance low: {balance} left" if balance else "OpenRouter balance low"
        line = f"{of} has {balance} of credit left" if balance else f"{of} is low on credit"
        return AlertText(subject, (line + (f", below the {floor} you set." if floor else "."),))
    days = number(data.get("runway_days"))
    burn = money(data.get("burn_usd_per_day", data.get("daily_burn_usd")))
    subject = f"OpenRouter credit runs out in {days:.1f} days" if days is not None else "OpenRouter credit runs low"
    detail = joined(
        f"{balance} left" if balance else None, f"at {burn} a day (recent average)" if burn else None, sep=" "
    )
    return AlertText(subject, (joined(of, detail, sep=": ") + ". Top up before requests start failing.",))


def _sync(event_type: str, data: Mapping[str, Any]) -> AlertText:
    name = _key_name(data)
    since = when(data.get("since", data.get("failing_since")), with_date=True)
    if event_type == "sync.recovered":
        return AlertText(
            f"Key '{name}' syncs again", (f"It had failed since {since}." if since else "", _key_line(data))
        )
    error = text(data, "error", "last_error")
    subject = f"Key '{name}' has not synced since {since}" if since else f"Key '{name}' fails to sync"
    detail = f"Last error: {error}." if error else "Its figures are getting stale; the worker keeps trying."
    return AlertText(subject, (detail, _key_line(data)))


def _channel_disabled(data: Mapping[str, Any]) -> AlertText:
    name = text(data, "channel_name", "name") or "unnamed"
    reason = text(data, "reason", "disabled_reason")
    return AlertText(
        f"Channel '{name}' was disabled",
        (
            f"Reason: {reason}." if reason else "Its deliveries kept failing.",
            "Alerts no longer go there; enable it again on the Channels page once the receiver works.",
        ),
    )


def _per_mtok(value: Any) -> str | None:
    """USD per million tokens: cents ($5.81), or up to four places under a dollar ($0.075)."""
    amount = number(value)
    if amount is None:
        return None
    shown = f"{abs(amount):,.2f}" if abs(amount) >= 1 else f"{abs(amount):.4f}".rstrip("0")
    shown += "0" * max(0, 2 - len(shown.partition(".")[2]))
    return f"{'-' if amount < 0 else ''}${shown}"


def _price_drift(data: Mapping[str, Any]) -> AlertText:
    model, provider = text(data, "model"), text(data, "provider")
    what = joined(model or "A model", f"on {provider}" if provider else None, sep=" ")
    rise = percent(data.get("drift_pct"))
    subject = f"{what} costs {rise} more per token" if rise else f"{what} costs more per token"
    week = day(mapping(data.get("week")).get("start"))
    prompt, completion = _per_mtok(data.get("usd_per_mtok_prompt")), _per_mtok(data.get("usd_per_mtok_completion"))
    split = (
        f"{prompt} per million prompt tokens, {completion} per million completion tokens"
        if prompt and completion
        else None
    )
    blended, before = _per_mtok(data.get("usd_per_mtok")), _per_mtok(data.get("previous_usd_per_mtok"))
    average = f"{blended} per million tokens on average" if blended else None
    if average and before:
        average += f" (the week before: {before})"
    figures = joined(f"Week of {week}" if week else "Last week", joined(split, average), sep=": ")
    basis = (
        "Compared at the week before's prompt and completion prices, so a change of mix is not counted."
        if data.get("drift_basis") == "split"
        else "Compared by the average price per token (the week before's split is unknown): a change of mix moves it too."
    )
    return AlertText(subject, (figures + ".", basis, "From OpenRouter's own activity figures (Insights, Prices)."))


def _test(channel_name: str) -> AlertText:
    return AlertText(
        "Test alert from OpenRouter Watcher",
        (f"This is a test of the channel '{clean(channel_name)}'. If you can read it, the channel works.",),
    )


def describe(event_type: str, data: Mapping[str, Any], *, channel_name: str) -> AlertText:
    """The words of one event, for a person reading channel `channel_name`."""
    family = event_type.split(".", 1)[0]
    renderers: dict[str, Callable[[], AlertText]] = {
        "budget": lambda: _budget(event_type, data),
        "key": lambda: _key(event_type, data),
        "account": lambda: _account(event_type, data),
        "sync": lambda: _sync(event_type, data),
        "report": lambda: describe_report(event_type, data),
        "channel": lambda: _channel_disabled(data),
        "test": lambda: _test(channel_name),
        "price": lambda: _price_drift(data),
    }
    render = renderers.get(family)
    result = render() if render else AlertText(f"OpenRouter Watcher: {clean(event_type)}")
    return AlertText(clean(result.subject, 200), tuple(block for block in result.blocks if block))
