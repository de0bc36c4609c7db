"""`/api/v1/keys*`: the workspace's keys, masked. Another workspace's key is a 404 on every route."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status
from starlette.background import BackgroundTask
from starlette.responses import Response

from owr_keys.audit.schemas import AuditEventView
from owr_keys.audit.service import Actor
from owr_keys.dependencies import (
    KeyFingerprinter,
    KeysAdder,
    KeysReader,
    KeysSyncer,
    KeysWriter,
    Queue,
    SecretVault,
    Settings,
    User,
)
from owr_keys.keys import service as key_service
from owr_keys.keys.models import OpenRouterKey
from owr_keys.keys.schemas import CreateKeyRequest, KeyView, SyncAccepted, UpdateKeyRequest
from owr_shared.context import TRACEPARENT_HEADER, request_id_var
from owr_shared.db import DbSession
from owr_shared.dependencies import Paging
from owr_shared.schemas import Page, json_response, problem_responses

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])

_ITEM_ERRORS = problem_responses(401, 403, 404, 422)


def key_view(row: OpenRouterKey) -> KeyView:
    return KeyView.model_validate(row, from_attributes=True)


def _actor(user: User) -> Actor:
    return Actor("user", user.user_id)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyView,
    responses=problem_responses(400, 401, 403, 409, 410, 422),
    summary="Store an OpenRouter key",
)
async def create_key(
    body: CreateKeyRequest,
    request: Request,
    user: KeysAdder,
    session: DbSession,
    vault: SecretVault,
    fingerprint: KeyFingerprinter,
    queue: Queue,
    settings: Settings,
) -> Response:
    """Encrypt and store the key; the answer is its masked view. Its first sync is queued at once (its kind
    is known after it); should the queue be down, the due scan syncs it instead. A workspace holding
    `KEYS_MAX_KEYS_PER_WORKSPACE` keys gets 409 `too-many-keys`."""
    row = await key_service.create_key(
        session,
        vault,
        fingerprint,
        actor=_actor(user),
        workspace_id=user.workspace_id,
        name=body.name,
        secret=body.key,
        max_keys=settings.max_keys_per_workspace,
    )
    response = json_response(key_view(row), status.HTTP_201_CREATED)
    # A background task runs after the response is sent, so after the commit: the job always finds the key.
    response.background = BackgroundTask(
        key_service.enqueue_first_sync,
        queue,
        row.id,
        traceparent=request.headers.get(TRACEPARENT_HEADER),
        request_id=request_id_var.get(),
    )
    return response


@router.get(
    "", response_model=Page[KeyView], responses=problem_responses(401, 403, 422), summary="The workspace's keys"
)
async def list_keys(user: KeysReader, session: DbSession, paging: Paging) -> Response:
    """Newest first, masked."""
    rows, total = await key_service.list_keys(session, workspace_id=user.workspace_id, paging=paging)
    page = Page[KeyView](items=[key_view(r) for r in rows], total=total, page=paging.page, per_page=paging.per_page)
    return json_response(page)


@router.get("/{key_id}", response_model=KeyView, responses=_ITEM_ERRORS, summary="One key")
async def get_key(key_id: uuid.UUID, user: KeysReader, session: DbSession) -> Response:
    row = await key_service.get_key(session, workspace_id=user.workspace_id, key_id=key_id)
    return json_response(key_view(row))


@router.patch(
    "/{key_id}",
    response_model=KeyView,
    responses=problem_responses(400, 401, 403, 404, 422),
    summary="Rename, activate or deactivate a key",
)
async def update_key(key_id: uuid.UUID, body: UpdateKeyRequest, user: KeysWriter, session: DbSession) -> Response:
    """Fields left out (or null) stay as they are. A deactivated key is not synced or revealed."""
    row = await key_service.update_key(
        session,
        actor=_actor(user),
        workspace_id=user.workspace_id,
        key_id=key_id,
        name=body.name,
        is_active=body.is_active,
    )
    return json_response(key_view(row))


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ITEM_ERRORS, summary="Delete a key")
async def delete_key(key_id: uuid.UUID, user: KeysWriter, session: DbSession) -> None:
    """Delete the key and its ciphertext. Its audit history is kept until the workspace is deleted."""
    await key_service.delete_key(session, actor=_actor(user), workspace_id=user.workspace_id, key_id=key_id)


@router.post(
    "/{key_id}/sync",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SyncAccepted,
    responses=problem_responses(401, 403, 404, 409, 410, 422, 503),
    summary="Sync a key now",
)
async def sync_key(key_id: uuid.UUID, request: Request, user: KeysSyncer, session: DbSession, queue: Queue) -> Response:
    """Queue a sync (validate, snapshot, activity). Pressing again while it is queued queues nothing more.
    410 when the workspace has been deleted meanwhile (a token that outlived its account)."""
    result = await key_service.request_sync(
        session,
        queue,
        actor=_actor(user),
        workspace_id=user.workspace_id,
        key_id=key_id,
        traceparent=request.headers.get(TRACEPARENT_HEADER),
        request_id=request_id_var.get(),
    )
    return json_response(
        SyncAccepted(key_id=key_id, job_id=result.job_id, enqueued=result.enqueued), status.HTTP_202_ACCEPTED
    )


@router.get(
    "/{key_id}/audit",
    response_model=Page[AuditEventView],
    responses=_ITEM_ERRORS,
    summary="Who did what to a key, and when",
)
async def key_audit(key_id: uuid.UUID, user: KeysReader, session: DbSession, paging: Paging) -> Response:
    """Every change and every reveal, newest first. A deleted key's history is no longer served here."""
    rows, total = await key_service.audit_of_key(session, workspace_id=user.workspace_id, key_id=key_id, paging=paging)
    items = [AuditEventView.model_validate(r, from_attributes=True) for r in rows]
    return json_response(Page[AuditEventView](items=items, total=total, page=paging.page, per_page=paging.per_page))
