"""Sessions (issue 16, item 7): list mine, end one, end all; each effective at once for access tokens too
(at auth from the database; for the gateway through the `sid` marks it reads, tests/e2e for the hop)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from tests.auth.conftest import PASSWORD, login, register, registered_session
from tests.support.http import assert_problem, bearer
from tools.devinfra import free_port

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
CURL = "curl/8.9.1"


def _sid(access_token: str) -> str:
    return str(jwt.decode(access_token, options={"verify_signature": False})["sid"])


async def _login_as(client: httpx.AsyncClient, email: str, agent: str) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": PASSWORD}, headers={"user-agent": agent}
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _sessions(client: httpx.AsyncClient, pair: dict[str, Any]) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/auth/sessions", headers=bearer(pair["access_token"]))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_my_sessions_are_listed_with_their_client_and_the_current_one_marked(client):
    user = await register(client)
    laptop = await _login_as(client, user["email"], FIREFOX)
    script = await _login_as(client, user["email"], CURL)
    r = await client.get("/api/v1/auth/sessions", headers=bearer(laptop["access_token"]))
    page = r.json()
    assert (page["total"], page["page"]) == (2, 1)
    by_id = {s["id"]: s for s in page["items"]}
    assert set(by_id) == {_sid(laptop["access_token"]), _sid(script["access_token"])}
    mine = by_id[_sid(laptop["access_token"])]
    assert mine["current"] is True
    assert mine["user_agent"] == FIREFOX
    assert mine["ip"] == "127.0.0.1"
    assert by_id[_sid(script["access_token"])]["current"] is False
    assert by_id[_sid(script["access_token"])]["user_agent"] == CURL
    assert set(mine) == {"id", "created_at", "last_used_at", "user_agent", "ip", "current"}
    # Most recently used first; another user's sessions are never in the list.
    assert page["items"][0]["id"] == _sid(script["access_token"])
    _, other = await registered_session(client)
    assert {s["id"] for s in await _sessions(client, other)} == {_sid(other["access_token"])}


async def test_a_refresh_records_the_use_and_the_client(client):
    user = await register(client)
    pair = await _login_as(client, user["email"], FIREFOX)
    (before,) = await _sessions(client, pair)
    r = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}, headers={"user-agent": CURL}
    )
    rotated = r.json()
    (after,) = await _sessions(client, rotated)
    assert after["id"] == before["id"]
    assert after["current"] is True
    assert after["user_agent"] == CURL
    assert datetime.fromisoformat(after["last_used_at"]) >= datetime.fromisoformat(before["last_used_at"])
    assert after["created_at"] == before["created_at"]


async def test_the_user_agent_is_bounded_and_printable(client):
    user = await register(client)
    pair = await _login_as(client, user["email"], "x" * 300 + "\t" + "y" * 1000)
    (session,) = await _sessions(client, pair)
    assert session["user_agent"] == "x" * 256


async def test_ended_sessions_are_not_listed(client):
    user = await register(client)
    gone = await login(client, user["email"])
    stays = await login(client, user["email"])
    await client.post("/api/v1/auth/logout", json={"refresh_token": gone["refresh_token"]})
    assert [s["id"] for s in await _sessions(client, stays)] == [_sid(stays["access_token"])]


async def test_ending_one_session_ends_its_access_token_at_once(client, redis_client):
    user = await register(client)
    mine = await login(client, user["email"])
    stolen = await login(client, user["email"])
    sid = _sid(stolen["access_token"])
    r = await client.delete(f"/api/v1/auth/sessions/{sid}", headers=bearer(mine["access_token"]))
    assert r.status_code == 204, r.text
    assert_problem(await client.get("/api/v1/auth/me", headers=bearer(stolen["access_token"])), 401)
    assert_problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]}), 401)
    assert await redis_client.exists(f"owr:revoked:sid:{sid}") == 1  # what the gateway reads
    assert (await client.get("/api/v1/auth/me", headers=bearer(mine["access_token"]))).status_code == 200
    # Ended already: a 404, like a session that never was.
    assert_problem(await client.delete(f"/api/v1/auth/sessions/{sid}", headers=bearer(mine["access_token"])), 404)


async def test_ending_the_current_session_signs_this_token_out(client):
    _, pair = await registered_session(client)
    r = await client.delete(f"/api/v1/auth/sessions/{_sid(pair['access_token'])}", headers=bearer(pair["access_token"]))
    assert r.status_code == 204
    assert_problem(await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"])), 401)


async def test_another_persons_session_is_a_404_and_stays_alive(client):
    _, alice = await registered_session(client)
    _, bob = await registered_session(client)
    for target in (_sid(bob["access_token"]), str(uuid.uuid4())):
        body = assert_problem(
            await client.delete(f"/api/v1/auth/sessions/{target}", headers=bearer(alice["access_token"])), 404
        )
        assert body["type"].endswith("/session-not-found")
    assert (await client.get("/api/v1/auth/me", headers=bearer(bob["access_token"]))).status_code == 200


async def test_revoke_all_ends_every_session_but_not_the_api_tokens(client, redis_client):
    user = await register(client)
    pairs = [await login(client, user["email"]) for _ in range(3)]
    r = await client.post("/api/v1/tokens", headers=bearer(pairs[0]["access_token"]), json={"name": "ci"})
    token = r.json()["token"]
    r = await client.post("/api/v1/auth/sessions/revoke-all", headers=bearer(pairs[0]["access_token"]))
    assert r.status_code == 204, r.text
    for pair in pairs:
        assert_problem(await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"])), 401)
        assert_problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}), 401)
        assert await redis_client.exists(f"owr:revoked:sid:{_sid(pair['access_token'])}") == 1
    # No user-wide cut-off: that would end the API tokens' JWTs at the gateway as well.
    assert await redis_client.exists(f"owr:revoked:user:{user['id']}") == 0
    fresh = await login(client, user["email"])
    r = await client.get("/api/v1/tokens", headers=bearer(fresh["access_token"]))
    assert [t["prefix"] for t in r.json()["items"]] == [token[:10]]


async def test_revoke_all_can_keep_the_current_session(client):
    user = await register(client)
    here, there = await login(client, user["email"]), await login(client, user["email"])
    r = await client.post(
        "/api/v1/auth/sessions/revoke-all", headers=bearer(here["access_token"]), json={"keep_current": True}
    )
    assert r.status_code == 204, r.text
    assert (await client.get("/api/v1/auth/me", headers=bearer(here["access_token"]))).status_code == 200
    assert_problem(await client.get("/api/v1/auth/me", headers=bearer(there["access_token"])), 401)
    assert [s["id"] for s in await _sessions(client, here)] == [_sid(here["access_token"])]


async def test_sign_out_everywhere_still_ends_api_tokens_too(client):
    """`DELETE /api/v1/auth/me/sessions` (the hardening issue's) keeps its meaning."""
    _, pair = await registered_session(client)
    await client.post("/api/v1/tokens", headers=bearer(pair["access_token"]), json={"name": "ci"})
    assert (await client.delete("/api/v1/auth/me/sessions", headers=bearer(pair["access_token"]))).status_code == 204
    assert_problem(await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"])), 401)


async def test_without_redis_a_revocation_is_refused_and_nothing_changes(app_factory):
    # One signing key for the three apps, so each accepts the others' tokens.
    key = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    async with app_factory(jwt_private_key=key) as client:
        user = await register(client)
        keep, target = await login(client, user["email"]), await login(client, user["email"])
    async with app_factory(jwt_private_key=key, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0") as down:
        headers = bearer(keep["access_token"])
        r = await down.delete(f"/api/v1/auth/sessions/{_sid(target['access_token'])}", headers=headers)
        assert_problem(r, 503)
        assert_problem(await down.post("/api/v1/auth/sessions/revoke-all", headers=headers), 503)
    async with app_factory(jwt_private_key=key) as client:
        assert len(await _sessions(client, keep)) == 2
        r = await client.post("/api/v1/auth/refresh", json={"refresh_token": target["refresh_token"]})
        assert r.status_code == 200
