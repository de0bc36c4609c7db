"""`/internal/*`: ingestion and alert deliveries for the worker, retention, and erasure for auth.

Service tokens for audience `owr-usage` only, with the endpoint's scope: a user's access token here is
a 401, a service token without the scope a 403. The gateway never routes these paths. Bodies keep every
digit of their numbers (`ExactJsonRoute`); unknown fields are ignored, known ones are validated (422).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from starlette.responses import Response

from owr_shared.db import DbSession
from owr_shared.jwt import Principal
from owr_shared.schemas import json_response, problem_responses
from owr_shared.wire.alerts import (
    ClaimedDeliveries,
    DeliveryClaim,
    DeliveryResult,
    DeliveryState,
    DigestRequest,
    EventsRaised,
    KeyStatusBatch,
    PriceDriftRequest,
)
from owr_shared.wire.key_actions import (
    OPEN_ACTIONS_MAX,
    ClaimedKeyAction,
    KeyActionClaim,
    KeyActionResult,
    KeyActionState,
    OpenKeyActions,
)
from owr_shared.wire.usage import CompactionRequest, CompactionResult, RetentionRequest, RetentionResult
from owr_shared.wire.workspaces import PAGE_LIMIT, StoredWorkspaces, stored_page
from owr_usage.accounts import service as account_service
from owr_usage.accounts.schemas import AccountKeysReport, ActivityReport, CreditsReport
from owr_usage.deliveries import service as delivery_service
from owr_usage.dependencies import ChannelVault, Clock, Settings, require_scope
from owr_usage.digests import service as digest_service
from owr_usage.erasure import service as erasure_service
from owr_usage.internal import service as internal_service
from owr_usage.key_actions import claims as key_action_claims
from owr_usage.key_actions.errors import ActionNotFound
from owr_usage.prices import service as price_service
from owr_usage.routing import ExactJsonRoute
from owr_usage.rules import service as rule_service
from owr_usage.snapshots import service as snapshot_service
from owr_usage.snapshots.schemas import SnapshotBatch, SnapshotsStored

router = APIRouter(prefix="/internal", tags=["internal"], route_class=ExactJsonRoute)

IngestCaller = Annotated[Principal, Depends(require_scope("usage:ingest"))]
CleanupCaller = Annotated[Principal, Depends(require_scope("usage:cleanup"))]
EraseCaller = Annotated[Principal, Depends(require_scope("workspaces:delete"))]
DeliverCaller = Annotated[Principal, Depends(require_scope("alerts:deliver"))]

_WRITE_ERRORS = problem_responses(400, 401, 403, 422)


@router.post(
    "/snapshots",
    response_model=SnapshotsStored,
    responses=problem_responses(400, 401, 403, 409, 422),
    summary="Store key snapshots (1-500)",
)
async def store_snapshots(body: SnapshotBatch, caller: IngestCaller, session: DbSession) -> Response:
    """Each snapshot is unique per (key_id, observed_at): a repeat is counted as a duplicate and changes nothing.

    Stored snapshots re-derive the daily spend of their day and the day before.
    """
    return json_response(await snapshot_service.ingest(session, body.items))


@router.post(
    "/key-status",
    response_model=EventsRaised,
    responses=_WRITE_ERRORS,
    summary="Sync outcomes for the key rules (1-500)",
)
async def key_status(body: KeyStatusBatch, caller: IngestCaller, session: DbSession) -> Response:
    """Each key's sync outcome (valid, invalid or error) at OpenRouter's time: raises `key.invalid`,
    `key.expiring`, `key.limit_threshold_crossed` (from the key's latest snapshot), `sync.failing` and
    `sync.recovered` as the workspace's rules say, each once. Repeats raise nothing more."""
    return json_response(EventsRaised(raised=await rule_service.on_key_status(session, body.items)))


@router.post(
    "/accounts/{management_key_id}/credits",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_WRITE_ERRORS,
    summary="Store an account balance",
)
async def store_credits(
    management_key_id: uuid.UUID, body: CreditsReport, caller: IngestCaller, session: DbSession
) -> None:
    """Unique per (management key, observed_at); two zeros are stored as unknown. A new balance is checked
    against the account rules (`account.balance_low`, `account.runway_low`)."""
    await account_service.store_credits(session, management_key_id, body)


@router.put(
    "/accounts/{management_key_id}/keys",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_WRITE_ERRORS,
    summary="Replace an account's key list",
)
async def replace_keys(
    management_key_id: uuid.UUID, body: AccountKeysReport, caller: IngestCaller, session: DbSession
) -> None:
    """The complete `/keys` list; a list observed before the stored one is ignored."""
    await account_service.replace_keys(session, management_key_id, body)


@router.put(
    "/accounts/{management_key_id}/activity",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_WRITE_ERRORS,
    summary="Replace a key's activity for some dates",
)
async def replace_activity(
    management_key_id: uuid.UUID, body: ActivityReport, caller: IngestCaller, session: DbSession
) -> None:
    """Replaces the key hash's rows of `dates` and of every date a row carries; a date stored from a later
    observation is kept."""
    await account_service.replace_activity(session, management_key_id, body)


@router.post(
    "/digests",
    response_model=EventsRaised,
    responses=_WRITE_ERRORS,
    summary="Write the weekly or monthly digests",
)
async def write_digests(body: DigestRequest, caller: DeliverCaller, session: DbSession) -> Response:
    """One `report.weekly` / `report.monthly` event per workspace with a channel taking it, for the last complete
    period at `at` (default now): spend against the period before, top keys and models, keys without a limit,
    dormant keys (no spend in 14 days) and keys expiring before the next digest. A period's digest is written
    once; asking again writes nothing."""
    raised = await digest_service.write_digests(session, body.kind, body.at or datetime.now(UTC))
    return json_response(EventsRaised(raised=raised))


@router.post(
    "/price-drift",
    response_model=EventsRaised,
    responses=_WRITE_ERRORS,
    summary="Evaluate the `price.drift` rule for the last settled week",
)
async def evaluate_price_drift(
    caller: DeliverCaller, session: DbSession, body: PriceDriftRequest | None = None
) -> Response:
    """Compares, per workspace, model and provider, the last UTC week settled at `at` (default now: weeks count
    from the Tuesday after them) with the week before, and raises `price.drift` where the workspace's rule says;
    each (workspace, model, provider, week) once, so asking again writes nothing. A workspace whose activity was
    stored in the last 30 minutes (a sync still under way) is left for a later run."""
    raised = await price_service.evaluate_drift(session, (body.at if body else None) or datetime.now(UTC))
    return json_response(EventsRaised(raised=raised))


@router.post(
    "/retention",
    response_model=RetentionResult,
    responses=_WRITE_ERRORS,
    summary="Remove history past retention",
)
async def apply_retention(
    caller: CleanupCaller, session: DbSession, settings: Settings, body: RetentionRequest | None = None
) -> Response:
    """Deletes snapshots, daily rows, activity and balances dated before `before`, never inside the
    retention window (`USAGE_RETENTION_DAYS`); the answer says which cutoff was applied."""
    result = await internal_service.apply_retention(
        session,
        before=body.before if body else None,
        today=datetime.now(UTC).date(),
        retention_days=settings.retention_days,
    )
    return json_response(result)


@router.post(
    "/snapshots/compaction",
    response_model=CompactionResult,
    responses=_WRITE_ERRORS,
    summary="Thin out old snapshots to each key-day's first and last (one batch of keys)",
)
async def compact_snapshots(
    caller: CleanupCaller, session: DbSession, settings: Settings, body: CompactionRequest | None = None
) -> Response:
    """Days older than the full window (`USAGE_SNAPSHOT_FULL_HOURS`) keep the first and the last snapshot
    of each key; figures do not change. Call again with `after` = `next_after` until it is null."""
    result = await internal_service.compact_snapshots(
        session, body or CompactionRequest(), now=datetime.now(UTC), full_hours=settings.snapshot_full_hours
    )
    return json_response(result)


@router.delete(
    "/workspaces/{workspace_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 422),
    summary="Erase a workspace's figures",
)
async def delete_workspace(workspace_id: uuid.UUID, caller: EraseCaller, session: DbSession) -> None:
    """Idempotent: a workspace with nothing stored answers 204 too. The workspace is tombstoned first:
    a sync that reports for it afterwards stores nothing."""
    await erasure_service.erase(session, workspace_id=workspace_id)


@router.get(
    "/workspaces",
    response_model=StoredWorkspaces,
    responses=problem_responses(401, 403, 422),
    summary="The workspaces holding figures (the orphan sweep's input)",
)
async def stored_workspaces(
    caller: EraseCaller,
    session: DbSession,
    after: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = PAGE_LIMIT,
) -> Response:
    """Ids in order above `after`; `next_after` is set while more may follow."""
    items = await erasure_service.stored_workspaces(session, after=after, limit=limit)
    return json_response(stored_page(items, limit))


@router.post(
    "/deliveries/claim",
    response_model=ClaimedDeliveries,
    responses=_WRITE_ERRORS,
    summary="Lease due alert deliveries, with their channels revealed",
)
async def claim_deliveries(
    caller: DeliverCaller,
    session: DbSession,
    envelope: ChannelVault,
    clock: Clock,
    settings: Settings,
    body: DeliveryClaim | None = None,
) -> Response:
    """Up to `limit` due deliveries of enabled channels, oldest due first, each leased for `lease_seconds`
    (`FOR UPDATE SKIP LOCKED`: concurrent claims get disjoint deliveries; a lease that runs out is claimed
    again, with the same event id). Each carries its event and its channel's URL or address and signing
    secrets (the current one first, and the previous one during a rotation's overlap); each channel revealed
    is audited. `backlog` is the outbox's depth and the wait of its oldest due delivery."""
    claimed = await delivery_service.claim(
        session,
        envelope,
        actor=caller.subject,
        request=body or DeliveryClaim(),
        now=clock(),
        public_base_url=settings.public_base_url,
        schedule=settings.delivery_retry_seconds,
    )
    return json_response(claimed)


@router.post(
    "/deliveries/{delivery_id}/result",
    response_model=DeliveryState,
    responses=problem_responses(400, 401, 403, 404, 422),
    summary="Report one attempt of a delivery",
)
async def report_delivery(
    delivery_id: uuid.UUID,
    body: DeliveryResult,
    caller: DeliverCaller,
    session: DbSession,
    clock: Clock,
    settings: Settings,
) -> Response:
    """Records the attempt in the channel's log. `delivered` (a 2xx) ends the delivery; `failed` schedules the
    next attempt (by default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, each ±20 %, or the receiver's
    `Retry-After` when longer; `USAGE_DELIVERY_RETRY_SECONDS`), then fails it; `gone` (a 410) disables the channel, as does a day of failures, and the workspace's
    other channels get `channel.disabled`. A report for a delivery no longer leased and pending changes nothing
    and answers its state; 404 when the delivery or its channel was deleted."""
    state = await delivery_service.report(
        session, delivery_id=delivery_id, result=body, now=clock(), schedule=settings.delivery_retry_seconds
    )
    return json_response(state)


@router.post(
    "/key-actions/{action_id}/claim",
    response_model=ClaimedKeyAction,
    responses=problem_responses(400, 401, 403, 404, 422),
    summary="Take a key action for one try",
)
async def claim_key_action(
    action_id: uuid.UUID, body: KeyActionClaim, caller: IngestCaller, session: DbSession, clock: Clock
) -> Response:
    """`ready`: send it (with the account's management key id and the key's hash), then report. Not ready: it is
    finished, another claim holds it, or it cannot be done (failed here with `error`: the key is not linked)."""
    claimed = await key_action_claims.claim(session, action_id=action_id, lease_seconds=body.lease_seconds, now=clock())
    if claimed is None:
        raise ActionNotFound()
    return json_response(claimed)


@router.post(
    "/key-actions/{action_id}/result",
    response_model=KeyActionState,
    responses=problem_responses(400, 401, 403, 404, 422),
    summary="Report a key action's try",
)
async def report_key_action(
    action_id: uuid.UUID, body: KeyActionResult, caller: IngestCaller, session: DbSession, clock: Clock
) -> Response:
    """`done` records what OpenRouter answered (a disable raises `key.disabled`), `failed` ends it with `error`,
    `retry` frees it for a later try. Only a claimed action takes a report: a repeat changes nothing."""
    state = await key_action_claims.report(session, action_id=action_id, result=body, now=clock())
    if state is None:
        raise ActionNotFound()
    return json_response(state)


@router.get(
    "/key-actions/open",
    response_model=OpenKeyActions,
    responses=problem_responses(401, 403, 422),
    summary="Key actions whose job may be lost",
)
async def open_key_actions(
    caller: IngestCaller,
    session: DbSession,
    clock: Clock,
    limit: Annotated[int, Query(ge=1, le=OPEN_ACTIONS_MAX)] = 50,
) -> Response:
    """Pending for a while, or running past their claim's lease: the worker's sweep queues their jobs again."""
    ids = await key_action_claims.open_actions(session, now=clock(), limit=limit)
    return json_response(OpenKeyActions(ids=ids))
