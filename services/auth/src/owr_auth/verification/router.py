"""`/api/v1/auth/verify-email` and `/api/v1/auth/verify-email/resend`."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from owr_auth.dependencies import Clock, MailLimits, Mails, SessionUser
from owr_auth.verification import service as verification_service
from owr_auth.verification.schemas import VerifyEmailRequest
from owr_shared.db import DbSession
from owr_shared.schemas import problem_responses

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post(
    "/verify-email",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 410, 422),
    summary="Verify the email address with the emailed link's token",
)
async def verify_email(body: VerifyEmailRequest, session: DbSession, clock: Clock) -> None:
    """Verify the address the link was sent to. A link works once: 400 `invalid-link` for a token auth did
    not issue (or that a newer email of the same request replaced), 410 `link-expired` for one that expired
    (48 hours) or was used already. No sign-in needed: the token is the proof."""
    await verification_service.verify(session, token=body.token, now=clock())


@router.post(
    "/verify-email/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    responses={
        202: {"description": "A new verification email is on its way"},
        **problem_responses(401, 403, 409, 429, 503),
    },
    summary="Send the verification email again",
)
async def resend_verification(current: SessionUser, session: DbSession, queue: Mails, limits: MailLimits) -> Response:
    """Send a new verification link to the account's address (older links keep working until they expire).
    409 when the address is verified already; 429 past `AUTH_VERIFICATION_RESEND_MAX` emails an hour."""
    await verification_service.resend(session, queue, limits, current.user)
    return Response(status_code=status.HTTP_202_ACCEPTED)
