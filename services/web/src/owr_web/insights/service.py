"""Insights in words: a price per million tokens, a drift said in text (never by colour alone), and an anomaly of
a key (`kind`, `score`, `evidence`) as a person reads it."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from owr_web.views.format import as_decimal, usd

PER_PAGE = 50
GROUPS = {"model": "Per model and provider", "key": "Per model, provider and key"}


def drift(row: dict[str, Any]) -> dict[str, str]:
    """The change against the previous period: a marker, words, and how it was compared."""
    pct = as_decimal(row.get("drift_pct"))
    if pct is None:
        return {"kind": "none", "marker": "", "words": "no earlier figures", "basis": ""}
    basis = (
        "at the previous period's prompt and completion prices"
        if row.get("drift_basis") == "split"
        else "by the average price per token (the previous split is unknown)"
    )
    if pct > 0:
        return {"kind": "up", "marker": "▲", "words": f"up {pct:f} %", "basis": basis}
    if pct < 0:
        return {"kind": "down", "marker": "▼", "words": f"down {-pct:f} %", "basis": basis}
    return {"kind": "flat", "marker": "=", "words": "unchanged", "basis": basis}


def rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**row, "drift": drift(row)} for row in report["items"]]


def model_prices(models: list[dict[str, Any]], prices: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The dashboard's models, each with its average USD per million tokens over its providers (`per_mtok`) and
    its largest price rise against the previous period (`rise`: the drift row, or None when none rose)."""
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in (prices or {}).get("items", []):
        rows[row["model"]].append(row)
    shown = []
    for model in models:
        found = rows.get(model["model"] or "", [])
        tokens = sum(int(r["prompt_tokens"]) + int(r["completion_tokens"]) for r in found)
        cost = sum((Decimal(str(r["cost_usd"])) for r in found), Decimal(0))
        rises = [r for r in found if (as_decimal(r.get("drift_pct")) or 0) > 0]
        rise = max(rises, key=lambda r: Decimal(str(r["drift_pct"])), default=None)
        per_mtok = cost * 1_000_000 / tokens if tokens else None
        shown.append({**model, "per_mtok": per_mtok, "rise": rise, "compared": any(drift(r)["basis"] for r in found)})
    return shown


ANOMALY_KINDS = {
    "spend_spike": "Spend spike",
    "dormant_wakeup": "Dormant key spending again",
    "new_model": "New model",
    "requests_spend_divergence": "Requests and spend diverge",
}


def anomaly_line(kind: str, evidence: dict[str, Any]) -> str:
    """One sentence with the figures the anomaly was judged on."""
    spend = usd(evidence.get("spend_usd"))
    if kind == "spend_spike":
        usual, days = usd(evidence.get("baseline_usd")), evidence.get("baseline_days", "?")
        if evidence.get("baseline") == "active_days":
            return f"Spent {spend} against a usual {usual} on its days with spend (median of {days} days)."
        return f"Spent {spend} against a usual {usual} on this weekday (median of {days} weeks)."
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
        money = f"{spend} against a usual {usd(evidence.get('baseline_usd'))}"
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
