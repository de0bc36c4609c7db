"""The pieces every alert's words are made of: the subject-and-blocks shape, and `data`'s values read safely.

Each value is cleaned to one short line (a key's name cannot add lines or forge a message); a value of the
wrong shape reads as absent, so a field an event lacks is left out rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

TEXT_MAX = 120
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
PERIOD_PHRASES = {"daily": "today", "weekly": "this week", "monthly": "this month"}


@dataclass(frozen=True, slots=True)
class Section:
    """A titled list (a digest's top keys, say)."""

    title: str
    items: tuple[str, ...]


Block = str | Section


@dataclass(frozen=True, slots=True)
class AlertText:
    subject: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)


# --- reading `data` -------------------------------------------------------------------------------------------


def clean(value: Any, limit: int = TEXT_MAX) -> str:
    """A value as one short line: control characters and line breaks become spaces, the rest is cut."""
    text = " ".join(_CONTROL.sub(" ", str(value)).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def text(data: Mapping[str, Any], *names: str, limit: int = TEXT_MAX) -> str | None:
    """The first of `names` that `data` holds as a non-empty scalar, cleaned."""
    for name in names:
        value = data.get(name)
        if isinstance(value, str | int | float | Decimal) and not isinstance(value, bool) and str(value).strip():
            return clean(value, limit)
    return None


def number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return None
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def money(value: Any, *, compact: bool = False) -> str | None:
    """USD with cents ($1,234.50); a sub-cent amount with four places ($0.0042); `compact` drops `.00`."""
    amount = number(value)
    if amount is None:
        return None
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if 0 < amount < Decimal("0.01"):
        return f"{sign}${amount:.4f}"
    shown = f"{sign}${amount:,.2f}"
    return shown.removesuffix(".00") if compact else shown


def percent(value: Any) -> str | None:
    amount = number(value)
    if amount is None:
        return None
    shown = f"{amount:.1f}".removesuffix(".0")
    return f"{shown} %"


def moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def when(value: Any, *, with_date: bool = False) -> str | None:
    """`Thu 14:00 UTC` (a moment within the week ahead), `Thu 3 Dec 14:00 UTC` with the date."""
    at = moment(value)
    if at is None:
        return None
    at = at.astimezone(UTC)
    day = f"{at:%a} {at.day} {at:%b}" if with_date else f"{at:%a}"
    return f"{day} {at:%H:%M} UTC"


def day(value: Any) -> str | None:
    """`3 Dec 2026`."""
    at = moment(value)
    return None if at is None else f"{at.astimezone(UTC).day} {at.astimezone(UTC):%b %Y}"


def joined(*parts: str | None, sep: str = "; ") -> str:
    return sep.join(part for part in parts if part)


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
