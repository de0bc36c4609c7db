"""`/api/v1/auth/register` and `/api/v1/auth/me*`."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from owr_auth.dependencies import (
    Cleanup,
    ClientIP,
    CurrentUser,
    Mails,
    Passwords,
    RedisClient,
    SessionPrincipal,
    Sessions,
    SessionUser,
    Settings,
    Throttle,
)
from owr_auth.users import service as user_service
from owr_auth.users.schemas import ChangePasswordRequest, RegisterRequest, UserView
from owr_auth.users.service import UserInWorkspace
from owr_auth.workspaces.schemas import WorkspaceView
from owr_shared.db import DbSession
from owr_shared.schemas import problem_responses

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


def _view(found: UserInWorkspace) -> UserView:
    return UserView(
        id=found.user.id,
        email=found.user.email,
        email_verified=found.user.email_verified_at is not None,
        created_at=found.user.created_at,
        workspace=WorkspaceView(id=found.workspace.id, name=found.workspace.name, role=found.role),
    )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserView,
    responses=problem_responses(400, 409, 422),
    summary="Create an account and its personal workspace",
)
async def register(body: RegisterRequest, session: DbSession, passwords: Passwords, queue: Mails) -> UserView:
    """Register with email and password; the user owns a new personal workspace, and gets an email with a
    link that verifies the address (`email_verified` is false until it is used)."""
    created = await user_service.register(session, passwords, queue, email=body.email, password=body.password)
    return _view(created)


@router.get("/me", response_model=UserView, responses=problem_responses(401), summary="The current user")
async def me(current: CurrentUser) -> UserView:
    """The caller, with the workspace the token acts in and the role the token carries there (a role
    raised since applies from the next refresh or switch)."""
    return _view(current)


@router.put(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 401, 403, 422, 429, 503),
    summary="Change the password",
)
async def change_password(
    body: ChangePasswordRequest,
    current: SessionUser,
    session: DbSession,
    redis: RedisClient,
    settings: Settings,
    passwords: Passwords,
    throttle: Throttle,
    queue: Mails,
    ip: ClientIP,
) -> None:
    """Change the password; every refresh token, access token and API token of the user stops working at
    once (sign in again; API tokens must be made anew). The account's address gets an email saying so."""
    await user_service.change_password(
        session,
        redis,
        settings,
        passwords,
        throttle,
        queue,
        user=current.user,
        current_password=body.current_password,
        new_password=body.new_password,
        ip=ip,
    )


@router.delete(
    "/me",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        202: {"description": "Deleted; another service's erasure finishes within the hour (the sweep)"},
        **problem_responses(401, 403, 503),
    },
    summary="Delete the account",
)
async def delete_me(
    principal: SessionPrincipal, sessions: Sessions, redis: RedisClient, settings: Settings, cleanup: Cleanup
) -> Response:
    """Delete the account, its solely-owned workspaces (with their data in every service), its sessions and
    its API tokens.

    Every session and API token stops working first. 204 when every service has erased the data; 202 when
    one could not be reached: the account is already gone for sign-in and every token, and the erasure
    there is finished by the periodic sweep. 503 (nothing changed; repeat it) when the revocation itself
    cannot be recorded.
    """
    finished = await user_service.delete_account(sessions, redis, settings, cleanup, principal=principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT if finished else status.HTTP_202_ACCEPTED)


@router.delete(
    "/me/sessions",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 503),
    summary="Sign out everywhere",
)
async def sign_out_everywhere(current: SessionUser, session: DbSession, redis: RedisClient, settings: Settings) -> None:
    """End every session of the user, this one included: every refresh token, access token and API token
    stops working at once. 503 (nothing revoked; repeat it) when the revocation cannot be recorded."""
    await user_service.end_every_session(
        session, redis, settings, user_id=current.user.id, reason="sign_out_everywhere"
    )
