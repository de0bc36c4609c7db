"""`/api/v1/auth/login` (and its second step `/login/mfa`), `/refresh`, `/logout`, `/switch`, and `/sessions`."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, status
from starlette.responses import Response

from owr_auth.dependencies import (
    Client,
    Login,
    RedisClient,
    SessionPrincipal,
    SessionUser,
    Settings,
    SigningKeyring,
)
from owr_auth.sessions import listing
from owr_auth.sessions import service as session_service
from owr_auth.sessions.errors import RefreshTokenReused
from owr_auth.sessions.schemas import (
    LoginRequest,
    LogoutRequest,
    MfaChallenge,
    MfaLoginRequest,
    RefreshRequest,
    RevokeAllRequest,
    SessionView,
    TokenPair,
)
from owr_auth.workspaces.schemas import SwitchRequest
from owr_shared.auth import SessionRequired
from owr_shared.db import DbSession
from owr_shared.dependencies import Paging
from owr_shared.errors import render_problem
from owr_shared.schemas import NO_STORE, Page, json_response, problem_responses

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post(
    "/login",
    response_model=TokenPair | MfaChallenge,
    responses=problem_responses(400, 401, 403, 422, 429, 503),
    summary="Log in with email and password",
)
async def login(body: LoginRequest, session: DbSession, ctx: Login, client: Client) -> Response:
    """Exchange credentials for an access token and a refresh token (a new session). With two-factor
    sign-in on, the answer is `{mfa_required: true, challenge, expires_in}` instead, and no token: send
    the challenge with a code to `POST /api/v1/auth/login/mfa` within `expires_in` seconds."""
    answer = await session_service.login(session, ctx, email=body.email, password=body.password, client=client)
    return json_response(answer, headers=NO_STORE)


@router.post(
    "/login/mfa",
    response_model=TokenPair,
    responses=problem_responses(400, 401, 403, 422, 429, 503),
    summary="Log in, second step: the challenge and a code",
)
async def login_mfa(body: MfaLoginRequest, session: DbSession, ctx: Login, client: Client) -> Response:
    """The first step's `challenge` with a current authenticator `code` or an unused `recovery_code` → the
    token pair. The challenge lives 5 minutes, works once, and only from the client (address and user
    agent) that made the first step: otherwise 401 `invalid-mfa-challenge` (sign in again). A wrong code
    is a 401 `invalid-second-factor` and may be tried again; wrong codes are throttled per account (429)."""
    pair = await session_service.complete_login(
        session, ctx, challenge=body.challenge, code=body.code, recovery_code=body.recovery_code, client=client
    )
    return json_response(pair, headers=NO_STORE)


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
    client: Client,
) -> Any:
    """Exchange a refresh token for a new pair; the presented token stops working."""
    try:
        return await session_service.refresh(
            session, redis, settings, keyring, refresh_token=body.refresh_token, client=client
        )
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


@router.get(
    "/sessions",
    response_model=Page[SessionView],
    responses=problem_responses(401, 403, 422),
    summary="Your sessions",
)
async def list_sessions(
    principal: SessionPrincipal, current: SessionUser, session: DbSession, paging: Paging
) -> Response:
    """Every session (a signed-in browser, app or script) that can still refresh, most recently used first:
    when it began and was last used, and the user agent and address auth saw then; `current` marks the
    session of the calling token."""
    sid = principal.claims.get("sid")
    items, total = await listing.page_of_sessions(
        session,
        user_id=current.user.id,
        current_sid=str(sid) if sid is not None else None,
        offset=paging.offset,
        limit=paging.per_page,
    )
    return json_response(Page[SessionView](items=items, total=total, page=paging.page, per_page=paging.per_page))


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422, 503),
    summary="End one session",
)
async def revoke_session(
    session_id: uuid.UUID, current: SessionUser, session: DbSession, redis: RedisClient, settings: Settings
) -> None:
    """End one of your sessions: its refresh token and access tokens stop working at once (this one's too,
    if it is the current one). Another person's session, or one already ended, is a 404. 503 (nothing
    changed; repeat it) when the revocation cannot be recorded."""
    await listing.revoke_session(session, redis, settings, user_id=current.user.id, session_id=session_id)


@router.post(
    "/sessions/revoke-all",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 401, 403, 422, 503),
    summary="End every session",
)
async def revoke_all_sessions(
    principal: SessionPrincipal,
    current: SessionUser,
    session: DbSession,
    redis: RedisClient,
    settings: Settings,
    body: RevokeAllRequest | None = None,
) -> None:
    """Sign out everywhere: every session's refresh token and access tokens stop working at once, this
    one's too unless `keep_current` is true. API tokens are not sessions and stay (revoke them at
    `/api/v1/tokens`; `DELETE /api/v1/auth/me/sessions` ends both). 503 (nothing changed; repeat it) when
    the revocation cannot be recorded."""
    keep = None
    sid = principal.claims.get("sid")
    if body is not None and body.keep_current and sid is not None:
        keep = uuid.UUID(str(sid))
    await listing.revoke_all_sessions(session, redis, settings, user_id=current.user.id, keep=keep)
