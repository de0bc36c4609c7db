"""The web dashboard's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from owr_shared.app import create_service_app
from owr_shared.settings import load_settings
from owr_web.account.router import router as account_router
from owr_web.accounts.router import router as accounts_router
from owr_web.alerts.router import router as alerts_router
from owr_web.budgets.router import router as budgets_router
from owr_web.channels.router import router as channels_router
from owr_web.dashboard.router import router as dashboard_router
from owr_web.insights.router import router as insights_router
from owr_web.keys.router import router as keys_router
from owr_web.profile.router import router as profile_router
from owr_web.security.router import router as security_router
from owr_web.sessions.router import router as sessions_router
from owr_web.sessions.service import SessionStore
from owr_web.settings import WebSettings
from owr_web.stats.router import router as stats_router
from owr_web.team.router import router as team_router
from owr_web.tokens.router import router as tokens_router
from owr_web.views.errors import install_page_handlers
from owr_web.views.headers import SecurityHeaders
from owr_web.views.pages import STATIC, Pages, load_manifest
from owr_web.views.static import HashedStaticFiles


def create_app(settings: WebSettings | None = None) -> FastAPI:
    """Build the web app; its API client and session store are created in the lifespan.

    The assets' manifest is read here, at build time: an app without built assets refuses to start with
    a message saying to run `make install`, rather than serving pages without scripts.
    """
    settings = settings or load_settings(WebSettings)
    pages = Pages(load_manifest(), live_poll_seconds=settings.live_poll_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pages = pages
        timeout = httpx.Timeout(settings.api_timeout_seconds, connect=2.0)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        # No proxies from the environment, no redirects: web talks to its gateway only.
        async with httpx.AsyncClient(
            base_url=settings.gateway_url, timeout=timeout, limits=limits, trust_env=False, follow_redirects=False
        ) as http:
            app.state.http = http
            app.state.sessions = SessionStore(app.state.redis, settings)
            yield

    app = create_service_app(
        service="web",
        settings=settings,
        routers=[
            sessions_router,
            account_router,
            dashboard_router,
            keys_router,
            stats_router,
            accounts_router,
            insights_router,
            budgets_router,
            channels_router,
            alerts_router,
            tokens_router,
            team_router,
            profile_router,
            security_router,
        ],
        title="OpenRouter Watcher web",
        description="The dashboard: every key's spend at a glance, a client of the public API.",
        use_database=False,
        extra_lifespan=lifespan,
    )
    install_page_handlers(app, pages)
    app.mount("/static", HashedStaticFiles(directory=STATIC), name="static")
    app.add_middleware(SecurityHeaders)
    return app
