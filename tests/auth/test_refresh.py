"""Refresh-token rotation, reuse detection, concurrency, expiry and logout."""

from __future__ import annotations

import asyncio
import secrets
import uuid

import httpx
import jwt
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from owr_auth.sessions.models import RefreshToken, RefreshTokenFamily
from owr_auth.sessions.service import hash_refresh_token
from tests.auth.conftest import login, register, registered_session
from tests.support.http import assert_problem, bearer


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def family_of(db_session: AsyncSession, refresh_token: str) -> RefreshTokenFamily:
    """The stored family of a refresh token."""
    query = (
        select(RefreshTokenFamily)
        .join(RefreshToken)
        .where(RefreshToken.token_hash == hash_refresh_token(refresh_token))
    )
    return (await db_session.execute(query)).scalar_one()


async def test_refresh_rotates(client, db_session):
    user, first = await registered_session(client)
    r = await refresh(client, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert set(second) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert second["refresh_token"] != first["refresh_token"]
    assert second["refresh_token"].startswith("owrr_")
    assert len(second["refresh_token"]) == 48
    claims = jwt.decode(second["access_token"], options={"verify_signature": False})
    assert (claims["sub"], claims["wid"], claims["role"]) == (user["id"], user["workspace"]["id"], "owner")
    assert (await client.get("/api/v1/auth/me", headers=bearer(second["access_token"]))).status_code == 200

    third = (await refresh(client, second["refresh_token"])).json()
    rows = (
        (
            await db_session.execute(
                select(RefreshToken).join(RefreshTokenFamily).where(RefreshTokenFamily.user_id == uuid.UUID(user["id"]))
            )
        )
        .scalars()
        .all()
    )
    assert len(rows) == 3
    assert len({row.family_id for row in rows}) == 1  # one family per login
    by_hash = {row.token_hash: row for row in rows}
    assert by_hash[hash_refresh_token(first["refresh_token"])].rotated_at is not None
    assert by_hash[hash_refresh_token(second["refresh_token"])].rotated_at is not None
    assert by_hash[hash_refresh_token(third["refresh_token"])].rotated_at is None
    # Only hashes are stored.
    assert all(len(row.token_hash) == 32 for row in rows)


async def test_reuse_of_a_rotated_token_revokes_the_family(client, db_session):
    _, first = await registered_session(client)
    second = (await refresh(client, first["refresh_token"])).json()
    third = (await refresh(client, second["refresh_token"])).json()

    r = await refresh(client, first["refresh_token"])
    body = assert_problem(r, 401)
    assert body["type"].endswith("/invalid-refresh-token")
    # The newest token of the family stops working too, and the revocation was committed.
    assert_problem(await refresh(client, third["refresh_token"]), 401)
    family = await family_of(db_session, first["refresh_token"])
    assert family.revoked_at is not None
    assert family.revoked_reason == "reuse"


async def test_families_are_independent(client):
    user = await register(client)
    a = await login(client, user["email"])
    b = await login(client, user["email"])
    await refresh(client, a["refresh_token"])
    assert_problem(await refresh(client, a["refresh_token"]), 401)  # family A revoked
    assert (await refresh(client, b["refresh_token"])).status_code == 200


async def test_concurrent_refreshes_of_one_token_yield_one_pair(committed_client):
    _, pair = await registered_session(committed_client)
    results = await asyncio.gather(*(refresh(committed_client, pair["refresh_token"]) for _ in range(2)))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 401], [r.text for r in results]
    # The loser presented a token that had just rotated: that is reuse, so the family is gone.
    winner = next(r for r in results if r.status_code == 200).json()
    assert_problem(await refresh(committed_client, winner["refresh_token"]), 401)


async def test_expired_refresh_token_is_401_without_revoking(client, db_session):
    _, pair = await registered_session(client)
    token_hash = hash_refresh_token(pair["refresh_token"])
    await db_session.execute(
        update(RefreshToken).where(RefreshToken.token_hash == token_hash).values(expires_at=RefreshToken.created_at)
    )
    await db_session.flush()
    assert_problem(await refresh(client, pair["refresh_token"]), 401)


async def test_unknown_and_malformed_refresh_tokens_are_401(client):
    for token in ("owrr_" + secrets.token_urlsafe(32), "owrr_short", "", "eyJhbGciOi.x.y", "x" * 256):
        body = assert_problem(await refresh(client, token), 401)
        assert body["type"].endswith("/invalid-refresh-token")


async def test_access_token_is_not_a_refresh_token(client):
    _, pair = await registered_session(client)
    assert_problem(await refresh(client, pair["access_token"][:256]), 401)


async def test_logout_revokes_the_family_and_is_idempotent(client, db_session):
    _, pair = await registered_session(client)
    second = (await refresh(client, pair["refresh_token"])).json()
    r = await client.post("/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 204
    assert r.content == b""
    assert_problem(await refresh(client, second["refresh_token"]), 401)
    family = await family_of(db_session, second["refresh_token"])
    assert family.revoked_reason == "logout"
    for token in (second["refresh_token"], "owrr_" + secrets.token_urlsafe(32), "nonsense"):
        r = await client.post("/api/v1/auth/logout", json={"refresh_token": token})
        assert r.status_code == 204
