"""ARQ crons: the due scans that enqueue `sync_key`, usage's retention and compaction, the digests,
the price drift, and the heartbeat.

(`deliver_alerts` and its poll cron, `poll_alert_deliveries`, are in `deliveries.py`.)"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, NoReturn

from arq import Retry

from owr_shared.logging import get_logger
from owr_shared.wire.alerts import DigestKind
from owr_shared.wire.keys import InvalidFilter
from owr_shared.wire.usage import CompactionRequest
from owr_worker.alerts_client import AlertsClient
from owr_worker.internal import KeysClient, ServiceError, UsageClient
from owr_worker.jobs import SYNC_KEY, job_now, job_settings, sync_key_job_id
from owr_worker.metrics import DUE_SCANS_BACKLOG_FULL, HEARTBEAT
from owr_worker.tracing import job_context

# The jobs' logger: crons and per-key jobs log under one name, as operators' queries expect.
log = get_logger("owr.worker.jobs")

HEARTBEAT_KEY = "owr:worker:heartbeat"
# Jobs of a due page enqueued at once; the chunks go one after the other.
ENQUEUE_CHUNK = 50


async def _enqueue_due(ctx: Mapping[str, Any], job: str, *, invalid: InvalidFilter = "exclude") -> int:
    """Claim due keys page after page and enqueue `sync_key` for each, until a short page or a full queue.

    keys hands out each workspace's first keys before anyone's second, and leases every key it hands out:
    the scans of several workers running at once take disjoint pages, and a scan's next claim is its next
    page. A key whose job already waits is not doubled (the job id is the key's). The scan stops once the
    queue holds `due_backlog_seconds` of the OpenRouter budget: the keys left stay unleased and the next
    scan ranks them fairly again, so a newly due key of another workspace never waits behind a long queue.
    A page that fails ends this scan too: the keys left are still due, and the next minute's scan takes them.
    """
    keys: KeysClient = ctx["keys"]
    redis = ctx["redis"]
    settings = job_settings(ctx)
    backlog_jobs = max(1, math.ceil(settings.openrouter_max_rps * settings.due_backlog_seconds))
    due = enqueued = pages = 0
    while True:
        room = backlog_jobs - await redis.zcard(settings.queue_name)
        if room <= 0:
            DUE_SCANS_BACKLOG_FULL.labels(job).inc()
            log.warning("due_scan_backlog_full", job_name=job, backlog_jobs=backlog_jobs, pages=pages)
            break
        limit = min(settings.due_page_size, room)
        try:
            page = await keys.claim_due(limit=limit, invalid=invalid)
        except ServiceError as exc:
            log.warning("due_keys_unavailable", error=str(exc), pages=pages)
            break
        pages += 1
        due += len(page)
        # No traceparent: each sync starts a trace of its own rather than hanging 1000 syncs off one cron run.
        # ARQ runs jobs by enqueue time (in ms; by job id within one ms): chunk after chunk, each a millisecond
        # or more after the last, keeps the page's fair order to within a chunk, where one gather of the page
        # would stamp its jobs in a random order.
        for start in range(0, len(page), ENQUEUE_CHUNK):
            if start:
                await asyncio.sleep(0.001)
            queued = await asyncio.gather(
                *(
                    redis.enqueue_job(SYNC_KEY, _job_id=sync_key_job_id(str(k.id)), key_id=str(k.id))
                    for k in page[start : start + ENQUEUE_CHUNK]
                )
            )
            enqueued += sum(job is not None for job in queued)
        if len(page) < limit:
            break
    log.info("due_keys_enqueued", job_name=job, due=due, enqueued=enqueued, pages=pages)
    return enqueued


async def schedule_due_keys(ctx: dict[str, Any]) -> int:
    """Every minute, in every worker: every due key becomes a sync_key job, page after page.

    Not unique: each worker process runs its own scan, and keys' leases share the pages out among them.
    """
    with job_context("schedule_due_keys", traceparent=None, request_id=None):
        return await _enqueue_due(ctx, "schedule_due_keys")


async def validate_keys(ctx: dict[str, Any]) -> int:
    """Daily validation of the keys OpenRouter rejected (401). The minute scan leaves them out — a revoked
    key stays revoked, and asking every ten minutes only spends the OpenRouter budget — so once a day they
    are tried again, and a key restored upstream turns valid. (Valid keys are validated by every sync.)"""
    with job_context("validate_keys", traceparent=None, request_id=None):
        return await _enqueue_due(ctx, "validate_keys", invalid="only")


def _retry_later(ctx: Mapping[str, Any], exc: ServiceError) -> NoReturn:
    """usage's housekeeping failed: a retryable failure runs the whole (idempotent) job again in 5 minutes,
    up to 3 tries; anything else fails the run."""
    if exc.retryable and int(ctx.get("job_try") or 1) < 3:
        raise Retry(defer=300) from None
    raise exc


async def cleanup_usage(ctx: dict[str, Any]) -> Any:
    """Weekly: usage drops snapshots, daily rows and activity older than `retention_days`."""
    with job_context("cleanup_usage", traceparent=None, request_id=None):
        before = job_now(ctx).date() - timedelta(days=job_settings(ctx).retention_days)
        usage: UsageClient = ctx["usage"]
        try:
            result = await usage.apply_retention(before)
        except ServiceError as exc:
            _retry_later(ctx, exc)
        log.info("usage_retention_applied", before=before.isoformat())
        return result


async def compact_snapshots(ctx: dict[str, Any]) -> dict[str, int]:
    """Daily: usage thins the snapshots of the days past its full window to each key-day's first and last,
    batch after batch of keys. It looks back `compaction_lookback_days` (days compacted before lose nothing
    more, except to a late snapshot); idempotent, so a failed run is simply run again."""
    with job_context("compact_snapshots", traceparent=None, request_id=None):
        settings = job_settings(ctx)
        usage: UsageClient = ctx["usage"]
        since = job_now(ctx).date() - timedelta(days=settings.compaction_lookback_days)
        after: uuid.UUID | None = None
        deleted = keys = 0
        while True:
            request = CompactionRequest(since=since, after=after, keys=settings.compaction_batch_keys)
            try:
                batch = await usage.compact_snapshots(request)
            except ServiceError as exc:
                _retry_later(ctx, exc)
            deleted += batch.deleted
            keys += batch.keys
            if batch.next_after is None:
                break
            after = batch.next_after
        log.info("snapshots_compacted", since=since.isoformat(), deleted=deleted, keys=keys)
        return {"deleted": deleted, "keys": keys}


async def _raise_digests(ctx: dict[str, Any], kind: DigestKind) -> int:
    """usage writes the digest of the period just ended for every workspace with a channel that takes it, into the
    outbox (the next `deliver_alerts` sends them). A repeat for the same period writes nothing, so a retried or
    doubled run is harmless."""
    with job_context(f"{kind}_digests", traceparent=None, request_id=None):
        alerts: AlertsClient = ctx["alerts"]
        try:
            raised = await alerts.raise_digests(kind, job_now(ctx))
        except ServiceError as exc:
            _retry_later(ctx, exc)
        log.info("digests_raised", kind=kind, raised=raised.raised)
        return raised.raised


async def weekly_digests(ctx: dict[str, Any]) -> int:
    """Mondays 00:05 UTC: the week that ended at midnight (weeks run from Monday 00:00 UTC, as OpenRouter's)."""
    return await _raise_digests(ctx, "weekly")


async def monthly_digests(ctx: dict[str, Any]) -> int:
    """The 1st, 00:05 UTC: the month that ended at midnight."""
    return await _raise_digests(ctx, "monthly")


async def price_drift(ctx: dict[str, Any]) -> int:
    """Daily 06:25 UTC, hours after every account's daily `/activity` (fetched in its first sync after 00:00):
    usage compares the last settled week's prices with the week before in every workspace. A week settles on
    the Tuesday after it; the runs through the next Monday look at it again (a late day, a workspace busy at
    the time), and each (workspace, model, provider, week) is raised once."""
    with job_context("price_drift", traceparent=None, request_id=None):
        alerts: AlertsClient = ctx["alerts"]
        try:
            raised = await alerts.raise_price_drift(job_now(ctx))
        except ServiceError as exc:
            _retry_later(ctx, exc)
        log.info("price_drift_evaluated", raised=raised.raised)
        return raised.raised


async def record_heartbeat(ctx: dict[str, Any]) -> float:
    """Record that the cron loop is alive; readiness and alerts read it. Idempotent: last write wins."""
    now = time.time()
    await ctx["redis"].set(HEARTBEAT_KEY, f"{now:.3f}", ex=600)
    HEARTBEAT.set(now)
    return now
