"""`/api/v1/auth/2fa`: status, setup, enable, recovery codes, disable (the second sign-in step is
`/api/v1/auth/login/mfa`)."""

from __future__ import annotations

from fastapi import APIRouter, status
from starlette.responses import Response

from owr_auth.dependencies import ClientIP, Mails, Mfa, Passwords, SessionUser, Throttle
from owr_auth.mfa import service as mfa_service
from owr_auth.mfa.schemas import (
    DisableRequest,
    EnableRequest,
    MfaStatus,
    RecoveryCodesRequest,
    RecoveryCodesView,
    SetupRequest,
    SetupView,
)
from owr_auth.users import service as user_service
from owr_shared.db import DbSession
from owr_shared.schemas import NO_STORE, json_response, problem_responses

router = APIRouter(prefix="/api/v1/auth/2fa", tags=["two-factor"])


@router.get("", response_model=MfaStatus, responses=problem_responses(401, 403), summary="Two-factor status")
async def get_status(current: SessionUser, session: DbSession) -> Response:
    """Whether two-factor sign-in is on (or a setup is pending), and how many recovery codes are left."""
    return json_response(await mfa_service.status(session, user_id=current.user.id))


@router.post(
    "/setup",
    response_model=SetupView,
    responses=problem_responses(400, 401, 403, 409, 422, 429, 503),
    summary="Start setting up two-factor sign-in",
)
async def setup(
    body: SetupRequest,
    current: SessionUser,
    session: DbSession,
    mfa: Mfa,
    passwords: Passwords,
    throttle: Throttle,
    ip: ClientIP,
) -> Response:
    """`{password}`: the account's password again (403 `wrong-current-password`; throttled as logins are, 429).
    A new secret for an authenticator app, as an `otpauth://` URI and the same as a QR code (SVG); shown
    this once. Two-factor sign-in is on only after `enable` with a code from the app; a second setup before
    that replaces the first. 409 when it is on already (turn it off first)."""
    user = await user_service.confirm_password(
        session, passwords, throttle, user=current.user, password=body.password, ip=ip
    )
    view = await mfa_service.setup(session, mfa, user=user)
    return json_response(view, headers=NO_STORE)


@router.post(
    "/enable",
    response_model=RecoveryCodesView,
    responses=problem_responses(400, 401, 403, 409, 422, 429, 503),
    summary="Turn two-factor sign-in on",
)
async def enable(
    body: EnableRequest, current: SessionUser, session: DbSession, mfa: Mfa, queue: Mails, ip: ClientIP
) -> Response:
    """Confirm the setup with a current code from the app. The answer holds ten single-use recovery codes,
    shown this once: each signs in once in place of a code. A wrong code is a 403 `wrong-code`; wrong codes
    are throttled (429). The account's address gets an email saying it is on."""
    codes = await mfa_service.enable(session, mfa, queue, user=current.user, code=body.code, ip=ip)
    return json_response(codes, headers=NO_STORE)


@router.post(
    "/recovery-codes",
    response_model=RecoveryCodesView,
    responses=problem_responses(400, 401, 403, 409, 422, 429, 503),
    summary="Replace the recovery codes",
)
async def recovery_codes(
    body: RecoveryCodesRequest, current: SessionUser, session: DbSession, mfa: Mfa, queue: Mails, ip: ClientIP
) -> Response:
    """Ten new single-use recovery codes, shown this once; every earlier one (used or not) stops working. Needs
    a fresh code from the authenticator app (403 `wrong-code`; throttled, 429); 409 when two-factor sign-in
    is off. The account's address gets an email saying new codes were made (never the codes)."""
    codes = await mfa_service.regenerate_recovery_codes(session, mfa, queue, user=current.user, code=body.code, ip=ip)
    return json_response(codes, headers=NO_STORE)


@router.post(
    "/disable",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400, 401, 403, 409, 422, 429, 503),
    summary="Turn two-factor sign-in off",
)
async def disable(
    body: DisableRequest, current: SessionUser, session: DbSession, mfa: Mfa, queue: Mails, ip: ClientIP
) -> None:
    """Needs a fresh code from the app (one not used before), or an unused recovery code when the app is
    lost. The secret and every recovery code are deleted; the account's address gets an email saying so."""
    await mfa_service.disable(
        session, mfa, queue, user=current.user, code=body.code, recovery_code=body.recovery_code, ip=ip
    )
