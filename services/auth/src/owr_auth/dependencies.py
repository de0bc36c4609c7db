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


def _settings(request: Request) -> AuthSettings:
    settings: AuthSettings = request.app.state.settings
    return settings


def _redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


def _keyring(request: Request) -> Keyring:
    keyring: Keyring = request.app.state.keyring
    return keyring


def _passwords(request: Request) -> PasswordService:
    passwords: PasswordService = request.app.state.passwords
    return passwords


def _client_ip(request: Request) -> str:
    # uvicorn has already replaced the peer with X-Forwarded-For when the peer is a trusted proxy.
    return request.client.host if request.client else "unknown"


Settings = Annotated[AuthSettings, Depends(_settings)]
RedisClient = Annotated[Redis, Depends(_redis)]
SigningKeyring = Annotated[Keyring, Depends(_keyring)]
Passwords = Annotated[PasswordService, Depends(_passwords)]
ClientIP = Annotated[str, Depends(_client_ip)]


def _throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


Throttle = Annotated[LoginThrottle, Depends(_throttle)]


def _workspace_cleanup(request: Request) -> WorkspaceCleanup:
    cleanup: WorkspaceCleanup = request.app.state.workspace_cleanup
    return cleanup


Cleanup = Annotated[WorkspaceCleanup, Depends(_workspace_cleanup)]
