"""`/api/v1/auth/login`, `/refresh`, `/logout`, `/switch`."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, status
from starlette.responses import Response

from owr_auth.dependencies import (
    ClientIP,
    Passwords,
    RedisClient,
    SessionPrincipal,
    SessionUser,
    Settings,
    SigningKeyring,
    Throttle,
)
from owr_auth.sessions import service as session_service
from owr_auth.sessions.errors import RefreshTokenReused
from owr_auth.sessions.schemas import LoginRequest, LogoutRequest, RefreshRequest, TokenPair
from owr_auth.workspaces.schemas import SwitchRequest
from owr_shared.auth import SessionRequired
from owr_shared.db import DbSession
from owr_shared.errors import render_problem
from owr_shared.schemas import json_response, problem_responses

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post(
    "/login",
    response_model=TokenPair,
    responses=problem_responses(400, 401, 403, 422, 429, 503),
    summary="Log in with email and password",
)
async def login(
    body: LoginRequest,
    session: DbSession,
    settings: Settings,
    keyring: SigningKeyring,
    passwords: Passwords,
    throttle: Throttle,
    ip: ClientIP,
) -> TokenPair:
    """Exchange credentials for an access token and a refresh token (a new session)."""
    ctx = session_service.LoginContext(settings=settings, keyring=keyring, passwords=passwords, throttle=throttle)
    return await session_service.login(session, ctx, email=body.email, password=body.password, ip=ip)


@router.post(
    "/refresh",
    response_model=TokenPair,
    responses=problem_responses(400, 401, 403, 422),
    summary="Rotate a refresh token",
)
async def refresh(
    body: RefreshRequest,
    request: Request,
    session: DbSession,
    redis: RedisClient,
    settings: Settings,
    keyring: SigningKeyring,
) -> Any:
    """Exchange a refresh token for a new pair; the presented token stops working."""
    try:
        return await session_service.refresh(session, redis, settings, keyring, refresh_token=body.refresh_token)
    except RefreshTokenReused as exc:
        # Returned, not raised: the family revocation must be committed along with the refusal.
        return render_problem(exc, request)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 422, 503),
    summary="End the session of a refresh token",
)
async def logout(body: LogoutRequest, session: DbSession, redis: RedisClient, settings: Settings) -> None:
    """Revoke the refresh token's session: the refresh token and every access token of that session
    stop working at once. Unknown tokens are accepted silently; 503 (nothing revoked, retry) when the
    revocation cannot be recorded."""
    await session_service.logout(session, redis, settings, refresh_token=body.refresh_token)


@router.post(
    "/switch",
    response_model=TokenPair,
    responses=problem_responses(400, 401, 403, 404, 422),
    summary="Act in another of your workspaces",
)
async def switch(
    body: SwitchRequest,
    caller: SessionUser,
    principal: SessionPrincipal,
    session: DbSession,
    settings: Settings,
    keyring: SigningKeyring,
) -> Response:
    """A new token pair whose access token acts in `workspace_id` with your role there; the session's
    refresh token is replaced (the old one counts as reused from now on) and its later refreshes stay in
    that workspace. 404 when you are not a member of it."""
    try:
        session_id = uuid.UUID(str(principal.claims.get("sid")))
    except ValueError:
        raise SessionRequired() from None
    pair = await session_service.switch(
        session, settings, keyring, user_id=caller.user.id, session_id=session_id, workspace_id=body.workspace_id
    )
    return json_response(pair, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
