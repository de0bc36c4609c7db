"""The prices page's words: a price per million tokens, and a drift said in text (never by colour alone)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from owr_web.views.format import as_decimal

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
