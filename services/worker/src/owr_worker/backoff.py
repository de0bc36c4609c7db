"""Retry timing: full-jitter exponential backoff and `Retry-After` parsing."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def backoff_ceiling(attempt: int, *, base: float, cap: float) -> float:
    """The upper bound of the wait before retry number `attempt` (1-based): `min(cap, base * 2**(attempt-1))`."""
    exponent = min(max(attempt, 1) - 1, 64)  # 2**64 * any sane base is far above any cap
    return min(cap, base * 2.0**exponent)


def full_jitter(attempt: int, *, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """AWS's "full jitter": uniform in [0, ceiling), so retrying callers spread out instead of colliding."""
    return backoff_ceiling(attempt, base=base, cap=cap) * rand()


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait: the server's `Retry-After` when it gave one (never less), else full jitter; at most `cap`."""
    if retry_after is None:
        return full_jitter(attempt, base=base, cap=cap, rand=rand)
    return min(cap, max(retry_after, 0.0))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(min(int(value), 86_400))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, min(seconds, 86_400.0))
