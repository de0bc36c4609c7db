"""JSON in and out with money kept exact: decimals parsed as `Decimal`, written back as JSON numbers."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import orjson


class NonFiniteNumber(ValueError):
    """`NaN` or `Infinity` in a body: never a valid amount of money."""


def _refuse_constant(name: str) -> Any:
    raise NonFiniteNumber(f"non-finite number {name} in JSON")


def loads(body: bytes | str) -> Any:
    """Parse JSON with every float as an exact `Decimal` (OpenRouter's money has ~10 significant digits)."""
    return json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # The decimal's own digits as a JSON number: no float round trip, no exponent.
        return orjson.Fragment(format(value, "f"))
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """Serialise with decimals as exact JSON numbers and datetimes as ISO 8601."""
    return orjson.dumps(value, default=_default)
