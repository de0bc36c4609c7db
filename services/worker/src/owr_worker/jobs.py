"""ARQ per-key jobs (`sync_key`, `sync_account`; the crons are in `crons.py`): plain `async def job(ctx, ...)`;
shared clients live in `ctx`; safe to run twice. Bodies sent on are the shared wire models.

`ctx` holds `settings`, `redis` (arq's pool, also used to enqueue), `openrouter` (OpenRouterClient),
`keys` (KeysClient) and `usage` (UsageClient); arq adds `job_try`. Nothing here connects by itself,
so tests build a ctx of their own.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from arq import Retry
from pydantic import ValidationError

from owr_shared.logging import get_logger
from owr_shared.wire.keys import LIMIT_RESET, RevealedItem, StatusReport
from owr_shared.wire.openrouter import KeyInfo
from owr_shared.wire.usage import AccountKeysReport, ActivityReport, CreditsReport, SnapshotItem
from owr_worker import key_status
from owr_worker.backoff import full_jitter, retry_delay
from owr_worker.internal import KeysClient, ServiceError, UsageClient
from owr_worker.locks import key_lock
from owr_worker.metrics import KEYS_SYNCED
from owr_worker.openrouter import (
    CircuitOpen,
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
# key id -> the last UTC day (OpenRouter's clock) whose activity refresh completed.
ACTIVITY_PREFIX = "owr:worker:activity:"
ACTIVITY_TTL_SECONDS = 40 * 86_400
PROGRESS_TTL_SECONDS = 2 * 86_400
# Suffix of the one job a last try blocked by an open circuit leaves behind (`_hand_over_after_outage`).
AFTER_OUTAGE_SUFFIX = ":after-outage"


def sync_key_job_id(key_id: str) -> str:
    return f"{SYNC_KEY}:{key_id}"


def sync_account_job_id(key_id: str) -> str:
    return f"{SYNC_ACCOUNT}:{key_id}"


def job_now(ctx: Mapping[str, Any]) -> datetime:
    """The job's clock: `ctx["clock"]` when a test set one, else UTC now."""
    clock: Callable[[], datetime] | None = ctx.get("clock")
    return clock() if clock is not None else datetime.now(UTC)


def job_settings(ctx: Mapping[str, Any]) -> WorkerSettings:
    settings: WorkerSettings = ctx["settings"]
    return settings


def _canonical(key_id: str) -> str | None:
    try:
        return str(uuid.UUID(str(key_id)))
    except ValueError:
        return None


# --- status reports, retries ---------------------------------------------------------------------------


async def _report(ctx: Mapping[str, Any], key_id: str, report: StatusReport, *, must: bool = False) -> None:
    """Tell usage's key rules the outcome (best effort), then send the status report to keys; `must` lets a
    failure of the report propagate (the job then retries, and usage hears the outcome again: its rules are
    idempotent)."""
    # keys' report is the job's last call: once keys shows the sync done, a "sync now" pressed at that moment
    # must find this job ended, not fold into a job still talking to usage (and be lost with it).
    await key_status.tell(ctx["usage"], key_id, report)
    keys: KeysClient = ctx["keys"]
    try:
        await keys.report_status(key_id, report)
    except ServiceError as exc:
        if must:
            raise
        log.warning("status_report_failed", error=str(exc))


async def _report_error(ctx: Mapping[str, Any], key_id: str, message: str) -> str:
    await _report(ctx, key_id, StatusReport(status="error", last_synced_at=job_now(ctx), last_error=message))
    KEYS_SYNCED.labels("error").inc()
    log.warning("key_sync_error", error=message)
    return "error"


async def _report_invalid(ctx: Mapping[str, Any], key_id: str, exc: KeyRejected) -> str:
    # Only the status changes: the key's stored snapshots and usage are kept.
    await _report(ctx, key_id, StatusReport(status="invalid", last_synced_at=job_now(ctx), last_error=exc.message))
    KEYS_SYNCED.labels("invalid").inc()
    log.info("key_rejected_by_openrouter", status=exc.status)
    return "invalid"


async def _retry_or_give_up(
    ctx: Mapping[str, Any], key_id: str, message: str, *, retry_after: float | None = None
) -> str:
    """Defer the job (arq Retry) with backoff; on its last try report `error` with `message` instead."""
    settings = job_settings(ctx)
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
        settings = job_settings(ctx)
        look_again = max(1.0, settings.circuit_open_seconds * (0.5 + random.random() / 2))  # noqa: S311
        if int(ctx.get("job_try") or 1) < settings.job_max_tries:
            raise Retry(defer=look_again)
        await _hand_over_after_outage(ctx, key_id, look_again)
        return outcome
    if isinstance(exc, KeyRejected):
        return await _report_invalid(ctx, key_id, exc)
    if isinstance(exc, RateLimited | UpstreamUnavailable) or (
        isinstance(exc, PaymentRequired) and exc.retry_after is not None
    ):
        return await _retry_or_give_up(ctx, key_id, exc.message, retry_after=exc.retry_after)
    return await _report_error(ctx, key_id, exc.message)


async def _hand_over_after_outage(ctx: Mapping[str, Any], key_id: str, defer_seconds: float) -> None:
    """The last try of a job met an open circuit, so it never reached OpenRouter. A "sync now" pressed
    while it waited was folded into it (same job id), so leave one successor to look after the outage;
    a successor does not leave another, and the due scan covers anything longer."""
    job_id = str(ctx.get("job_id") or "")
    function, _, rest = job_id.partition(":")
    if function not in (SYNC_KEY, SYNC_ACCOUNT) or rest.endswith(AFTER_OUTAGE_SUFFIX):
        return
    job = await ctx["redis"].enqueue_job(
        function, _job_id=job_id + AFTER_OUTAGE_SUFFIX, _defer_by=defer_seconds, key_id=key_id
    )
    log.info("job_handed_over_after_outage", enqueued=job is not None)


async def _service_failed(ctx: Mapping[str, Any], key_id: str, exc: ServiceError | ValidationError) -> str:
    if isinstance(exc, ValidationError):
        # A body the wire contract refuses (a year out of range, too many rows): usage would answer 422.
        exc = ServiceError("worker", f"unsendable {exc.title}", status=422, retryable=False)
    if exc.retryable:
        return await _retry_or_give_up(ctx, key_id, "could not store the sync's result; retrying")
    # A 4xx from our own services is a contract bug: retrying repeats it. Say so in the logs, not to users.
    log.error("internal_call_refused", service=exc.service, status=exc.status)
    KEYS_SYNCED.labels("error").inc()
    return "error"


def _lock_busy(ctx: Mapping[str, Any]) -> str:
    """Another job holds this key: defer, or on the last try end quietly (that job is doing the work)."""
    settings = job_settings(ctx)
    job_try = int(ctx.get("job_try") or 1)
    if job_try < settings.job_max_tries:
        # The holder is one key's sync, seconds long: look again soon, so a "sync now" folded into this job is
        # not left waiting up to a minute behind a job that has already ended.
        raise Retry(defer=max(1.0, full_jitter(job_try, base=1.0, cap=15.0)))
    log.info("key_busy_skipped", job_try=job_try)
    return "busy"


# --- sync_key -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Synced:
    outcome: str
    management: bool = False


def _status_report(info: KeyInfo, synced_at: datetime) -> StatusReport:
    return StatusReport(
        kind="management" if info.is_management_key else "inference",
        status="valid",
        limit=info.limit,
        limit_reset=info.limit_reset if info.limit_reset and LIMIT_RESET.match(info.limit_reset) else None,
        limit_remaining=info.limit_remaining,
        expires_at=info.expires_at,
        last_synced_at=synced_at,
        last_error=None,
    )


async def _sync_key_locked(ctx: Mapping[str, Any], key_id: str, revealed: RevealedItem) -> _Synced:
    usage: UsageClient = ctx["usage"]
    openrouter: OpenRouterClient = ctx["openrouter"]
    # keys' reveal answer names the key's workspace: the one source of it (a job's kwarg is not used).
    workspace = revealed.workspace_id
    try:
        observed = await openrouter.get_key(revealed.key)
    except OpenRouterError as exc:
        return _Synced(await _openrouter_failed(ctx, key_id, exc))
    info = observed.data
    try:
        snapshot = SnapshotItem(key_id=key_id, workspace_id=workspace, observed_at=observed.observed_at, snapshot=info)
        await usage.store_snapshots([snapshot])
        # keys orders reports by last_synced_at on its own clock line, and error reports can only use
        # ours, so every report does: OpenRouter's `Date` (observed_at) stays with usage's snapshots.
        await _report(ctx, key_id, _status_report(info, job_now(ctx)), must=True)
    except (ServiceError, ValidationError) as exc:
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
    return await _run_locked(ctx, SYNC_KEY, key_id, traceparent, request_id, _sync_key_locked)


async def _run_locked(
    ctx: Mapping[str, Any],
    job: str,
    key_id: str,
    traceparent: str | None,
    request_id: str | None,
    locked: Callable[[Mapping[str, Any], str, RevealedItem], Awaitable[_Synced]],
) -> str:
    """A per-key job's frame: its trace, the canonical key id, the key's lock, and under it the reveal
    (the key and its workspace from keys) and `locked`. A key gone or inactive is skipped."""
    canonical = _canonical(key_id)
    with job_context(job, traceparent=traceparent, request_id=request_id, key_id=str(canonical)) as trace:
        if canonical is None:
            log.warning(f"{job}_bad_id")
            return "skipped"
        async with key_lock(ctx["redis"], canonical, ttl_seconds=job_settings(ctx).lock_ttl_seconds) as held:
            if not held:
                return _lock_busy(ctx)
            synced = await _reveal_and_run(ctx, canonical, locked)
        # After the lock is released, so the account job does not find it held.
        if synced.management:
            await _enqueue_account_sync(ctx, canonical, trace)
        return synced.outcome


async def _reveal_and_run(
    ctx: Mapping[str, Any], key_id: str, locked: Callable[[Mapping[str, Any], str, RevealedItem], Awaitable[_Synced]]
) -> _Synced:
    keys: KeysClient = ctx["keys"]
    try:
        revealed = await keys.reveal(key_id)
    except ServiceError as exc:
        return _Synced(await _service_failed(ctx, key_id, exc))
    if revealed is None:
        log.info("key_gone_or_inactive")
        return _Synced("skipped")
    token = key_status.syncing.set(revealed)
    try:
        return await locked(ctx, key_id, revealed)
    finally:
        key_status.syncing.reset(token)


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
    ctx: Mapping[str, Any], key_id: str, revealed: RevealedItem, hashes: list[str], today: date
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
    settings = job_settings(ctx)
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
        activity = await openrouter.get_activity(revealed.key, api_key_hash=api_key_hash)
        report = ActivityReport(
            workspace_id=revealed.workspace_id,
            observed_at=activity.observed_at,
            api_key_hash=api_key_hash,
            dates=dates,
            rows=[row for row in activity.data if row.date in window],
        )
        await usage.replace_activity(key_id, report)
        await redis.sadd(progress, api_key_hash)
        await redis.expire(progress, PROGRESS_TTL_SECONDS)
        refreshed += 1
    await redis.set(marker, today.isoformat(), ex=ACTIVITY_TTL_SECONDS)
    await redis.delete(progress)
    log.info("activity_refreshed", day=today.isoformat(), hashes=refreshed)
    return refreshed


async def _sync_account_locked(ctx: Mapping[str, Any], key_id: str, revealed: RevealedItem) -> _Synced:
    usage: UsageClient = ctx["usage"]
    openrouter: OpenRouterClient = ctx["openrouter"]
    workspace = revealed.workspace_id
    try:
        credits = await openrouter.get_credits(revealed.key)
        await usage.store_credits(
            key_id,
            CreditsReport(
                workspace_id=workspace,
                observed_at=credits.observed_at,
                total_credits=credits.data.total_credits,
                total_usage=credits.data.total_usage,
            ),
        )
        listed = await openrouter.list_keys(revealed.key)
        await usage.replace_keys(
            key_id, AccountKeysReport(workspace_id=workspace, observed_at=listed.observed_at, keys=listed.data)
        )
        # OpenRouter's day, from its clock: "completed days" are relative to it, not to ours.
        today = listed.observed_at.astimezone(UTC).date()
        await _sync_activity(ctx, key_id, revealed, [row.hash for row in listed.data], today)
    except NotManagementKey:
        # sync_key saw is_management_key; a 403 now means the key changed kind. Its next sync_key says so.
        log.warning("account_sync_not_management_key")
        return _Synced("not_management")
    except OpenRouterError as exc:
        return _Synced(await _openrouter_failed(ctx, key_id, exc))
    except (ServiceError, ValidationError) as exc:
        return _Synced(await _service_failed(ctx, key_id, exc))
    log.info("account_synced", keys=len(listed.data))
    return _Synced("done")


async def sync_account(
    ctx: dict[str, Any],
    key_id: str,
    traceparent: str | None = None,
    request_id: str | None = None,
    workspace_id: str | None = None,  # sent by earlier versions; the reveal says it now
) -> str:
    """A management key's account: `/credits`, every `/keys` page, and `/activity` once per UTC day."""
    return await _run_locked(ctx, SYNC_ACCOUNT, key_id, traceparent, request_id, _sync_account_locked)
