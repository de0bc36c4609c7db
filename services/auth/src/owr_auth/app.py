"""The auth service's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from owr_auth.api_tokens.router import router as api_tokens_router
from owr_auth.audit.router import router as audit_router
from owr_auth.base import utcnow
from owr_auth.internal.router import router as internal_router
from owr_auth.invitations.router import router as invitations_router
from owr_auth.mail.limits import AccountMailLimits
from owr_auth.mail.queue import MailQueue
from owr_auth.members.router import router as members_router
from owr_auth.mfa.router import router as mfa_router
from owr_auth.mfa.service import MfaKit
from owr_auth.password_reset.router import router as password_reset_router
from owr_auth.passwords.service import PasswordService
from owr_auth.sessions.router import router as sessions_router
from owr_auth.sessions.throttle import LoginThrottle
from owr_auth.settings import AuthSettings
from owr_auth.signing.keyring import Keyring
from owr_auth.signing.router import router as signing_router
from owr_auth.users.router import router as users_router
from owr_auth.verification.router import router as verification_router
from owr_auth.workspaces.cleanup import WorkspaceCleanup
from owr_auth.workspaces.router import router as workspaces_router
from owr_shared.app import create_service_app
from owr_shared.jwt import JwksVerifier
from owr_shared.settings import load_settings


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    """Build the auth app; engines, keys and clients are created in its lifespan."""
    settings = settings or load_settings(AuthSettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keyring = Keyring.from_settings(settings)
        passwords = PasswordService.from_settings(settings)
        await passwords.warm_up()

        async def local_jwks() -> dict[str, Any]:
            # Auth verifies its own tokens against its own keyring: no HTTP round trip to itself.
            return keyring.jwks()

        app.state.keyring = keyring
        app.state.passwords = passwords
        app.state.login_throttle = LoginThrottle(app.state.redis, settings)
        app.state.mfa = MfaKit.from_settings(app.state.redis, settings)
        app.state.jwt_verifier = JwksVerifier(local_jwks, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
        app.state.clock = utcnow
        app.state.mail_limits = AccountMailLimits(app.state.redis, settings)
        app.state.mail_queue = mail_queue = MailQueue.from_settings(settings)
        # One client for every call to other services; no proxy from the environment, no redirects.
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(settings.internal_timeout_seconds), trust_env=False, follow_redirects=False
        ) as internal_http:
            app.state.workspace_cleanup = WorkspaceCleanup.from_settings(internal_http, keyring, settings)
            try:
                yield
            finally:
                await mail_queue.aclose()

    return create_service_app(
        service="auth",
        settings=settings,
        routers=[
            users_router,
            sessions_router,
            mfa_router,
            signing_router,
            api_tokens_router,
            workspaces_router,
            members_router,
            invitations_router,
            audit_router,
            verification_router,
            password_reset_router,
            internal_router,
        ],
        title="OpenRouter Watcher auth",
        description=(
            "Users, workspaces with members, roles and invitations, password login with optional two-factor sign-in"
            " (TOTP), sessions, access JWTs, refresh-token rotation, JWKS, personal API tokens, service tokens,"
            " email verification and password reset."
        ),
        extra_lifespan=lifespan,
    )
