"""JSON in and out with money kept exact: decimals parsed as `Decimal`, written back as JSON numbers."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import orjson
from pydantic import BaseModel


class NonFiniteNumber(json.JSONDecodeError):
    """`NaN` or `Infinity` in a body: not JSON, and never a valid amount of money."""


def _refuse_constant(name: str) -> Any:
    raise NonFiniteNumber(f"non-finite number {name} in JSON", name, 0)


def loads(body: bytes | str) -> Any:
    """Parse JSON with every float as an exact `Decimal` (OpenRouter's money has ~10 significant digits)."""
    return json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)


def json_default(value: Any) -> Any:
    """orjson's `default`: decimals as their own digits (no float round trip, no exponent), UUID subclasses."""
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    if isinstance(value, uuid.UUID):
        # asyncpg's UUID subclass, which orjson does not take as a UUID.
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any, *, option: int | None = None) -> bytes:
    """Serialise with decimals as exact JSON numbers and datetimes as ISO 8601."""
    return orjson.dumps(value, default=json_default, option=option)


def encode(body: BaseModel, *, exclude_unset: bool = False) -> bytes:
    """A wire model as JSON; `exclude_unset` leaves out what the sender did not say (keys' status reports)."""
    return dumps(body.model_dump(mode="python", exclude_unset=exclude_unset))
