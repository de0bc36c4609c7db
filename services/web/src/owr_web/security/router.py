"""`/security`: two-factor sign-in (set up with the password and a QR code, confirm with a code, recovery codes
shown once and replaced with a fresh code, turn off with a code or a recovery code) and the person's sessions (end one, the others, or all)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from owr_shared.user_agents import device
from owr_web.api.errors import ApiProblem
from owr_web.dependencies import Checked, Sessions, Settings, SignedIn, Views, Visitor, session_cookie
from owr_web.security.service import Setup, setup_view
from owr_web.sessions.service import token_claims
from owr_web.settings import WebSettings
from owr_web.views.pages import Pages

router = APIRouter(tags=["security"])

NOTICES = {
    "mfa_off": "Two-factor sign-in is off. Your password alone signs you in again.",
    "revoked": "That session is signed out.",
    "others_out": "Every other session is signed out.",
    "new_codes": "New recovery codes made: the old ones no longer work.",
}
WRONG_CODE = "That code is not valid. Enter the current 6-digit code from your app."
WRONG_PASSWORD = "That is not your password. Type the password you sign in with."  # noqa: S105 - a message


async def _page(
    request: Request,
    views: Pages,
    visitor: Visitor,
    *,
    setup: Setup | None = None,
    recovery_codes: list[str] | None = None,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    mfa = await visitor.api.get("/api/v1/auth/2fa")
    sessions = await visitor.api.get("/api/v1/auth/sessions", per_page=100)
    items = [{**s, "device": device(s.get("user_agent"))} for s in sessions["items"]]
    context: dict[str, Any] = {
        "mfa": mfa,
        "setup": setup,
        "recovery_codes": recovery_codes,
        "sessions": items,
        "error": error,
        "notice": notice,
    }
    return views.render(request, "security.html", context, visitor=visitor, status=status)


def _refusal(exc: ApiProblem, wrong: str = WRONG_CODE) -> str:
    if exc.status == 429:
        return "Too many wrong codes. Wait a few minutes, then try again."
    if exc.status in (403, 422):
        return wrong
    return exc.detail


@router.get("/security", include_in_schema=False)
async def security(request: Request, visitor: SignedIn, views: Views, done: str | None = None) -> Response:
    return await _page(request, views, visitor, notice=NOTICES.get(done or ""))


@router.post("/security/2fa/setup", include_in_schema=False)
async def start_setup(
    request: Request, visitor: Checked, views: Views, password: Annotated[str, Form(max_length=1024)]
) -> Response:
    """A new secret, after the password typed again: its QR code and text are on this answer only."""
    try:
        answer = await visitor.api.post("/api/v1/auth/2fa/setup", {"password": password})
    except ApiProblem as exc:
        if exc.status == 429:
            error = "Too many wrong passwords. Wait a few minutes, then try again."
        else:
            error = WRONG_PASSWORD if exc.status in (403, 422) else exc.detail
        return await _page(request, views, visitor, error=error, status=exc.status)
    return await _page(request, views, visitor, setup=setup_view(answer))


async def _recovery_codes(
    request: Request, views: Pages, visitor: Visitor, path: str, code: str, wrong: str, notice: str | None = None
) -> Response:
    """Post a code to an API route that answers ten recovery codes, and show them, this once."""
    try:
        answer = await visitor.api.post(path, {"code": code.strip()})
    except ApiProblem as exc:
        return await _page(request, views, visitor, error=_refusal(exc, wrong), status=exc.status)
    codes = list(answer["recovery_codes"])
    return await _page(request, views, visitor, recovery_codes=codes, notice=notice)


@router.post("/security/2fa/enable", include_in_schema=False)
async def enable(
    request: Request, visitor: Checked, views: Views, code: Annotated[str, Form(max_length=16)]
) -> Response:
    wrong = WRONG_CODE + " If the app has no OpenRouter Watcher entry yet, start the setup again."
    return await _recovery_codes(request, views, visitor, "/api/v1/auth/2fa/enable", code, wrong)


@router.post("/security/2fa/recovery-codes", include_in_schema=False)
async def new_recovery_codes(
    request: Request, visitor: Checked, views: Views, code: Annotated[str, Form(max_length=16)]
) -> Response:
    """Ten new recovery codes for a fresh code from the app; the old ones stop working."""
    wrong = "That code is not valid, or was used already. Wait for the app's next code and enter it."
    path = "/api/v1/auth/2fa/recovery-codes"
    return await _recovery_codes(request, views, visitor, path, code, wrong, NOTICES["new_codes"])


@router.post("/security/2fa/disable", include_in_schema=False)
async def disable(
    request: Request,
    visitor: Checked,
    views: Views,
    code: Annotated[str, Form(max_length=16)] = "",
    recovery_code: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    code, recovery_code = code.strip(), recovery_code.strip()
    body = {"code": code} if code else {"recovery_code": recovery_code}
    try:
        await visitor.api.post("/api/v1/auth/2fa/disable", body)
    except ApiProblem as exc:
        wrong = "That code is not valid, or was used already. Enter a new code from your app, or a recovery code."
        return await _page(request, views, visitor, error=_refusal(exc, wrong), status=exc.status)
    return RedirectResponse("/security?done=mfa_off", status_code=303)


@router.post("/security/sessions/{session_id}/revoke", include_in_schema=False)
async def revoke(session_id: uuid.UUID, visitor: Checked, settings: Settings, sessions: Sessions) -> Response:
    await visitor.api.delete(f"/api/v1/auth/sessions/{session_id}")
    if str(token_claims(visitor.session.access_token).get("sid", "")) == str(session_id):
        return await _signed_out(visitor, settings, sessions, reason="session_revoked", done="signed_out")
    return RedirectResponse("/security?done=revoked", status_code=303)


@router.post("/security/sessions/revoke-all", include_in_schema=False)
async def revoke_all(
    visitor: Checked, settings: Settings, sessions: Sessions, keep: Annotated[str, Form(max_length=8)] = ""
) -> Response:
    """ "Sign out everywhere" (this browser too), or with `keep` every other session."""
    keep_current = keep == "current"
    await visitor.api.post("/api/v1/auth/sessions/revoke-all", {"keep_current": keep_current})
    if keep_current:
        return RedirectResponse("/security?done=others_out", status_code=303)
    return await _signed_out(visitor, settings, sessions, reason="signed_out_everywhere", done="everywhere")


async def _signed_out(
    visitor: Visitor, settings: WebSettings, sessions: Sessions, *, reason: str, done: str
) -> Response:
    """This browser's session ended at auth: forget it here and go to the sign-in page."""
    await sessions.end(visitor.session_id, reason=reason)
    response = RedirectResponse(f"/login?done={done}", status_code=303)
    response.delete_cookie(session_cookie(settings), path="/", secure=settings.cookies_secure, httponly=True)
    return response
