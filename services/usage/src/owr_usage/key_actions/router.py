"""`/api/v1/keys/{id}/...` served by usage: writes to OpenRouter on a key (carried out by the worker) and the key's
state at OpenRouter. The gateway sends these paths here (`/api/v1/keys/*/...` routes); the rest of `/api/v1/keys`
is keys'. A key this workspace never synced is a 404."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from starlette.responses import Response

from owr_shared.db import DbSession
from owr_shared.schemas import json_response, problem_responses
from owr_usage.dependencies import KeyActionsReader, KeyActionsWriter
from owr_usage.key_actions import service as actions
from owr_usage.key_actions.schemas import (
    ApplyLimitRequest,
    DisableUpstreamRequest,
    KeyActionView,
    KillSwitchRequest,
    UpstreamView,
)

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])

_WRITE_ERRORS = problem_responses(400, 401, 403, 404, 422)
_ACTION_ERRORS = problem_responses(400, 401, 403, 404, 409, 422)


@router.post(
    "/{key_id}/apply-limit",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=KeyActionView,
    responses=_ACTION_ERRORS,
    summary="Set the key's limit at OpenRouter",
)
async def apply_limit(
    key_id: uuid.UUID, body: ApplyLimitRequest, user: KeyActionsWriter, session: DbSession
) -> Response:
    """The worker sends `PATCH /keys/{hash}` `{limit, limit_reset}` (and `include_byok_in_limit` when given) with the
    account's management key; follow the action at `GET /api/v1/keys/{id}/upstream`. 409 `key-not-linked` when no
    account's key list links the key (a link lost before the worker's turn fails the action there, saying so)."""
    view = await actions.request_limit(
        session,
        workspace_id=user.workspace_id,
        key_id=key_id,
        user_id=user.user_id,
        amount_usd=body.amount_usd,
        reset=body.reset,
        include_byok=body.include_byok_in_limit,
    )
    return json_response(view, status.HTTP_202_ACCEPTED)


@router.post(
    "/{key_id}/enable-upstream",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=KeyActionView,
    responses=_ACTION_ERRORS,
    summary="Enable the key at OpenRouter again",
)
async def enable_upstream(key_id: uuid.UUID, user: KeyActionsWriter, session: DbSession) -> Response:
    """Undo the kill switch: the worker sends `PATCH /keys/{hash}` `{disabled: false}`. 409 `key-not-linked` when
    no account's key list links the key."""
    view = await actions.request_enable(session, workspace_id=user.workspace_id, key_id=key_id, user_id=user.user_id)
    return json_response(view, status.HTTP_202_ACCEPTED)


@router.post(
    "/{key_id}/disable-upstream",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=KeyActionView,
    responses=_ACTION_ERRORS,
    summary="Disable the key at OpenRouter now",
)
async def disable_upstream(
    key_id: uuid.UUID, user: KeyActionsWriter, session: DbSession, body: DisableUpstreamRequest | None = None
) -> Response:
    """The panic button: the worker sends `PATCH /keys/{hash}` `{disabled: true}`, audits it in the key's trail
    and raises `key.disabled` (`source: user`), as for the kill switch; `enable-upstream` undoes it. 409
    `key-not-linked` (no account's key list links the key), `key-disable-under-way` or `key-already-disabled`. A
    pending enable is superseded; follow the action at `GET /api/v1/keys/{id}/upstream`."""
    view = await actions.request_user_disable(
        session,
        workspace_id=user.workspace_id,
        key_id=key_id,
        user_id=user.user_id,
        reason=body.reason if body else None,
    )
    return json_response(view, status.HTTP_202_ACCEPTED)


@router.get(
    "/{key_id}/upstream",
    response_model=UpstreamView,
    responses=problem_responses(401, 403, 404, 422),
    summary="The key at OpenRouter, and the last actions on it",
)
async def get_upstream(key_id: uuid.UUID, user: KeyActionsReader, session: DbSession) -> Response:
    """Whether OpenRouter has the key disabled, its limit there, the kill switch's anomaly threshold, and the last
    writes to OpenRouter with their status (`pending`, `running`, `done`, `failed` with `error`, or a rule's disable
    `skipped`, with why: the key was disabled or being disabled already; or a pending enable a user's disable
    superseded)."""
    view = await actions.upstream(session, workspace_id=user.workspace_id, key_id=key_id)
    return json_response(view)


@router.put(
    "/{key_id}/kill-switch",
    response_model=UpstreamView,
    responses=_WRITE_ERRORS,
    summary="Set the key's anomaly kill switch",
)
async def put_kill_switch(
    key_id: uuid.UUID, body: KillSwitchRequest, user: KeyActionsWriter, session: DbSession
) -> Response:
    """An anomaly on this key with a score of `anomaly_score` or more disables it at OpenRouter; null turns it off
    (the default)."""
    view = await actions.set_kill_switch(
        session, workspace_id=user.workspace_id, key_id=key_id, anomaly_score=body.anomaly_score
    )
    return json_response(view)
