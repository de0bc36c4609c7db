"""Auth test scaffolding: the real app on the session's migrated database and Redis.

`client` (rolled back) and `committed_client` (the app's own pool, for concurrency) call `service_app`,
as tests/README.md's isolation rule says.
Every app calls a `PeerStub` as its keys service (`keys_stub`), reset after each test.
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from owr_auth.app import create_app
from owr_auth.mail.models import OutboundMail
from owr_auth.settings import AuthSettings
from tests.auth.peer_stub import PeerStub, running_peer_stub
from tests.support.apps import bound_to_connection, running
from tests.support.logs import CapturedLogs, captured_json_logs
from tests.support.redis import leave_redis_clean
from tests.support.settings import service_settings
from tests.support.tokens import access_claims as user_access_claims

PASSWORD = "a long and unusual passphrase 7"
# Fast argon2 (allowed only with OWR_ENV=test): the logic under test is the same, hashing is not.
FAST_ARGON2 = {"argon2_memory_kib": 1024, "argon2_time_cost": 1}
# Calls to other services give up quickly in tests, so timeouts are testable.
INTERNAL_TIMEOUT_SECONDS = 0.5
WORKER_SECRET = "worker-secret-" + "k3" * 16
USAGE_READER_SECRET = "usage-reader-secret-" + "q7" * 16
GATEWAY_SECRET = "gateway-secret-" + "g5" * 16
SWEEPER_SECRET = "sweeper-secret-" + "w2" * 16
MAILER_SECRET = "mailer-secret-" + "m4" * 16
SERVICE_CLIENTS = {
    "worker": {
        "secret": WORKER_SECRET,
        "scopes": ["keys:due", "keys:reveal", "keys:status"],
        "audiences": ["owr-keys", "owr-usage"],
    },
    "usage-reader": {"secret": USAGE_READER_SECRET, "scopes": ["keys:due"], "audiences": ["owr-usage"]},
    "gateway": {"secret": GATEWAY_SECRET, "scopes": ["tokens:introspect"], "audiences": ["owr-auth"]},
    "sweeper": {"secret": SWEEPER_SECRET, "scopes": ["workspaces:sweep"], "audiences": ["owr-auth"]},
    "mailer": {"secret": MAILER_SECRET, "scopes": ["mail:render"], "audiences": ["owr-auth"]},
}
# The suite's own ARQ queue, so a test can read the jobs auth queued (and no running worker takes them).
MAIL_QUEUE = f"arq:queue:auth-tests-{secrets.token_hex(4)}"
API_TOKEN_PEPPER = "pepper-for-tests-" + "p9" * 16
# Every test app's KEK (it seals TOTP secrets) and recovery-code pepper, so apps open each other's rows.
AUTH_KEKS = json.dumps({"t1": base64.b64encode(b"auth-kek-for-tests-" + b"k" * 13).decode()})
RECOVERY_CODE_PEPPER = "recovery-pepper-for-tests-" + "r8" * 12


def basic(client_id: str, secret: str) -> dict[str, str]:
    """HTTP Basic credentials of a configured service client (auth's internal routes)."""
    return {"authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}.{secrets.token_hex(6)}@example.com"


def make_settings(database_url: str, redis_url: str, **overrides: Any) -> AuthSettings:
    return service_settings(
        AuthSettings,
        database_url,
        redis_url,
        {
            "api_token_pepper": API_TOKEN_PEPPER,
            "queue_name": MAIL_QUEUE,
            "keks": AUTH_KEKS,
            "active_kek_version": "t1",
            "recovery_code_pepper": RECOVERY_CODE_PEPPER,
            **FAST_ARGON2,
        },
        overrides,
    )


@pytest.fixture(scope="session")
def keys_server() -> Iterator[PeerStub]:
    """The keys service as every test app sees it: a real HTTP server that records calls."""
    with running_peer_stub() as stub:
        yield stub


@pytest.fixture
def keys_stub(keys_server: PeerStub) -> Iterator[PeerStub]:
    """The keys stub, answering 204 with no calls recorded; reset again after the test."""
    keys_server.reset()
    yield keys_server
    keys_server.reset()


def peer_settings(keys_url: str) -> dict[str, Any]:
    return {
        "keys_url": keys_url,
        "usage_url": None,
        "internal_timeout_seconds": INTERNAL_TIMEOUT_SECONDS,
        "service_clients": SERVICE_CLIENTS,
    }


@pytest.fixture
def settings_factory(database_url: str, redis_url: str, keys_stub: PeerStub) -> Callable[..., AuthSettings]:
    return lambda **overrides: make_settings(database_url, redis_url, **{**peer_settings(keys_stub.url), **overrides})


_leave_redis_clean = pytest.fixture(autouse=True)(leave_redis_clean)


@pytest.fixture(scope="session")
async def shared_app(database_url: str, redis_url: str, keys_server: PeerStub) -> AsyncIterator[FastAPI]:
    """One app for most tests (its lifespan runs once)."""
    app = create_app(make_settings(database_url, redis_url, **peer_settings(keys_server.url)))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
def service_app(shared_app: FastAPI, redis_client: Redis, keys_stub: PeerStub) -> FastAPI:
    """What `client` and `committed_client` call: the shared app, Redis flushed, the keys stub reset."""
    return shared_app


@pytest.fixture
def app_factory(
    settings_factory: Callable[..., AuthSettings], db_connection: AsyncConnection, redis_client: Any
) -> Callable[..., Any]:
    """`async with app_factory(**settings) as client:` another app on the test's transaction."""

    @asynccontextmanager
    async def build(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings_factory(**overrides))
        async with running(app) as c:
            with bound_to_connection(app, db_connection):
                c.app = app  # type: ignore[attr-defined]
                yield c

    return build


# --- helpers ---------------------------------------------------------------------------------------


async def register(client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
    r = await client.post("/api/v1/auth/register", json={"email": email or unique_email(), "password": password})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def registered_session(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new user and a logged-in token pair."""
    user = await register(client)
    return user, await login(client, user["email"])


def sign(app: FastAPI, claims: dict[str, Any], **header: Any) -> str:
    """A token signed by the app's active key, with any claims and header (for attack tests)."""
    keyring = app.state.keyring
    headers = {"kid": keyring.active_kid, "typ": "at+jwt", **header}
    return jwt.encode(claims, keyring.private_key, algorithm="EdDSA", headers=headers)


def access_claims(user: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """The claims auth would mint for a registered `user` (its workspace and role), `iat` to the
    millisecond as auth mints it (a whole-second `iat` would predate the registration itself)."""
    defaults = {"role": user["workspace"]["role"], "iat": math.floor(time.time() * 1000) / 1000}
    return user_access_claims(user["id"], user["workspace"]["id"], **{**defaults, **overrides})


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[CapturedLogs]:
    """The auth service's real logging pipeline, captured from stdout; restored afterwards."""
    with captured_json_logs(capsys, "auth") as logs:
        yield logs


# --- email: the mails auth queues, rendered as the worker renders them --------------------------------

MAILER = basic("mailer", MAILER_SECRET)
_LINK_TOKEN = re.compile(r"[?&]token=([A-Za-z0-9_-]+)")


class Clock:
    """The time auth mints, uses and expires emailed links by: fixed until a test moves it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(shared_app: FastAPI) -> Iterator[Clock]:
    """The shared app's clock, under the test's control (restored after it). Set by hand: the app's `State`
    keeps attributes in a dict of its own, which monkeypatch would not restore."""
    real, fake = shared_app.state.clock, Clock()
    shared_app.state.clock = fake
    yield fake
    shared_app.state.clock = real


async def queued_mails(db_session: AsyncSession, user_id: str | uuid.UUID, kind: str | None = None) -> list[Any]:
    """The user's outbound mails (oldest first), as the database has them now."""
    query = select(OutboundMail).where(OutboundMail.user_id == uuid.UUID(str(user_id)))
    if kind is not None:
        query = query.where(OutboundMail.kind == kind)
    result = await db_session.execute(query.order_by(OutboundMail.created_at).execution_options(populate_existing=True))
    return list(result.scalars())


async def render_mail(client: httpx.AsyncClient, mail_id: uuid.UUID | str) -> httpx.Response:
    """`POST /internal/mail/{id}/render` as the worker calls it."""
    return await client.post(f"/internal/mail/{mail_id}/render", headers=MAILER)


def link_token(rendered: dict[str, Any]) -> str:
    """The one-time token of a rendered mail's link (the same in its text and its HTML)."""
    found = _LINK_TOKEN.search(rendered["text"])
    assert found is not None, "no link in the mail"
    assert found.group(1) in rendered["html"]
    return found.group(1)


async def emailed_token(
    client: httpx.AsyncClient, db_session: AsyncSession, user_id: str | uuid.UUID, kind: str
) -> str:
    """Render the user's latest pending mail of `kind` and return its link's token."""
    pending = [m for m in await queued_mails(db_session, user_id, kind) if m.status == "pending"]
    assert pending, f"no pending {kind} mail"
    r = await render_mail(client, pending[-1].id)
    assert r.status_code == 200, r.text
    return link_token(r.json())
