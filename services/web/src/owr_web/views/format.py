"""Template filters: money as the API gives it (exact), shown in USD with cents; times in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")


def as_decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None


def usd(value: Any) -> str:
    """`$1,234.57`; a spend under a cent but above zero shows as `<$0.01`, never as `$0.00`."""
    amount = as_decimal(value)
    if amount is None:
        return "—"
    if Decimal(0) < amount < CENT:
        return "<$0.01"
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount).quantize(CENT, rounding=ROUND_HALF_EVEN):,}"


def usd_exact(value: Any) -> str:
    """Every digit the API gave (for titles and tables): `$0.000123456`."""
    amount = as_decimal(value)
    if amount is None:
        return "unknown"
    text = format(amount.normalize(), "f") if amount != 0 else "0"
    if "." not in text:
        text += ".00"
    return f"${text}"


def percent(value: Any) -> str:
    ratio = as_decimal(value)
    return "—" if ratio is None else f"{(ratio * 100).quantize(Decimal('1'))}%"


def points(value: Any) -> str:
    """A percentage the API gives in points (`85.4` → `85%`); a little above zero is `<1%`, never `0%`."""
    amount = as_decimal(value)
    if amount is None:
        return "—"
    if Decimal(0) < amount < 1:
        return "<1%"
    return f"{amount.quantize(Decimal('1'), rounding=ROUND_HALF_EVEN)}%"


def parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def utc(value: Any) -> str:
    """`2026-12-05 14:03 UTC`."""
    moment = parse_time(value)
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def moment(value: Any, now: datetime | None = None) -> str:
    """A moment ahead, as a budget's reset or crossing is said: `Thu 14:00 UTC` within the coming week (the
    day names it), else with its date, `Tue 1 Dec 00:00 UTC`."""
    when = parse_time(value)
    if when is None:
        return "—"
    when = when.astimezone(UTC)
    ahead = when - (now or datetime.now(UTC))
    if timedelta(0) <= ahead < timedelta(days=7):
        return when.strftime("%a %H:%M UTC")
    return f"{when:%a} {when.day} {when:%b %H:%M} UTC"


def ago(value: Any, now: datetime | None = None) -> str:
    """`3 min ago`, `2 h ago`, `5 d ago`; `never` for no time."""
    moment = parse_time(value)
    if moment is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 60:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def duration(seconds: float | None) -> str:
    """`3 h 20 min`, `2 d 4 h`, for the time until a limit resets."""
    if seconds is None:
        return "—"
    minutes = max(0, int(seconds)) // 60
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"


def per_mtok(value: Any) -> str:
    """A price per million tokens: `$2.50`; under a dollar up to four places (`$0.075`); `—` when unknown."""
    amount = as_decimal(value)
    if amount is None:
        return "—"
    if abs(amount) >= 1:
        return usd(amount)
    shown = f"{amount.quantize(Decimal('0.0001'), rounding=ROUND_HALF_EVEN):f}".rstrip("0")
    return "$" + shown + "0" * max(0, 2 - len(shown.partition(".")[2]))


FILTERS = {
    "usd": usd,
    "usd_exact": usd_exact,
    "percent": percent,
    "points": points,
    "utc": utc,
    "moment": moment,
    "ago": ago,
    "duration": duration,
    "per_mtok": per_mtok,
}
