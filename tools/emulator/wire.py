"""JSON in and out with exact money: Decimals are written as bare number literals of their own text.

OpenRouter sends money as JSON floats with ~10 decimals; the worker parses them with `parse_float=Decimal`,
so the emulator must put the exact decimal text on the wire (`0.1015644762`, never `0.10156447620000001`).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from tools.emulator.state import money_text


def dumps(value: Any) -> str:
    """Compact JSON text; Decimals become number literals without exponent, dict order is kept."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, Decimal):
        out.append(money_text(value))
    elif isinstance(value, (int | float, str)):
        out.append(json.dumps(value))
    elif isinstance(value, dict):
        out.append("{")
        for n, (k, v) in enumerate(value.items()):
            if n:
                out.append(", ")
            out.append(json.dumps(str(k)))
            out.append(": ")
            _write(v, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(", ")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__}")


def loads(text: str | bytes) -> Any:
    """Parse JSON with floats as Decimal, so money sent to the admin API stays exact."""
    return json.loads(text, parse_float=Decimal)


def as_money(value: Any, field: str) -> Decimal:
    """A finite amount from a JSON number or decimal string; ValueError naming the field otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise ValueError(f"{field} must be a number")
    try:
        amount = Decimal(value) if not isinstance(value, Decimal) else value
    except ArithmeticError:
        raise ValueError(f"{field} must be a number") from None
    if not amount.is_finite():
        raise ValueError(f"{field} must be finite")
    return amount
