"""Request dependencies for the objects the lifespan puts on `app.state`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from owr_auth.passwords.service import PasswordService
from owr_auth.sessions.throttle import LoginThrottle
from owr_auth.settings import AuthSettings
from owr_auth.signing.keyring import Keyring
from owr_auth.workspaces.cleanup import WorkspaceCleanup
from owr_shared.dependencies import from_state


async def _client_ip(request: Request) -> str:
    # uvicorn has already replaced the peer with X-Forwarded-For when the peer is a trusted proxy.
    return request.client.host if request.client else "unknown"


Settings = Annotated[AuthSettings, Depends(from_state("settings"))]
RedisClient = Annotated[Redis, Depends(from_state("redis"))]
SigningKeyring = Annotated[Keyring, Depends(from_state("keyring"))]
Passwords = Annotated[PasswordService, Depends(from_state("passwords"))]
ClientIP = Annotated[str, Depends(_client_ip)]
Throttle = Annotated[LoginThrottle, Depends(from_state("login_throttle"))]
Cleanup = Annotated[WorkspaceCleanup, Depends(from_state("workspace_cleanup"))]
