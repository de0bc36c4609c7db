"""Web's sessions on the real Redis: lifetime, idle timeout, and one refresh at a time per session.

The API's answers to a refresh come from an `httpx.MockTransport` standing in for the gateway: what is
under test is web's bookkeeping; the browser journey (tests/e2e/test_web_journey.py) runs the real thing.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from owr_web.api.client import Api
from owr_web.api.errors import ApiUnavailable
from owr_web.sessions.errors import SignedOut
from owr_web.sessions.service import SessionStore
from owr_web.settings import WebSettings

PAIR = {"access_token": "a0", "refresh_token": "r0", "token_type": "bearer", "expires_in": 900}


def settings(**overrides: Any) -> WebSettings:
    return WebSettings.model_validate({"OWR_ENV": "test", **overrides})


class Gateway:
    """Answers `POST /api/v1/auth/refresh` with a new pair (or `status`), counting the calls."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.calls = 0
        self.status = status
        self.delay = delay

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/workspaces":  # the header's switcher, listed when a session starts
            return httpx.Response(200, json={"items": [], "total": 0, "page": 1, "per_page": 100})
        assert request.url.path == "/api/v1/auth/refresh"
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.status != 200:
            return httpx.Response(self.status, json={"title": "Unauthorized"})
        n = self.calls
        return httpx.Response(200, json={**PAIR, "access_token": f"a{n}", "refresh_token": f"r{n}"})

    def api(self) -> Api:
        client = httpx.AsyncClient(base_url="http://gateway", transport=httpx.MockTransport(self.handle))
        return Api(client, client_ip="203.0.113.9")


async def test_a_session_lives_until_its_lifetime_or_its_idle_timeout(redis_client: Redis) -> None:
    store = SessionStore(redis_client, settings(session_idle_seconds=60))
    session_id = await store.start(PAIR, "a@example.com", Gateway().api())
    loaded = await store.load(session_id)
    assert loaded is not None
    assert loaded.email == "a@example.com"
    # Redis holds the id's hash, never the id, and the TTL is the idle timeout.
    (key,) = [k async for k in redis_client.scan_iter("owr:web:session:*")]
    assert session_id not in key.decode()
    assert 55 <= await redis_client.ttl(key) <= 60
    # Past its lifetime it is gone, however recently it was used.
    raw = json.loads(await redis_client.get(key))
    raw["created_at"] = time.time() - settings().session_lifetime_seconds - 1
    await redis_client.set(key, json.dumps(raw))
    assert await store.load(session_id) is None
    assert await redis_client.exists(key) == 0
    assert await store.load("never-issued") is None


async def test_concurrent_requests_refresh_once(redis_client: Redis) -> None:
    store = SessionStore(redis_client, settings())
    gateway = Gateway(delay=0.2)
    session_id = await store.start(
        {**PAIR, "expires_in": 10}, "a@example.com", Gateway().api()
    )  # inside the 60 s margin
    sessions = [await store.load(session_id) for _ in range(5)]
    fresh = await asyncio.gather(*(store.fresh(session_id, s, gateway.api()) for s in sessions if s))
    # auth revokes a whole family when a refresh token is used twice: only one request may refresh.
    assert gateway.calls == 1
    assert {s.access_token for s in fresh} == {"a1"}
    stored = await store.load(session_id)
    assert stored is not None
    assert stored.refresh_token == "r1"


async def test_a_refused_refresh_ends_the_session(redis_client: Redis) -> None:
    store = SessionStore(redis_client, settings())
    session_id = await store.start({**PAIR, "expires_in": 5}, "a@example.com", Gateway().api())
    session = await store.load(session_id)
    assert session is not None
    with pytest.raises(SignedOut):
        await store.fresh(session_id, session, Gateway(status=401).api())
    assert await store.load(session_id) is None


async def test_a_token_with_time_left_is_not_refreshed(redis_client: Redis) -> None:
    store = SessionStore(redis_client, settings())
    gateway = Gateway()
    session_id = await store.start(PAIR, "a@example.com", Gateway().api())
    session = await store.load(session_id)
    assert session is not None
    assert (await store.fresh(session_id, session, gateway.api())).access_token == "a0"
    assert gateway.calls == 0


async def test_a_request_that_loaded_before_another_refreshed_does_not_refresh_again(redis_client: Redis) -> None:
    """B loaded the session, A refreshed it and let go of the lock, then B asks: B must take A's tokens (a
    second refresh would reuse the rotated refresh token, and auth would revoke the whole family)."""
    store = SessionStore(redis_client, settings())
    gateway = Gateway()
    session_id = await store.start({**PAIR, "expires_in": 10}, "a@example.com", Gateway().api())
    stale = await store.load(session_id)
    other = await store.load(session_id)
    assert stale is not None
    assert other is not None
    assert (await store.fresh(session_id, other, gateway.api())).refresh_token == "r1"
    assert (await store.fresh(session_id, stale, gateway.api())).refresh_token == "r1"
    assert gateway.calls == 1
    # Loading never writes the session back: the rotated token stays.
    await store.load(session_id)
    loaded = await store.load(session_id)
    assert loaded is not None
    assert loaded.refresh_token == "r1"


async def test_a_rate_limited_refresh_keeps_the_session(redis_client: Redis) -> None:
    store = SessionStore(redis_client, settings())
    session_id = await store.start({**PAIR, "expires_in": 5}, "a@example.com", Gateway().api())
    session = await store.load(session_id)
    assert session is not None
    with pytest.raises(ApiUnavailable):
        await store.fresh(session_id, session, Gateway(status=429).api())
    assert await store.load(session_id) is not None
