"""Backoff maths: full jitter stays inside its exponential ceiling; Retry-After wins, within the cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from owr_worker.backoff import backoff_ceiling, full_jitter, parse_retry_after, retry_delay

attempts = st.integers(min_value=1, max_value=10_000)
bases = st.floats(min_value=0.001, max_value=100, allow_nan=False)
caps = st.floats(min_value=0.001, max_value=3600, allow_nan=False)
unit = st.floats(min_value=0, max_value=0.999999, allow_nan=False)


@given(attempts, bases, caps, unit)
def test_full_jitter_is_within_the_ceiling(attempt, base, cap, r):
    ceiling = backoff_ceiling(attempt, base=base, cap=cap)
    assert 0 <= ceiling <= cap
    assert 0 <= full_jitter(attempt, base=base, cap=cap, rand=lambda: r) <= ceiling


@given(st.integers(min_value=1, max_value=60), bases, caps)
def test_ceiling_doubles_until_the_cap(attempt, base, cap):
    assert backoff_ceiling(attempt + 1, base=base, cap=cap) == min(
        cap, 2 * backoff_ceiling(attempt, base=base, cap=cap)
    ) or (backoff_ceiling(attempt, base=base, cap=cap) == cap)


def test_ceiling_examples():
    assert [backoff_ceiling(n, base=0.5, cap=10) for n in range(1, 7)] == [0.5, 1, 2, 4, 8, 10]


@given(attempts, bases, caps, st.floats(min_value=-10, max_value=1e6, allow_nan=False), unit)
def test_retry_after_is_honoured_within_the_cap(attempt, base, cap, retry_after, r):
    delay = retry_delay(attempt, base=base, cap=cap, retry_after=retry_after, rand=lambda: r)
    assert delay == min(cap, max(retry_after, 0.0))


def test_parse_retry_after():
    now = datetime(2026, 8, 23, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("999999999") == 86_400.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") is None
    later = (now + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(later, now=now) == 30.0
    earlier = (now - timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(earlier, now=now) == 0.0
