"""`/internal/*`: for other services with a service token carrying the endpoint's scope.

The gateway never routes these paths; a user's access token here is a 401, a service token
without the scope a 403.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from starlette.responses import Response

from owr_keys.audit.service import Actor
from owr_keys.dependencies import SecretVault, Settings, require_scope
from owr_keys.erasure import service as erasure_service
from owr_keys.internal import service as internal_service
from owr_shared.db import DbSession
from owr_shared.jwt import Principal
from owr_shared.schemas import json_response, problem_responses
from owr_shared.wire.keys import (
    DueClaim,
    DueKey,
    DueKeys,
    InvalidFilter,
    RevealBatch,
    RevealedBatch,
    RevealedItem,
    RevealedKey,
    StatusBatch,
    StatusBatchResult,
    StatusReport,
    UnrevealedItem,
    UpstreamAudit,
)
from owr_shared.wire.workspaces import PAGE_LIMIT, StoredWorkspaces, stored_page

router = APIRouter(prefix="/internal", tags=["internal"])

DueCaller = Annotated[Principal, Depends(require_scope("keys:due"))]
RevealCaller = Annotated[Principal, Depends(require_scope("keys:reveal"))]
StatusCaller = Annotated[Principal, Depends(require_scope("keys:status"))]
EraseCaller = Annotated[Principal, Depends(require_scope("workspaces:delete"))]

# Responses that carry a plaintext key must never be stored by any cache on the way.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _due_answer(rows: Sequence[Any]) -> Response:
    return json_response(DueKeys(items=[DueKey.model_validate(r, from_attributes=True) for r in rows]))


def _service(principal: Principal) -> Actor:
    return Actor("service", principal.subject)


@router.get(
    "/keys/due",
    response_model=DueKeys,
    responses=problem_responses(401, 403, 422),
    summary="Active keys due for a sync",
)
async def due_keys(
    caller: DueCaller,
    session: DbSession,
    settings: Settings,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    invalid: Annotated[
        InvalidFilter,
        Query(description="keys OpenRouter rejected: left out (the regular scan), only them (daily validation)"),
    ] = "exclude",
) -> Response:
    """Never synced first, then the oldest sync; only keys last synced before the sync interval."""
    rows = await internal_service.due_keys(
        session, interval_seconds=settings.sync_interval_seconds, limit=limit, invalid=invalid
    )
    return _due_answer(rows)


@router.post(
    "/keys/due/claim",
    response_model=DueKeys,
    responses=problem_responses(400, 401, 403, 422),
    summary="Take the next page of due keys for a sync",
)
async def claim_due_keys(body: DueClaim, caller: DueCaller, session: DbSession, settings: Settings) -> Response:
    """Keys due for a sync, each workspace's first before anyone's second, leased to this scan: concurrent
    scans get disjoint pages, and the next claim is the next page (`after` is accepted and ignored). A page
    shorter than `limit` is the last."""
    rows = await internal_service.claim_due_keys(
        session, interval_seconds=settings.sync_interval_seconds, limit=body.limit, invalid=body.invalid
    )
    return _due_answer(rows)


@router.post(
    "/keys/{key_id}/reveal",
    response_model=RevealedKey,
    responses=problem_responses(401, 403, 404, 409, 422, 500),
    summary="The plaintext of a key (audited)",
)
async def reveal_key(key_id: uuid.UUID, caller: RevealCaller, session: DbSession, vault: SecretVault) -> Response:
    """Decrypt the key for the calling service; every reveal is an audit event the workspace can see."""
    revealed = await internal_service.reveal(session, vault, actor=_service(caller), key_id=key_id)
    return json_response(
        RevealedKey(key=revealed.plaintext, workspace_id=revealed.workspace_id, name=revealed.name), headers=NO_STORE
    )


@router.post(
    "/keys/reveal",
    response_model=RevealedBatch,
    responses=problem_responses(400, 401, 403, 422),
    summary="The plaintext of several keys (each reveal audited)",
)
async def reveal_keys(body: RevealBatch, caller: RevealCaller, session: DbSession, vault: SecretVault) -> Response:
    """One round trip for many keys; a key that cannot be revealed is listed with its reason."""
    ids = list(dict.fromkeys(body.ids))
    outcomes = await internal_service.reveal_many(session, vault, actor=_service(caller), key_ids=ids)
    result = RevealedBatch(items=[], unavailable=[])
    for key_id, outcome in outcomes.items():
        if isinstance(outcome, internal_service.Revealed):
            result.items.append(
                RevealedItem(id=key_id, workspace_id=outcome.workspace_id, name=outcome.name, key=outcome.plaintext)
            )
        else:
            result.unavailable.append(UnrevealedItem(id=key_id, reason=outcome))
    return json_response(result, headers=NO_STORE)


@router.post(
    "/keys/status",
    response_model=StatusBatchResult,
    responses=problem_responses(400, 401, 403, 422),
    summary="Report the outcomes of several syncs",
)
async def report_statuses(body: StatusBatch, caller: StatusCaller, session: DbSession) -> Response:
    """Each report is applied as the single endpoint would; a repeated id keeps its last report."""
    reports = {item.id: item for item in body.items}
    outcomes = await internal_service.report_many(session, actor=_service(caller), reports=reports)
    result = StatusBatchResult(applied=[], ignored=[], not_found=[])
    for key_id, outcome in outcomes.items():
        getattr(result, outcome).append(key_id)
    return json_response(result)


@router.post(
    "/keys/{key_id}/status",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 401, 403, 404, 422),
    summary="Report the outcome of a sync",
)
async def report_status(key_id: uuid.UUID, body: StatusReport, caller: StatusCaller, session: DbSession) -> None:
    """Update the key's kind, status, limits and last sync; stale reports are ignored."""
    await internal_service.report_status(session, actor=_service(caller), key_id=key_id, report=body)


@router.post(
    "/keys/{key_id}/upstream-audit",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 401, 403, 404, 422),
    summary="Record a write made at OpenRouter on the key",
)
async def upstream_audit(key_id: uuid.UUID, body: UpstreamAudit, caller: StatusCaller, session: DbSession) -> None:
    """The worker disabled, enabled or limited the key at OpenRouter: an audit event the workspace sees at
    `GET /api/v1/keys/{id}/audit`. Once per upstream action: a repeated report records nothing more."""
    await internal_service.record_upstream(session, actor=_service(caller), key_id=key_id, report=body)


@router.delete(
    "/workspaces/{workspace_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 422),
    summary="Erase a workspace's keys and audit history",
)
async def delete_workspace(workspace_id: uuid.UUID, caller: EraseCaller, session: DbSession) -> None:
    """Idempotent: a workspace with nothing stored answers 204 too. The workspace is tombstoned first:
    nothing is stored for it afterwards, however late the write (a sync in flight, a token still valid)."""
    await erasure_service.erase(session, workspace_id=workspace_id)


@router.get(
    "/workspaces",
    response_model=StoredWorkspaces,
    responses=problem_responses(401, 403, 422),
    summary="The workspaces holding keys or audit events (the orphan sweep's input)",
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
