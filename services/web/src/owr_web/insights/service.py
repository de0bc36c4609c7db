"""Insights in words: an anomaly of the API (`kind`, `score`, `evidence`) as a person reads it."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

ANOMALY_KINDS = {
    "spend_spike": "Spend spike",
    "dormant_wakeup": "Dormant key spending again",
    "new_model": "New model",
    "requests_spend_divergence": "Requests and spend diverge",
}


def _usd(value: Any) -> str:
    try:
        return f"${Decimal(str(value)):,.2f}"
    except (InvalidOperation, ValueError):
        return "?"


def anomaly_line(kind: str, evidence: dict[str, Any]) -> str:
    """One sentence with the figures the anomaly was judged on."""
    spend = _usd(evidence.get("spend_usd"))
    if kind == "spend_spike":
        return (
            f"Spent {spend} against a usual {_usd(evidence.get('baseline_usd'))} on this weekday "
            f"(median of {evidence.get('baseline_days', '?')} weeks)."
        )
    if kind == "dormant_wakeup":
        return (
            f"Spent {spend} after {evidence.get('dormant_days', '?')} days without spend "
            f"(last spend on {evidence.get('last_spend_day', '?')})."
        )
    if kind == "new_model":
        models = ", ".join(str(m) for m in evidence.get("models", [])) or "?"
        return f"First use of {models}: {spend} in {evidence.get('requests', '?')} requests."
    if kind == "requests_spend_divergence":
        requests = f"{evidence.get('requests', '?')} requests against a usual {evidence.get('requests_baseline', '?')}"
        money = f"{spend} against a usual {_usd(evidence.get('baseline_usd'))}"
        if evidence.get("moved") == "requests":
            return f"{requests}, while spend stayed flat ({money})."
        return f"Spend rose to {money}, while requests stayed flat ({requests})."
    return "Departs from the key's usual days."


def anomalies_in_words(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The API's items with `kind_words` and `line` added, in the API's order (newest day first)."""
    return [
        {
            **item,
            "kind_words": ANOMALY_KINDS.get(item["kind"], item["kind"]),
            "line": anomaly_line(item["kind"], item["evidence"]),
        }
        for item in items
    ]
