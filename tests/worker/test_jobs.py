"""Jobs with every dependency from ctx: real Redis and real HTTP clients, pointed at test doubles of
OpenRouter and of the internal APIs (the e2e tests run them against the real processes)."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from arq import Retry
from arq.connections import ArqRedis
from arq.jobs import deserialize_job
from prometheus_client import REGISTRY

from owr_worker.circuit import OPEN_UNTIL_KEY
from owr_worker.crons import ENQUEUE_CHUNK, cleanup_usage, compact_snapshots, schedule_due_keys, validate_keys
from owr_worker.jobs import ACTIVITY_PREFIX, AFTER_OUTAGE_SUFFIX, sync_account, sync_key, sync_key_job_id
from owr_worker.locks import lock_key
from owr_worker.sweep import sweep_workspaces
from owr_worker.worker import worker_settings
from tests.support.logs import captured_json_logs
from tests.support.ports import closed_port
from tests.worker.conftest import (
    CREDITS_BODY,
    KEY,
    KEY_BODY,
    MGMT_KEY,
    QUEUE,
    FakeServer,
    Reply,
    activity_row,
    key_row,
)

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
WS = "2b0a7f61-8a1e-4a4e-9d55-0d7c4f3f2a10"
MGMT_BODY = KEY_BODY.replace('"is_management_key": false', '"is_management_key": true').replace(
    '"limit": 100, "limit_reset": "monthly", "limit_remaining": 74.5',
    '"limit": null, "limit_reset": null, "limit_remaining": null',
)


def synced(outcome: str) -> float:
    return REGISTRY.get_sample_value("owr_keys_synced_total", {"outcome": outcome}) or 0.0


async def test_sync_key_stores_a_snapshot_and_reports_valid(make_ctx, openrouter, internal, arq_redis):
    ctx = make_ctx()
    key_id = internal.add_key(KEY, WS)
    openrouter.reply("/api/v1/key", Reply(body=KEY_BODY))
    before = synced("valid")

    assert await sync_key(ctx, key_id, traceparent=TRACEPARENT, request_id="req-1", workspace_id=WS) == "valid"

    [item] = internal.snapshots
    assert item["key_id"] == key_id
    assert item["workspace_id"] == WS
    assert item["observed_at"] == "2026-08-23T10:15:30+00:00"  # OpenRouter's Date header
    assert item["snapshot"]["usage"] == Decimal("131.2")
    assert item["snapshot"]["limit_remaining"] == Decimal("74.5")
    assert "rate_limit" not in item["snapshot"]
    [report] = internal.statuses[key_id]
    assert report["status"] == "valid"
    assert report["kind"] == "inference"
    assert report["limit"] == 100
    assert report["limit_reset"] == "monthly"
    assert report["limit_remaining"] == Decimal("74.5")
    assert report["expires_at"] is None
    assert report["last_error"] is None
    assert datetime.fromisoformat(report["last_synced_at"]) > datetime.now(UTC) - timedelta(minutes=1)
    assert synced("valid") == before + 1
    assert not await arq_redis.exists(lock_key(key_id))
    assert await arq_redis.zcard(QUEUE) == 0  # no account sync for an inference key
    # The trace continues into OpenRouter and the internal calls.
    trace_id = TRACEPARENT.split("-")[1]
    assert openrouter.requests("/api/v1/key")[0].headers["traceparent"].split("-")[1] == trace_id
    status_call = internal.requests("/internal/keys/status")[0]
    assert status_call.headers["traceparent"].split("-")[1] == trace_id
    assert status_call.headers["X-Request-ID"] == "req-1"


async def test_workspace_comes_from_the_reveal(make_ctx, openrouter, internal, arq_redis):
    ctx = make_ctx()
    key_id = internal.add_key(KEY, WS)
    openrouter.reply("/api/v1/key", Reply(body=KEY_BODY))
    # keys' job carries no workspace id; an old job's kwarg is not trusted over keys' own answer.
    assert await sync_key(ctx, key_id, traceparent=None, request_id=None) == "valid"
    assert await sync_key(ctx, key_id, workspace_id="3c9d2f1e-0000-4000-8000-000000000000") == "valid"
    assert [s["workspace_id"] for s in internal.snapshots] == [WS, WS]
    assert internal.requests("/internal/keys/due") == []
    assert await arq_redis.keys("owr:worker:workspace:*") == []


async def test_concurrent_jobs_share_each_internal_call(make_ctx, openrouter, internal):
    # A wide window, so that a loaded machine cannot split the eight jobs' calls across two batches.
    ctx = make_ctx(batch_max_wait_ms=500)
    ids = [internal.add_key(KEY, WS) for _ in range(8)]
    openrouter.reply("/api/v1/key", Reply(body=KEY_BODY))
    assert await asyncio.gather(*(sync_key(ctx, i) for i in ids)) == ["valid"] * 8
    assert [len(s.body["ids"]) for s in internal.requests("/internal/keys/reveal")] == [8]
    assert [len(s.body["items"]) for s in internal.requests("/internal/snapshots")] == [8]
    assert [len(s.body["items"]) for s in internal.requests("/internal/keys/status")] == [8]
    assert sorted(s["key_id"] for s in internal.snapshots) == sorted(ids)
    assert all(len(internal.statuses[i]) == 1 for i in ids)


async def test_a_failed_batch_call_retries_each_of_its_jobs(make_ctx, openrouter, internal):
    ctx = make_ctx()
    ids = [internal.add_key(KEY, WS) for _ in range(3)]
    openrouter.reply("/api/v1/key", Reply(body=KEY_BODY))
    internal.handle("POST", "/internal/snapshots", lambda s: Reply(503, "{}"))
    outcomes = await asyncio.gather(*(sync_key(ctx, i) for i in ids), return_exceptions=True)
    assert all(isinstance(o, Retry) for o in outcomes)
    assert len(internal.requests("/internal/snapshots")) == 1
    assert internal.statuses == {}


async def test_management_key_enqueues_its_account_sync(make_ctx, openrouter, internal, arq_redis):
    ctx = make_ctx()
    key_id = internal.add_key(MGMT_KEY, WS)
    openrouter.reply("/api/v1/key", Reply(body=MGMT_BODY))
    assert await sync_key(ctx, key_id, traceparent=TRACEPARENT, request_id="req-1", workspace_id=WS) == "valid"
    report = internal.statuses[key_id][0]
    assert report["kind"] == "management"
    assert report["limit"] is None
    job = deserialize_job(await arq_redis.get(f"arq:job:sync_account:{key_id}"))
    assert job.function == "sync_account"
    assert job.kwargs["key_id"] == key_id
    assert "workspace_id" not in job.kwargs  # the account job learns it from its own reveal
    assert job.kwargs["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]
    assert job.kwargs["request_id"] == "req-1"


async def test_rejected_key_is_reported_invalid(make_ctx, openrouter, internal):
    ctx = make_ctx()
    key_id = internal.add_key(KEY, WS)
    openrouter.reply("/api/v1/key", Reply(401, '{"error": {"message": "User not found.", "code": 401}}'))
    before = synced("invalid")
    assert await sync_key(ctx, key_id, workspace_id=WS) == "invalid"
    [report] = internal.statuses[key_id]
    assert report["status"] == "invalid"
    assert report["last_error"] == "OpenRouter rejected the key (401): User not found."
    assert "kind" not in report
    assert "limit" not in report
    assert internal.snapshots == []
    assert synced("invalid") == before + 1


async def test_gone_or_inactive_key_is_nothing_to_do(make_ctx, openrouter, internal):
    ctx = make_ctx()
    key_id = internal.add_key(KEY, WS)
    internal.unavailable[key_id] = "inactive"
    assert await sync_key(ctx, key_id, workspace_id=WS) == "skipped"
    assert await sync_key(ctx, "00000000-0000-0000-0000-000000000001", workspace_id=WS) == "skipped"
    assert await sync_key(ctx, "not-a-uuid") == "skipped"
    assert openrouter.seen == []
    assert internal.statuses == {}


async def test_a_held_lock_defers_then_gives_way(make_ctx, openrouter, internal, arq_redis):
    ctx = make_ctx(job_max_tries=3)
    key_id = internal.add_key(KEY, WS)
    await arq_redis.set(lock_key(key_id), "another-job", px=60_000)
    with pytest.raises(Retry):
        await sync_key(ctx, key_id, workspace_id=WS)
    ctx["job_try"] = 3
    assert await sync_key(ctx, key_id, workspace_id=WS) == "busy"
    assert await arq_redis.get(lock_key(key_id)) == b"another-job"
    assert openrouter.seen == []
    assert internal.seen == []


async def test_upstream_failure_retries_then_reports_error(make_ctx, openrouter, internal):
    ctx = make_ctx(job_max_tries=2, openrouter_retry_attempts=2, circuit_failure_threshold=100)
    key_id = internal.add_key(KEY, WS)
    openrouter.reply("/api/v1/key", Reply(502, "<html>bad gateway</html>", content_type="text/html"))
    with pytest.raises(Retry) as caught:
        await sync_key(ctx, key_id, workspace_id=WS)
    assert caught.value.defer_score is not None
    assert 1000 <= caught.value.defer_score <= 15_000
    assert internal.statuses == {}
    ctx["job_try"] = 2
    before = synced("error")
    assert await sync_key(ctx, key_id, workspace_id=WS) == "error"
    [report] = internal.statuses[key_id]
    assert report["status"] == "error"
    assert report["last_error"] == "OpenRouter unavailable (502) (gave up after 2 tries)"
    assert synced("error") == before + 1


async def test_long_retry_after_defers_the_job_by_it(make_ctx, openrouter, internal):
    ctx = make_ctx()
    key_id = internal.add_key(KEY, WS)
    openrouter.reply(
        "/api/v1/key",
        Reply(429, '{"error": {"code": 429, "message": "Rate limit exceeded"}}', headers={"Retry-After": "120"}),
    )
    with pytest.raises(Retry) as caught:
        await sync_key(ctx, key_id, workspace_id=WS)
    assert caught.value.defer_score == 120_000


async def test_open_circuit_reports_error_without_calling_openrouter(make_ctx, openrouter, internal, arq_redis):
    ctx = make_ctx()
    key_id = internal.add_key(KEY, WS)
    await arq_redis.set(OPEN_UNTIL_KEY, str(int((datetime.now(UTC) + timedelta(minutes=5)).timestamp() * 1000)))
    # The key shows the outage at once, and the job looks again about when a probe may go through.
    with pytest.raises(Retry) as deferred:
        await sync_key(ctx, key_id, workspace_id=WS)
    open_seconds = ctx["settings"].circuit_open_seconds
    assert deferred.value.defer_score is not None
    assert open_seconds / 2 <= deferred.value.defer_score / 1000 <= open_seconds
    assert openrouter.seen == []
    assert internal.statuses[key_id][0]["last_error"] == "OpenRouter unavailable (circuit open); retrying"
    # On its last try the job ends with the error reported, and leaves one successor to look after the
    # outage: a "sync now" folded into this job must not end without a call to OpenRouter.
    ctx["job_try"] = ctx["settings"].job_max_tries
    ctx["job_id"] = sync_key_job_id(key_id)
    assert await sync_key(ctx, key_id, workspace_id=WS) == "error"
    assert openrouter.seen == []
    successor = sync_key_job_id(key_id) + AFTER_OUTAGE_SUFFIX
    assert await arq_redis.exists(f"arq:job:{successor}") == 1
    # The successor's own last try leaves nothing behind: an outage longer than that is the due scan's.
    await arq_redis.delete(f"arq:job:{successor}")
    ctx["job_id"] = successor
    assert await sync_key(ctx, key_id, workspace_id=WS) == "error"
    # Sync jobs only: the end-to-end suite's worker, still running on this Redis, queues its own crons.
    assert await arq_redis.keys("arq:job:sync_*") == []


async def test_payment_required_without_retry_after_is_reported(make_ctx, openrouter, internal):
    ctx = make_ctx()
    key_id = internal.add_key(KEY, WS)
    openrouter.reply("/api/v1/key", Reply(402, '{"error": {"code": 402, "message": "Insufficient credits."}}'))
    assert await sync_key(ctx, key_id, workspace_id=WS) == "error"
    assert internal.statuses[key_id][0]["last_error"] == "OpenRouter: payment required (402): Insufficient credits."


async def test_usage_down_retries_the_job(make_ctx, openrouter, internal):
    ctx = make_ctx()
    key_id = internal.add_key(KEY, WS)
    openrouter.reply("/api/v1/key", Reply(body=KEY_BODY))
    internal.handle("POST", "/internal/snapshots", lambda s: Reply(503, "{}"))
    with pytest.raises(Retry):
        await sync_key(ctx, key_id, workspace_id=WS)
    assert internal.statuses == {}


async def test_logs_never_carry_the_key(make_ctx, openrouter, internal, capsys):
    ctx = make_ctx()
    key_id = internal.add_key(KEY, WS)
    echo = '{"error": {"code": 401, "message": "bad key ' + KEY + '"}}'
    openrouter.reply("/api/v1/key", Reply(body=KEY_BODY), Reply(401, echo))
    with captured_json_logs(capsys, "worker") as logs:
        await sync_key(ctx, key_id, traceparent=TRACEPARENT, workspace_id=WS)
        await sync_key(ctx, key_id, traceparent=TRACEPARENT, workspace_id=WS)
        text = logs.getvalue()
    assert KEY not in text
    assert KEY[9:41] not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    synced_line = next(line for line in lines if line["event"] == "key_synced")
    assert synced_line["key_id"] == key_id
    assert synced_line["job"] == "sync_key"
    assert synced_line["trace_id"] == TRACEPARENT.split("-")[1]
    assert KEY not in json.dumps(internal.statuses, default=str)


# --- sync_account ---------------------------------------------------------------------------------------


def account_upstream(openrouter: FakeServer, hashes_rows: list[dict[str, Any]]) -> None:
    openrouter.reply("/api/v1/credits", Reply(body=CREDITS_BODY))
    openrouter.handle("GET", "/api/v1/keys", lambda s: {"data": hashes_rows if s.query["offset"] == "0" else []})
    days = ["2026-08-22 00:00:00", "2026-07-24", "2026-07-23"]  # the last is outside the 30-day window
    body = '{"data": [' + ", ".join(activity_row(d) for d in days) + "]}"
    openrouter.reply("/api/v1/activity", Reply(body=body))


async def test_sync_account_ingests_credits_keys_and_a_month_of_activity_once_a_day(
    make_ctx, openrouter, internal, arq_redis
):
    ctx = make_ctx()
    key_id = internal.add_key(MGMT_KEY, WS)
    rows = [key_row(1), key_row(2, disabled=True)]
    account_upstream(openrouter, rows)

    assert await sync_account(ctx, key_id, traceparent=TRACEPARENT, workspace_id=WS) == "done"

    assert internal.credits == [
        {
            "workspace_id": WS,
            "observed_at": "2026-08-23T10:15:30+00:00",
            "total_credits": Decimal("100.5"),
            "total_usage": Decimal("25.7512345678"),
        }
    ]
    [keys_put] = internal.keys
    assert [k["hash"] for k in keys_put["keys"]] == [rows[0]["hash"], rows[1]["hash"]]
    assert keys_put["keys"][0]["usage"] == Decimal("0.1015644762")
    assert "some_future_field" not in keys_put["keys"][0]
    assert [a["api_key_hash"] for a in internal.activity] == [rows[0]["hash"], rows[1]["hash"]]
    first = internal.activity[0]
    expected_dates = [(date(2026, 8, 23) - timedelta(days=n)).isoformat() for n in range(1, 31)]
    assert first["dates"] == expected_dates
    assert [r["date"] for r in first["rows"]] == ["2026-08-22", "2026-07-24"]
    assert first["rows"][0]["usage"] == Decimal("0.015")
    assert {s.query["api_key_hash"] for s in openrouter.requests("/api/v1/activity")} == {
        rows[0]["hash"],
        rows[1]["hash"],
    }
    assert await arq_redis.get(ACTIVITY_PREFIX + key_id) == b"2026-08-23"

    # Same OpenRouter day: credits and keys again, activity not.
    assert await sync_account(ctx, key_id, workspace_id=WS) == "done"
    assert len(internal.credits) == 2
    assert len(internal.keys) == 2
    assert len(internal.activity) == 2


async def test_activity_resumes_after_a_failure(make_ctx, openrouter, internal):
    ctx = make_ctx(openrouter_retry_attempts=1, circuit_failure_threshold=100)
    key_id = internal.add_key(MGMT_KEY, WS)
    rows = [key_row(1), key_row(2)]
    account_upstream(openrouter, rows)
    good = openrouter.replies["/api/v1/activity"][0]
    openrouter.reply("/api/v1/activity", good, Reply(500, "{}"), good)
    with pytest.raises(Retry):
        await sync_account(ctx, key_id, workspace_id=WS)
    assert [a["api_key_hash"] for a in internal.activity] == [rows[0]["hash"]]
    ctx["job_try"] = 2
    assert await sync_account(ctx, key_id, workspace_id=WS) == "done"
    assert [a["api_key_hash"] for a in internal.activity] == [rows[0]["hash"], rows[1]["hash"]]


async def test_sync_account_with_an_inference_key_stops(make_ctx, openrouter, internal):
    ctx = make_ctx()
    key_id = internal.add_key(KEY, WS)
    openrouter.reply(
        "/api/v1/credits",
        Reply(403, '{"error": {"code": 403, "message": "Only management keys can perform this operation"}}'),
    )
    assert await sync_account(ctx, key_id, workspace_id=WS) == "not_management"
    assert internal.credits == []
    assert internal.statuses == {}


# --- crons and registration -----------------------------------------------------------------------------


def due_items(ids: list[str], status: str = "pending") -> list[dict[str, Any]]:
    return [{"id": i, "workspace_id": WS, "kind": None, "status": status, "last_synced_at": None} for i in ids]


async def test_schedule_due_keys_enqueues_each_once(make_ctx, internal, arq_redis):
    ctx = make_ctx()
    ids = [internal.add_key(KEY, WS) for _ in range(3)]
    internal.due = due_items(ids)
    assert await schedule_due_keys(ctx) == 3
    internal.claimed.clear()  # as if the leases ran out while the jobs still wait
    assert await schedule_due_keys(ctx) == 0  # still queued: the job ids are taken
    assert await validate_keys(ctx) == 0
    # The minute scan leaves rejected keys out; the daily validation asks for them alone.
    bodies = [r.body for r in internal.requests("/internal/keys/due/claim")]
    assert bodies[0] == {"limit": 1000, "invalid": "exclude"}  # no `after`: the leases are the paging
    assert bodies[-1] == {"limit": 1000, "invalid": "only"}
    queued = {m.decode() for m in await arq_redis.zrange(QUEUE, 0, -1)}
    assert queued == {f"sync_key:{i}" for i in ids}
    job = deserialize_job(await arq_redis.get(f"arq:job:sync_key:{ids[0]}"))
    assert job.function == "sync_key"
    assert job.kwargs == {"key_id": ids[0]}


async def test_the_due_scan_pages_through_every_due_key(make_ctx, internal, arq_redis):
    """No ceiling while the queue has room: a scan takes page after page until a short one."""
    ctx = make_ctx(due_page_size=7)
    ids = [internal.add_key(KEY, WS) for _ in range(30)]
    internal.due = due_items(ids)
    assert await schedule_due_keys(ctx) == 30
    assert len(internal.requests("/internal/keys/due/claim")) == 5
    assert await arq_redis.zcard(QUEUE) == 30


def backlog_full(scan: str) -> float:
    return REGISTRY.get_sample_value("owr_due_scans_backlog_full_total", {"scan": scan}) or 0.0


async def test_the_due_scan_stops_at_a_full_backlog_and_the_next_takes_the_rest(make_ctx, internal, arq_redis):
    """The queue may hold `due_backlog_seconds` of the OpenRouter budget (2 rps x 5 s = 10 jobs): the scan
    claims no more than that, counts the full backlog, and leaves the other keys unleased for the next."""
    ctx = make_ctx(due_page_size=4, openrouter_max_rps=2, due_backlog_seconds=5)
    ids = [internal.add_key(KEY, WS) for _ in range(25)]
    internal.due = due_items(ids)
    before = backlog_full("schedule_due_keys")
    assert await schedule_due_keys(ctx) == 10
    assert [r.body["limit"] for r in internal.requests("/internal/keys/due/claim")] == [4, 4, 2]
    assert len(internal.claimed) == 10  # the rest stays unleased
    assert backlog_full("schedule_due_keys") == before + 1
    assert await schedule_due_keys(ctx) == 0  # nothing ran meanwhile: still full
    assert backlog_full("schedule_due_keys") == before + 2
    await arq_redis.delete(QUEUE)  # the workers drained the queue
    assert await schedule_due_keys(ctx) == 10
    await arq_redis.delete(QUEUE)
    assert await schedule_due_keys(ctx) == 5
    assert sorted(internal.claimed) == sorted(ids)
    assert backlog_full("schedule_due_keys") == before + 3


class JitteryRedis:
    """The worker's Redis with each enqueue's start delayed at random (0-10 ms), as connection set-up and a
    busy worker's other jobs delay them: concurrent enqueues are stamped in no particular order."""

    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis

    async def enqueue_job(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(random.uniform(0, 0.01))
        return await self.redis.enqueue_job(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.redis, name)


async def test_a_small_workspace_is_enqueued_in_the_first_page_and_queued_first(make_ctx, internal, arq_redis):
    """A workspace with many due keys and one with 3: the scan's first page holds the 3, and their jobs are
    queued ahead of the page's later chunks and of every later page (ARQ runs jobs by enqueue time)."""
    ctx = make_ctx(due_page_size=300)
    ctx["redis"] = JitteryRedis(arq_redis)
    large, small = str(uuid.uuid4()), str(uuid.uuid4())
    large_ids = [internal.add_key(KEY, large) for _ in range(400)]
    small_ids = [internal.add_key(KEY, small) for _ in range(3)]
    internal.due = [{**d, "workspace_id": large} for d in due_items(large_ids)] + [
        {**d, "workspace_id": small} for d in due_items(small_ids)
    ]
    assert await schedule_due_keys(ctx) == 403
    assert set(small_ids) <= set(internal.claimed[:6])  # rank 1, 2 and 3 of both workspaces

    async def position(key_id: str) -> int:
        """Where the key's job stands in the queue (the order ARQ takes jobs in: enqueue time, then job id)."""
        rank = await arq_redis.zrank(QUEUE, sync_key_job_id(key_id))
        assert rank is not None
        return int(rank)

    small_positions = [await position(i) for i in small_ids]
    later_positions = [await position(i) for i in internal.claimed[ENQUEUE_CHUNK:]]
    assert max(small_positions) < min(later_positions)


async def test_two_workers_scanning_at_once_enqueue_every_due_key_once(make_ctx, internal, arq_redis):
    """Two workers' scans run together (the cron is not unique): every key is taken by one of them."""
    first, second = make_ctx(due_page_size=5), make_ctx(due_page_size=5)
    ids = [internal.add_key(KEY, WS) for _ in range(53)]
    internal.due = due_items(ids)
    counts = await asyncio.gather(schedule_due_keys(first), schedule_due_keys(second))
    assert sum(counts) == 53
    assert sorted(internal.claimed) == sorted(ids)  # each key handed out once
    assert await arq_redis.zcard(QUEUE) == 53
    assert list(await asyncio.gather(schedule_due_keys(first), schedule_due_keys(second))) == [0, 0]


async def test_schedule_due_keys_survives_keys_being_down(make_ctx, internal):
    ctx = make_ctx()
    internal.handle("POST", "/internal/keys/due/claim", lambda s: Reply(503, "{}"))
    assert await schedule_due_keys(ctx) == 0


async def test_a_failed_page_keeps_what_the_scan_already_enqueued(make_ctx, internal, arq_redis):
    ctx = make_ctx(due_page_size=4)
    ids = [internal.add_key(KEY, WS) for _ in range(10)]
    internal.due = due_items(ids)
    claim = internal.handlers[("POST", "/internal/keys/due/claim")]
    calls = iter([claim, lambda s: Reply(503, "{}")])
    internal.handle("POST", "/internal/keys/due/claim", lambda s: next(calls)(s))
    assert await schedule_due_keys(ctx) == 4
    assert await arq_redis.zcard(QUEUE) == 4


async def test_cleanup_usage_asks_for_the_retention_window(make_ctx, internal):
    ctx = make_ctx(retention_days=400)
    ctx["clock"] = lambda: datetime(2026, 8, 23, 4, 43, tzinfo=UTC)
    assert await cleanup_usage(ctx) == {"deleted": {"snapshots": 0}}
    assert internal.requests("/internal/retention")[0].body == {"before": "2025-07-19"}


async def test_compact_snapshots_goes_through_every_batch(make_ctx, internal):
    ctx = make_ctx(compaction_lookback_days=7, compaction_batch_keys=2)
    ctx["clock"] = lambda: datetime(2026, 8, 23, 2, 37, tzinfo=UTC)
    last = "00000000-0000-4000-8000-000000000002"
    answers = iter(
        [
            {"before": "2026-08-21", "deleted": 280, "keys": 2, "next_after": last},
            {"before": "2026-08-21", "deleted": 3, "keys": 1, "next_after": None},
        ]
    )
    internal.handle("POST", "/internal/snapshots/compaction", lambda s: next(answers))
    assert await compact_snapshots(ctx) == {"deleted": 283, "keys": 3}
    bodies = [r.body for r in internal.requests("/internal/snapshots/compaction")]
    assert bodies == [
        {"before": None, "since": "2026-08-16", "after": None, "keys": 2},
        {"before": None, "since": "2026-08-16", "after": last, "keys": 2},
    ]


async def test_compact_snapshots_retries_when_usage_is_down(make_ctx, internal):
    ctx = make_ctx()
    internal.handle("POST", "/internal/snapshots/compaction", lambda s: Reply(503, "{}"))
    with pytest.raises(Retry):
        await compact_snapshots(ctx)


def test_worker_registers_jobs_without_kept_results(settings_factory):
    config = worker_settings(settings_factory())
    functions = {f.name: f for f in config["functions"]}
    assert set(functions) == {"sync_key", "sync_account", "deliver_alerts", "send_auth_mail", "manage_key_upstream"}
    assert all(f.keep_result_s == 0 for f in functions.values())
    crons = {c.name for c in config["cron_jobs"]}
    assert {
        "cron:record_heartbeat",
        "cron:schedule_due_keys",
        "cron:validate_keys",
        "cron:cleanup_usage",
        "cron:compact_snapshots",
        "cron:poll_alert_deliveries",
        "cron:weekly_digests",
        "cron:monthly_digests",
        "cron:price_drift",
        "cron:sweep_key_actions",
        "cron:requeue_auth_mail",
    } <= crons
    assert config["poll_delay"] == 0.1  # a job queued on an idle system waits at most this
    # Every worker scans for due keys (keys' leases split them); the other crons run once per tick.
    assert {c.name for c in config["cron_jobs"] if not c.unique} == {"cron:schedule_due_keys"}


async def test_sweep_workspaces_calls_auth_with_the_worker_s_client_credentials(make_ctx, internal):
    ctx = make_ctx()
    result = {"pending_finished": 1, "pending_left": 0, "orphans_erased": 2}
    internal.handle("POST", "/internal/workspaces/sweep", lambda s: result)
    assert await sweep_workspaces(ctx) == result
    (seen,) = internal.requests("/internal/workspaces/sweep")
    scheme, _, encoded = seen.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "worker:worker-client-secret-for-tests"
    assert "traceparent" in {name.lower() for name in seen.headers}


@pytest.mark.parametrize("answer", [Reply(503, '{"title": "Deletion Unavailable"}'), Reply(200, "not json")])
async def test_a_failed_sweep_is_left_to_the_next_hour(make_ctx, internal, answer):
    ctx = make_ctx()
    internal.handle("POST", "/internal/workspaces/sweep", lambda s: answer)
    sample = ("owr_workspace_sweeps_total", {"outcome": "unavailable"})
    before = REGISTRY.get_sample_value(*sample) or 0
    assert await sweep_workspaces(ctx) == {}
    assert REGISTRY.get_sample_value(*sample) == before + 1


async def test_an_unreachable_auth_fails_the_sweep_quietly(make_ctx):
    ctx = make_ctx()
    ctx["settings"] = ctx["settings"].model_copy(update={"auth_url": f"http://127.0.0.1:{closed_port()}"})
    assert await sweep_workspaces(ctx) == {}
