"""The OpenRouter client against a real (tiny) HTTP server serving CONTRACT.md's bodies and faults."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import aiohttp
import pytest
from prometheus_client import REGISTRY

from owr_worker.circuit import CircuitBreaker
from owr_worker.openrouter import (
    CircuitOpen,
    KeyRejected,
    NotManagementKey,
    OpenRouterClient,
    PaymentRequired,
    RateLimited,
    RetryPolicy,
    UpstreamUnavailable,
    observed_at_from,
    scrub,
)
from owr_worker.tracing import job_context
from tests.worker.conftest import CREDITS_BODY, KEY, KEY_BODY, MGMT_KEY, FakeServer, Reply, activity_row, key_row

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
CF_520 = "<!DOCTYPE html><html><head><title>openrouter.ai | 520: Web server is returning an unknown error</title>"


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client(
    http: aiohttp.ClientSession,
    openrouter: FakeServer,
    *,
    attempts: int = 3,
    cap: float = 10.0,
    timeout: float = 2.0,
    circuit: CircuitBreaker | None = None,
    sleep: Sleeps | None = None,
) -> OpenRouterClient:
    return OpenRouterClient(
        http,
        openrouter.url + "/api/v1",
        timeout_seconds=timeout,
        circuit=circuit,
        retry=RetryPolicy(attempts=attempts, base_seconds=0.01, cap_seconds=cap),
        sleep=sleep or Sleeps(),
    )


def counter(endpoint: str, status: str) -> float:
    value = REGISTRY.get_sample_value("owr_openrouter_requests_total", {"endpoint": endpoint, "status": status})
    return value or 0.0


async def test_get_key_parses_money_exactly_and_ignores_unknown_fields(http, openrouter):
    openrouter.reply("/api/v1/key", Reply(body=KEY_BODY))
    observed = await client(http, openrouter).get_key(KEY)
    info = observed.data
    assert info.usage == Decimal("131.2")
    assert info.limit_remaining == Decimal("74.5")
    assert info.limit == Decimal(100)
    assert info.limit_reset == "monthly"
    assert info.is_management_key is False
    assert info.expires_at is None
    assert observed.observed_at == datetime(2026, 8, 23, 10, 15, 30, tzinfo=UTC)
    snapshot = info.model_dump(mode="python")  # what the worker sends usage as the snapshot
    assert "rate_limit" not in snapshot
    assert "free_model_daily_requests" not in snapshot
    assert set(snapshot) >= {"label", "usage_daily", "byok_usage_monthly", "is_free_tier", "include_byok_in_limit"}


async def test_request_carries_bearer_traceparent_and_no_request_id(http, openrouter):
    openrouter.reply("/api/v1/key", Reply(body=KEY_BODY))
    with job_context("sync_key", traceparent=TRACEPARENT, request_id="req-1") as trace:
        await client(http, openrouter).get_key(KEY)
    seen = openrouter.requests("/api/v1/key")[0]
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert seen.headers["traceparent"] == trace.traceparent
    assert trace.traceparent.split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
    assert "X-Request-ID" not in seen.headers


async def test_provisioning_alias_marks_management_key(http, openrouter):
    openrouter.reply("/api/v1/key", Reply(body='{"data": {"label": "x", "is_provisioning_key": true, "usage": 1}}'))
    assert (await client(http, openrouter).get_key(MGMT_KEY)).data.is_management_key is True


async def test_observed_at_falls_back_to_local_clock():
    fixed = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert observed_at_from({}, now=lambda: fixed) == fixed
    assert observed_at_from({"Date": "not a date"}, now=lambda: fixed) == fixed
    assert observed_at_from({"Date": "Tue, 01 Sep 2026 00:00:01 GMT"}) == datetime(2026, 9, 1, 0, 0, 1, tzinfo=UTC)


async def test_credits(http, openrouter):
    openrouter.reply("/api/v1/credits", Reply(body=CREDITS_BODY))
    credits = (await client(http, openrouter).get_credits(MGMT_KEY)).data
    assert credits.total_credits == Decimal("100.5")
    assert credits.total_usage == Decimal("25.7512345678")


async def test_list_keys_pages_by_offset_until_a_short_page(http, openrouter):
    rows = [key_row(n) for n in range(230)]

    def page(seen):
        offset = int(seen.query["offset"])
        return {"data": rows[offset : offset + 100]}

    openrouter.handle("GET", "/api/v1/keys", page)
    listed = await client(http, openrouter).list_keys(MGMT_KEY)
    assert [r.hash for r in listed.data] == [r["hash"] for r in rows]
    offsets = [s.query["offset"] for s in openrouter.requests("/api/v1/keys")]
    assert offsets == ["0", "100", "200"]
    assert all(s.query["include_disabled"] == "true" for s in openrouter.requests("/api/v1/keys"))
    assert listed.data[0].usage == Decimal("0.1015644762")


async def test_list_keys_exact_multiple_of_a_page_asks_once_more(http, openrouter):
    rows = [key_row(n) for n in range(100)]
    openrouter.handle("GET", "/api/v1/keys", lambda s: {"data": rows if s.query["offset"] == "0" else []})
    listed = await client(http, openrouter).list_keys(MGMT_KEY)
    assert len(listed.data) == 100
    assert len(openrouter.requests("/api/v1/keys")) == 2


async def test_list_keys_skips_a_row_it_cannot_read(http, openrouter):
    openrouter.handle("GET", "/api/v1/keys", lambda s: {"data": [key_row(1), {"name": "no hash"}]})
    listed = await client(http, openrouter).list_keys(MGMT_KEY)
    assert [r.hash for r in listed.data] == [key_row(1)["hash"]]


async def test_activity_accepts_both_date_forms_and_passes_filters(http, openrouter):
    body = (
        '{"data": ['
        + activity_row("2026-08-22 00:00:00")
        + ", "
        + activity_row("2026-08-21", usage="1.0000000001")
        + "]}"
    )
    openrouter.reply("/api/v1/activity", Reply(body=body))
    rows = (await client(http, openrouter).get_activity(MGMT_KEY, api_key_hash="ab" * 32, day=date(2026, 8, 22))).data
    assert [r.date for r in rows] == [date(2026, 8, 22), date(2026, 8, 21)]
    assert rows[1].usage == Decimal("1.0000000001")
    assert rows[0].reasoning_tokens == 25
    assert openrouter.requests("/api/v1/activity")[0].query == {"api_key_hash": "ab" * 32, "date": "2026-08-22"}


async def test_401_is_key_rejected_without_retry(http, openrouter):
    openrouter.reply("/api/v1/key", Reply(401, '{"error": {"message": "User not found.", "code": 401}}'))
    with pytest.raises(KeyRejected) as caught:
        await client(http, openrouter).get_key(KEY)
    assert caught.value.message == "OpenRouter rejected the key (401): User not found."
    assert len(openrouter.requests("/api/v1/key")) == 1


async def test_403_is_not_management_key(http, openrouter):
    openrouter.reply(
        "/api/v1/credits",
        Reply(403, '{"error": {"code": 403, "message": "Only management keys can perform this operation"}}'),
    )
    with pytest.raises(NotManagementKey):
        await client(http, openrouter).get_credits(KEY)


async def test_429_honours_retry_after_then_succeeds(http, openrouter):
    limited = Reply(
        429,
        '{"error": {"code": 429, "message": "Rate limit exceeded", "metadata": {"error_type": "rate_limit_exceeded"}}}',
        headers={"Retry-After": "3", "X-RateLimit-Reset": "1756000000000"},
    )
    openrouter.reply("/api/v1/key", limited, Reply(body=KEY_BODY))
    sleeps = Sleeps()
    before = counter("/key", "429")
    observed = await client(http, openrouter, cap=5.0, sleep=sleeps).get_key(KEY)
    assert observed.data.usage == Decimal("131.2")
    assert sleeps.calls == [3.0]
    assert counter("/key", "429") == before + 1


async def test_429_with_a_long_retry_after_is_left_to_the_job(http, openrouter):
    openrouter.reply(
        "/api/v1/key",
        Reply(429, '{"error": {"code": 429, "message": "Rate limit exceeded"}}', headers={"Retry-After": "120"}),
    )
    with pytest.raises(RateLimited) as caught:
        await client(http, openrouter, cap=5.0).get_key(KEY)
    assert caught.value.retry_after == 120
    assert len(openrouter.requests("/api/v1/key")) == 1


async def test_402_without_retry_after_is_not_retried(http, openrouter):
    body = '{"error": {"code": 402, "message": "Insufficient credits. Add more using https://openrouter.ai/credits", "metadata": {"limit_source": "openrouter_credits"}}}'
    openrouter.reply("/api/v1/key", Reply(402, body))
    with pytest.raises(PaymentRequired) as caught:
        await client(http, openrouter).get_key(KEY)
    assert caught.value.retry_after is None
    assert len(openrouter.requests("/api/v1/key")) == 1


async def test_402_with_retry_after_is_retried(http, openrouter):
    openrouter.reply(
        "/api/v1/key",
        Reply(402, '{"error": {"code": 402, "message": "x"}}', headers={"Retry-After": "1"}),
        Reply(body=KEY_BODY),
    )
    assert (await client(http, openrouter).get_key(KEY)).data.label == "sk-or-v1-0e6...c96"


async def test_cloudflare_520_html_is_retried_then_unavailable(http, openrouter):
    openrouter.reply("/api/v1/key", Reply(520, CF_520, content_type="text/html"))
    sleeps = Sleeps()
    before = counter("/key", "520")
    with pytest.raises(UpstreamUnavailable) as caught:
        await client(http, openrouter, attempts=3, sleep=sleeps).get_key(KEY)
    assert caught.value.message == "OpenRouter unavailable (520)"
    assert len(openrouter.requests("/api/v1/key")) == 3
    assert len(sleeps.calls) == 2
    assert all(0 <= s <= 10.0 for s in sleeps.calls)
    assert counter("/key", "520") == before + 3


async def test_503_then_success(http, openrouter):
    openrouter.reply(
        "/api/v1/key",
        Reply(503, '{"error": {"code": 503, "message": "busy"}}', headers={"Retry-After": "0"}),
        Reply(body=KEY_BODY),
    )
    assert (await client(http, openrouter).get_key(KEY)).data.usage == Decimal("131.2")


async def test_a_hang_is_a_timeout(http, openrouter):
    openrouter.reply("/api/v1/key", Reply(body=KEY_BODY, delay=2.0))
    before = counter("/key", "timeout")
    with pytest.raises(UpstreamUnavailable, match="timeout"):
        await client(http, openrouter, attempts=1, timeout=0.2).get_key(KEY)
    assert counter("/key", "timeout") == before + 1


async def test_refused_connection_is_unavailable(http, openrouter):
    c = client(http, openrouter, attempts=2)
    await openrouter.stop()
    before = counter("/key", "error")
    with pytest.raises(UpstreamUnavailable, match="unreachable"):
        await c.get_key(KEY)
    assert counter("/key", "error") == before + 2


async def test_unreadable_200_is_unavailable(http, openrouter):
    openrouter.reply("/api/v1/key", Reply(body="<html>maintenance</html>", content_type="text/html"))
    with pytest.raises(UpstreamUnavailable):
        await client(http, openrouter, attempts=1).get_key(KEY)
    openrouter.reply("/api/v1/key", Reply(body='{"data": {"usage": NaN}}'))
    with pytest.raises(UpstreamUnavailable):
        await client(http, openrouter, attempts=1).get_key(KEY)


async def test_error_messages_never_carry_the_key(http, openrouter):
    echo = '{"error": {"code": 401, "message": "Key ' + KEY + " not found; also " + KEY[9:] + '"}}'
    openrouter.reply("/api/v1/key", Reply(401, echo))
    with pytest.raises(KeyRejected) as caught:
        await client(http, openrouter).get_key(KEY)
    assert KEY not in str(caught.value)
    assert KEY[9:] not in str(caught.value)
    assert "sk-or-" not in str(caught.value)


def test_scrub_bounds_and_cleans():
    assert scrub("a\x00b\nc") == "a b c"
    assert len(scrub("x " * 1000)) == 300
    assert scrub("Bearer abc.def") == "***"


async def test_open_circuit_sends_nothing(http, openrouter, redis_client):
    circuit = CircuitBreaker(redis_client, threshold=2, open_seconds=60, probe_ttl_seconds=5)
    openrouter.reply("/api/v1/key", Reply(500, '{"error": {"code": 500, "message": "boom"}}'))
    c = client(http, openrouter, attempts=5, circuit=circuit)
    with pytest.raises(CircuitOpen, match="circuit open"):
        await c.get_key(KEY)
    assert len(openrouter.requests("/api/v1/key")) == 2  # the third attempt found the circuit open
    with pytest.raises(CircuitOpen):
        await c.get_key(KEY)
    assert len(openrouter.requests("/api/v1/key")) == 2


async def test_key_answers_keep_the_circuit_closed(http, openrouter, redis_client):
    circuit = CircuitBreaker(redis_client, threshold=2, open_seconds=60, probe_ttl_seconds=5)
    openrouter.reply(
        "/api/v1/key",
        Reply(500, "{}"),
        Reply(401, '{"error": {"code": 401, "message": "User not found."}}'),
        Reply(500, "{}"),
        Reply(body=KEY_BODY),
    )
    c = client(http, openrouter, attempts=1, circuit=circuit)
    for expected in (UpstreamUnavailable, KeyRejected, UpstreamUnavailable):
        with pytest.raises(expected):
            await c.get_key(KEY)
    assert (await c.get_key(KEY)).data.usage == Decimal("131.2")
