"""`python -m tests.deploy.slow_app`: a service built like every FastAPI service (create_service_app, run_service)
with one slow route, so a test can hold requests in flight across a SIGTERM. Ports: SLOW_PORT, SLOW_ADMIN_PORT."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from owr_shared.app import create_service_app
from owr_shared.serve import run_service
from owr_shared.settings import BaseServiceSettings, load_settings

router = APIRouter()


@router.get("/slow")
async def slow(seconds: float = 1.0) -> dict[str, float]:
    await asyncio.sleep(min(seconds, 30.0))
    return {"slept": seconds}


@router.get("/whoami")
async def whoami(request: Request) -> dict[str, str | None]:
    """The client address uvicorn settled on (after X-Forwarded-For, when it trusts the peer)."""
    return {"client": request.client.host if request.client else None}


@router.get("/fast")
async def fast() -> dict[str, str]:
    return {"status": "ok"}


class SlowSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLOW_", env_file=None, extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8099)
    forwarded_allow_ips: str = "127.0.0.1"
    admin_port: int | None = None  # SLOW_ADMIN_PORT: serve /metrics there, as auth, keys and usage do


if __name__ == "__main__":
    settings = load_settings(SlowSettings)
    app = create_service_app(
        service="slow", settings=settings, routers=[router], title="slow", use_database=False, use_redis=False
    )
    run_service("slow", settings, app)
