"""Issue 13, findings 9 and the schemathesis 500: a token stops working the moment its session,
password or account does, at auth (from the database) and for the gateway (the Redis marks)."""

from __future__ import annotations

import math
import uuid

import jwt
from sqlalchemy import select

from owr_auth.users.models import User
from tests.auth.conftest import PASSWORD, access_claims, login, register, registered_session, sign
from tests.support.http import assert_problem, bearer
from tools.devinfra import free_port

NEW_PASSWORD = "another long passphrase 8"


def _sid(access_token: str) -> str:
    return str(jwt.decode(access_token, options={"verify_signature": False})["sid"])


async def test_a_deleted_users_still_valid_token_is_a_401_everywhere_in_auth(client, shared_app):
    """Schemathesis: `POST /api/v1/tokens` after `DELETE /api/v1/auth/me` was an FK violation, a 500."""
    user = await register(client)
    # A token signed by auth's own key, as a second session's token would be: valid, its user gone.
    survivor = sign(shared_app, access_claims(user))
    pair = await login(client, user["email"])
    assert (await client.delete("/api/v1/auth/me", headers=bearer(pair["access_token"]))).status_code == 204
    for method, path, body in (
        ("POST", "/api/v1/tokens", {"name": "0"}),
        ("GET", "/api/v1/tokens", None),
        ("DELETE", f"/api/v1/tokens/{uuid.uuid4()}", None),
        ("GET", "/api/v1/auth/me", None),
        ("PUT", "/api/v1/auth/me/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        ("DELETE", "/api/v1/auth/me", None),
        ("DELETE", "/api/v1/auth/me/sessions", None),
    ):
        r = await client.request(method, path, json=body, headers=bearer(survivor))
        assert_problem(r, 401)


async def test_logout_ends_the_sessions_access_token_at_once(client, redis_client):
    _, pair = await registered_session(client)
    headers = bearer(pair["access_token"])
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200
    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})).status_code == 204
    assert_problem(await client.get("/api/v1/auth/me", headers=headers), 401)
    key = f"owr:revoked:sid:{_sid(pair['access_token'])}"
    assert await redis_client.exists(key) == 1  # what the gateway reads in its one Redis call
    assert 900 < await redis_client.ttl(key) <= 960


async def test_logout_leaves_the_users_other_sessions_alone(client):
    user, first = await registered_session(client)
    second = await login(client, user["email"])
    await client.post("/api/v1/auth/logout", json={"refresh_token": first["refresh_token"]})
    assert (await client.get("/api/v1/auth/me", headers=bearer(second["access_token"]))).status_code == 200


async def test_refresh_token_reuse_ends_the_familys_access_tokens(client, redis_client):
    _, pair = await registered_session(client)
    rotated = (await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})).json()
    assert_problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}), 401)
    for token in (pair["access_token"], rotated["access_token"]):
        assert_problem(await client.get("/api/v1/auth/me", headers=bearer(token)), 401)
    assert await redis_client.exists(f"owr:revoked:sid:{_sid(rotated['access_token'])}") == 1


async def test_the_password_cutoff_is_sub_second(client, shared_app, redis_client, db_session):
    """A token minted a millisecond before the change (in its second, usually) is refused, at auth from
    the database and at the gateway from the Redis mark; one minted after the change is not."""
    user, pair = await registered_session(client)
    r = await client.put(
        "/api/v1/auth/me/password",
        headers=bearer(pair["access_token"]),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 204, r.text
    changed_at = (
        await db_session.execute(select(User.password_changed_at).where(User.id == uuid.UUID(user["id"])))
    ).scalar_one()
    cutoff = float(await redis_client.get(f"owr:revoked:user:{user['id']}"))
    just_before = math.floor(changed_at.timestamp() * 1000) / 1000 - 0.001
    assert just_before < changed_at.timestamp() <= cutoff  # the gateway's mark is no earlier than auth's
    stale = sign(shared_app, access_claims(user, iat=just_before))
    assert_problem(await client.get("/api/v1/auth/me", headers=bearer(stale)), 401)
    fresh = await login(client, user["email"], NEW_PASSWORD)
    fresh_iat = jwt.decode(fresh["access_token"], options={"verify_signature": False})["iat"]
    assert fresh_iat >= cutoff - 0.001
    assert (await client.get("/api/v1/auth/me", headers=bearer(fresh["access_token"]))).status_code == 200


async def test_logout_without_redis_is_refused_and_rolled_back(app_factory):
    """Fail closed: a logout that cannot deny the access token is a 503, and the session is intact."""
    async with app_factory() as client:
        _, pair = await registered_session(client)
    async with app_factory(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0") as down:
        r = await down.post("/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
        body = assert_problem(r, 503)
        assert r.headers["retry-after"]
        assert pair["refresh_token"] not in str(body)
    async with app_factory() as client:
        assert (
            await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        ).status_code == 200
