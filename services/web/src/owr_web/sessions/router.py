"""`/login` (and its second step `/login/mfa`), `/register`, `/logout`: the forms post to web, web calls the
public API.

The forms shown before sign-in carry a double-submit CSRF token (an HttpOnly, SameSite=Strict cookie and
the same value in the form); every later form carries the session's own token. With two-factor sign-in on,
the password's answer is a challenge: web keeps it in an HttpOnly, SameSite=Strict cookie for its 5 minutes
(never in the page) and asks for the code.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from owr_shared.errors import ProblemError
from owr_shared.logging import get_logger
from owr_web.api.client import Api, read_json
from owr_web.dependencies import (
    AnonymousApi,
    Checked,
    FormChecked,
    Http,
    Sessions,
    Settings,
    SignedIn,
    Views,
    form_cookie,
    mfa_cookie,
    person_api,
    session_cookie,
)
from owr_web.sessions.service import session_ref
from owr_web.settings import WebSettings
from owr_web.views.pages import Pages

log = get_logger(__name__)

router = APIRouter(tags=["sessions"])

# The password rule auth enforces, said before the person types (auth's 422 says which rule failed).
PASSWORD_HINT = "At least 12 characters; a passphrase of a few unrelated words is strong and easy to type."  # noqa: S105


def safe_next(target: str | None) -> str:
    """Only a path of this site: `/keys`, never `//evil.example` or `https://...`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _form_token(request: Request, settings: WebSettings) -> tuple[str, bool]:
    existing = request.cookies.get(form_cookie(settings))
    return (existing, False) if existing else (secrets.token_urlsafe(32), True)


def anonymous_page(
    request: Request, views: Pages, settings: WebSettings, template: str, context: dict[str, Any], status: int = 200
) -> Response:
    token, new = _form_token(request, settings)
    response = views.render(request, template, context, status=status, csrf_token=token)
    if new:
        response.set_cookie(
            form_cookie(settings), token, httponly=True, secure=settings.cookies_secure, samesite="strict", path="/"
        )
    return response


def problem_message(body: Any, fallback: str) -> str:
    if isinstance(body, dict):
        for error in body.get("errors") or []:
            if isinstance(error, dict) and error.get("msg"):
                return str(error["msg"])
        if body.get("detail"):
            return str(body["detail"])
    return fallback


async def _sign_in(
    api: Api, settings: WebSettings, sessions: Sessions, email: str, password: str, next_path: str
) -> Response | httpx.Response:
    """Sign in at the API and start a session (the redirect to `next_path`), or go on to the code page when
    the account has two-factor sign-in on, or the API's refusal."""
    answer = await api.call("POST", "/api/v1/auth/login", json_body={"email": email, "password": password})
    if answer.status_code != 200:
        return answer
    pair = read_json(answer)
    if pair.get("mfa_required"):
        response = RedirectResponse(f"/login/mfa?next={quote(safe_next(next_path), safe='/')}", status_code=303)
        response.set_cookie(
            mfa_cookie(settings),
            str(pair["challenge"]),
            max_age=int(pair["expires_in"]),
            httponly=True,
            secure=settings.cookies_secure,
            samesite="strict",
            path="/",
        )
        return response
    verified = await email_verified(api, pair["access_token"])
    return await _start_session(api, settings, sessions, pair, email.strip().lower(), next_path, verified)


async def email_verified(api: Api, access_token: str) -> bool:
    """Whether the person's address is verified (`GET /api/v1/auth/me`); True when it cannot be told, so
    a hiccup never puts the banner on a verified person's pages."""
    try:
        me = await api.call("GET", "/api/v1/auth/me", token=access_token)
    except ProblemError:
        return True
    body = read_json(me) if me.status_code == 200 else None
    return not isinstance(body, dict) or body.get("email_verified") is not False


def too_many(answer: httpx.Response) -> str:
    return f"Too many attempts. Wait {answer.headers.get('retry-after', '60')} seconds, then try again."


async def _start_session(
    api: Api,
    settings: WebSettings,
    sessions: Sessions,
    pair: dict[str, Any],
    email: str,
    next_path: str,
    verified: bool = True,
) -> Response:
    session_id = await sessions.start(pair, email, api, email_verified=verified)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    response.set_cookie(
        session_cookie(settings),
        session_id,
        max_age=settings.session_lifetime_seconds,
        httponly=True,
        secure=settings.cookies_secure,
        samesite="lax",
        path="/",
    )
    response.delete_cookie(form_cookie(settings), path="/", secure=settings.cookies_secure, httponly=True)
    response.delete_cookie(mfa_cookie(settings), path="/", secure=settings.cookies_secure, httponly=True)
    return response


NOTICES = {
    "expired": "The sign-in took too long, or was started elsewhere. Sign in again.",
    "changed": "Your password was changed and every session ended. Sign in with the new password.",
    "reset": "Your new password is set and every session ended. Sign in with the new password.",
    "deleted": "Your account was deleted.",
    "signed_out": "You are signed out.",
    "everywhere": "You are signed out everywhere, this browser included.",
}


@router.get("/login", include_in_schema=False)
async def login_page(
    request: Request,
    views: Views,
    settings: Settings,
    sessions: Sessions,
    http: Http,
    next: str | None = None,
    done: str | None = None,
) -> Response:
    if done is None and settings.demo_email and settings.demo_password:
        # `make demo`: the newcomer sees the demo account's spend with no step of their own.
        api = person_api(request, http)
        password = settings.demo_password.get_secret_value()
        signed_in = await _sign_in(api, settings, sessions, settings.demo_email, password, next or "/")
        if isinstance(signed_in, Response):
            return signed_in
    context = {"next": safe_next(next), "error": None, "email_value": "", "notice": NOTICES.get(done or "")}
    return anonymous_page(request, views, settings, "login.html", context)


@router.post("/login", include_in_schema=False, dependencies=[FormChecked])
async def login(
    request: Request,
    views: Views,
    settings: Settings,
    sessions: Sessions,
    api: AnonymousApi,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    response = await _sign_in(api, settings, sessions, email, password, next)
    if isinstance(response, Response):
        return response
    if response.status_code == 429:
        error = too_many(response)
    elif response.status_code in (400, 401, 422):
        error = "The email or the password is wrong."
    else:
        error = problem_message(read_json(response), "Signing in is not possible right now. Try again shortly.")
    context = {"next": safe_next(next), "error": error, "email_value": email}
    return anonymous_page(request, views, settings, "login.html", context, status=response.status_code)


@router.get("/login/mfa", include_in_schema=False)
async def login_mfa_page(request: Request, views: Views, settings: Settings, next: str | None = None) -> Response:
    if not request.cookies.get(mfa_cookie(settings)):
        return RedirectResponse("/login", status_code=303)
    context = {"next": safe_next(next), "error": None}
    return anonymous_page(request, views, settings, "login_mfa.html", context)


@router.post("/login/mfa", include_in_schema=False, dependencies=[FormChecked])
async def login_mfa(
    request: Request,
    views: Views,
    settings: Settings,
    sessions: Sessions,
    api: AnonymousApi,
    code: Annotated[str, Form(max_length=16)] = "",
    recovery_code: Annotated[str, Form(max_length=64)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    """The second step: the challenge from the cookie and the code (or a recovery code) from the form."""
    challenge = request.cookies.get(mfa_cookie(settings))
    if not challenge:
        return _restart(settings)
    code, recovery_code = code.strip(), recovery_code.strip()
    body = {"challenge": challenge, **({"code": code} if code else {"recovery_code": recovery_code})}
    answer = await api.call("POST", "/api/v1/auth/login/mfa", json_body=body)
    if answer.status_code == 200:
        pair = read_json(answer)
        api.access_token = pair["access_token"]
        me = await api.get("/api/v1/auth/me")
        verified = me.get("email_verified") is not False
        return await _start_session(api, settings, sessions, pair, str(me["email"]), next, verified)
    problem = read_json(answer) if answer.headers.get("content-type", "").endswith("json") else None
    if answer.status_code == 401 and str((problem or {}).get("type", "")).endswith("/invalid-mfa-challenge"):
        return _restart(settings)
    if answer.status_code == 429:
        error = too_many(answer)
    elif answer.status_code in (401, 422):
        error = "That code is not valid. Enter the current 6-digit code from your app, or an unused recovery code."
    else:
        error = problem_message(problem, "Signing in is not possible right now. Try again shortly.")
    context = {"next": safe_next(next), "error": error}
    return anonymous_page(request, views, settings, "login_mfa.html", context, status=answer.status_code)


def _restart(settings: WebSettings) -> Response:
    """The challenge expired, was used, or never was: back to the password."""
    response = RedirectResponse("/login?done=expired", status_code=303)
    response.delete_cookie(mfa_cookie(settings), path="/", secure=settings.cookies_secure, httponly=True)
    return response


@router.get("/register", include_in_schema=False)
async def register_page(request: Request, views: Views, settings: Settings, next: str | None = None) -> Response:
    context = {"error": None, "email_value": "", "hint": PASSWORD_HINT, "next": safe_next(next)}
    return anonymous_page(request, views, settings, "register.html", context)


@router.post("/register", include_in_schema=False, dependencies=[FormChecked])
async def register(
    request: Request,
    views: Views,
    settings: Settings,
    sessions: Sessions,
    api: AnonymousApi,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    created = await api.call("POST", "/api/v1/auth/register", json_body={"email": email, "password": password})
    if created.status_code == 201:
        signed_in = await _sign_in(api, settings, sessions, email, password, next)
        return signed_in if isinstance(signed_in, Response) else RedirectResponse("/login", status_code=303)
    if created.status_code == 409:
        error = "An account with this email exists already. Sign in instead."
    elif created.status_code == 429:
        error = too_many(created)
    else:
        error = problem_message(read_json(created), "The account could not be created. Check the form.")
    context = {"error": error, "email_value": email, "hint": PASSWORD_HINT, "next": safe_next(next)}
    return anonymous_page(request, views, settings, "register.html", context, status=created.status_code)


@router.get("/logout", include_in_schema=False)
async def logout_page(request: Request, views: Views, visitor: SignedIn) -> Response:
    return views.render(request, "logout.html", visitor=visitor)


@router.post("/logout", include_in_schema=False)
async def logout(visitor: Checked, settings: Settings, sessions: Sessions) -> Response:
    """Revoke the refresh token (its whole family) at auth, then forget the session here."""
    try:
        await visitor.api.call(
            "POST", "/api/v1/auth/logout", json_body={"refresh_token": visitor.session.refresh_token}
        )
    except ProblemError:
        # The API is away: the session still ends here; its refresh token then only expires on its own.
        log.warning("logout_not_revoked", session=session_ref(visitor.session_id))
    await sessions.end(visitor.session_id, reason="logout")
    response = RedirectResponse("/login?done=signed_out", status_code=303)
    response.delete_cookie(session_cookie(settings), path="/", secure=settings.cookies_secure, httponly=True)
    return response
