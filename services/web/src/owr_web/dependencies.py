"""The `Annotated[..., Depends(...)]` names web's routers use: the signed-in visitor, CSRF checks, the API."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from typing import Annotated

import httpx
from fastapi import Depends, Query, Request

from owr_shared.dependencies import from_state
from owr_web.api.client import Api
from owr_web.sessions.errors import CsrfRefused, SignedOut
from owr_web.sessions.schemas import WebSession
from owr_web.sessions.service import SessionStore
from owr_web.settings import WebSettings
from owr_web.stats.errors import BadDay
from owr_web.views.pages import Pages

Settings = Annotated[WebSettings, Depends(from_state("settings"))]
Http = Annotated[httpx.AsyncClient, Depends(from_state("http"))]
Sessions = Annotated[SessionStore, Depends(from_state("sessions"))]
Views = Annotated[Pages, Depends(from_state("pages"))]

# A date filter of a page's form (`/stats`, `/insights/*`): the form sends every field, empty ones as "", and an
# empty date is no bound, not a bad one.
Day = Annotated[str | None, Query(max_length=10)]


def parse_day(value: str | None) -> date | None:
    """A `Day` as a date (None when empty); not YYYY-MM-DD is a 422 `bad-day`."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadDay() from None


CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def session_cookie(settings: WebSettings) -> str:
    # `__Host-`: the browser accepts it only when Secure, from this host, for path /: no subdomain sets it.
    return "__Host-owr_session" if settings.cookies_secure else "owr_session"


def form_cookie(settings: WebSettings) -> str:
    """The double-submit CSRF cookie of the forms shown before sign-in (login, register)."""
    return "__Host-owr_form" if settings.cookies_secure else "owr_form"


def mfa_cookie(settings: WebSettings) -> str:
    """A sign-in's second step: the API's challenge between the password and the code (HttpOnly, Strict)."""
    return "__Host-owr_mfa" if settings.cookies_secure else "owr_mfa"


def client_ip(request: Request) -> str:
    # web's uvicorn trusts the gateway's X-Forwarded-For (WEB_FORWARDED_ALLOW_IPS): this is the person.
    return request.client.host if request.client else "unknown"


def person_api(request: Request, http: httpx.AsyncClient, access_token: str | None = None) -> Api:
    """The API acting for the person of `request`: their address and browser, and their token if signed in."""
    agent = request.headers.get("user-agent")
    return Api(http, client_ip=client_ip(request), access_token=access_token, user_agent=agent[:512] if agent else None)


@dataclass(slots=True)
class Visitor:
    """The signed-in person of a request: their session and the API acting for them."""

    session_id: str
    session: WebSession
    api: Api


async def _signed_in(request: Request, settings: Settings, sessions: Sessions, http: Http) -> Visitor:
    session_id = request.cookies.get(session_cookie(settings))
    if not session_id:
        raise SignedOut()
    session = await sessions.load(session_id)
    if session is None:
        raise SignedOut()
    api = person_api(request, http, session.access_token)
    session = await sessions.fresh(session_id, session, api)
    api.access_token = session.access_token
    api.renew = sessions.renewer(session_id, api)
    return Visitor(session_id, session, api)


SignedIn = Annotated[Visitor, Depends(_signed_in)]


async def _maybe_signed_in(request: Request, settings: Settings, sessions: Sessions, http: Http) -> Visitor | None:
    try:
        return await _signed_in(request, settings, sessions, http)
    except SignedOut:
        return None


# A page that anyone may see, and that a signed-in person sees as themselves (an invitation's link).
MaybeSignedIn = Annotated[Visitor | None, Depends(_maybe_signed_in)]


async def _submitted_token(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    form = await request.form()
    value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else ""


async def _csrf_checked(request: Request, visitor: SignedIn) -> Visitor:
    submitted = await _submitted_token(request)
    if not submitted or not secrets.compare_digest(submitted, visitor.session.csrf_token):
        raise CsrfRefused()
    return visitor


# Every state-changing route of a signed-in person takes this instead of `SignedIn`.
Checked = Annotated[Visitor, Depends(_csrf_checked)]


async def _anonymous_api(request: Request, http: Http) -> Api:
    return person_api(request, http)


AnonymousApi = Annotated[Api, Depends(_anonymous_api)]


async def _form_checked(request: Request, settings: Settings) -> None:
    expected = request.cookies.get(form_cookie(settings))
    submitted = await _submitted_token(request)
    if not expected or not submitted or not secrets.compare_digest(submitted, expected):
        raise CsrfRefused()


FormChecked = Depends(_form_checked)
