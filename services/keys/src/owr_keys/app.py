"""The keys service's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq.connections import ArqRedis
from fastapi import FastAPI

from owr_keys.internal.router import router as internal_router
from owr_keys.keys.router import router as keys_router
from owr_keys.settings import KeysSettings
from owr_keys.vault.crypto import Fingerprinter, Vault
from owr_shared.app import create_service_app
from owr_shared.auth import jwks_verifiers
from owr_shared.jwt import JwksFetcher
from owr_shared.settings import load_settings


def create_app(settings: KeysSettings | None = None, *, jwks_fetcher: JwksFetcher | None = None) -> FastAPI:
    """Build the keys app; KEKs, the JWKS client and the queue pool are created in its lifespan.

    `jwks_fetcher` replaces the HTTP fetch of auth's JWKS (tests serve a test keyring's set).
    """
    settings = settings or load_settings(KeysSettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.vault = Vault.from_settings(settings)
        app.state.fingerprinter = Fingerprinter.from_settings(settings)
        async with jwks_verifiers(app, settings, jwks_fetcher):
            # Connected on first use, not here: keys starts (and serves everything but "sync now", which
            # answers a fast 503) while Redis is away, instead of failing its start after arq's retries.
            queue = ArqRedis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
            queue.default_queue_name = settings.queue_name
            app.state.arq = queue
            try:
                yield
            finally:
                await queue.aclose()

    return create_service_app(
        service="keys",
        settings=settings,
        routers=[keys_router, internal_router],
        title="OpenRouter Watcher keys",
        description="The key vault: OpenRouter keys under envelope encryption, masked views, audited reveals.",
        row_level_security=True,
        extra_lifespan=lifespan,
    )
