"""`/profile`: password change (every session ends, this one signs in again) and account deletion."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from owr_web.api.errors import ApiProblem
from owr_web.dependencies import Checked, Sessions, Settings, SignedIn, Views, Visitor, session_cookie
from owr_web.sessions.service import SessionStore
from owr_web.views.pages import Pages

router = APIRouter(tags=["profile"])

DELETE_PHRASE = "delete my account"


async def _page(
    request: Request,
    views: Pages,
    visitor: Visitor,
    *,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
    sessions: SessionStore | None = None,
) -> Response:
    me = await visitor.api.get("/api/v1/auth/me")
    verified = me.get("email_verified")
    if sessions is not None and verified is True:
        # Verified in another browser since this one signed in: the banner and the token follow the API.
        await sessions.verified_now(visitor.session_id, visitor.session, visitor.api)
    elif sessions is not None and verified is False and visitor.session.email_verified:
        visitor.session.email_verified = False
        await sessions.set_email_verified(visitor.session_id, False)
    context: dict[str, Any] = {"me": me, "error": error, "notice": notice, "phrase": DELETE_PHRASE}
    return views.render(request, "profile.html", context, visitor=visitor, status=status)


@router.get("/profile", include_in_schema=False)
async def profile(request: Request, visitor: SignedIn, views: Views, sessions: Sessions) -> Response:
    return await _page(request, views, visitor, sessions=sessions)


@router.post("/profile/password", include_in_schema=False)
async def change_password(
    request: Request,
    visitor: Checked,
    views: Views,
    settings: Settings,
    sessions: Sessions,
    current_password: Annotated[str, Form(max_length=1024)],
    new_password: Annotated[str, Form(max_length=1024)],
) -> Response:
    """auth ends every session and API token on a password change, this one included: sign in again."""
    body = {"current_password": current_password, "new_password": new_password}
    try:
        await visitor.api.put("/api/v1/auth/me/password", body)
    except ApiProblem as exc:
        message = next((str(e["msg"]) for e in exc.errors or [] if e.get("msg")), exc.detail)
        return await _page(request, views, visitor, error=message, status=exc.status)
    await sessions.end(visitor.session_id, reason="password_change")
    response = RedirectResponse("/login?done=changed", status_code=303)
    response.delete_cookie(session_cookie(settings), path="/", secure=settings.cookies_secure, httponly=True)
    return response


@router.post("/profile/delete", include_in_schema=False)
async def delete_account(
    request: Request,
    visitor: Checked,
    views: Views,
    settings: Settings,
    sessions: Sessions,
    confirmation: Annotated[str, Form(max_length=100)],
) -> Response:
    if confirmation.strip().lower() != DELETE_PHRASE:
        return await _page(request, views, visitor, error=f"Type \u201c{DELETE_PHRASE}\u201d to confirm.", status=400)
    await visitor.api.delete("/api/v1/auth/me")
    await sessions.end(visitor.session_id, reason="account_deleted")
    response = RedirectResponse("/login?done=deleted", status_code=303)
    response.delete_cookie(session_cookie(settings), path="/", secure=settings.cookies_secure, httponly=True)
    return response
