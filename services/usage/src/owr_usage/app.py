"""The usage service's FastAPI application."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

from owr_shared.app import create_service_app
from owr_shared.auth import jwks_verifiers
from owr_shared.jwt import JwksFetcher
from owr_shared.settings import load_settings
from owr_usage.internal.router import router as internal_router
from owr_usage.key_usage.router import router as key_usage_router
from owr_usage.reports.router import router as reports_router
from owr_usage.settings import UsageSettings


def create_app(settings: UsageSettings | None = None, *, jwks_fetcher: JwksFetcher | None = None) -> FastAPI:
    """Build the usage app; the JWKS client is created in its lifespan.

    `jwks_fetcher` replaces the HTTP fetch of auth's JWKS (tests serve a test keyring's set).
    """
    settings = settings or load_settings(UsageSettings)
    return create_service_app(
        service="usage",
        settings=settings,
        routers=[key_usage_router, reports_router, internal_router],
        title="OpenRouter Watcher usage",
        description=(
            "Key snapshots, exact daily spend per key, account balances, key lists and activity; summaries, "
            "daily rows, exports and accounts."
        ),
        extra_lifespan=partial(jwks_verifiers, settings=settings, jwks_fetcher=jwks_fetcher),
    )
