"""`deliver_alerts`: usage's outbox, delivered. Claim a batch of due deliveries, send each, report each attempt.

A cron (`poll_alert_deliveries`, every `WORKER_DELIVERY_POLL_SECONDS`) queues the job under a fixed job id
(`deliver_alerts`: a tick that finds it queued or running adds nothing), and a full batch queues the next one at
once under the other id (`deliver_alerts:more`), so a backlog drains batch after batch. One batch at a time across
every worker (`owr:worker:lock:alert-deliveries`): a run that finds it held ends at once, the holder goes on. (The
job is not the cron itself: arq keeps a cron job's id "in progress" for a minute after it ends, which would let
a fixed id run once a minute at most.)

A dead receiver never slows syncing: delivery takes one of arq's `WORKER_MAX_JOBS` slots (two for a moment while a
batch hands over to the next), sends at most `WORKER_DELIVERY_CONCURRENCY` at once, and every attempt ends within
`WORKER_OUTBOUND_TIMEOUT_SECONDS` whatever the receiver does; a batch therefore lasts at most
ceil(batch / concurrency) x (that timeout + one internal call), the lease it claims for. Attempts are not retried
here: each is reported as it ends, and usage schedules the next (backoff with jitter, `Retry-After` honoured).

At least once: a worker that dies mid-batch leaves its deliveries leased; when the lease lapses usage hands them
out again, and a webhook carries the same `webhook-id` (the event's id) every time, so receivers drop repeats.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import Mapping
from typing import Any

from redis.exceptions import RedisError

from owr_shared.logging import get_logger
from owr_shared.wire.alerts import (
    DELIVER_ALERTS_JOB,
    DELIVER_ALERTS_JOB_ID,
    ClaimedDelivery,
    DeliveryResult,
    OutboxBacklog,
)
from owr_worker.alerts_client import AlertsClient, Claim
from owr_worker.internal import ServiceError
from owr_worker.jobs import job_settings
from owr_worker.locks import key_lock
from owr_worker.metrics import (
    ALERT_DELIVERIES,
    ALERT_DELIVERY_DURATION,
    ALERT_OUTBOX_DEPTH,
    ALERT_OUTBOX_OLDEST_DUE,
)
from owr_worker.senders import Attempt, Senders, failed
from owr_worker.settings import WorkerSettings
from owr_worker.tracing import job_context

log = get_logger("owr.worker.jobs")

DELIVER_ALERTS = DELIVER_ALERTS_JOB
# The poll's id (usage's nudge uses it too) and the next batch's: two, so a running batch can always queue the
# one after it.
DELIVERY_JOB_ID = DELIVER_ALERTS_JOB_ID
NEXT_BATCH_JOB_ID = f"{DELIVER_ALERTS}:more"
LOCK_NAME = "alert-deliveries"
BACKLOG_KEY = "owr:worker:alerts:backlog"
BACKLOG_TTL_SECONDS = 86_400
LEASE_MIN_SECONDS, LEASE_MAX_SECONDS = 10, 600  # DeliveryClaim's bounds


async def poll_alert_deliveries(ctx: dict[str, Any]) -> bool:
    """The cron: queue `deliver_alerts` unless it is queued or running already. True when it queued it."""
    return await ctx["redis"].enqueue_job(DELIVER_ALERTS, _job_id=DELIVERY_JOB_ID) is not None


def lease_seconds(settings: WorkerSettings) -> int:
    """How long a claimed batch is held: its worst case (every attempt and its report at their timeouts, round
    after round of `delivery_concurrency`), plus a margin."""
    rounds = math.ceil(settings.delivery_batch / settings.delivery_concurrency)
    worst = rounds * (settings.outbound_timeout_seconds + settings.internal_timeout_seconds) + 10
    return int(min(LEASE_MAX_SECONDS, max(LEASE_MIN_SECONDS, math.ceil(worst))))


async def deliver_alerts(ctx: dict[str, Any]) -> dict[str, int]:
    """Claim one batch, send it (bounded), report every attempt; a full batch queues the next run. The counts of
    the batch's outcomes (empty when another run holds the batch or usage could not be reached)."""
    with job_context(DELIVER_ALERTS, traceparent=None, request_id=None):
        settings = job_settings(ctx)
        redis = ctx["redis"]
        lease = lease_seconds(settings)
        # Held for the claim and its lease; a worker that dies holding it frees it by expiry.
        hold = lease + math.ceil(settings.internal_timeout_seconds)
        async with key_lock(redis, LOCK_NAME, ttl_seconds=hold) as held:
            if not held:
                return {}
            alerts: AlertsClient = ctx["alerts"]
            try:
                claim = await alerts.claim(limit=settings.delivery_batch, lease_seconds=lease)
            except ServiceError as exc:
                log.warning("alert_claim_failed", error=str(exc))
                return {}
            await record_backlog(redis, claim.backlog)
            counts = await _deliver(ctx, claim) if claim.size else {}
        if claim.size >= settings.delivery_batch:
            # After the lock is released: the next run must find it free. This run's own id is still taken.
            next_id = DELIVERY_JOB_ID if ctx.get("job_id") == NEXT_BATCH_JOB_ID else NEXT_BATCH_JOB_ID
            await redis.enqueue_job(DELIVER_ALERTS, _job_id=next_id)
        if counts:
            log.info("alert_deliveries_sent", **counts)
        return counts


async def _deliver(ctx: Mapping[str, Any], claim: Claim) -> dict[str, int]:
    settings = job_settings(ctx)
    senders: Senders = ctx["senders"]
    alerts: AlertsClient = ctx["alerts"]
    gate = asyncio.Semaphore(settings.delivery_concurrency)
    counts: dict[str, int] = {}

    async def one(delivery: ClaimedDelivery) -> None:
        async with gate:
            attempt = await _attempt(senders, delivery, limit_seconds=settings.outbound_timeout_seconds)
        counts[attempt.outcome] = counts.get(attempt.outcome, 0) + 1
        await _report(alerts, delivery.id, attempt.result(), delivery=delivery)

    async def unreadable(delivery_id: uuid.UUID) -> None:
        counts["unreadable"] = counts.get("unreadable", 0) + 1
        result = failed("this worker cannot read the event (a newer version raised it?)").result()
        await _report(alerts, delivery_id, result, delivery=None)

    await asyncio.gather(*(one(d) for d in claim.deliveries), *(unreadable(i) for i in claim.unreadable))
    return counts


async def _attempt(senders: Senders, delivery: ClaimedDelivery, *, limit_seconds: float) -> Attempt:
    """One send, never longer than `limit_seconds` and never raising: whatever happens is an attempt to report."""
    channel_type = delivery.channel.type
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limit_seconds):
            attempt = await senders.send(delivery)
    except TimeoutError:
        attempt = failed("timeout")
    except Exception as exc:  # a bug in one send must not lose the batch's other reports
        log.error("alert_delivery_crashed", delivery_id=str(delivery.id), error_type=type(exc).__name__)
        attempt = failed(f"internal error ({type(exc).__name__})")
    ALERT_DELIVERY_DURATION.labels(channel_type).observe(time.perf_counter() - started)
    ALERT_DELIVERIES.labels(channel_type, attempt.outcome).inc()
    return attempt


async def _report(
    alerts: AlertsClient, delivery_id: uuid.UUID, result: DeliveryResult, *, delivery: ClaimedDelivery | None
) -> None:
    fields: dict[str, Any] = {"delivery_id": str(delivery_id), "outcome": result.outcome}
    if delivery is not None:
        fields |= {
            "event_id": str(delivery.event.id),
            "event_type": delivery.event.type,
            "channel_type": delivery.channel.type,
            "workspace_id": str(delivery.channel.workspace_id),
            "attempt": delivery.attempt,
        }
    if result.status_code is not None:
        fields["status_code"] = result.status_code
    if result.error:
        fields["error"] = result.error
    try:
        state = await alerts.report(delivery_id, result)
    except ServiceError as exc:
        # The lease lapses and usage hands the delivery out again: at least once, with the same webhook-id.
        log.warning("alert_delivery_report_failed", report_error=str(exc), **fields)
        return
    if state is not None:
        fields |= {"status": state.status, "channel_disabled": state.channel_disabled}
    log.info("alert_delivery_attempted", reported=state is not None, **fields)


# --- the outbox gauges ----------------------------------------------------------------------------------------


async def record_backlog(redis: Any, backlog: OutboxBacklog) -> None:
    """Keep the claim's backlog in Redis (every worker's /metrics reads it) and in this process's gauges."""
    _set_gauges(backlog.depth, backlog.oldest_due_seconds)
    record = {"depth": backlog.depth, "oldest_due_seconds": backlog.oldest_due_seconds, "observed_at": time.time()}
    try:
        await redis.set(BACKLOG_KEY, json.dumps(record), ex=BACKLOG_TTL_SECONDS)
    except (RedisError, OSError) as exc:
        log.warning("alert_backlog_not_recorded", error_type=type(exc).__name__)


async def export_backlog(redis: Any) -> None:
    """Set the outbox gauges from the last claim any worker made; the oldest due delivery ages on meanwhile, so an
    outbox nobody claims from any more still shows as stuck."""
    raw = await redis.get(BACKLOG_KEY)
    if raw is None:
        return
    try:
        record = json.loads(raw)
        depth = int(record["depth"])
        oldest = record["oldest_due_seconds"]
        observed_at = float(record["observed_at"])
    except (ValueError, KeyError, TypeError):
        return
    if oldest is not None:
        oldest = float(oldest) + max(0.0, time.time() - observed_at)
    _set_gauges(depth, oldest)


def _set_gauges(depth: int, oldest_due_seconds: float | None) -> None:
    ALERT_OUTBOX_DEPTH.set(depth)
    ALERT_OUTBOX_OLDEST_DUE.set(oldest_due_seconds or 0.0)
