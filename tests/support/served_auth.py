"""auth itself, served over HTTP on the session's database, for suites whose subject talks to it (the worker's
mail job, web's pages): fast argon2 (allowed with OWR_ENV=test), no peers, the service clients a test names."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from owr_auth.app import create_app
from owr_auth.settings import AuthSettings
from tests.support.apps import served
from tests.support.settings import service_settings

FAST_ARGON2 = {"argon2_memory_kib": 1024, "argon2_time_cost": 1}
# Its `send_auth_mail` jobs go to a queue of their own: the end-to-end suite's worker, still running, reads the
# default one on the same Redis and database, and would send (and spend) the tests' mails.
QUEUE = f"arq:queue:served-auth-{secrets.token_hex(4)}"


def mail_client(secret: str) -> dict[str, Any]:
    """An `AUTH_SERVICE_CLIENTS` entry that may render and report auth's emails (the worker's, in production)."""
    return {"secret": secret, "scopes": ["mail:render"], "audiences": ["owr-auth"]}


@dataclass
class ServedAuth:
    app: FastAPI
    url: str
    http: httpx.AsyncClient  # a client of `url`


@asynccontextmanager
async def served_auth(
    database_url: str, redis_url: str, *, clients: dict[str, Any], **overrides: Any
) -> AsyncIterator[ServedAuth]:
    """auth on a loopback port (uvicorn in the test's loop), its writes committed: use fresh emails."""
    defaults = {**FAST_ARGON2, "usage_url": None, "service_clients": clients, "queue_name": QUEUE}
    app = create_app(service_settings(AuthSettings, database_url, redis_url, defaults, overrides))
    async with served(app) as port:
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url) as http:
            yield ServedAuth(app, url, http)
