"""`/api/v1/auth/password-reset` and `/api/v1/auth/password-reset/confirm`."""

from __future__ import annotations

from fastapi import APIRouter, status
from starlette.responses import Response

from owr_auth.dependencies import ClientIP, Clock, MailLimits, Mails, Passwords, RedisClient, Settings
from owr_auth.password_reset import service as reset_service
from owr_auth.password_reset.schemas import PasswordResetAccepted, PasswordResetConfirm, PasswordResetRequest
from owr_shared.db import DbSession
from owr_shared.schemas import json_response, problem_responses

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PasswordResetAccepted,
    responses=problem_responses(400, 422, 429, 503),
    summary="Ask for a password-reset email",
)
async def request_password_reset(
    body: PasswordResetRequest, session: DbSession, queue: Mails, limits: MailLimits, ip: ClientIP
) -> Response:
    """202 with the same body whether or not an account uses the address; when one does, it gets an email
    with a link that works once, for 30 minutes. 429 past `AUTH_PASSWORD_RESET_MAX_PER_IP` requests from
    one address or `AUTH_PASSWORD_RESET_MAX_PER_EMAIL` for one email address in an hour."""
    await reset_service.request_reset(session, queue, limits, email=body.email, ip=ip)
    return json_response(PasswordResetAccepted(), status_code=status.HTTP_202_ACCEPTED)


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 410, 422, 503),
    summary="Set a new password with the emailed link's token",
)
async def confirm_password_reset(
    body: PasswordResetConfirm,
    session: DbSession,
    redis: RedisClient,
    settings: Settings,
    passwords: Passwords,
    queue: Mails,
    clock: Clock,
) -> None:
    """Set the new password (the registration policy; 422 names the broken rule) and end every session,
    access token and API token of the account. The link works once: 400 `invalid-link` for a token auth
    did not issue, 410 `link-expired` once it expired, was used, or a later password change outdated it. The
    account's address then gets an email saying the password was changed."""
    await reset_service.confirm(
        session, redis, settings, passwords, queue, token=body.token, new_password=body.new_password, now=clock()
    )
