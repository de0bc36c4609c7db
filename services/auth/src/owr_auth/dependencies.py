"""Request dependencies for the objects the lifespan puts on `app.state`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from owr_auth.mail.limits import AccountMailLimits
from owr_auth.mail.queue import MailQueue
from owr_auth.mfa.service import MfaKit
from owr_auth.passwords.service import PasswordService
from owr_auth.sessions.models import IP_MAX_LENGTH, USER_AGENT_MAX_LENGTH
from owr_auth.sessions.schemas import ClientInfo
from owr_auth.sessions.service import LoginContext
from owr_auth.sessions.throttle import LoginThrottle
from owr_auth.settings import AuthSettings
from owr_auth.signing.keyring import Keyring
from owr_auth.users import service as user_service
from owr_auth.users.service import UserInWorkspace
from owr_auth.workspaces.cleanup import WorkspaceCleanup
from owr_shared.auth import API_TOKEN_CLAIM, CurrentPrincipal, SessionRequired, UserCaller
from owr_shared.db import DbSession
from owr_shared.dependencies import from_state
from owr_shared.jwt import Principal


async def _client_ip(request: Request) -> str:
    # uvicorn has already replaced the peer with X-Forwarded-For when the peer is a trusted proxy.
    return request.client.host if request.client else "unknown"


def _bounded(value: str | None, limit: int) -> str | None:
    # Printable text only, cut to the column's length: it is shown back to the person on the session list.
    if not value:
        return None
    return "".join(c for c in value if c.isprintable())[:limit] or None


async def _client(request: Request) -> ClientInfo:
    ip = await _client_ip(request)
    return ClientInfo(
        ip=ip[:IP_MAX_LENGTH], user_agent=_bounded(request.headers.get("user-agent"), USER_AGENT_MAX_LENGTH)
    )


Settings = Annotated[AuthSettings, Depends(from_state("settings"))]
RedisClient = Annotated[Redis, Depends(from_state("redis"))]
SigningKeyring = Annotated[Keyring, Depends(from_state("keyring"))]
Passwords = Annotated[PasswordService, Depends(from_state("passwords"))]
ClientIP = Annotated[str, Depends(_client_ip)]
Client = Annotated[ClientInfo, Depends(_client)]
Mfa = Annotated[MfaKit, Depends(from_state("mfa"))]
Throttle = Annotated[LoginThrottle, Depends(from_state("login_throttle"))]
Cleanup = Annotated[WorkspaceCleanup, Depends(from_state("workspace_cleanup"))]
# `send_auth_mail` jobs on the worker's queue, and the limits on the emails a person can have sent.
Mails = Annotated[MailQueue, Depends(from_state("mail_queue"))]
MailLimits = Annotated[AccountMailLimits, Depends(from_state("mail_limits"))]


async def _login_context(
    settings: Settings, keyring: SigningKeyring, passwords: Passwords, throttle: Throttle, mfa: Mfa, mails: Mails
) -> LoginContext:
    return LoginContext(
        settings=settings, keyring=keyring, passwords=passwords, throttle=throttle, mfa=mfa, mails=mails
    )


# What both steps of a sign-in need besides the request (`sessions.service.login`, `complete_login`).
Login = Annotated[LoginContext, Depends(_login_context)]

# The time emailed links are minted, used and expire by (`utcnow`; tests move it).
Clock = Annotated[Callable[[], datetime], Depends(from_state("clock"))]
# For work that must commit in steps (an account's deletion): one `transaction()` per step.
Sessions = Annotated[async_sessionmaker[AsyncSession], Depends(from_state("sessionmaker"))]


async def _current_user(principal: CurrentPrincipal, session: DbSession) -> UserInWorkspace:
    # Every user route of auth checks the database: a token of a deleted user, of an ended session or
    # from before a password change is a 401 here, never a foreign-key violation further on.
    return await user_service.authenticated_user(session, principal)


CurrentUser = Annotated[UserInWorkspace, Depends(_current_user)]


async def _session_principal(principal: CurrentPrincipal) -> Principal:
    # Tokens, a password change or an account deletion are for the person, signed in, never an API token.
    if API_TOKEN_CLAIM in principal.claims:
        raise SessionRequired()
    return principal


SessionPrincipal = Annotated[Principal, Depends(_session_principal)]


async def _session_user(principal: SessionPrincipal, current: CurrentUser) -> UserInWorkspace:
    return current


SessionUser = Annotated[UserInWorkspace, Depends(_session_user)]


async def _session_caller(current: SessionUser) -> UserCaller:
    return UserCaller(
        user_id=str(current.user.id),
        workspace_id=current.workspace.id,
        role=current.role,
        email_verified=current.user.email_verified_at is not None,
    )


SessionCaller = Annotated[UserCaller, Depends(_session_caller)]
