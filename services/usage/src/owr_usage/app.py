"""The usage service application."""

from __future__ import annotations

from fastapi import FastAPI

from owr_shared.app import create_service_app
from owr_usage.settings import UsageSettings


def create_app(settings: UsageSettings | None = None) -> FastAPI:
    """Build the app; at this stage it serves health and metrics only."""
    return create_service_app(
        service="usage",
        settings=settings or UsageSettings(),
        routers=[],
        title="OpenRouter Watcher usage",
    )
