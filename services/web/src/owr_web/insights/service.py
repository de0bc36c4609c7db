"""The prices page's words: a price per million tokens, and a drift said in text (never by colour alone)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from owr_web.views.format import as_decimal

PER_PAGE = 50
GROUPS = {"model": "Per model and provider", "key": "Per model, provider and key"}


def per_mtok(value: Any) -> str:
    """`$2.50`; under a dollar up to four places (`$0.075`); `—` when the API has no figure."""
    amount = as_decimal(value)
    if amount is None:
        return "—"
    if abs(amount) >= 1:
        return f"${amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN):,}"
    shown = f"{amount.quantize(Decimal('0.0001'), rounding=ROUND_HALF_EVEN):f}".rstrip("0")
    return "$" + shown + "0" * max(0, 2 - len(shown.partition(".")[2]))


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
