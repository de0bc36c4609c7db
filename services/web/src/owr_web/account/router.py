"""`/forgot-password`, `/reset-password?token=`, `/verify-email?token=`, `POST /verify-email/resend` and
`/confirm-email-channel?token=` (an email alert channel's double opt-in).

All but the resend need no sign-in (the emailed token is the credential); their forms carry the double-submit
CSRF token of the sign-in forms. The resend is a signed-in person's (the verification banner's button).
No token is ever logged or put anywhere but the form that sends it back to the API.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from owr_web.api.client import read_json
from owr_web.api.errors import ApiProblem, ApiUnavailable
from owr_web.dependencies import (
    AnonymousApi,
    Checked,
    FormChecked,
    MaybeSignedIn,
    Sessions,
    Settings,
    Views,
    session_cookie,
)
from owr_web.sessions.errors import SessionStoreUnavailable, SignedOut
from owr_web.sessions.router import PASSWORD_HINT, anonymous_page, problem_message, too_many

router = APIRouter(tags=["account"])

# What a token field may hold: auth's tokens are 48 characters; anything longer is not one of them.
TOKEN_MAX = 256
LINK_EXPIRED = "This link has expired or has been used already."
LINK_INVALID = "This link is not valid. Use the link in the newest email, or ask for a new one."


@router.get("/forgot-password", include_in_schema=False)
async def forgot_password_page(request: Request, views: Views, settings: Settings, sent: str | None = None) -> Response:
    context = {"sent": sent is not None, "error": None, "email_value": ""}
    return anonymous_page(request, views, settings, "forgot_password.html", context)


@router.post("/forgot-password", include_in_schema=False, dependencies=[FormChecked])
async def forgot_password(
    request: Request, views: Views, settings: Settings, api: AnonymousApi, email: Annotated[str, Form(max_length=320)]
) -> Response:
    """The API answers 202 whatever the address: so does this page ("if an account uses it, ...")."""
    answer = await api.call("POST", "/api/v1/auth/password-reset", json_body={"email": email})
    if answer.status_code == 202:
        return RedirectResponse("/forgot-password?sent=1", status_code=303)
    if answer.status_code == 429:
        error = too_many(answer)
    else:
        error = problem_message(read_json(answer), "Enter the email address you sign in with.")
    context = {"sent": False, "error": error, "email_value": email}
    return anonymous_page(request, views, settings, "forgot_password.html", context, status=answer.status_code)


def _reset_context(token: str, **values: Any) -> dict[str, Any]:
    return {"token": token, "error": None, "broken": None, "hint": PASSWORD_HINT, **values}


@router.get("/reset-password", include_in_schema=False)
async def reset_password_page(request: Request, views: Views, settings: Settings, token: str = "") -> Response:
    """The new-password form; the token goes back in a hidden field (this page uses nothing yet)."""
    broken = None if token and len(token) <= TOKEN_MAX else LINK_INVALID
    context = _reset_context(token if broken is None else "", broken=broken)
    return anonymous_page(request, views, settings, "reset_password.html", context, status=400 if broken else 200)


@router.post("/reset-password", include_in_schema=False, dependencies=[FormChecked])
async def reset_password(
    request: Request,
    views: Views,
    settings: Settings,
    sessions: Sessions,
    api: AnonymousApi,
    token: Annotated[str, Form(max_length=TOKEN_MAX)],
    new_password: Annotated[str, Form(max_length=1024)],
) -> Response:
    body = {"token": token, "new_password": new_password}
    answer = await api.call("POST", "/api/v1/auth/password-reset/confirm", json_body=body)
    if answer.status_code == 204:
        # auth ended every session of the account: this browser's too, if it had one.
        response = RedirectResponse("/login?done=reset", status_code=303)
        session_id = request.cookies.get(session_cookie(settings))
        if session_id:
            await sessions.end(session_id, reason="password_reset")
            response.delete_cookie(session_cookie(settings), path="/", secure=settings.cookies_secure, httponly=True)
        return response
    if answer.status_code in (400, 410):
        context = _reset_context("", broken=LINK_EXPIRED if answer.status_code == 410 else LINK_INVALID)
    elif answer.status_code == 429:
        context = _reset_context(token, error=too_many(answer))
    else:
        context = _reset_context(token, error=problem_message(read_json(answer), "Choose another password."))
    return anonymous_page(request, views, settings, "reset_password.html", context, status=answer.status_code)


@router.get("/verify-email", include_in_schema=False)
async def verify_email_page(
    request: Request, views: Views, settings: Settings, token: str = "", sent: str | None = None
) -> Response:
    """The emailed link's page: a button that verifies. Opening the link uses nothing (mail scanners fetch
    links before the person does); pressing the button posts the token back, as the reset form does."""
    if sent is not None and not token:
        return anonymous_page(request, views, settings, "verify_email.html", {"state": "sent"})
    if not token or len(token) > TOKEN_MAX:
        return anonymous_page(request, views, settings, "verify_email.html", {"state": "invalid"}, status=400)
    return anonymous_page(request, views, settings, "verify_email.html", {"state": "confirm", "token": token})


@router.post("/verify-email", include_in_schema=False, dependencies=[FormChecked])
async def verify_email(
    request: Request,
    views: Views,
    settings: Settings,
    sessions: Sessions,
    api: AnonymousApi,
    visitor: MaybeSignedIn,
    token: Annotated[str, Form(max_length=TOKEN_MAX)],
) -> Response:
    """Verify the address (the token is the proof; it works once). Signed in in this browser: the session takes
    a new token pair at once, whose `email_verified` lets the person add channels now, and the banner goes."""
    answer = await api.call("POST", "/api/v1/auth/verify-email", json_body={"token": token})
    if answer.status_code == 204:
        if visitor is not None:
            # Another account's session in this browser just refreshes: the new token says its own state.
            with contextlib.suppress(SignedOut, ApiUnavailable, SessionStoreUnavailable):
                await sessions.renew(visitor.session_id, visitor.session, visitor.api)
        return anonymous_page(request, views, settings, "verify_email.html", {"state": "verified"})
    if answer.status_code == 429:
        context = {"state": "confirm", "token": token, "error": too_many(answer)}
    else:
        context = {"state": "expired" if answer.status_code == 410 else "invalid"}
    return anonymous_page(request, views, settings, "verify_email.html", context, status=answer.status_code)


@router.post("/verify-email/resend", include_in_schema=False)
async def resend_verification(visitor: Checked, sessions: Sessions) -> Response:
    """Another verification email; an address verified meanwhile (409) just loses its banner."""
    try:
        await visitor.api.post("/api/v1/auth/verify-email/resend")
    except ApiProblem as exc:
        if exc.status != 409:
            raise  # a 429 says how long to wait, on the error page
        await sessions.verified_now(visitor.session_id, visitor.session, visitor.api)
        return RedirectResponse("/profile", status_code=303)
    return RedirectResponse("/verify-email?sent=1", status_code=303)


@router.get("/confirm-email-channel", include_in_schema=False)
async def confirm_email_channel_page(request: Request, views: Views, settings: Settings, token: str = "") -> Response:
    """An email channel's confirmation link: a button that confirms, for a recipient who may have no account.
    Opening the link spends nothing (a mail scanner's fetch must not confirm an address for its owner)."""
    if not token or len(token) > TOKEN_MAX:
        return anonymous_page(request, views, settings, "confirm_email_channel.html", {"state": "invalid"}, status=400)
    context = {"state": "confirm", "token": token}
    return anonymous_page(request, views, settings, "confirm_email_channel.html", context)


@router.post("/confirm-email-channel", include_in_schema=False, dependencies=[FormChecked])
async def confirm_email_channel(
    request: Request,
    views: Views,
    settings: Settings,
    api: AnonymousApi,
    token: Annotated[str, Form(max_length=TOKEN_MAX)],
) -> Response:
    answer = await api.call("POST", "/api/v1/channel-confirmations", json_body={"token": token})
    if answer.status_code == 200:
        confirmed = read_json(answer)
        name = confirmed.get("name") if isinstance(confirmed, dict) else None
        context: dict[str, Any] = {"state": "confirmed", "channel_name": name or "alerts"}
        return anonymous_page(request, views, settings, "confirm_email_channel.html", context)
    if answer.status_code == 429:
        context = {"state": "confirm", "token": token, "error": too_many(answer)}
    else:
        context = {"state": "expired" if answer.status_code == 410 else "invalid"}
    return anonymous_page(request, views, settings, "confirm_email_channel.html", context, status=answer.status_code)
