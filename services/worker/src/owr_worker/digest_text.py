"""The weekly and monthly digests (`report.weekly`, `report.monthly`) in words: spend against the previous period,
the top keys and models, and the keys that want attention (no limit, dormant, expiring).

usage computes the figures; `data` holds `period {start, end}` (the end is the next period's start),
`spend_usd`, `previous_spend_usd`, `provisional`, `top_keys [{name or label, spend_usd}]`,
`top_models [{model, spend_usd}]`, and `keys_without_limit`, `dormant_keys` (with its `days`) and
`expiring_keys [.., expires_at]`, each `{count, keys: [{key_id, name or label}]}` (a plain list of keys is read
too). Anything missing is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

from owr_worker.alert_values import AlertText, Block, Section, day, mapping, moment, money, number, text, when

# Items shown per list; the rest is counted.
LIST_MAX = 10
NAMES = {"report.weekly": ("Weekly", "week"), "report.monthly": ("Monthly", "month")}


def _period_label(period: Mapping[str, Any], unit: str) -> str | None:
    start, end = moment(period.get("start")), moment(period.get("end"))
    if start is None:
        return None
    start = start.astimezone(UTC)
    if unit == "month":
        return f"{start:%B %Y}"
    if end is None:
        return f"the week of {day(start)}"
    last = end.astimezone(UTC) - timedelta(days=1)  # `end` is the next period's start
    return f"{start.day} {start:%b} to {last.day} {last:%b %Y}"


def _comparison(spend: Decimal | None, previous: Decimal | None, unit: str) -> str | None:
    if spend is None or previous is None:
        return None
    before = f"the {unit} before"
    if previous == 0:
        return f"nothing was spent {before}" if spend > 0 else f"nothing {before} either"
    change = (spend - previous) / previous * 100
    if abs(change) < Decimal("0.5"):
        return f"about the same as {before} ({money(previous)})"
    direction = "up" if change > 0 else "down"
    return f"{direction} {abs(change):.0f} % on {before} ({money(previous)})"


def _items(value: Any, line: Callable[[Mapping[str, Any]], str | None]) -> tuple[str, ...]:
    """A list's lines, at most `LIST_MAX`; `value` is a list of rows, or `{count, keys}` (a count beyond the keys
    listed is said)."""
    listed = mapping(value).get("keys") if isinstance(value, Mapping) else value
    rows = [mapping(row) for row in listed] if isinstance(listed, list) else []
    lines = [shown for row in rows if (shown := line(row))]
    count = number(mapping(value).get("count"))
    total = max(len(lines), int(count)) if count is not None and lines else len(lines)
    if total > min(len(lines), LIST_MAX):
        lines = [*lines[:LIST_MAX], f"… and {total - min(len(lines), LIST_MAX)} more"]
    return tuple(lines)


def _name(row: Mapping[str, Any]) -> str | None:
    return text(row, "name", "key_name", "label")


def _spent(row: Mapping[str, Any], *names: str) -> str | None:
    label = text(row, *names)
    amount = money(row.get("spend_usd"))
    return f"{label}: {amount}" if label and amount else label


def _dormant(row: Mapping[str, Any]) -> str | None:
    name, last = _name(row), day(row.get("last_used_at"))
    return f"{name} (last used {last})" if name and last else name


def _expiring(row: Mapping[str, Any]) -> str | None:
    name, at = _name(row), when(row.get("expires_at"), with_date=True)
    return f"{name}, expires {at}" if name and at else name


def describe_report(event_type: str, data: Mapping[str, Any]) -> AlertText:
    title, unit = NAMES.get(event_type, ("Spend", "period"))
    label = _period_label(mapping(data.get("period")), unit)
    spend, previous = number(data.get("spend_usd")), number(data.get("previous_spend_usd"))
    spent = money(spend)
    subject = f"{title} report" + (f", {label}" if label else "") + (f": {spent} spent" if spent else "")
    summary = f"{spent} spent" if spent else None
    comparison = _comparison(spend, previous, unit)
    blocks: list[Block] = []
    if summary:
        blocks.append(summary + (f", {comparison}." if comparison else "."))
    if data.get("provisional") is True:
        blocks.append("The last day's figures are provisional until OpenRouter's day ends.")
    dormant_days = number(mapping(data.get("dormant_keys")).get("days"))
    dormant = f"Dormant keys (no spend in {dormant_days:.0f} days)" if dormant_days else "Dormant keys"
    sections = (
        ("Top keys", _items(data.get("top_keys"), lambda row: _spent(row, "name", "key_name", "label"))),
        ("Top models", _items(data.get("top_models"), lambda row: _spent(row, "model", "name"))),
        ("Keys with no limit", _items(data.get("keys_without_limit"), _name)),
        (dormant, _items(data.get("dormant_keys"), _dormant)),
        ("Keys expiring soon", _items(data.get("expiring_keys"), _expiring)),
    )
    blocks += [Section(name, items) for name, items in sections if items]
    if not blocks:
        blocks.append(f"Nothing was spent this {unit}.")
    return AlertText(subject, tuple(blocks))
