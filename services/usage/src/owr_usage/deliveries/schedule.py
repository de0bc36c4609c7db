"""When a failed delivery is tried again, and when a failing channel is given up: the one place for both."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta

# The wait after failed attempt 1, 2, ...: eight attempts over about 28 hours, then the delivery has failed.
BACKOFF_SECONDS = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
# Bounds of an operator's own schedule (`USAGE_DELIVERY_RETRY_SECONDS`).
MAX_RETRIES = 20
MAX_WAIT_SECONDS = 7 * 86400
# Each wait is drawn within ±20 %, so receivers that failed together are not retried together.
JITTER = 0.2
# A channel failing for longer than this, with at least this many failed attempts in a row, is disabled.
FAILING_FOR = timedelta(hours=24)
FAILURES_IN_A_ROW = 5
# A previous signing secret keeps signing beside the new one for this long after a rotation.
SECRET_OVERLAP = timedelta(hours=24)


def retry_delay(
    attempt: int,
    retry_after_seconds: float | None,
    rng: random.Random,
    schedule: Sequence[float] = BACKOFF_SECONDS,
) -> timedelta | None:
    """The wait before the next attempt after failed attempt number `attempt` (from 1): the schedule's, with
    jitter, or the receiver's `Retry-After` when longer; None once the schedule is spent."""
    if attempt > len(schedule):
        return None
    backoff = schedule[attempt - 1] * rng.uniform(1 - JITTER, 1 + JITTER)
    return timedelta(seconds=max(backoff, retry_after_seconds or 0.0))
