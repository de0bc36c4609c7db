"""The keys service application."""

from __future__ import annotations

from fastapi import FastAPI

from owr_keys.settings import KeysSettings
from owr_shared.app import create_service_app


def create_app(settings: KeysSettings | None = None) -> FastAPI:
    """Build the app; at this stage it serves health and metrics only."""
    return create_service_app(
        service="keys",
        settings=settings or KeysSettings(),
        routers=[],
        title="OpenRouter Watcher keys",
    )
