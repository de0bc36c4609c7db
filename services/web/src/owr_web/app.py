"""The web dashboard's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from owr_shared.app import create_service_app
from owr_shared.settings import load_settings
from owr_web.settings import WebSettings


def create_app(settings: WebSettings | None = None) -> FastAPI:
    """Build the web app; its API client, templates and assets are created in the lifespan."""
    settings = settings or load_settings(WebSettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    return create_service_app(
        service="web",
        settings=settings,
        routers=[],
        title="OpenRouter Watcher web",
        description="The dashboard: every key's spend at a glance, a client of the public API.",
        use_database=False,
        extra_lifespan=lifespan,
    )
