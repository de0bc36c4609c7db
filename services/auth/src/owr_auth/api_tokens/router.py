"""`/api/v1/tokens`: a signed-in user's own API tokens (the gateway's introspection is in `owr_auth.internal`)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, status
from starlette.responses import Response

from owr_auth.api_tokens import service as token_service
from owr_auth.api_tokens.schemas import CreatedToken, CreateTokenRequest, TokenView
from owr_auth.dependencies import RedisClient, SessionCaller, Settings
from owr_shared.auth import Role, require_role
from owr_shared.db import DbSession
from owr_shared.dependencies import Paging
from owr_shared.schemas import NO_STORE, Page, json_response, problem_responses

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedToken,
    responses=problem_responses(400, 401, 403, 422),
    summary="Create an API token (its value is shown once; member)",
    dependencies=[Depends(require_role(Role.member))],
)
async def create_token(
    body: CreateTokenRequest, user: SessionCaller, session: DbSession, settings: Settings
) -> Response:
    """Scopes default to read-only (`usage:read`, `keys:read`); the token expires after 90 days by default.
    It acts in your current workspace with your role there now, at most (a viewer makes none): what it may
    do is what both that role and its scopes allow. It stops working when you leave the workspace."""
    created = await token_service.create(session, settings, user=user, body=body)
    return json_response(created, status_code=status.HTTP_201_CREATED, headers=NO_STORE)


@router.get("", response_model=Page[TokenView], responses=problem_responses(401, 403, 422), summary="Your API tokens")
async def list_tokens(user: SessionCaller, session: DbSession, paging: Paging) -> Response:
    """Name, prefix, scopes and dates of each token that is not revoked; never a token's value."""
    items, total = await token_service.page(session, user=user, offset=paging.offset, limit=paging.per_page)
    return json_response(Page[TokenView](items=items, total=total, page=paging.page, per_page=paging.per_page))


@router.delete(
    "/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
    summary="Revoke an API token (at once)",
)
async def revoke_token(token_id: uuid.UUID, user: SessionCaller, session: DbSession, redis: RedisClient) -> None:
    await token_service.revoke(session, redis, user=user, token_id=token_id)
