"""The worker's writes to OpenRouter: `manage_key_upstream(ctx, action_id)` carries out one key action recorded by
usage (disable, enable, set a limit) with `PATCH /keys/{hash}`, and `sweep_key_actions` queues again the actions
whose job was lost.

At least once and idempotent: the job claims the action (usage leases it to one try), reveals the account's
management key from keys (an audited reveal), sends the change (the same body twice leaves the key as once) and
reports. 429, 5xx, timeouts and an open circuit defer the job (`Retry`); after `job_max_tries` claims the action fails
with the last reason. What retrying cannot fix (the key not linked, the management key gone or refused, a key
OpenRouter no longer has) fails at once, with a reason users see at `GET /api/v1/keys/{id}/upstream`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from arq import Retry
from redis.exceptions import RedisError

from owr_shared.logging import get_logger
from owr_shared.wire.key_actions import (
    MANAGE_KEY_UPSTREAM_JOB,
    ClaimedKeyAction,
    KeyActionResult,
    manage_key_upstream_job_id,
)
from owr_shared.wire.keys import UpstreamAudit
from owr_worker.internal import KeysClient, ServiceError
from owr_worker.jobs import SYNC_KEY, job_now, job_settings, next_try_in, sync_key_job_id
from owr_worker.key_actions_client import KeyActionsClient, UpstreamAuditClient
from owr_worker.openrouter import (
    CircuitOpen,
    KeyRejected,
    NotManagementKey,
    OpenRouterClient,
    OpenRouterError,
    RateLimited,
    UpstreamUnavailable,
)
from owr_worker.tracing import job_context

log = get_logger("owr.worker.jobs")

SWEEP_KEY_ACTIONS = "sweep_key_actions"
# An action waiting for an earlier one on its key looks again after this long.
WAIT_SECONDS = 5.0
# The key's sync after an enable, when one was queued or running already: a second one, this much later.
AFTER_ENABLE_SUFFIX = ":after-enable"
AFTER_ENABLE_SECONDS = 5.0

MANAGEMENT_KEY_GONE = "The account's management key is no longer stored here, or is deactivated."
MANAGEMENT_KEY_ELSEWHERE = "The account's management key is not this workspace's."
MANAGEMENT_KEY_REFUSED = "OpenRouter refused the account's management key"
AUDIT_ACTIONS: dict[str, Any] = {
    "disable": "upstream_disabled",
    "enable": "upstream_enabled",
    "set_limit": "upstream_limit_set",
}
KEY_GONE = "OpenRouter no longer has this key in the account (404): it may have been deleted there."


def _changes(action: ClaimedKeyAction) -> dict[str, Any]:
    """The `PATCH /keys/{hash}` body of the action."""
    if action.kind == "disable":
        return {"disabled": True}
    if action.kind == "enable":
        return {"disabled": False}
    changes: dict[str, Any] = {"limit": action.limit_usd, "limit_reset": action.limit_reset}
    if action.include_byok_in_limit is not None:  # absent: OpenRouter keeps the key's setting
        changes["include_byok_in_limit"] = action.include_byok_in_limit
    return changes


def _parse_id(action_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(action_id))
    except ValueError:
        return None


def _arq_tries_left(ctx: Mapping[str, Any]) -> bool:
    """Whether arq runs the job again after a `Retry` (its bound is `job_max_tries` + 1, worker.py); else the
    action, left pending, waits for the sweep."""
    return int(ctx.get("job_try") or 1) <= job_settings(ctx).job_max_tries


async def manage_key_upstream(
    ctx: dict[str, Any], action_id: str, traceparent: str | None = None, request_id: str | None = None
) -> str:
    """Carry out one key action (queued by usage after the commit that recorded it, under
    `manage_key_upstream:{id}`, and by the sweep). Returns the outcome: done, failed, skipped (never sent),
    deferred, busy, gone, stale (this try's claim was superseded)."""
    parsed = _parse_id(action_id)
    with job_context(MANAGE_KEY_UPSTREAM_JOB, traceparent=traceparent, request_id=request_id, action_id=str(parsed)):
        if parsed is None:
            log.warning("key_action_bad_id")
            return "gone"
        actions: KeyActionsClient = ctx["key_actions"]
        try:
            claimed = await actions.claim(parsed, lease_seconds=job_settings(ctx).key_action_lease_seconds)
        except ServiceError as exc:
            return _service_trouble(ctx, exc)
        if claimed is None:
            return "gone"
        if not claimed.ready:
            return _not_ready(ctx, claimed)
        return await _carry_out(ctx, claimed)


def _service_trouble(ctx: Mapping[str, Any], exc: ServiceError) -> str:
    """usage or keys did not answer: try again later (the claim's lease, or the sweep, covers a last try)."""
    delay = next_try_in(ctx, int(ctx.get("job_try") or 1)) if exc.retryable else None
    log.warning("key_action_service_error", error=str(exc), deferred=delay is not None)
    if delay is not None:
        raise Retry(defer=delay)
    return "deferred"


def _not_ready(ctx: Mapping[str, Any], claimed: ClaimedKeyAction) -> str:
    if claimed.status == "pending":
        # An earlier action on the key goes first; look again soon (the sweep does once arq's tries are spent).
        # Waiting is no try of the action: its give-up counts the action's own claims (`attempts`).
        if _arq_tries_left(ctx):
            raise Retry(defer=WAIT_SECONDS)
        return "deferred"
    if claimed.status == "running":
        return "busy"  # another try holds it; its lease ends it either way
    log.info("key_action_finished", status=claimed.status, error=claimed.error)
    return claimed.status


async def _carry_out(ctx: Mapping[str, Any], claimed: ClaimedKeyAction) -> str:
    keys: KeysClient = ctx["keys"]
    openrouter: OpenRouterClient = ctx["openrouter"]
    try:
        revealed = await keys.reveal(str(claimed.management_key_id))
    except ServiceError as exc:
        return await _give_back(ctx, claimed, f"keys unavailable ({exc.status or 'no answer'})", exc.retryable)
    if revealed is None:
        return await _report(
            ctx, claimed, KeyActionResult(attempt=claimed.attempts, outcome="failed", error=MANAGEMENT_KEY_GONE)
        )
    if revealed.workspace_id != claimed.workspace_id:
        # usage links keys to account rows by workspace; a management key of another workspace is a bug or a
        # forged link, and never acts on this workspace's key.
        log.error("key_action_workspace_mismatch", management_key_id=str(claimed.management_key_id))
        return await _report(
            ctx, claimed, KeyActionResult(attempt=claimed.attempts, outcome="failed", error=MANAGEMENT_KEY_ELSEWHERE)
        )
    try:
        answer = await openrouter.patch_key(revealed.key, str(claimed.api_key_hash), _changes(claimed))
    except OpenRouterError as exc:
        return await _openrouter_failed(ctx, claimed, exc)
    key = answer.data
    result = KeyActionResult(
        attempt=claimed.attempts,
        outcome="done",
        disabled=key.disabled,
        limit_usd=key.limit if claimed.kind == "set_limit" else None,
        limit_reset=key.limit_reset if claimed.kind == "set_limit" else None,
    )
    try:
        await _audit(ctx, claimed)
    except ServiceError as exc:
        # Done at OpenRouter but not yet audited: tried again whole (the same PATCH again is harmless).
        return await _give_back(ctx, claimed, f"keys unavailable ({exc.status or 'no answer'})", retryable=True)
    outcome = await _report(ctx, claimed, result)
    if outcome == "done" and claimed.kind == "enable":
        await _sync_soon(ctx, claimed.key_id)
    return outcome


async def _sync_soon(ctx: Mapping[str, Any], key_id: uuid.UUID) -> None:
    """A key the kill switch disabled got 401 on its syncs, so keys marked it invalid and the due scan skips it
    until the daily validation: sync it now that it works again. A sync of the key already queued or running
    may have called OpenRouter before the enable, so one more follows it (under its own id, a few seconds on)."""
    job_id = sync_key_job_id(str(key_id))
    try:
        job = await ctx["redis"].enqueue_job(SYNC_KEY, _job_id=job_id, key_id=str(key_id))
        if job is None:
            job = await ctx["redis"].enqueue_job(
                SYNC_KEY, _job_id=job_id + AFTER_ENABLE_SUFFIX, _defer_by=AFTER_ENABLE_SECONDS, key_id=str(key_id)
            )
    except (RedisError, OSError) as exc:
        log.warning("key_sync_enqueue_failed", error=type(exc).__name__)
        return
    log.info("key_sync_enqueued_after_enable", enqueued=job is not None)


async def _audit(ctx: Mapping[str, Any], claimed: ClaimedKeyAction) -> None:
    """The write into the key's audit trail in keys, before usage hears it is done (so a failure here retries the
    whole action, and keys records a repeat once). Raises only what a later try may fix."""
    audit: UpstreamAuditClient = ctx["upstream_audit"]
    report = UpstreamAudit(
        action=AUDIT_ACTIONS[claimed.kind],
        action_id=claimed.id,
        reason=claimed.reason[:300],
        source=claimed.source,
        requested_by=claimed.requested_by,
        limit=claimed.limit_usd,
        limit_reset=claimed.limit_reset,
    )
    try:
        await audit.record(claimed.key_id, report)
    except ServiceError as exc:
        if exc.retryable:
            raise
        log.error("upstream_audit_refused", status=exc.status)


async def _openrouter_failed(ctx: Mapping[str, Any], claimed: ClaimedKeyAction, exc: OpenRouterError) -> str:
    if isinstance(exc, KeyRejected | NotManagementKey):
        error = f"{MANAGEMENT_KEY_REFUSED} ({exc.status})."
        return await _report(ctx, claimed, KeyActionResult(attempt=claimed.attempts, outcome="failed", error=error))
    if exc.status == 404:
        return await _report(ctx, claimed, KeyActionResult(attempt=claimed.attempts, outcome="failed", error=KEY_GONE))
    retryable = isinstance(exc, RateLimited | UpstreamUnavailable | CircuitOpen)
    return await _give_back(ctx, claimed, exc.message, retryable, retry_after=exc.retry_after)


async def _give_back(
    ctx: Mapping[str, Any], claimed: ClaimedKeyAction, message: str, retryable: bool, retry_after: float | None = None
) -> str:
    """A try that may work later: free the action and defer the job; after the action's last try (its own
    claims, not arq's tries: those include waits behind an earlier action) or when retrying cannot help, the
    action fails with `message`."""
    delay = next_try_in(ctx, claimed.attempts, retry_after=retry_after) if retryable else None
    if delay is None:
        error = f"{message} (gave up after {claimed.attempts} tries)" if retryable else message
        return await _report(ctx, claimed, KeyActionResult(attempt=claimed.attempts, outcome="failed", error=error))
    if (
        await _report(ctx, claimed, KeyActionResult(attempt=claimed.attempts, outcome="retry", error=message))
        == "stale"
    ):
        return "stale"
    log.info("key_action_deferred", defer_seconds=round(delay, 1), reason=message)
    if not _arq_tries_left(ctx):
        return "deferred"  # pending again: the sweep queues a fresh job
    raise Retry(defer=delay)


async def _report(ctx: Mapping[str, Any], claimed: ClaimedKeyAction, result: KeyActionResult) -> str:
    actions: KeyActionsClient = ctx["key_actions"]
    try:
        state = await actions.report(claimed.id, result)
    except ServiceError as exc:
        # The claim's lease runs out and the sweep queues the action again: the PATCH is sent once more, harmlessly.
        log.warning("key_action_report_failed", error=str(exc))
        if result.outcome != "retry":
            return _service_trouble(ctx, exc)
        state = None
    if state is not None and state.attempts != claimed.attempts:
        # This try outlived its lease and the action was claimed again: the later claim's report counts.
        log.warning("key_action_report_stale", attempt=claimed.attempts, current=state.attempts)
        return "stale"
    if result.outcome != "retry":
        log.info("key_action_" + result.outcome, kind=claimed.kind, error=result.error)
    return result.outcome


async def sweep_key_actions(ctx: dict[str, Any]) -> int:
    """Queue again the actions whose job was lost (Redis away when usage queued it, a worker gone mid-try); an
    action whose job waits already is not doubled (the job id is the action's). How many were queued."""
    with job_context(SWEEP_KEY_ACTIONS, traceparent=None, request_id=None):
        actions: KeyActionsClient = ctx["key_actions"]
        try:
            ids = await actions.open_ids()
        except ServiceError as exc:
            log.warning("key_actions_unavailable", error=str(exc))
            return 0
        queued = 0
        for action_id in ids:
            job = await ctx["redis"].enqueue_job(
                MANAGE_KEY_UPSTREAM_JOB, _job_id=manage_key_upstream_job_id(action_id), action_id=str(action_id)
            )
            queued += job is not None
        if ids:
            log.info("key_actions_swept", open=len(ids), queued=queued, at=job_now(ctx).isoformat())
        return queued
