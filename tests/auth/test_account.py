"""`/me`, password change and account deletion."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
from sqlalchemy import func, select

from owr_auth.sessions.models import RefreshToken, RefreshTokenFamily
from owr_auth.sessions.service import hash_refresh_token
from owr_auth.users.models import User
from owr_auth.workspaces.models import Membership, Workspace
from tests.auth.conftest import PASSWORD, access_claims, login, register, registered_session, sign
from tests.support.http import assert_problem, bearer
from tools.devinfra import free_port

NEW_PASSWORD = "another quite long passphrase 8"


async def change(client: httpx.AsyncClient, token: str, current: str, new: str) -> httpx.Response:
    return await client.put(
        "/api/v1/auth/me/password", headers=bearer(token), json={"current_password": current, "new_password": new}
    )


async def test_change_password_revokes_sessions_and_publishes_cutoff(client, shared_app, redis_client, db_session):
    user = await register(client)
    # A token issued a few seconds ago: after the change it is older than the cut-off.
    old_access = sign(shared_app, access_claims(user, iat=int(time.time()) - 5))
    first = await login(client, user["email"])
    second = await login(client, user["email"])

    before = time.time()
    r = await change(client, first["access_token"], PASSWORD, NEW_PASSWORD)
    assert r.status_code == 204, r.text
    after = time.time()

    for pair in (first, second):
        r = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert_problem(r, 401)
    families = (
        (
            await db_session.execute(
                select(RefreshTokenFamily.revoked_reason).where(RefreshTokenFamily.user_id == uuid.UUID(user["id"]))
            )
        )
        .scalars()
        .all()
    )
    assert families == ["password_change", "password_change"]

    key = f"owr:revoked:user:{user['id']}"
    assert before <= float(await redis_client.get(key)) <= after
    assert 900 < await redis_client.ttl(key) <= 960
    for pair in (first, second):  # each session's access tokens are denied by `sid` as well
        sid = jwt.decode(pair["access_token"], options={"verify_signature": False})["sid"]
        assert await redis_client.exists(f"owr:revoked:sid:{sid}") == 1

    assert_problem(await client.get("/api/v1/auth/me", headers=bearer(old_access)), 401)
    assert_problem(await client.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD}), 401)
    fresh = await login(client, user["email"], NEW_PASSWORD)
    assert (await client.get("/api/v1/auth/me", headers=bearer(fresh["access_token"]))).status_code == 200


async def test_change_password_with_wrong_current_is_403(client, redis_client):
    user, pair = await registered_session(client)
    r = await change(client, pair["access_token"], "not my password!", NEW_PASSWORD)
    body = assert_problem(r, 403)
    assert body["type"].endswith("/wrong-current-password")
    assert NEW_PASSWORD not in r.text
    assert "not my password!" not in r.text
    assert await redis_client.exists(f"owr:revoked:user:{user['id']}") == 0
    await login(client, user["email"])  # unchanged


async def test_change_password_applies_the_policy_to_the_new_one(client):
    user, pair = await registered_session(client)
    r = await change(client, pair["access_token"], PASSWORD, "qwerty123456")
    body = assert_problem(r, 422)
    assert [(e["loc"], e["type"]) for e in body["errors"]] == [(["body", "new_password"], "password_too_common")]
    assert "qwerty123456" not in r.text
    await login(client, user["email"])


async def test_change_password_needs_a_token(client):
    r = await client.put("/api/v1/auth/me/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert_problem(r, 401)


async def test_wrong_current_passwords_are_throttled(client):
    _, pair = await registered_session(client)
    for _ in range(5):
        assert_problem(await change(client, pair["access_token"], "not my password!", NEW_PASSWORD), 403)
    r = await change(client, pair["access_token"], PASSWORD, NEW_PASSWORD)
    assert_problem(r, 429)
    assert int(r.headers["retry-after"]) >= 1


async def test_change_password_without_redis_is_refused_and_rolled_back(app_factory):
    async with app_factory(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0") as client:
        user = await register(client)
        token = sign(client.app, access_claims(user))
        assert_problem(await change(client, token, PASSWORD, NEW_PASSWORD), 503)
    async with app_factory() as client:
        await login(client, user["email"], PASSWORD)


async def test_delete_account_removes_its_rows(client, redis_client, db_session):
    user, pair = await registered_session(client)
    user_id, workspace_id = uuid.UUID(user["id"]), uuid.UUID(user["workspace"]["id"])

    r = await client.delete("/api/v1/auth/me", headers=bearer(pair["access_token"]))
    assert r.status_code == 204, r.text

    assert await db_session.get(User, user_id) is None
    assert await db_session.get(Workspace, workspace_id) is None
    counts = [
        await db_session.scalar(select(func.count()).select_from(Membership).where(Membership.user_id == user_id)),
        await db_session.scalar(
            select(func.count()).select_from(RefreshTokenFamily).where(RefreshTokenFamily.user_id == user_id)
        ),
        await db_session.scalar(
            select(func.count())
            .select_from(RefreshToken)
            .where(RefreshToken.token_hash == hash_refresh_token(pair["refresh_token"]))
        ),
    ]
    assert counts == [0, 0, 0]
    assert await redis_client.exists(f"owr:revoked:user:{user['id']}") == 1

    assert_problem(await client.get("/api/v1/auth/me", headers=bearer(pair["access_token"])), 401)
    assert_problem(await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}), 401)
    assert_problem(await client.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD}), 401)
    assert_problem(await client.delete("/api/v1/auth/me", headers=bearer(pair["access_token"])), 401)
    # The address is free again.
    await register(client, user["email"])


async def test_delete_keeps_workspaces_owned_by_another(client, db_session):
    """A workspace has one owner; an account deleted while a member of someone else's leaves it intact."""
    alice, alice_pair = await registered_session(client)
    bob = await register(client)
    shared_id = uuid.UUID(bob["workspace"]["id"])
    db_session.add(Membership(user_id=uuid.UUID(alice["id"]), workspace_id=shared_id, role="admin"))
    await db_session.flush()

    assert (await client.delete("/api/v1/auth/me", headers=bearer(alice_pair["access_token"]))).status_code == 204
    assert await db_session.get(Workspace, shared_id) is not None
    members = (await db_session.execute(select(Membership.user_id).where(Membership.workspace_id == shared_id))).all()
    assert [row[0] for row in members] == [uuid.UUID(bob["id"])]
    assert await db_session.get(Workspace, uuid.UUID(alice["workspace"]["id"])) is None


async def test_me_of_a_deleted_user_is_401(client, shared_app, db_session):
    user = await register(client)
    token = sign(shared_app, access_claims(user))
    await db_session.delete(await db_session.get(User, uuid.UUID(user["id"])))
    await db_session.flush()
    body = assert_problem(await client.get("/api/v1/auth/me", headers=bearer(token)), 401)
    assert user["email"] not in str(body)
