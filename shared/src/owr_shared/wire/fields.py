"""Field types the wire bodies share: exact money, bounded counts, UTC times, OpenRouter's dates.

Everything that reaches a database is bounded here, so bad input is refused where it is parsed (a 422
in a service, a skipped row in the worker) and never a 500 from PostgreSQL: a NUMERIC with too many
digits, a BIGINT overflow, a NUL in text, a year out of range.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Context, Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StringConstraints, WithJsonSchema

from owr_shared.schemas import Money, StorableText

# OpenRouter reports about 10 significant decimals; 30 places leave room and keep NUMERIC well in range.
MAX_DECIMAL_PLACES = 30
BIGINT_MAX = 2**63 - 1
# Snapshots are dated by OpenRouter's clock; anything outside these years is a bug, not a reading.
OBSERVED_MIN = datetime(2000, 1, 1, tzinfo=UTC)
OBSERVED_MAX = datetime(2100, 1, 1, tzinfo=UTC)
_WIDE = Context(prec=100)
_MIDNIGHT_SUFFIX = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T]00:00:00(?:\.0+)?(?:Z|[+-]00:?00)?$")


def _bounded_scale(value: Decimal) -> Decimal:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        quantized = value.quantize(Decimal(1).scaleb(-MAX_DECIMAL_PLACES), context=_WIDE)
        if quantized != value:  # more than trailing zeros beyond the limit
            raise ValueError(f"must have at most {MAX_DECIMAL_PLACES} decimal places")
        return quantized
    return value


def _as_utc(value: datetime) -> datetime:
    # A naive time from OpenRouter is taken as UTC; an offset near year 1 or 9999 cannot become UTC.
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("is out of range") from None


def _observed_range(value: datetime) -> datetime:
    utc = _as_utc(value)
    if not OBSERVED_MIN <= utc < OBSERVED_MAX:
        raise ValueError("must be between 2000 and 2100")
    return utc


def activity_day(value: Any) -> Any:
    """`/activity`'s date quirk: the spec's "YYYY-MM-DD" and the live API's "YYYY-MM-DD 00:00:00" are one day."""
    if isinstance(value, str):
        match = _MIDNIGHT_SUFFIX.match(value.strip())
        if match:
            return match.group(1)
    return value


# USD with every digit kept, bounded in size and scale.
WireMoney = Annotated[Money, AfterValidator(_bounded_scale)]
Count = Annotated[int, Field(ge=0, le=BIGINT_MAX)]
# OpenRouter's own times (created_at, expires_at, ...): any ISO 8601 time, kept in UTC.
Timestamp = Annotated[datetime, AfterValidator(_as_utc)]
# When OpenRouter answered (its Date header): aware, and within sane years.
ObservedAt = Annotated[
    datetime, AfterValidator(_observed_range), WithJsonSchema({"type": "string", "format": "date-time"})
]
# A time our own processes report (the worker's clock): aware, and within the same sane years.
AwareObservedAt = Annotated[AwareDatetime, AfterValidator(_observed_range)]
ActivityDate = Annotated[
    date,
    BeforeValidator(activity_day),
    WithJsonSchema({"type": "string", "description": "YYYY-MM-DD or YYYY-MM-DD 00:00:00"}),
]

# Storable text (no NUL, valid Unicode) of bounded length.
LimitReset = Annotated[StorableText, StringConstraints(max_length=64)]
Label = Annotated[StorableText, StringConstraints(max_length=128)]
KeyHash = Annotated[StorableText, StringConstraints(min_length=1, max_length=256)]
KeyName = Annotated[StorableText, StringConstraints(max_length=4096)]
ModelName = Annotated[StorableText, StringConstraints(min_length=1, max_length=300)]
ShortText = Annotated[StorableText, StringConstraints(max_length=300)]
