"""ARQ jobs: plain `async def job(ctx, ...)`; shared clients live in `ctx`; safe to run twice.

`ctx` holds `settings`, `redis` (arq's pool, also used to enqueue), `openrouter` (OpenRouterClient),
`keys` (KeysClient) and `usage` (UsageClient); arq adds `job_try`. Nothing here connects by itself,
so tests build a ctx of their own.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from arq import Retry

from owr_shared.logging import get_logger
from owr_worker.backoff import full_jitter, retry_delay
from owr_worker.internal import KeysClient, ServiceError, UsageClient
from owr_worker.locks import key_lock
from owr_worker.metrics import HEARTBEAT, KEYS_SYNCED
from owr_worker.openrouter import (
    CircuitOpen,
    KeyInfo,
    KeyRejected,
    NotManagementKey,
    OpenRouterClient,
    OpenRouterError,
    PaymentRequired,
    RateLimited,
    UpstreamUnavailable,
)
from owr_worker.settings import WorkerSettings
from owr_worker.tracing import JobTrace, job_context

log = get_logger("owr.worker.jobs")

SYNC_KEY = "sync_key"
SYNC_ACCOUNT = "sync_account"
HEARTBEAT_KEY = "owr:worker:heartbeat"
# key id -> the last UTC day (OpenRouter's clock) whose activity refresh completed.
ACTIVITY_PREFIX = "owr:worker:activity:"
ACTIVITY_TTL_SECONDS = 40 * 86_400
PROGRESS_TTL_SECONDS = 2 * 86_400
_LIMIT_RESET = re.compile(r"^[a-z_]{1,32}$")


def sync_key_job_id(key_id: str) -> str:
    return f"{SYNC_KEY}:{key_id}"


def sync_account_job_id(key_id: str) -> str:
    return f"{SYNC_ACCOUNT}:{key_id}"


def _now(ctx: Mapping[str, Any]) -> datetime:
    clock: Callable[[], datetime] | None = ctx.get("clock")
    return clock() if clock is not None else datetime.now(UTC)


def _settings(ctx: Mapping[str, Any]) -> WorkerSettings:
    settings: WorkerSettings = ctx["settings"]
    return settings


def _canonical(key_id: str) -> str | None:
    try:
        return str(uuid.UUID(str(key_id)))
    except ValueError:
        return None


# --- status reports, retries ---------------------------------------------------------------------------


async def _report(ctx: Mapping[str, Any], key_id: str, report: dict[str, Any], *, must: bool = False) -> None:
    """Send a `StatusReport` to keys; `must` lets a failure propagate (the job then retries)."""
    keys: KeysClient = ctx["keys"]
    try:
        await keys.report_status(key_id, report)
    except ServiceError as exc:
        if must:
            raise
        log.warning("status_report_failed", error=str(exc))


async def _report_error(ctx: Mapping[str, Any], key_id: str, message: str) -> str:
    await _report(ctx, key_id, {"status": "error", "last_synced_at": _now(ctx), "last_error": message})
    KEYS_SYNCED.labels("error").inc()
    log.warning("key_sync_error", error=message)
    return "error"


async def _report_invalid(ctx: Mapping[str, Any], key_id: str, exc: KeyRejected) -> str:
    # Only the status changes: the key's stored snapshots and usage are kept.
    await _report(ctx, key_id, {"status": "invalid", "last_synced_at": _now(ctx), "last_error": exc.message})
    KEYS_SYNCED.labels("invalid").inc()
    log.info("key_rejected_by_openrouter", status=exc.status)
    return "invalid"


async def _retry_or_give_up(
    ctx: Mapping[str, Any], key_id: str, message: str, *, retry_after: float | None = None
) -> str:
    """Defer the job (arq Retry) with backoff; on its last try report `error` with `message` instead."""
    settings = _settings(ctx)
    job_try = int(ctx.get("job_try") or 1)
    if job_try < settings.job_max_tries:
        delay = retry_delay(
            job_try,
            base=settings.job_retry_base_seconds,
            cap=settings.job_retry_cap_seconds,
            retry_after=retry_after,
        )
        delay = max(1.0, delay)
        log.info("job_deferred", job_try=job_try, defer_seconds=round(delay, 1), reason=message)
        raise Retry(defer=delay)
    return await _report_error(ctx, key_id, f"{message} (gave up after {job_try} tries)")


async def _openrouter_failed(ctx: Mapping[str, Any], key_id: str, exc: OpenRouterError) -> str:
    """The one mapping from an OpenRouter error to what the job does."""
    if isinstance(exc, CircuitOpen):
        # No call was made. Show the outage on the key now, then look again about when the circuit lets a
        # probe through, so keys recover soon after OpenRouter does rather than at the next due scan.
        outcome = await _report_error(ctx, key_id, exc.message)
        settings = _settings(ctx)
        if int(ctx.get("job_try") or 1) < settings.job_max_tries:
            raise Retry(defer=max(1.0, settings.circuit_open_seconds * (0.5 + random.random() / 2)))  # noqa: S311
        return outcome
    if isinstance(exc, KeyRejected):
        return await _report_invalid(ctx, key_id, exc)
    if isinstance(exc, RateLimited | UpstreamUnavailable) or (
        isinstance(exc, PaymentRequired) and exc.retry_after is not None
    ):
        return await _retry_or_give_up(ctx, key_id, exc.message, retry_after=exc.retry_after)
    return await _report_error(ctx, key_id, exc.message)


async def _service_failed(ctx: Mapping[str, Any], key_id: str, exc: ServiceError) -> str:
    if exc.retryable:
        return await _retry_or_give_up(ctx, key_id, "could not store the sync's result; retrying")
    # A 4xx from our own services is a contract bug: retrying repeats it. Say so in the logs, not to users.
    log.error("internal_call_refused", service=exc.service, status=exc.status)
    KEYS_SYNCED.labels("error").inc()
    return "error"


def _lock_busy(ctx: Mapping[str, Any]) -> str:
    """Another job holds this key: defer, or on the last try end quietly (that job is doing the work)."""
    settings = _settings(ctx)
    job_try = int(ctx.get("job_try") or 1)
    if job_try < settings.job_max_tries:
        raise Retry(defer=max(1.0, full_jitter(job_try, base=5.0, cap=60.0)))
    log.info("key_busy_skipped", job_try=job_try)
    return "busy"


# --- sync_key -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Synced:
    outcome: str
    management: bool = False


def _status_report(info: KeyInfo, synced_at: datetime) -> dict[str, Any]:
    return {
        "kind": "management" if info.is_management_key else "inference",
        "status": "valid",
        "limit": info.limit,
        "limit_reset": info.limit_reset if info.limit_reset and _LIMIT_RESET.match(info.limit_reset) else None,
        "limit_remaining": info.limit_remaining,
        "expires_at": info.expires_at,
        "last_synced_at": synced_at,
        "last_error": None,
    }


async def _sync_key_locked(ctx: Mapping[str, Any], key_id: str) -> _Synced:
    keys: KeysClient = ctx["keys"]
    usage: UsageClient = ctx["usage"]
    openrouter: OpenRouterClient = ctx["openrouter"]
    try:
        revealed = await keys.reveal(key_id)
    except ServiceError as exc:
        return _Synced(await _service_failed(ctx, key_id, exc))
    if revealed is None:
        log.info("key_gone_or_inactive")
        return _Synced("skipped")
    # keys' reveal answer names the key's workspace: the one source of it (a job's kwarg is not used).
    workspace = revealed.workspace_id
    try:
        observed = await openrouter.get_key(revealed.key)
    except OpenRouterError as exc:
        return _Synced(await _openrouter_failed(ctx, key_id, exc))
    info = observed.data
    try:
        await usage.store_snapshots(
            [
                {
                    "key_id": key_id,
                    "workspace_id": workspace,
                    "observed_at": observed.observed_at,
                    "snapshot": info.snapshot(),
                }
            ]
        )
        # keys orders reports by last_synced_at on its own clock line, and error reports can only use
        # ours, so every report does: OpenRouter's `Date` (observed_at) stays with usage's snapshots.
        await _report(ctx, key_id, _status_report(info, _now(ctx)), must=True)
    except ServiceError as exc:
        return _Synced(await _service_failed(ctx, key_id, exc))
    KEYS_SYNCED.labels("valid").inc()
    log.info("key_synced", kind="management" if info.is_management_key else "inference")
    return _Synced("valid", management=info.is_management_key)


async def sync_key(
    ctx: dict[str, Any],
    key_id: str,
    traceparent: str | None = None,
    request_id: str | None = None,
    workspace_id: str | None = None,  # sent by earlier schedulers; the reveal says it now
) -> str:
    """Reveal the key, `GET /key`, store the snapshot in usage, report the status to keys.

    Enqueued by keys and by the due scan (`_job_id=sync_key:{key_id}`, kwargs key_id, traceparent,
    request_id). A management key then gets a `sync_account` job. Returns the outcome.
    """
    canonical = _canonical(key_id)
    with job_context(SYNC_KEY, traceparent=traceparent, request_id=request_id, key_id=str(canonical)) as trace:
        if canonical is None:
            log.warning("sync_key_bad_id")
            return "skipped"
        settings = _settings(ctx)
        async with key_lock(ctx["redis"], canonical, ttl_seconds=settings.lock_ttl_seconds) as held:
            if not held:
                return _lock_busy(ctx)
            synced = await _sync_key_locked(ctx, canonical)
        # After the lock is released, so the account job does not find it held.
        if synced.management:
            await _enqueue_account_sync(ctx, canonical, trace)
        return synced.outcome


async def _enqueue_account_sync(ctx: Mapping[str, Any], key_id: str, trace: JobTrace) -> None:
    job = await ctx["redis"].enqueue_job(
        SYNC_ACCOUNT,
        _job_id=sync_account_job_id(key_id),
        key_id=key_id,
        traceparent=trace.traceparent,
        request_id=trace.request_id,
    )
    log.info("account_sync_enqueued", enqueued=job is not None)


# --- sync_account ---------------------------------------------------------------------------------------


async def _sync_activity(
    ctx: Mapping[str, Any], key_id: str, workspace: str, api_key: str, hashes: list[str], today: date
) -> int:
    """Once per UTC day: every key hash's `/activity` (the whole window in one call) into usage.

    `dates` lists every completed day of the window, so a day without rows clears stale ones; the
    first run is the backfill. Hashes done today are remembered, so a retry resumes where it stopped.
    """
    redis = ctx["redis"]
    marker = ACTIVITY_PREFIX + key_id
    done_day = await redis.get(marker)
    if (
        done_day is not None
        and (done_day.decode() if isinstance(done_day, bytes) else str(done_day)) == today.isoformat()
    ):
        return 0
    settings = _settings(ctx)
    openrouter: OpenRouterClient = ctx["openrouter"]
    usage: UsageClient = ctx["usage"]
    dates = [today - timedelta(days=n) for n in range(1, settings.activity_backfill_days + 1)]
    window = set(dates)
    progress = f"{marker}:{today.isoformat()}"
    finished = {m.decode() if isinstance(m, bytes) else str(m) for m in await redis.smembers(progress)}
    refreshed = 0
    for api_key_hash in hashes:
        if api_key_hash in finished:
            continue
        activity = await openrouter.get_activity(api_key, api_key_hash=api_key_hash)
        rows = [row.model_dump(mode="python") for row in activity.data if row.date in window]
        await usage.replace_activity(
            key_id,
            workspace_id=workspace,
            observed_at=activity.observed_at,
            api_key_hash=api_key_hash,
            dates=dates,
            rows=rows,
        )
        await redis.sadd(progress, api_key_hash)
        await redis.expire(progress, PROGRESS_TTL_SECONDS)
        refreshed += 1
    await redis.set(marker, today.isoformat(), ex=ACTIVITY_TTL_SECONDS)
    await redis.delete(progress)
    log.info("activity_refreshed", day=today.isoformat(), hashes=refreshed)
    return refreshed


async def _sync_account_locked(ctx: Mapping[str, Any], key_id: str) -> str:
    keys: KeysClient = ctx["keys"]
    usage: UsageClient = ctx["usage"]
    openrouter: OpenRouterClient = ctx["openrouter"]
    try:
        revealed = await keys.reveal(key_id)
        if revealed is None:
            log.info("key_gone_or_inactive")
            return "skipped"
        workspace = revealed.workspace_id
        credits = await openrouter.get_credits(revealed.key)
        await usage.store_credits(
            key_id,
            workspace_id=workspace,
            observed_at=credits.observed_at,
            total_credits=credits.data.total_credits,
            total_usage=credits.data.total_usage,
        )
        listed = await openrouter.list_keys(revealed.key)
        await usage.replace_keys(
            key_id,
            workspace_id=workspace,
            observed_at=listed.observed_at,
            keys=[row.model_dump(mode="python") for row in listed.data],
        )
        # OpenRouter's day, from its clock: "completed days" are relative to it, not to ours.
        today = listed.observed_at.astimezone(UTC).date()
        await _sync_activity(ctx, key_id, workspace, revealed.key, [row.hash for row in listed.data], today)
    except NotManagementKey:
        # sync_key saw is_management_key; a 403 now means the key changed kind. Its next sync_key says so.
        log.warning("account_sync_not_management_key")
        return "not_management"
    except OpenRouterError as exc:
        return await _openrouter_failed(ctx, key_id, exc)
    except ServiceError as exc:
        return await _service_failed(ctx, key_id, exc)
    log.info("account_synced", keys=len(listed.data))
    return "done"


async def sync_account(
    ctx: dict[str, Any],
    key_id: str,
    traceparent: str | None = None,
    request_id: str | None = None,
    workspace_id: str | None = None,  # sent by earlier versions; the reveal says it now
) -> str:
    """A management key's account: `/credits`, every `/keys` page, and `/activity` once per UTC day."""
    canonical = _canonical(key_id)
    with job_context(SYNC_ACCOUNT, traceparent=traceparent, request_id=request_id, key_id=str(canonical)):
        if canonical is None:
            log.warning("sync_account_bad_id")
            return "skipped"
        settings = _settings(ctx)
        async with key_lock(ctx["redis"], canonical, ttl_seconds=settings.lock_ttl_seconds) as held:
            if not held:
                return _lock_busy(ctx)
            return await _sync_account_locked(ctx, canonical)


# --- crons ----------------------------------------------------------------------------------------------


async def _enqueue_due(ctx: Mapping[str, Any], job: str, *, invalid: str = "exclude") -> int:
    """Enqueue `sync_key` for each key keys lists as due; a key whose job already waits is not doubled."""
    keys: KeysClient = ctx["keys"]
    redis = ctx["redis"]
    try:
        due = await keys.due(limit=_settings(ctx).due_page_size, invalid=invalid)
    except ServiceError as exc:
        log.warning("due_keys_unavailable", error=str(exc))
        return 0
    enqueued = 0
    for item in due:
        # No traceparent: each sync starts a trace of its own rather than hanging 1000 syncs off one cron run.
        queued = await redis.enqueue_job(SYNC_KEY, _job_id=sync_key_job_id(item.id), key_id=item.id)
        enqueued += queued is not None
    log.info("due_keys_enqueued", job_name=job, due=len(due), enqueued=enqueued)
    return enqueued


async def schedule_due_keys(ctx: dict[str, Any]) -> int:
    """Every minute: one page of due keys (oldest sync first, up to `due_page_size`) becomes sync_key jobs.

    keys' due list has no cursor; the keys left over are still due next minute, after these synced.
    """
    with job_context("schedule_due_keys", traceparent=None, request_id=None):
        return await _enqueue_due(ctx, "schedule_due_keys")


async def validate_keys(ctx: dict[str, Any]) -> int:
    """Daily validation of the keys OpenRouter rejected (401). The minute scan leaves them out — a revoked
    key stays revoked, and asking every ten minutes only spends the OpenRouter budget — so once a day they
    are tried again, and a key restored upstream turns valid. (Valid keys are validated by every sync.)"""
    with job_context("validate_keys", traceparent=None, request_id=None):
        return await _enqueue_due(ctx, "validate_keys", invalid="only")


async def cleanup_usage(ctx: dict[str, Any]) -> Any:
    """Weekly: usage drops snapshots, daily rows and activity older than `retention_days`."""
    with job_context("cleanup_usage", traceparent=None, request_id=None):
        before = _now(ctx).date() - timedelta(days=_settings(ctx).retention_days)
        usage: UsageClient = ctx["usage"]
        try:
            result = await usage.apply_retention(before)
        except ServiceError as exc:
            if exc.retryable and int(ctx.get("job_try") or 1) < 3:
                raise Retry(defer=300) from None
            raise
        log.info("usage_retention_applied", before=before.isoformat())
        return result


async def record_heartbeat(ctx: dict[str, Any]) -> float:
    """Record that the cron loop is alive; readiness and alerts read it. Idempotent: last write wins."""
    now = time.time()
    await ctx["redis"].set(HEARTBEAT_KEY, f"{now:.3f}", ex=600)
    HEARTBEAT.set(now)
    return now
